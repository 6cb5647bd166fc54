//! Getting finished spans out of the process without ever making a request or a step wait.
//!
//! [`QueueProcessor`] is the SDK's span processor: `on_end` hands a sampled span to a bounded
//! queue with `try_send` and returns; a full queue drops the span and counts it. One thread of
//! its own (with a one-thread tokio runtime, which the OTLP exporters need) takes spans off the
//! queue in batches of `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, at the latest every
//! `OTEL_BSP_SCHEDULE_DELAY`, and exports one batch at a time, each bounded by
//! `OTEL_EXPORTER_OTLP_TIMEOUT`; a failed or late batch is counted as dropped. So a dead or
//! hanging collector costs spans (`bk_plugin_otel_spans_dropped_total`), never latency.
//!
//! The SDK's own `BatchSpanProcessor` does the same but keeps its drop count to itself (it logs
//! it once at shutdown), and its async variant is behind an experimental feature; the count is
//! what an operator needs to see a dead collector, so the queue is ours.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use opentelemetry::Context;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{Span, SpanData, SpanExporter, SpanProcessor};
use std::sync::mpsc::SyncSender;

use tokio::sync::mpsc;

/// Spans dropped since the process started: queue full, export failed or timed out.
pub(crate) static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Spans the collector accepted since the process started.
pub(crate) static EXPORTED: AtomicU64 = AtomicU64::new(0);

/// How long [`QueueProcessor::force_flush`] and shutdown wait for the export thread.
const FLUSH_WAIT: Duration = Duration::from_secs(5);

/// Builds the exporter; called on the export thread, inside its runtime (the gRPC channel
/// needs one when it is made).
pub(crate) type MakeExporter =
    Box<dyn FnOnce() -> Result<opentelemetry_otlp::SpanExporter, String> + Send>;

/// Batching and sizes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct QueueSettings {
    /// Spans waiting at most.
    pub max_queue: usize,
    /// Spans per export at most.
    pub max_batch: usize,
    /// The longest a span waits for its batch.
    pub delay: Duration,
    /// The longest one export may take.
    pub timeout: Duration,
}

/// The span processor: a bounded queue in front of one export thread.
#[derive(Debug)]
pub(crate) struct QueueProcessor {
    spans: mpsc::Sender<SpanData>,
    flushes: mpsc::UnboundedSender<SyncSender<()>>,
}

impl QueueProcessor {
    /// Starts the export thread; the exporter is made there by `make` and given `resource`.
    pub(crate) fn start(
        settings: QueueSettings,
        resource: Resource,
        make: MakeExporter,
    ) -> std::io::Result<Self> {
        let (spans, received) = mpsc::channel(settings.max_queue);
        let (flushes, flush_requests) = mpsc::unbounded_channel();
        std::thread::Builder::new()
            .name("bkp-otel-export".into())
            .spawn(move || export_thread(settings, resource, make, received, flush_requests))?;
        Ok(Self { spans, flushes })
    }

    /// Asks the export thread to send everything queued so far and waits (at most
    /// [`FLUSH_WAIT`]) until it has. Blocks the calling thread: used at shutdown.
    fn flush(&self) -> OTelSdkResult {
        let (done, flushed) = std::sync::mpsc::sync_channel(1);
        if self.flushes.send(done).is_err() {
            return Err(OTelSdkError::AlreadyShutdown);
        }
        flushed
            .recv_timeout(FLUSH_WAIT)
            .map_err(|_| OTelSdkError::Timeout(FLUSH_WAIT))
    }
}

impl SpanProcessor for QueueProcessor {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        if !span.span_context.is_sampled() {
            return;
        }
        if self.spans.try_send(span).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.flush()
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        self.flush()
    }

    fn set_resource(&mut self, _resource: &Resource) {
        // The exporter gets the resource on its own thread when it is made.
    }
}

fn export_thread(
    settings: QueueSettings,
    resource: Resource,
    make: MakeExporter,
    mut spans: mpsc::Receiver<SpanData>,
    mut flushes: mpsc::UnboundedReceiver<SyncSender<()>>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the span export thread; traces are not sent");
            return;
        }
    };
    runtime.block_on(async move {
        let mut exporter = match make() {
            Ok(exporter) => exporter,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the OTLP exporter; traces are not sent");
                // Keep draining so that the queue's drops are counted as such.
                while spans.recv().await.is_some() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
                return;
            }
        };
        exporter.set_resource(&resource);
        let mut batch = Vec::with_capacity(settings.max_batch);
        let mut due = tokio::time::Instant::now() + settings.delay;
        loop {
            tokio::select! {
                span = spans.recv() => match span {
                    Some(span) => {
                        batch.push(span);
                        if batch.len() >= settings.max_batch {
                            export(&exporter, &mut batch, settings.timeout).await;
                            due = tokio::time::Instant::now() + settings.delay;
                        }
                    }
                    None => break,
                },
                Some(done) = flushes.recv() => {
                    while let Ok(span) = spans.try_recv() {
                        batch.push(span);
                        if batch.len() >= settings.max_batch {
                            export(&exporter, &mut batch, settings.timeout).await;
                        }
                    }
                    export(&exporter, &mut batch, settings.timeout).await;
                    let _ = done.send(());
                }
                () = tokio::time::sleep_until(due) => {
                    export(&exporter, &mut batch, settings.timeout).await;
                    due = tokio::time::Instant::now() + settings.delay;
                }
            }
        }
        export(&exporter, &mut batch, settings.timeout).await;
    });
}

/// Sends `batch` (emptying it); a failure or a timeout counts its spans as dropped.
async fn export(
    exporter: &opentelemetry_otlp::SpanExporter,
    batch: &mut Vec<SpanData>,
    timeout: Duration,
) {
    if batch.is_empty() {
        return;
    }
    let spans = std::mem::take(batch);
    let count = spans.len() as u64;
    match tokio::time::timeout(timeout, exporter.export(spans)).await {
        Ok(Ok(())) => {
            EXPORTED.fetch_add(count, Ordering::Relaxed);
        }
        Ok(Err(_)) | Err(_) => {
            DROPPED.fetch_add(count, Ordering::Relaxed);
        }
    }
}
