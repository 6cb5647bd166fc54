//! Test harness for the black-box tests: databases of every supported backend (each test gets
//! its own), and the real fixture plugin binary started on a free loopback port.
//!
//! PostgreSQL and MySQL/MariaDB tests read `BKP_TEST_POSTGRES_URL` / `BKP_TEST_MYSQL_URL` (a
//! server URL whose user may create databases) and skip with a printed reason when unset.

pub mod browser;
pub mod fake_http;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// A fresh SQLite file.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
    /// A fresh MySQL/MariaDB database.
    Mysql,
}

/// A database created for one test, dropped when the test ends.
#[derive(Debug)]
pub struct TestDb {
    /// The URL the plugin connects to.
    pub url: String,
    backend: Backend,
    server_url: Option<String>,
    name: String,
    _dir: Option<TempDir>,
}

/// A temporary directory removed on drop.
#[derive(Debug)]
pub struct TempDir(pub PathBuf);

impl TempDir {
    /// A new empty directory under the system temp dir.
    pub fn new(prefix: &str) -> Self {
        let path = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn server_url(backend: Backend) -> Option<String> {
    let var = match backend {
        Backend::Sqlite => return None,
        Backend::Postgres => "BKP_TEST_POSTGRES_URL",
        Backend::Mysql => "BKP_TEST_MYSQL_URL",
    };
    std::env::var(var).ok().filter(|v| !v.is_empty())
}

/// Replaces the database name (the URL path) of `url`.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// Reports that a test did not run, and why, where the person running the tests sees it: the
/// line goes straight to the process's stdout, past the test harness's capture, so a skipped
/// database test never looks like a silent pass (`cargo test` shows `skipped: ...` beside the
/// `ok`).
pub fn report_skip(reason: &str) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "skipped: {reason}");
    let _ = out.flush();
}

impl TestDb {
    /// A fresh database on `backend`, or `None` (with a printed reason) when that backend's
    /// test URL is not set.
    pub async fn new(backend: Backend) -> Option<Self> {
        let name = format!("bkp_t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        if backend == Backend::Sqlite {
            let dir = TempDir::new("bkp-test");
            let url = format!("sqlite://{}/plugin.db?mode=rwc", dir.0.display());
            return Some(Self {
                url,
                backend,
                server_url: None,
                name,
                _dir: Some(dir),
            });
        }
        let Some(server) = server_url(backend) else {
            report_skip(&format!(
                "{backend:?} tests need {} (e.g. postgres://postgres@127.0.0.1:5432/test or mysql://root@127.0.0.1:3306/test)",
                if backend == Backend::Postgres {
                    "BKP_TEST_POSTGRES_URL"
                } else {
                    "BKP_TEST_MYSQL_URL"
                }
            ));
            return None;
        };
        let admin = Database::connect(&server)
            .await
            .unwrap_or_else(|e| panic!("cannot connect to {backend:?} at {server}: {e}"));
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
        let _ = admin.close().await;
        Some(Self {
            url: with_database(&server, &name),
            backend,
            server_url: Some(server),
            name,
            _dir: None,
        })
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Drops the database (PostgreSQL / MySQL); call at the end of a test.
    pub async fn drop_database(self) {
        if let Some(server) = &self.server_url
            && let Ok(admin) = Database::connect(server).await
        {
            let sql = match self.backend {
                Backend::Postgres => {
                    format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)
                }
                _ => format!("DROP DATABASE IF EXISTS {}", self.name),
            };
            let _ = admin.execute_unprepared(&sql).await;
            let _ = admin.close().await;
        }
    }
}

/// The fixture plugin binary, built by `cargo test --workspace` next to this test executable
/// (tests live in `<profile>/deps/`, binaries such as the bench harness in `<profile>/`).
pub fn fixture_binary() -> PathBuf {
    binary("bkp-fixtures")
}

/// A binary of the fixtures package (`bkp-fixtures`, or `bkp-faults`, the fault-injection
/// plugin), found the way [`fixture_binary`] finds the fixture.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    let candidates = [dir.join(name), dir.join(format!("../{name}"))];
    let found = candidates.iter().find(|p| p.is_file()).cloned();
    found.unwrap_or_else(|| {
        panic!(
            "{} is missing: run the tests with `cargo test --workspace` (or `cargo build -p bkp-fixtures` first)",
            candidates[1].display()
        )
    })
}

/// Runs `bkp-fixtures migrate` on `db` (production refuses to start on an unmigrated database).
pub fn migrate(db: &TestDb) {
    let output = Command::new(fixture_binary())
        .arg("migrate")
        .env("DATABASE_URL", &db.url)
        .output()
        .unwrap_or_else(|e| panic!("migrate: {e}"));
    assert!(
        output.status.success(),
        "migrate failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the fixture binary with `args` and `env` to completion; returns (success, stderr).
pub fn run_fixture(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let (success, _, stderr) = run_fixture_output(args, env);
    (success, stderr)
}

/// Runs the fixture binary with `args` and `env` to completion in a temporary directory (its
/// log files stay there); returns (success, stdout, stderr).
pub fn run_fixture_output<K, V>(args: &[&str], env: &[(K, V)]) -> (bool, String, String)
where
    K: AsRef<std::ffi::OsStr>,
    V: AsRef<std::ffi::OsStr>,
{
    let dir = TempDir::new("bkp-run");
    let mut command = Command::new(fixture_binary());
    command
        .args(args)
        .current_dir(&dir.0)
        .env("PORT", free_port().to_string())
        .env("BK_PLUGIN_LOG_DIR", dir.0.join("v3logs"));
    for (key, value) in env {
        command.env(key, value);
    }
    let output = command.output().unwrap_or_else(|e| panic!("run: {e}"));
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).to_string(),
        String::from_utf8_lossy(&output.stderr).to_string(),
    )
}

/// What a finished fixture command printed.
#[derive(Debug)]
pub struct Ran {
    /// Whether it exited with status 0.
    pub success: bool,
    /// Its standard output.
    pub stdout: String,
    /// Its standard error.
    pub stderr: String,
}

/// Runs the fixture binary with `args` against `db` (dev, times in UTC) to completion, in a
/// fresh working directory.
pub fn run_fixture_on(db: &TestDb, args: &[&str]) -> Ran {
    let dir = TempDir::new("bkp-run");
    let output = Command::new(fixture_binary())
        .args(args)
        .current_dir(&dir.0)
        .env("DATABASE_URL", &db.url)
        .env("BKPAAS_ENVIRONMENT", "dev")
        .env("TIME_ZONE", "UTC")
        .output()
        .unwrap_or_else(|e| panic!("run: {e}"));
    Ran {
        success: output.status.success(),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no free port: {e}"))
}

/// A fixture plugin process.
#[derive(Debug)]
pub struct Plugin {
    child: Child,
    /// `http://127.0.0.1:<port>`, or empty for a worker-only process.
    pub base: String,
    /// Where its stdout and stderr go (one file, in the order written).
    pub log: PathBuf,
    _logs: TempDir,
}

/// How to start a fixture process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// `serve` or `worker`.
    pub command: &'static str,
    /// Extra command-line arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// The binary: `bkp-fixtures` unless [`Launch::binary`] says otherwise.
    pub binary: &'static str,
}

impl Launch {
    /// `serve` with the embedded worker.
    pub fn serve() -> Self {
        Self {
            command: "serve",
            args: vec![],
            env: vec![],
            binary: "bkp-fixtures",
        }
    }

    /// `serve --no-worker`.
    pub fn web_only() -> Self {
        Self {
            command: "serve",
            args: vec!["--no-worker".into()],
            env: vec![],
            binary: "bkp-fixtures",
        }
    }

    /// `worker`.
    pub fn worker() -> Self {
        Self {
            command: "worker",
            args: vec![],
            env: vec![],
            binary: "bkp-fixtures",
        }
    }

    /// Runs another binary of the fixtures package (e.g. `bkp-faults`).
    pub fn binary(mut self, name: &'static str) -> Self {
        self.binary = name;
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }
}

impl Plugin {
    /// Starts `bkp-fixtures serve` on `db` and waits until `meta` answers.
    pub async fn start(db: &TestDb) -> Self {
        Self::launch(db, Launch::serve()).await
    }

    /// Starts a fixture process as described; a `serve` is waited for until it answers.
    pub async fn launch(db: &TestDb, launch: Launch) -> Self {
        let port = free_port();
        let logs = TempDir::new("bkp-log");
        let log = logs.0.join("plugin.log");
        let log_file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("log file: {e}"));
        let mut command = Command::new(binary(launch.binary));
        command
            .arg(launch.command)
            .args(&launch.args)
            .current_dir(&logs.0)
            .env("PORT", port.to_string())
            .env("BK_PLUGIN_BIND", "127.0.0.1")
            .env("DATABASE_URL", &db.url)
            .env("BKPAAS_APP_ID", "bkp-fixtures")
            .env("BKPAAS_ENVIRONMENT", "dev")
            .env("BK_PLUGIN_WORKER_POLL_MS", "50")
            .env("BK_PLUGIN_DB_MAX_CONNECTIONS", "8")
            // stag/prod write a log file; keep it beside the test's other output.
            .env("BK_PLUGIN_LOG_DIR", logs.0.join("v3logs"))
            .stdout(Stdio::from(
                log_file
                    .try_clone()
                    .unwrap_or_else(|e| panic!("log file: {e}")),
            ))
            .stderr(Stdio::from(log_file));
        for (key, value) in &launch.env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the fixture: {e}"));
        let base = if launch.command == "serve" {
            format!("http://127.0.0.1:{port}")
        } else {
            String::new()
        };
        let mut plugin = Self {
            child,
            base,
            log,
            _logs: logs,
        };
        if launch.command == "serve" {
            plugin.wait_ready().await;
        }
        plugin
    }

    async fn wait_ready(&mut self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = client
                .get(format!("{}/bk_plugin/meta", self.base))
                .send()
                .await
                && r.status().is_success()
            {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the fixture exited with {status}:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "the fixture did not come up:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status (at most `timeout`).
    pub fn terminate(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    /// GET `path`; returns status and JSON body.
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::Client::new()
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        read(response).await
    }

    /// POST `body` as JSON to `path`; returns status and JSON body.
    pub async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_raw(path, "application/json", body.to_string())
            .await
    }

    /// POST raw bytes with a content type.
    pub async fn post_raw(&self, path: &str, content_type: &str, body: String) -> (u16, Value) {
        self.post_with(path, content_type, body, &[]).await
    }

    /// POST raw bytes with a content type and extra headers.
    pub async fn post_with(
        &self,
        path: &str,
        content_type: &str,
        body: String,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let url = if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.base)
        };
        let mut request = reqwest::Client::new()
            .post(url)
            .header("content-type", content_type)
            .body(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        read(response).await
    }

    /// Invokes `version`; returns status and body.
    pub async fn invoke(&self, version: &str, inputs: Value, context: Value) -> (u16, Value) {
        self.post(
            &format!("/bk_plugin/invoke/{version}"),
            &serde_json::json!({"inputs": inputs, "context": context}),
        )
        .await
    }

    /// Polls `schedule/{trace_id}` until its state is terminal (or `timeout`); returns its data.
    pub async fn wait_finished(&self, trace_id: &str, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (_, body) = self.get(&format!("/bk_plugin/schedule/{trace_id}")).await;
            let state = body["data"]["state"].as_i64().unwrap_or(0);
            if state == 4 || state == 5 {
                return body["data"].clone();
            }
            assert!(
                Instant::now() < deadline,
                "{trace_id} did not finish: {body}\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn read(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {text:?}"));
    (status, body)
}

impl Drop for Plugin {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs one async test body on every backend whose URL is set (SQLite always).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::TestDb::new($crate::Backend::Sqlite).await {
                        super::$name(&db).await;
                        db.drop_database().await;
                    }
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::TestDb::new($crate::Backend::Postgres).await {
                        super::$name(&db).await;
                        db.drop_database().await;
                    }
                }
            )*
        }
        mod mysql {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = $crate::TestDb::new($crate::Backend::Mysql).await {
                        super::$name(&db).await;
                        db.drop_database().await;
                    }
                }
            )*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_swapped_in_urls() {
        assert_eq!(
            with_database("postgres://u@h:5432/test", "x"),
            "postgres://u@h:5432/x"
        );
        assert_eq!(
            with_database("mysql://root@127.0.0.1:3306/test?a=b", "y"),
            "mysql://root@127.0.0.1:3306/y?a=b"
        );
        assert_eq!(with_database("postgres://u@h", "z"), "postgres://u@h/z");
    }
}
