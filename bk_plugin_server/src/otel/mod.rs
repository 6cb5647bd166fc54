//! OpenTelemetry traces, off unless the environment switches them on (`config::otel`).
//!
//! The runtime's spans are `tracing` spans with the target [`SPANS`]; when tracing is on,
//! `tracing-opentelemetry` turns them (and ERROR events inside them, as exception events and
//! an error status) into OpenTelemetry spans, which [`export::QueueProcessor`] sends over OTLP.
//! When it is off, no layer is installed and the span helpers here return `Span::none()`, so
//! the request and step paths pay one atomic load.
//!
//! One invocation is one trace: the invoke's HTTP span continues the caller's `traceparent`;
//! its context is stored with a waiting invocation ([`propagation::current_text`]), so that each
//! re-run and the finish callback, in whichever process, continue it
//! ([`propagation::parent_from_text`]); outbound calls carry it on (`http_client::send`).

mod export;
mod http;
pub(crate) mod propagation;

use std::sync::OnceLock;

use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use tracing::Span;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

use crate::config::otel::{OtelConfig, Protocol, RootChoice, SamplerChoice};

pub(crate) use export::{DROPPED, EXPORTED};
pub(crate) use http::trace_requests;

/// The target of every span the runtime exports; the only spans the OpenTelemetry layer sees.
pub(crate) const SPANS: &str = "bk_plugin::otel";

/// The provider of this process, once tracing is on.
struct Installed {
    provider: SdkTracerProvider,
    service_name: String,
}

static INSTALLED: OnceLock<Installed> = OnceLock::new();

/// Whether tracing is on in this process.
pub(crate) fn enabled() -> bool {
    INSTALLED.get().is_some()
}

/// The `service.name` spans are sent with, once tracing is on.
pub(crate) fn service_name() -> Option<&'static str> {
    INSTALLED.get().map(|i| i.service_name.as_str())
}

/// Starts the exporter and returns the tracer the `tracing` layer feeds (the first call only).
pub(crate) fn install(config: &OtelConfig, tls_verify: bool) -> Result<SdkTracer, String> {
    let mut attributes = vec![
        KeyValue::new("service.name", config.service_name.clone()),
        KeyValue::new("process.pid", i64::from(std::process::id())),
    ];
    attributes.extend(
        config
            .resource
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), v.clone())),
    );
    let resource = Resource::builder_empty()
        .with_detector(Box::new(
            opentelemetry_sdk::resource::TelemetryResourceDetector,
        ))
        .with_attributes(attributes)
        .build();
    let settings = export::QueueSettings {
        max_queue: config.max_queue,
        max_batch: config.max_batch,
        delay: config.schedule_delay,
        timeout: config.export_timeout,
    };
    let make = make_exporter(config, tls_verify);
    let processor = export::QueueProcessor::start(settings, resource.clone(), make)
        .map_err(|e| format!("cannot start the span export thread: {e}"))?;
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(resource)
        .with_sampler(sampler(config.sampler))
        .build();
    let tracer = provider.tracer("bk_plugin_server");
    let installed = Installed {
        provider,
        service_name: config.service_name.clone(),
    };
    if INSTALLED.set(installed).is_err() {
        return Err("tracing is already installed".into());
    }
    Ok(tracer)
}

/// The OTLP exporter the configuration asks for, made later on the export thread.
fn make_exporter(config: &OtelConfig, tls_verify: bool) -> export::MakeExporter {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    let (endpoint, protocol, timeout) = (
        config.endpoint.clone(),
        config.protocol,
        config.export_timeout,
    );
    Box::new(move || {
        let built = match protocol {
            Protocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .with_timeout(timeout)
                .build(),
            Protocol::HttpProtobuf => {
                // The runtime's one HTTP client and TLS stack (`http_client`).
                let client = crate::http_client::builder(tls_verify, timeout)
                    .build()
                    .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_http_client(client)
                    .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                    .with_endpoint(endpoint)
                    .with_timeout(timeout)
                    .build()
            }
        };
        built.map_err(|e| e.to_string())
    })
}

fn sampler(choice: SamplerChoice) -> Sampler {
    let root = |choice| match choice {
        RootChoice::AlwaysOn => Sampler::AlwaysOn,
        RootChoice::AlwaysOff => Sampler::AlwaysOff,
        RootChoice::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
    };
    match choice {
        SamplerChoice::AlwaysOn => Sampler::AlwaysOn,
        SamplerChoice::AlwaysOff => Sampler::AlwaysOff,
        SamplerChoice::Ratio(ratio) => Sampler::TraceIdRatioBased(ratio),
        SamplerChoice::ParentBased(inner) => Sampler::ParentBased(Box::new(root(inner))),
    }
}

/// The `tracing` layer that turns the runtime's spans into OpenTelemetry spans: it sees only
/// spans of target [`SPANS`] and ERROR events (recorded on the span they happen in).
pub(crate) fn layer<S>(tracer: SdkTracer) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        .with_filter(filter_fn(|meta| {
            if meta.is_span() {
                meta.target() == SPANS
            } else {
                *meta.level() == tracing::Level::ERROR
            }
        }))
}

/// Sends what is queued and stops exporting (waits a few seconds at most). Called as the
/// process ends.
pub(crate) fn shutdown() {
    if let Some(installed) = INSTALLED.get() {
        let _ = installed.provider.shutdown();
    }
}

/// The trace and span ids of the innermost exported span around the current log line, as
/// blueapps' logging instrumentation names them (`otelTraceID`, `otelSpanID`), with the
/// service name: `None` when tracing is off or the line is outside every span.
pub(crate) fn log_ids<S>(
    scope: Option<tracing_subscriber::registry::Scope<'_, S>>,
) -> Option<(String, String, &'static str)>
where
    S: for<'a> LookupSpan<'a>,
{
    use opentelemetry::trace::TraceContextExt;
    let service = service_name()?;
    let ids: Vec<tracing::span::Id> = scope?.map(|span| span.id()).collect();
    tracing::dispatcher::get_default(|dispatch| {
        ids.iter().find_map(|id| {
            let cx = tracing_opentelemetry::get_otel_context(id, dispatch)?;
            let span = cx.span();
            let context = span.span_context();
            context.is_valid().then(|| {
                (
                    context.trace_id().to_string(),
                    context.span_id().to_string(),
                    service,
                )
            })
        })
    })
}

/// How a step came to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RunKind {
    /// The invoke's first run.
    First,
    /// A re-run after POLL.
    Poll,
    /// A re-run with a callback (or its timeout).
    Callback,
}

impl RunKind {
    fn name(self) -> &'static str {
        match self {
            Self::First => "first",
            Self::Poll => "poll",
            Self::Callback => "callback",
        }
    }
}

/// The span of one step: version, run kind, invoke count and the invocation's trace id now,
/// its state when [`record_step_end`] is called. `Span::none()` when tracing is off.
pub(crate) fn step_span(version: &str, run: RunKind, invoke_count: i64, trace_id: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: SPANS,
        "step",
        otel.name = %format!("step {}", run.name()),
        bk_plugin.version = version,
        bk_plugin.run_kind = run.name(),
        bk_plugin.invoke_count = invoke_count,
        bk_plugin.trace_id = trace_id,
        bk_plugin.state = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
}

/// Records how a step ended on its span: the state's name, and the `err` of a FAIL as an
/// error status.
pub(crate) fn record_step_end(span: &Span, state: &str, err: Option<&str>) {
    if span.is_none() {
        return;
    }
    span.record("bk_plugin.state", state);
    if let Some(err) = err {
        record_error(span, err);
    }
}

/// Marks `span` failed with `message`.
pub(crate) fn record_error(span: &Span, message: &str) {
    if span.is_none() {
        return;
    }
    span.record("otel.status_code", "ERROR");
    span.record("otel.status_description", message);
}

/// The span of one database write that matters to an invocation (`park`, `record step`).
pub(crate) fn db_span(operation: &'static str, trace_id: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: SPANS,
        "db",
        otel.name = operation,
        db.operation.name = operation,
        bk_plugin.trace_id = trace_id,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
}

/// The span of one finish-callback attempt, continuing the invocation's stored trace.
pub(crate) fn finish_callback_span(
    stored: Option<&str>,
    trace_id: &str,
    attempt: i32,
    receiver: &str,
) -> Span {
    if !enabled() {
        return Span::none();
    }
    let span = tracing::info_span!(
        target: SPANS,
        "finish callback",
        bk_plugin.trace_id = trace_id,
        bk_plugin.finish_callback.attempt = attempt,
        bk_plugin.finish_callback.receiver = receiver,
        bk_plugin.finish_callback.outcome = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    propagation::continue_stored(&span, stored);
    span
}

/// The span of one call of an author's data API.
pub(crate) fn data_api_span(group: &str, path: &str) -> Span {
    if !enabled() {
        return Span::none();
    }
    tracing::info_span!(
        target: SPANS,
        "data api",
        otel.name = %format!("data api {group}"),
        bk_plugin.api.group = group,
        bk_plugin.api.path = path,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    )
}

/// Records a claim of due rows as a span of each claimed invocation's trace: the statement's
/// start and end, continuing the trace stored with the row. Tracing off: nothing.
pub(crate) fn record_claim(
    stored: Option<&str>,
    trace_id: &str,
    started: std::time::SystemTime,
    ended: std::time::SystemTime,
    rows: usize,
) {
    use opentelemetry::trace::{Span as _, Tracer as _};
    let Some(installed) = INSTALLED.get() else {
        return;
    };
    let tracer = installed.provider.tracer("bk_plugin_server");
    let parent = propagation::parent_from_text(stored);
    let mut span = tracer
        .span_builder("claim")
        .with_start_time(started)
        .with_attributes([
            KeyValue::new("db.operation.name", "claim"),
            KeyValue::new("bk_plugin.trace_id", trace_id.to_string()),
            KeyValue::new(
                "bk_plugin.claimed_rows",
                i64::try_from(rows).unwrap_or(i64::MAX),
            ),
        ])
        .start_with_context(&tracer, &parent);
    span.end_with_timestamp(ended);
}
