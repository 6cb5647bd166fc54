//! Logs: every line emitted while handling a request or running a step carries its trace id,
//! including the plugin author's own `tracing` calls (they run inside the step's span).
//!
//! - dev: human-readable lines on stderr; stag/prod: JSON lines with every key the Python
//!   runtime's formatter writes, on stdout and in a rotated file under the PaaS log directory
//!   ([`crate::json_log`]), and panics as one such line. Level from `BK_PLUGIN_LOG_LEVEL` (or
//!   `RUST_LOG`), `info` by default.
//! - Capture for `GET /bk_plugin/logs/{trace_id}` (dev, or `BK_PLUGIN_LOGS_API=1`): lines with
//!   a trace id go through a bounded channel to a writer that inserts them in batches, off the
//!   request path; when the channel is full a line is dropped (and counted), never waited for.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::Config;
use crate::json_log::{FileSettings, PANIC_TARGET, Record, Sink, func_name, levelname};
use crate::store::{LogLine, Store, now_ms};

const CHANNEL: usize = 65_536;
const BATCH: usize = 1_000;

/// The receiving end of captured lines, handed to [`spawn_writer`] once the database is up.
#[derive(Debug)]
pub(crate) struct LogCapture {
    receiver: mpsc::Receiver<LogLine>,
    dropped: Arc<AtomicU64>,
}

/// Installs the global subscriber (once; later calls return `None`), with the OpenTelemetry
/// layer when tracing is on (`crate::otel`).
pub(crate) fn init(config: &Config) -> Option<LogCapture> {
    let mut filter =
        EnvFilter::try_new(&config.log_level).unwrap_or_else(|_| EnvFilter::new("info"));
    let (sender, capture) = if config.capture_logs {
        let (sender, receiver) = mpsc::channel(CHANNEL);
        let dropped = Arc::new(AtomicU64::new(0));
        (
            Some((sender, dropped.clone())),
            Some(LogCapture { receiver, dropped }),
        )
    } else {
        (None, None)
    };
    let sink = (!config.is_dev()).then(|| {
        Sink::install(config.log_dir.as_ref().map(|dir| FileSettings {
            dir: dir.clone(),
            process_type: config.process_type.clone(),
            max_bytes: config.log_file_max_bytes,
            backups: config.log_file_backups,
        }))
    });
    let trace_layer = TraceLayer {
        sink,
        capture: sender,
        zone: config.time_zone,
    };
    let human = config.is_dev().then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
    });
    let mut otel_failed = None;
    let otel = match &config.otel {
        Some(settings) => match crate::otel::install(settings, config.tls_verify) {
            Ok(tracer) => {
                // The runtime's spans are exported whatever the log level.
                if let Ok(spans) = format!("{}=info", crate::otel::SPANS).parse() {
                    filter = filter.add_directive(spans);
                }
                Some(crate::otel::layer(tracer))
            }
            Err(e) => {
                otel_failed = Some(e);
                None
            }
        },
        None => None,
    };
    let json = sink.is_some();
    let installed = tracing_subscriber::registry()
        .with(filter)
        .with(otel)
        .with(human)
        .with(trace_layer)
        .try_init();
    if installed.is_ok() && json {
        crate::json_log::install_panic_hook();
    }
    if let Some(e) = otel_failed {
        tracing::error!("traces are not sent: {e}");
    } else if let (Some(settings), true) = (&config.otel, crate::otel::enabled()) {
        tracing::info!(
            endpoint = %settings.endpoint,
            from = settings.endpoint_source,
            protocol = settings.protocol.name(),
            service = %settings.service_name,
            "sending traces over OTLP"
        );
    }
    installed.ok().and(capture)
}

/// Asks for the capture to be written: answered once every line captured before the request
/// is in the database, or at once when this process captures nothing.
static FLUSH: OnceLock<mpsc::Sender<oneshot::Sender<()>>> = OnceLock::new();

/// How long a reader waits for pending lines to be written before reading what is there.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Writes every line captured so far before returning, so that a read that follows sees every
/// line logged before it (the logs API calls this first). The invoke path never waits: only the
/// reader pays for one batch insert.
pub(crate) async fn flush_captured() {
    let Some(flush) = FLUSH.get() else {
        return;
    };
    let (done, written) = oneshot::channel();
    if flush.send(done).await.is_ok() {
        let _ = tokio::time::timeout(FLUSH_WAIT, written).await;
    }
}

/// Writes captured lines in batches until the process ends.
pub(crate) fn spawn_writer(store: Store, capture: LogCapture) {
    let LogCapture {
        mut receiver,
        dropped,
    } = capture;
    let (flush, mut flushes) = mpsc::channel::<oneshot::Sender<()>>(1_024);
    let _ = FLUSH.set(flush);
    tokio::spawn(async move {
        let mut batch = Vec::with_capacity(BATCH);
        let mut waiting = Vec::new();
        loop {
            tokio::select! {
                line = receiver.recv() => match line {
                    Some(line) => batch.push(line),
                    None => break,
                },
                Some(reader) = flushes.recv() => waiting.push(reader),
            }
            if waiting.is_empty() {
                // Gather what else arrives within a short window, up to a batch; a reader
                // cuts the window short.
                let window = tokio::time::sleep(Duration::from_millis(50));
                tokio::pin!(window);
                while batch.len() < BATCH {
                    tokio::select! {
                        line = receiver.recv() => match line {
                            Some(line) => batch.push(line),
                            None => break,
                        },
                        Some(reader) = flushes.recv() => {
                            waiting.push(reader);
                            break;
                        }
                        _ = &mut window => break,
                    }
                }
            }
            if !waiting.is_empty() {
                // Everything queued before the reader asked is in the channel now.
                while let Ok(line) = receiver.try_recv() {
                    batch.push(line);
                }
            }
            while !batch.is_empty() {
                let rest = batch.split_off(batch.len().min(BATCH));
                let lines = std::mem::replace(&mut batch, rest);
                let count = lines.len();
                if let Err(e) = store.insert_logs(lines).await {
                    tracing::error!("could not store {count} captured log lines: {e}");
                }
            }
            for reader in waiting.drain(..) {
                let _ = reader.send(());
            }
            let lost = dropped.swap(0, Ordering::Relaxed);
            if lost > 0 {
                tracing::warn!("{lost} log lines were not captured (the capture queue was full)");
            }
        }
    });
}

/// The trace id a span carries, kept in its extensions.
struct SpanTrace(String);

struct TraceLayer {
    sink: Option<&'static Sink>,
    capture: Option<(mpsc::Sender<LogLine>, Arc<AtomicU64>)>,
    zone: chrono_tz::Tz,
}

#[derive(Default)]
struct Fields {
    message: String,
    trace_id: Option<String>,
    /// Where a `log` crate record (bridged by tracing-log) or a panic says it comes from.
    origin: Origin,
    rest: Map<String, Value>,
}

#[derive(Default)]
struct Origin {
    target: Option<String>,
    module: Option<String>,
    file: Option<String>,
    line: Option<u64>,
}

impl Fields {
    fn keep(&mut self, name: &str, value: Value) {
        match (name, value) {
            ("message", Value::String(text)) => self.message = text,
            ("trace_id", Value::String(text)) => self.trace_id = Some(text),
            ("log.target", Value::String(text)) => self.origin.target = Some(text),
            ("log.module_path", Value::String(text)) => self.origin.module = Some(text),
            ("log.file" | "panic_file", Value::String(text)) => self.origin.file = Some(text),
            ("log.line" | "panic_line", value) => self.origin.line = value.as_u64(),
            (name, value) => {
                self.rest.insert(name.to_string(), value);
            }
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.keep(field.name(), Value::String(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.keep(field.name(), Value::from(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.keep(field.name(), Value::from(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.keep(field.name(), Value::Bool(value));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.keep(field.name(), Value::String(format!("{value:?}")));
    }
}

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(trace_id), Some(span)) = (fields.trace_id, ctx.span(id)) {
            span.extensions_mut().insert(SpanTrace(trace_id));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let trace_id = fields.trace_id.clone().or_else(|| {
            ctx.event_scope(event).and_then(|scope| {
                scope
                    .into_iter()
                    .find_map(|span| span.extensions().get::<SpanTrace>().map(|t| t.0.clone()))
            })
        });
        let metadata = event.metadata();
        let now = chrono::Utc::now().with_timezone(&self.zone);
        if let Some(sink) = self.sink {
            let panic = metadata.target() == PANIC_TARGET;
            let target = fields.origin.target.as_deref().unwrap_or(metadata.target());
            let pathname = fields
                .origin
                .file
                .as_deref()
                .or(metadata.file())
                .unwrap_or_default();
            let func_name = if panic {
                std::path::Path::new(pathname)
                    .file_stem()
                    .and_then(|s| s.to_str())
                    .unwrap_or("panic")
            } else {
                func_name(
                    fields
                        .origin
                        .module
                        .as_deref()
                        .or(metadata.module_path())
                        .unwrap_or(target),
                )
            };
            let lineno = fields
                .origin
                .line
                .and_then(|l| u32::try_from(l).ok())
                .or(metadata.line())
                .unwrap_or(0);
            let otel = crate::otel::enabled()
                .then(|| crate::otel::log_ids(ctx.event_scope(event)))
                .flatten();
            let record = Record {
                levelname: if panic {
                    "CRITICAL"
                } else {
                    levelname(metadata.level())
                },
                asctime: now.format("%Y-%m-%d %H:%M:%S,%3f").to_string(),
                pathname,
                lineno,
                func_name,
                message: &fields.message,
                trace_id: trace_id.as_deref(),
                logger: target,
                otel: otel
                    .as_ref()
                    .map(|(trace, span, service)| (trace.as_str(), span.as_str(), *service)),
                extra: &fields.rest,
            };
            sink.write(&record.to_line());
        }
        if let (Some((sender, dropped)), Some(trace_id)) = (&self.capture, trace_id) {
            let mut line = format!(
                "[{}] {} {}: {}",
                now.format("%Y-%m-%d %H:%M:%S%.3f"),
                metadata.level(),
                metadata.target(),
                fields.message
            );
            for (key, value) in &fields.rest {
                let _ = write!(line, " {key}={value}");
            }
            let captured = LogLine {
                trace_id,
                created_at: now_ms(),
                line,
            };
            if sender.try_send(captured).is_err() {
                dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}
