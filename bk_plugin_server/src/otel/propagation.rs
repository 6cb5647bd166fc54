//! W3C trace context (`traceparent`, `tracestate`): read from incoming requests, written on
//! outbound ones, and kept with a waiting invocation as text (`traceparent`, then `tracestate`
//! on a second line when there is one), so that its re-runs and its finish callback continue the
//! same trace in whichever process runs them.

use std::collections::HashMap;

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// An incoming request's headers, as the propagator reads them.
struct IncomingHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for IncomingHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// An outbound request's headers, as the propagator writes them.
struct OutgoingHeaders<'a>(&'a mut reqwest::header::HeaderMap);

impl Injector for OutgoingHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(key.as_bytes()),
            reqwest::header::HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The caller's trace context from `traceparent`/`tracestate` (an empty context when absent
/// or malformed: the request starts a trace).
pub(crate) fn from_headers(headers: &actix_web::http::header::HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&IncomingHeaders(headers))
}

/// Writes `span`'s trace context into outbound `headers`.
pub(crate) fn inject(span: &Span, headers: &mut reqwest::header::HeaderMap) {
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut OutgoingHeaders(headers));
    }
}

/// The current span's trace context as stored text; `None` when tracing is off or there is
/// no span.
pub(crate) fn current_text() -> Option<String> {
    if !super::enabled() {
        return None;
    }
    let cx = Span::current().context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut fields = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut fields);
    let parent = fields.remove(TRACEPARENT)?;
    Some(match fields.remove(TRACESTATE).filter(|s| !s.is_empty()) {
        Some(state) => format!("{parent}\n{state}"),
        None => parent,
    })
}

/// The context stored as text by [`current_text`] (empty when none or unreadable).
pub(crate) fn parent_from_text(stored: Option<&str>) -> Context {
    let Some(text) = stored else {
        return Context::new();
    };
    let mut lines = text.lines();
    let mut fields = HashMap::new();
    if let Some(parent) = lines.next() {
        fields.insert(TRACEPARENT.to_string(), parent.trim().to_string());
    }
    if let Some(state) = lines.next() {
        fields.insert(TRACESTATE.to_string(), state.trim().to_string());
    }
    TraceContextPropagator::new().extract(&fields)
}

/// Makes `span` continue the trace stored as `stored` (nothing when there is none).
pub(crate) fn continue_stored(span: &Span, stored: Option<&str>) {
    if span.is_none() || stored.is_none() {
        return;
    }
    let parent = parent_from_text(stored);
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_gives_back_the_trace_and_span_ids_and_the_state() {
        let text = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=abc";
        let cx = parent_from_text(Some(text));
        let span = cx.span();
        let context = span.span_context();
        assert!(context.is_valid() && context.is_remote() && context.is_sampled());
        assert_eq!(
            context.trace_id().to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context.span_id().to_string(), "00f067aa0ba902b7");
        assert_eq!(context.trace_state().header(), "vendor=abc");
    }

    #[test]
    fn unreadable_stored_text_starts_no_trace() {
        for text in [None, Some(""), Some("garbage"), Some("00-zz-yy-01")] {
            let cx = parent_from_text(text);
            assert!(!cx.span().span_context().is_valid(), "{text:?}");
        }
    }
}
