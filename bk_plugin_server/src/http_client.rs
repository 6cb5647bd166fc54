//! Outbound HTTP clients: one place decides how the runtime talks to other systems (finish
//! callbacks, the API gateway manager), including TLS and certificate verification.

use std::time::Duration;

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
