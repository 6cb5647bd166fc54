//! Outbound HTTP clients: one place decides how the runtime talks to other systems (finish
//! callbacks, the API gateway manager), including TLS and certificate verification, and one
//! place sends: [`send`] gives every outbound request its span and W3C `traceparent`.

use std::time::Duration;

use tracing::Instrument;

/// A client builder with the runtime's outbound defaults: a connect timeout of 5 s, the given
/// overall `timeout`, and TLS certificate verification unless `tls_verify` is false
/// (`BK_PLUGIN_CALLBACK_TLS_VERIFY=false`, for internal hosts with self-signed certificates).
/// Callers add their own policies (redirects, body limits) before `build()`.
pub(crate) fn builder(tls_verify: bool, timeout: Duration) -> reqwest::ClientBuilder {
    let builder = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(timeout);
    if tls_verify {
        builder
    } else {
        builder.tls_danger_accept_invalid_certs(true)
    }
}

/// Sends `request`, which every outbound call goes through: with tracing on, inside a client
/// span (`METHOD host`: method, scheme, host and port, status; never the path or query, which
/// may carry a caller's token) whose trace context the request carries as `traceparent`
/// (`tracestate` too), so the receiver's spans join the invocation's trace. A transport error
/// or a 5xx answer marks the span failed. Tracing off: `request.send()`.
pub(crate) async fn send(request: reqwest::RequestBuilder) -> reqwest::Result<reqwest::Response> {
    if !crate::otel::enabled() {
        return request.send().await;
    }
    let (client, request) = request.build_split();
    let mut request = request?;
    let url = request.url();
    let host = url.host_str().unwrap_or("").to_string();
    let method = request.method().as_str().to_string();
    let span = tracing::info_span!(
        target: crate::otel::SPANS,
        "http client",
        otel.name = %format!("{method} {host}"),
        otel.kind = "client",
        http.request.method = %method,
        url.scheme = url.scheme(),
        server.address = %host,
        server.port = url.port_or_known_default().unwrap_or(0),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
        otel.status_description = tracing::field::Empty,
    );
    crate::otel::propagation::inject(&span, request.headers_mut());
    let answer = client.execute(request).instrument(span.clone()).await;
    match &answer {
        Ok(response) => {
            let status = response.status();
            span.record("http.response.status_code", status.as_u16());
            if status.is_server_error() {
                crate::otel::record_error(&span, status.as_str());
            }
        }
        Err(e) => crate::otel::record_error(&span, error_kind(e)),
    }
    answer
}

/// What went wrong, without the URL a reqwest error's text carries.
fn error_kind(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "bad answer body"
    } else {
        "request failed"
    }
}
