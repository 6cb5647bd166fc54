//! JSON log lines for stag and prod, shaped like the Python runtime's, written to stdout and to a
//! size-rotated file under the PaaS log directory.
//!
//! PaaS collects JSON lines from files under `/app/v3logs/`, and BK-SOPS formats each line of a
//! plugin's log as `[{ts}]{levelname}-{funcName}: {message}` (`docs/operations.md`). So every line
//! carries the keys Python's formatter writes (blueapps' `JsonFormatter` plus the runtime's
//! `trace_id`): `levelname` (Python's names: `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`),
//! `asctime` (`YYYY-mm-dd HH:MM:SS,mmm`), `pathname`, `lineno`, `funcName`, `process`, `thread`,
//! `message`, `trace_id`; then `logger` (the tracing target), inside an exported OpenTelemetry
//! span `otelTraceID`, `otelSpanID` and `otelServiceName` (the names blueapps' logging
//! instrumentation gives them), and the event's own fields.
//!
//! `pathname` never shows where the binary was built: a dependency's file is named from its
//! crate directory (`actix-server-2.6.0/src/worker.rs`, not the cargo registry path), and any
//! other absolute path from the crate directory holding its `src/` ([`source_path`]).
//!
//! Rust has no function names at run time: `funcName` is the last segment of the module path the
//! line was logged from (`v1_0_0` for `bkp_fixtures::versions::v1_0_0`), or of the target when
//! there is no module path; for a panic, the file stem of the panic's location.
//!
//! The file is `{BKPAAS_PROCESS_TYPE}-{4 random letters or digits}-plugin.log`, as Python names
//! its files, opened at the first line; it is rotated by size like Python's
//! `RotatingFileHandler` (`.log.1` is the newest old file, at most `backups` are kept). When the
//! directory cannot be written, lines go to stdout only and one warning says so.

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use serde_json::{Map, Value};

/// The target of the event the panic hook logs.
pub(crate) const PANIC_TARGET: &str = "bk_plugin::panic";

/// Python's level name for a tracing level (Python has no TRACE: it is `DEBUG`).
pub(crate) fn levelname(level: &tracing::Level) -> &'static str {
    match *level {
        tracing::Level::ERROR => "ERROR",
        tracing::Level::WARN => "WARNING",
        tracing::Level::INFO => "INFO",
        _ => "DEBUG",
    }
}

/// One log line before it is written.
#[derive(Debug)]
pub(crate) struct Record<'a> {
    /// Python's level name.
    pub levelname: &'a str,
    /// The time, already formatted.
    pub asctime: String,
    /// The source file.
    pub pathname: &'a str,
    /// The source line (0 when unknown).
    pub lineno: u32,
    /// See the module documentation.
    pub func_name: &'a str,
    /// The message.
    pub message: &'a str,
    /// The trace id, when the line belongs to one.
    pub trace_id: Option<&'a str>,
    /// The tracing target.
    pub logger: &'a str,
    /// Trace id, span id and service name of the OpenTelemetry span the line was written in.
    pub otel: Option<(&'a str, &'a str, &'a str)>,
    /// The event's other fields.
    pub extra: &'a Map<String, Value>,
}

/// No extra fields.
static NO_EXTRA: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Record<'a> {
    /// A line the runtime writes itself, outside the subscriber, at its caller's file and line,
    /// now, with no trace id and no extra fields.
    #[track_caller]
    fn runtime(levelname: &'a str, func_name: &'a str, logger: &'a str, message: &'a str) -> Self {
        let at = std::panic::Location::caller();
        Self {
            levelname,
            asctime: asctime(zone_from_env()),
            pathname: at.file(),
            lineno: at.line(),
            func_name,
            message,
            trace_id: None,
            logger,
            otel: None,
            extra: &NO_EXTRA,
        }
    }

    /// The JSON line, newline included.
    pub(crate) fn to_line(&self) -> String {
        let mut line = Map::new();
        line.insert("levelname".into(), self.levelname.into());
        line.insert("asctime".into(), self.asctime.clone().into());
        line.insert("pathname".into(), source_path(self.pathname).into());
        line.insert("lineno".into(), self.lineno.into());
        line.insert("funcName".into(), self.func_name.into());
        line.insert("process".into(), std::process::id().into());
        line.insert("thread".into(), thread_number().into());
        line.insert("message".into(), self.message.into());
        line.insert(
            "trace_id".into(),
            self.trace_id.map_or(Value::Null, Value::from),
        );
        line.insert("logger".into(), self.logger.into());
        if let Some((trace, span, service)) = self.otel {
            line.insert("otelTraceID".into(), trace.into());
            line.insert("otelSpanID".into(), span.into());
            line.insert("otelServiceName".into(), service.into());
        }
        for (key, value) in self.extra {
            line.entry(key.clone()).or_insert_with(|| value.clone());
        }
        let mut text = Value::Object(line).to_string();
        text.push('\n');
        text
    }
}

/// A source file as a log line names it, without the build machine's directories: from the
/// crate directory after cargo's registry (`.../registry/src/<index>/`) or git checkouts
/// (`.../git/checkouts/`), from `library/` for the standard library
/// (`/rustc/<hash>/library/...`), and for any other absolute path from the directory holding
/// its `src/`. Relative paths (the workspace's own crates) are kept.
pub(crate) fn source_path(path: &str) -> &str {
    let absolute = path.starts_with('/') || path.get(1..3) == Some(":\\");
    if !absolute {
        return path;
    }
    let path_after = |marker: &str, skip: usize| {
        path.find(marker).map(|at| {
            let mut rest = &path[at + marker.len()..];
            for _ in 0..skip {
                rest = rest.split_once('/').map_or(rest, |(_, tail)| tail);
            }
            rest
        })
    };
    if let Some(rest) = path_after("/registry/src/", 1) {
        return rest;
    }
    if let Some(rest) = path_after("/git/checkouts/", 0) {
        return rest;
    }
    if let Some(at) = path
        .find("/library/")
        .filter(|_| path.starts_with("/rustc/"))
    {
        return &path[at + 1..];
    }
    match path.find("/src/") {
        Some(at) => {
            let crate_dir = path[..at].rfind('/').map_or(0, |slash| slash + 1);
            &path[crate_dir..]
        }
        None => path.rsplit('/').next().unwrap_or(path),
    }
}

/// `TIME_ZONE` (default `Asia/Shanghai`), for lines written before the configuration is read.
fn zone_from_env() -> chrono_tz::Tz {
    crate::config::var("TIME_ZONE")
        .and_then(|z| z.trim().parse().ok())
        .unwrap_or(chrono_tz::Asia::Shanghai)
}

/// Python's `asctime`: `2026-11-26 13:50:36,123` in `zone`.
pub(crate) fn asctime(zone: chrono_tz::Tz) -> String {
    chrono::Utc::now()
        .with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S,%3f")
        .to_string()
}

/// The last `::` segment of a module path or target (`v1_0_0`).
pub(crate) fn func_name(module_or_target: &str) -> &str {
    module_or_target
        .rsplit("::")
        .next()
        .unwrap_or(module_or_target)
}

/// A small number for the current thread (Rust's `ThreadId`), as Python logs `thread`.
fn thread_number() -> u64 {
    thread_local! {
        static NUMBER: u64 = {
            let text = format!("{:?}", std::thread::current().id());
            text.trim_start_matches("ThreadId(")
                .trim_end_matches(')')
                .parse()
                .unwrap_or(0)
        };
    }
    NUMBER.with(|n| *n)
}

/// Where the log file goes and how it is rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileSettings {
    /// The directory (`BK_PLUGIN_LOG_DIR`, default `/app/v3logs`).
    pub dir: PathBuf,
    /// `BKPAAS_PROCESS_TYPE`, the first part of the file name.
    pub process_type: String,
    /// Rotate before a line would take the file past this many bytes.
    pub max_bytes: u64,
    /// How many rotated files to keep.
    pub backups: usize,
}

/// Writes every line to stdout, and to the log file while it can.
#[derive(Debug)]
pub(crate) struct Sink {
    file: Option<Mutex<FileState>>,
}

#[derive(Debug)]
enum FileState {
    NotYetOpened(FileSettings),
    Open(RotatingFile),
    Off,
}

static SINK: OnceLock<Sink> = OnceLock::new();

impl Sink {
    /// Installs the process's sink (the first call wins) and returns it.
    pub(crate) fn install(file: Option<FileSettings>) -> &'static Sink {
        SINK.get_or_init(|| Sink {
            file: file.map(|settings| Mutex::new(FileState::NotYetOpened(settings))),
        })
    }

    /// The installed sink, if any.
    pub(crate) fn get() -> Option<&'static Sink> {
        SINK.get()
    }

    /// Writes one line (newline included) to stdout and the file.
    pub(crate) fn write(&self, line: &str) {
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
        self.write_file(line);
    }

    /// Writes one line to the file only (the line went to stderr).
    fn write_file(&self, line: &str) {
        let Some(file) = &self.file else {
            return;
        };
        let Ok(mut state) = file.lock() else {
            return;
        };
        if let FileState::NotYetOpened(settings) = &*state {
            *state = match RotatingFile::open_new(settings) {
                Ok(opened) => FileState::Open(opened),
                Err(e) => {
                    say_once(&format!(
                        "cannot write log files under {}: {e}; logging to stdout only (set BK_PLUGIN_LOG_DIR)",
                        settings.dir.display()
                    ));
                    FileState::Off
                }
            };
        }
        if let FileState::Open(open) = &mut *state
            && let Err(e) = open.write_line(line.as_bytes())
        {
            let path = open.path.display().to_string();
            *state = FileState::Off;
            drop(state);
            say_once(&format!(
                "cannot write the log file {path}: {e}; logging to stdout only from now on"
            ));
        }
    }
}

/// One warning line about the log file itself, to stdout only.
fn say_once(message: &str) {
    let record = Record::runtime("WARNING", "json_log", module_path!(), message);
    let _ = std::io::stdout()
        .lock()
        .write_all(record.to_line().as_bytes());
}

/// A file rotated by size the way Python's `RotatingFileHandler` does it.
#[derive(Debug)]
pub(crate) struct RotatingFile {
    path: PathBuf,
    file: File,
    size: u64,
    max_bytes: u64,
    backups: usize,
}

impl RotatingFile {
    /// Creates the directory if needed and a new file named for this process in it.
    pub(crate) fn open_new(settings: &FileSettings) -> std::io::Result<Self> {
        let name = format!("{}-{}-plugin.log", settings.process_type, random_tag(4));
        Self::open(
            &settings.dir.join(name),
            settings.max_bytes,
            settings.backups,
        )
    }

    /// Opens (appending) or creates `path`.
    pub(crate) fn open(path: &Path, max_bytes: u64, backups: usize) -> std::io::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let size = file.metadata()?.len();
        Ok(Self {
            path: path.to_path_buf(),
            file,
            size,
            max_bytes,
            backups,
        })
    }

    /// The file's path.
    #[cfg(test)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one line, rotating first when it would take the file past the limit.
    pub(crate) fn write_line(&mut self, line: &[u8]) -> std::io::Result<()> {
        let len = line.len() as u64;
        if self.max_bytes > 0 && self.size > 0 && self.size + len > self.max_bytes {
            self.rotate()?;
        }
        self.file.write_all(line)?;
        self.size += len;
        Ok(())
    }

    fn backup(&self, n: usize) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if self.backups > 0 {
            for n in (1..self.backups).rev() {
                let from = self.backup(n);
                if from.exists() {
                    std::fs::rename(&from, self.backup(n + 1))?;
                }
            }
            std::fs::rename(&self.path, self.backup(1))?;
            self.file = OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
        } else {
            self.file = OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(true)
                .open(&self.path)?;
        }
        self.size = 0;
        Ok(())
    }
}

/// `n` random ASCII letters and digits, as Python's `random.sample(ascii_letters + digits, n)`.
fn random_tag(n: usize) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    uuid::Uuid::new_v4()
        .as_bytes()
        .iter()
        .take(n)
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect()
}

/// Writes a message the runtime prints outside the subscriber (a command-line error, a start-up
/// failure) to stderr: a JSON line (also written to the log file, when logging is set up) when `json`,
/// `error: <message>` otherwise.
pub(crate) fn print_error(json: bool, message: &str) {
    if !json {
        eprintln!("error: {message}");
        return;
    }
    let record = Record::runtime("ERROR", "main", "bk_plugin", message);
    let line = record.to_line();
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    if let Some(sink) = Sink::get() {
        sink.write_file(&line);
    }
}

/// Whether this process writes JSON lines: `BKPAAS_ENVIRONMENT` is `stag` or `prod`, or a
/// value that is not an environment at all (read
/// directly, so that it is known before the configuration is).
pub(crate) fn json_mode() -> bool {
    let value = crate::config::var("BKPAAS_ENVIRONMENT").unwrap_or_default();
    // An unknown name stops the process; its refusal is written as JSON like production's.
    crate::config::Environment::parse(&value).map_or(!value.trim().is_empty(), |env| {
        env != crate::config::Environment::Dev
    })
}

/// Logs every panic as one event (target [`PANIC_TARGET`], level ERROR, shown as `CRITICAL`)
/// with its message and location, inside whatever trace the panicking code runs in. The JSON
/// layer writes it; nothing else is printed.
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        thread_local! {
            static IN_HOOK: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
        }
        if IN_HOOK.with(|flag| flag.replace(true)) {
            return; // a panic while logging a panic
        }
        let payload = info.payload();
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "Box<dyn Any>".to_string());
        let (file, line, column) = info.location().map_or(("", 0, 0), |l| {
            (source_path(l.file()), l.line(), l.column())
        });
        tracing::error!(
            target: PANIC_TARGET,
            panic_file = file,
            panic_line = line,
            "panicked at {file}:{line}:{column}: {message}"
        );
        IN_HOOK.with(|flag| flag.set(false));
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_get_python_names() {
        assert_eq!(levelname(&tracing::Level::WARN), "WARNING");
        assert_eq!(levelname(&tracing::Level::TRACE), "DEBUG");
        assert_eq!(levelname(&tracing::Level::ERROR), "ERROR");
    }

    #[test]
    fn a_line_has_every_key_python_writes_in_its_order() {
        let extra: Map<String, Value> = serde_json::json!({"k": 1, "message": "not this"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let line = Record {
            levelname: "INFO",
            asctime: "2026-11-26 13:50:36,123".into(),
            pathname: "src/x.rs",
            lineno: 7,
            func_name: func_name("a::b::c"),
            message: "hello",
            trace_id: Some("t"),
            logger: "a::b::c",
            otel: None,
            extra: &extra,
        }
        .to_line();
        assert!(line.ends_with('\n'));
        let value: Value = serde_json::from_str(&line).unwrap_or_default();
        let keys: Vec<&str> = value
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "levelname",
                "asctime",
                "pathname",
                "lineno",
                "funcName",
                "process",
                "thread",
                "message",
                "trace_id",
                "logger",
                "k"
            ]
        );
        assert_eq!(value["funcName"], "c");
        assert_eq!(value["message"], "hello");
        assert_eq!(value["process"], std::process::id());
    }

    #[test]
    fn no_line_names_the_build_machines_directories() {
        let registry = "/root/.cargo/registry/src/index.crates.io-1949cf8c6b5b557f/actix-server-2.6.0/src/worker.rs";
        assert_eq!(source_path(registry), "actix-server-2.6.0/src/worker.rs");
        let git = "/home/ci/.cargo/git/checkouts/sea-orm-0a1b2c/3d4e5f6/src/lib.rs";
        assert_eq!(source_path(git), "sea-orm-0a1b2c/3d4e5f6/src/lib.rs");
        let std = "/rustc/90b35a6239c3d8bdabc530a6a0816f7ff89a0aaf/library/core/src/option.rs";
        assert_eq!(source_path(std), "library/core/src/option.rs");
        let elsewhere = "/home/me/plugins/my_plugin/src/versions/v1_0_0.rs";
        assert_eq!(source_path(elsewhere), "my_plugin/src/versions/v1_0_0.rs");
        assert_eq!(source_path("/tmp/build/generated.rs"), "generated.rs");
        assert_eq!(
            source_path("src/versions/v1_0_0.rs"),
            "src/versions/v1_0_0.rs"
        );
    }

    #[test]
    fn lines_inside_an_exported_span_carry_the_otel_ids_blueapps_names() {
        let line = Record {
            levelname: "INFO",
            asctime: "2026-11-26 13:50:36,123".into(),
            pathname: "src/x.rs",
            lineno: 7,
            func_name: "x",
            message: "hello",
            trace_id: None,
            logger: "x",
            otel: Some((
                "4bf92f3577b34da6a3ce929d0e0e4736",
                "00f067aa0ba902b7",
                "app-default",
            )),
            extra: &NO_EXTRA,
        }
        .to_line();
        let value: Value = serde_json::from_str(&line).unwrap_or_default();
        assert_eq!(value["otelTraceID"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(value["otelSpanID"], "00f067aa0ba902b7");
        assert_eq!(value["otelServiceName"], "app-default");
    }

    #[test]
    fn python_asctime_has_a_comma_before_the_milliseconds() {
        let text = asctime(chrono_tz::Asia::Shanghai);
        assert_eq!(text.len(), "2026-11-26 13:50:36,123".len(), "{text}");
        assert_eq!(&text[19..20], ",", "{text}");
    }

    #[test]
    fn files_rotate_by_size_and_keep_a_bounded_number_of_backups() {
        let dir =
            std::env::temp_dir().join(format!("bkp-rotate-{}", uuid::Uuid::new_v4().simple()));
        let path = dir.join("web-abcd-plugin.log");
        let mut file = RotatingFile::open(&path, 100, 2).unwrap_or_else(|e| panic!("{e}"));
        for i in 0..10 {
            let line = format!("{i:0>39}\n"); // 40 bytes: two lines per file
            file.write_line(line.as_bytes())
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert_eq!(read(&path).lines().count(), 2);
        assert!(read(&path).contains(&format!("{:0>39}", 9)));
        assert!(read(&file.backup(1)).contains(&format!("{:0>39}", 7)));
        assert!(read(&file.backup(2)).contains(&format!("{:0>39}", 5)));
        assert!(!file.backup(3).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn file_names_follow_pythons_process_type_random_tag_pattern() {
        let dir = std::env::temp_dir().join(format!("bkp-name-{}", uuid::Uuid::new_v4().simple()));
        let settings = FileSettings {
            dir: dir.clone(),
            process_type: "web".into(),
            max_bytes: 1000,
            backups: 1,
        };
        let file = RotatingFile::open_new(&settings).unwrap_or_else(|e| panic!("{e}"));
        let name = file
            .path()
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        assert!(
            name.starts_with("web-") && name.ends_with("-plugin.log"),
            "{name}"
        );
        assert_eq!(name.len(), "web-abcd-plugin.log".len(), "{name}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
