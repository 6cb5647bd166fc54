//! The span of every HTTP request the server answers: named `METHOD route` (the route pattern,
//! never the raw path, which can carry callback tokens and trace ids), with the answer's status,
//! continuing the caller's W3C `traceparent` when it sends one.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use opentelemetry::trace::TraceContextExt;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{SPANS, enabled, propagation, record_error};

/// Middleware: runs the request inside its span (tracing off: runs it as it is).
pub(crate) async fn trace_requests(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !enabled() {
        return next.call(req).await;
    }
    let route = req
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    let method = req.method().as_str().to_string();
    let span = tracing::info_span!(
        target: SPANS,
        "http request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = %route,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    let parent = propagation::from_headers(req.headers());
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
    let response = next.call(req).instrument(span.clone()).await;
    match &response {
        Ok(answer) => {
            let status = answer.status();
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                record_error(&span, status.canonical_reason().unwrap_or("server error"));
            }
        }
        Err(e) => record_error(&span, &e.to_string()),
    }
    response
}
