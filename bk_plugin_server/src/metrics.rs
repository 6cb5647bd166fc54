//! Prometheus metrics, with the Python runtime's names and labels (`version`, `hostname`), plus
//! HTTP request counts and latency per route and the worker queue's depth.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

use crate::store::Store;

/// Every metric this process exports.
#[derive(Debug, Clone)]
pub(crate) struct Metrics {
    registry: Registry,
    hostname: String,
    /// First runs that ended in a plugin error.
    pub execute_failed: IntCounterVec,
    /// First runs that panicked.
    pub execute_exception: IntCounterVec,
    /// Re-runs that ended in a plugin error.
    pub schedule_failed: IntCounterVec,
    /// Re-runs that panicked.
    pub schedule_exception: IntCounterVec,
    /// Callback deliveries the runtime could not handle.
    pub callback_exception: IntCounterVec,
    /// Seconds per first run.
    pub execute_time: HistogramVec,
    /// Seconds per re-run.
    pub schedule_time: HistogramVec,
    /// Seconds per callback delivery.
    pub callback_time: HistogramVec,
    /// First runs in progress.
    pub execute_running: IntGaugeVec,
    /// Re-runs in progress.
    pub schedule_running: IntGaugeVec,
    /// HTTP requests by route pattern, method and status.
    pub http_requests: IntCounterVec,
    /// HTTP request seconds by route pattern.
    pub http_duration: HistogramVec,
    /// Finish-callback attempts by outcome: `delivered`, `failed` (tried again later),
    /// `gave_up` (the last attempt failed; never tried again).
    pub finish_callbacks: IntCounterVec,
    /// With tracing on: spans sent to the collector, and spans dropped (queue full, export
    /// failed or timed out), read from `otel` at each scrape.
    otel_spans: Option<(IntCounter, IntCounter)>,
    queue: IntGaugeVec,
    /// When the queue depth was last read from the database.
    queue_read: std::sync::Arc<tokio::sync::Mutex<Option<std::time::Instant>>>,
}

/// The queue-depth gauge is read from the database at most this often, however often
/// `/metrics` is scraped (the route needs no credentials).
pub(crate) const QUEUE_DEPTH_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

const STEP_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

fn plain_counter(registry: &Registry, name: &str, help: &str) -> IntCounter {
    let metric = IntCounter::new(name, help)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn counter(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let metric = IntCounterVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn histogram(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> HistogramVec {
    let opts = HistogramOpts::new(name, help).buckets(STEP_BUCKETS.to_vec());
    let metric = HistogramVec::new(opts, labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

fn gauge(registry: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    let metric = IntGaugeVec::new(Opts::new(name, help), labels)
        .unwrap_or_else(|e| unreachable!("static metric definition {name}: {e}"));
    let _ = registry.register(Box::new(metric.clone()));
    metric
}

impl Metrics {
    /// Registers every metric in a fresh registry, labelled with `hostname`.
    pub(crate) fn new(hostname: String) -> Self {
        let r = Registry::new();
        let vh: &[&str] = &["version", "hostname"];
        Self {
            execute_failed: counter(
                &r,
                "bk_plugin_execute_failed_count",
                "first runs that ended in a plugin error",
                vh,
            ),
            execute_exception: counter(
                &r,
                "bk_plugin_execute_exception_count",
                "first runs that raised an unexpected error",
                vh,
            ),
            schedule_failed: counter(
                &r,
                "bk_plugin_schedule_failed_count",
                "re-runs that ended in a plugin error",
                vh,
            ),
            schedule_exception: counter(
                &r,
                "bk_plugin_schedule_exception_count",
                "re-runs that raised an unexpected error",
                vh,
            ),
            callback_exception: counter(
                &r,
                "bk_plugin_callback_exception_count",
                "callback deliveries that failed inside the runtime",
                &["hostname"],
            ),
            execute_time: histogram(&r, "bk_plugin_execute_time", "seconds per first run", vh),
            schedule_time: histogram(&r, "bk_plugin_schedule_time", "seconds per re-run", vh),
            callback_time: histogram(
                &r,
                "bk_plugin_callback_time",
                "seconds per callback delivery",
                &["hostname"],
            ),
            execute_running: gauge(
                &r,
                "bk_plugin_execute_running_processes",
                "first runs in progress",
                vh,
            ),
            schedule_running: gauge(
                &r,
                "bk_plugin_schedule_running_processes",
                "re-runs in progress",
                vh,
            ),
            http_requests: counter(
                &r,
                "bk_plugin_http_requests_total",
                "HTTP requests",
                &["route", "method", "status"],
            ),
            http_duration: histogram(
                &r,
                "bk_plugin_http_request_duration_seconds",
                "HTTP request seconds",
                &["route"],
            ),
            finish_callbacks: counter(
                &r,
                "bk_plugin_finish_callback_total",
                "finish-callback attempts by outcome: delivered, failed (retried), gave_up",
                &["outcome", "hostname"],
            ),
            queue: gauge(
                &r,
                "bk_plugin_queue_depth",
                "waiting invocations in the shared database by kind: due, running, waiting_callback",
                &["kind"],
            ),
            otel_spans: crate::otel::enabled().then(|| {
                (
                    plain_counter(
                        &r,
                        "bk_plugin_otel_spans_exported_total",
                        "spans the OpenTelemetry collector accepted",
                    ),
                    plain_counter(
                        &r,
                        "bk_plugin_otel_spans_dropped_total",
                        "spans not sent: export queue full, export failed or timed out",
                    ),
                )
            }),
            queue_read: Default::default(),
            hostname,
            registry: r,
        }
    }

    /// This host's name, the `hostname` label.
    pub(crate) fn hostname(&self) -> &str {
        &self.hostname
    }

    /// Label values `[version, hostname]`.
    pub(crate) fn labels<'a>(&'a self, version: &'a str) -> [&'a str; 2] {
        [version, &self.hostname]
    }

    /// The text exposition, with the queue depth as read from the database at most
    /// [`QUEUE_DEPTH_EVERY`] ago (concurrent scrapes share one read).
    pub(crate) async fn render(&self, store: &Store) -> String {
        let mut last = self.queue_read.lock().await;
        if last.is_none_or(|at| at.elapsed() >= QUEUE_DEPTH_EVERY) {
            *last = Some(std::time::Instant::now());
            self.read_queue_depth(store).await;
        }
        drop(last);
        if let Some((exported, dropped)) = &self.otel_spans {
            for (counter, total) in [
                (exported, &crate::otel::EXPORTED),
                (dropped, &crate::otel::DROPPED),
            ] {
                let total = total.load(std::sync::atomic::Ordering::Relaxed);
                counter.inc_by(total.saturating_sub(counter.get()));
            }
        }
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }

    async fn read_queue_depth(&self, store: &Store) {
        match store.queue_depth().await {
            Ok((due, running, waiting)) => {
                for (kind, value) in [
                    ("due", due),
                    ("running", running),
                    ("waiting_callback", waiting),
                ] {
                    self.queue
                        .with_label_values(&[kind])
                        .set(i64::try_from(value).unwrap_or(i64::MAX));
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read the queue depth for /metrics"),
        }
    }
}

/// Runs a step body while keeping the running gauge and the time histogram.
pub(crate) struct StepTimer<'a> {
    running: prometheus::IntGauge,
    time: prometheus::Histogram,
    started: std::time::Instant,
    _metrics: std::marker::PhantomData<&'a ()>,
}

impl<'a> StepTimer<'a> {
    /// Starts timing a first run (`rerun = false`) or a re-run of `version`.
    pub(crate) fn start(metrics: &'a Metrics, version: &str, rerun: bool) -> Self {
        let labels = metrics.labels(version);
        let (running, time) = if rerun {
            (&metrics.schedule_running, &metrics.schedule_time)
        } else {
            (&metrics.execute_running, &metrics.execute_time)
        };
        let running = running.with_label_values(&labels);
        running.inc();
        Self {
            running,
            time: time.with_label_values(&labels),
            started: std::time::Instant::now(),
            _metrics: std::marker::PhantomData,
        }
    }
}

impl Drop for StepTimer<'_> {
    fn drop(&mut self) {
        self.running.dec();
        self.time.observe(self.started.elapsed().as_secs_f64());
    }
}

impl Metrics {
    /// Counts a finished step's failure, if it failed.
    pub(crate) fn count_failure(
        &self,
        version: &str,
        rerun: bool,
        failure: Option<bk_plugin_core::executor::FailureKind>,
    ) {
        use bk_plugin_core::executor::FailureKind;
        let labels = self.labels(version);
        let counter = match (failure, rerun) {
            (Some(FailureKind::Unexpected), false) => &self.execute_exception,
            (Some(FailureKind::Unexpected), true) => &self.schedule_exception,
            (Some(_), false) => &self.execute_failed,
            (Some(_), true) => &self.schedule_failed,
            (None, _) => return,
        };
        counter.with_label_values(&labels).inc();
    }
}
