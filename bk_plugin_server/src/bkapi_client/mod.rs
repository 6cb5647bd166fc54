//! The runtime's BK API client: sends the calls a plugin makes with `ctx.bkapi()` (and a data
//! API with `request.bkapi()`) over the runtime's outbound HTTP client (`http_client`: the same
//! TLS settings, no redirect to another origin), with the app's credentials (`wire`), a
//! per-attempt timeout, retries where they are safe (a GET after a connection error or a 5xx,
//! with doubling backoff), one log line per call and the `bk_plugin_bkapi_*` metrics.
//!
//! The app secret never leaves this module in text: it is not logged, an answer that echoes it
//! has it replaced by `***`, and transport errors are rendered without the URL (whose query
//! holds the secret on an ESB GET).

pub(crate) mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bk_plugin_core::bkapi::{
    BkApiError, BkApiErrorKind, BkApiRequest, BkApiResponse, BkApiTransport, Method,
};
use futures_util::future::BoxFuture;

use crate::config::Config;
use crate::metrics::Metrics;

use wire::{Prepared, Settings};

/// What replaces the app secret in anything an upstream sends back.
const REDACTED: &str = "***";

/// Sends BK API calls. Cheap to clone.
#[derive(Clone, Debug)]
pub(crate) struct BkApiClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    settings: Settings,
    metrics: Metrics,
}

impl BkApiClient {
    /// The client of this configuration, counting into `metrics`.
    pub(crate) fn new(config: &Config, metrics: Metrics) -> Result<Self, reqwest::Error> {
        Self::with_settings(Settings::of(config), config.tls_verify, metrics)
    }

    fn with_settings(
        settings: Settings,
        tls_verify: bool,
        metrics: Metrics,
    ) -> Result<Self, reqwest::Error> {
        let http = crate::http_client::builder(tls_verify, settings.timeout)
            .redirect(crate::http_client::same_origin_redirects())
            .build()?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                settings,
                metrics,
            }),
        })
    }
}

impl BkApiTransport for BkApiClient {
    fn send(&self, request: BkApiRequest) -> BoxFuture<'static, Result<BkApiResponse, BkApiError>> {
        let inner = self.inner.clone();
        Box::pin(async move { inner.call(request).await })
    }
}

/// How one call ended, for its log line and metrics.
struct Ended<'a> {
    request: &'a BkApiRequest,
    result: &'a Result<BkApiResponse, BkApiError>,
    took: Duration,
    attempts: u32,
}

impl Inner {
    /// One call: prepared once, sent, tried again while that is safe, then logged and counted.
    async fn call(&self, request: BkApiRequest) -> Result<BkApiResponse, BkApiError> {
        let started = Instant::now();
        let timeout = request.timeout.unwrap_or(self.settings.timeout);
        let mut attempts = 0;
        let result = match wire::prepare(&self.settings, &request) {
            Err(e) => Err(e),
            Ok(prepared) => loop {
                attempts += 1;
                let result = self.send_once(&request, &prepared, timeout).await;
                if attempts > self.settings.retries || !retry_is_safe(&request, &result) {
                    break result;
                }
                let wait = self.settings.backoff * 2u32.saturating_pow(attempts - 1);
                tokio::time::sleep(wait).await;
            },
        };
        self.observe(&Ended {
            request: &request,
            result: &result,
            took: started.elapsed(),
            attempts,
        });
        result
    }

    /// The one outbound HTTP request of an attempt (API `request.api_name()`, method, path):
    /// every BK API call goes through here.
    async fn send_once(
        &self,
        request: &BkApiRequest,
        prepared: &Prepared,
        timeout: Duration,
    ) -> Result<BkApiResponse, BkApiError> {
        let mut url = reqwest::Url::parse(&prepared.url).map_err(|e| {
            BkApiError::new(
                request,
                BkApiErrorKind::NotConfigured,
                format!("the API's URL is not valid: {e}"),
            )
        })?;
        // Only when there is a query: `query_pairs_mut` on a URL without one leaves a bare `?`.
        if !prepared.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&prepared.query);
        }
        let mut builder = self
            .http
            .request(prepared.method.clone(), url)
            .timeout(timeout);
        for (name, value) in &prepared.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &prepared.body {
            builder = builder.json(body);
        }
        let failed = |e: reqwest::Error| self.transport_error(request, e, timeout);
        let response = crate::http_client::send(builder).await.map_err(failed)?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| self.redact(v))
        };
        let request_id = header("x-bkapi-request-id");
        let gateway_error = header("x-bkapi-error-code")
            .map(|code| (code, header("x-bkapi-error-message").unwrap_or_default()));
        let body = response.bytes().await.map_err(failed)?;
        Ok(BkApiResponse {
            status,
            request_id,
            gateway_error,
            body: self.redact_bytes(&body),
        })
    }

    /// A reqwest failure as a typed error; rendered without the URL and with the secret hidden.
    fn transport_error(
        &self,
        request: &BkApiRequest,
        error: reqwest::Error,
        timeout: Duration,
    ) -> BkApiError {
        if error.is_timeout() {
            return BkApiError::new(
                request,
                BkApiErrorKind::Timeout,
                format!("no answer within {timeout:?}"),
            );
        }
        let mut causes = String::new();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            causes.push_str(&format!(": {cause}"));
            source = cause.source();
        }
        let text = format!("{}{causes}", error.without_url());
        BkApiError::new(request, BkApiErrorKind::Connect, self.redact(&text))
    }

    fn redact(&self, text: &str) -> String {
        match self.settings.app_secret.as_deref() {
            Some(secret) if text.contains(secret) => text.replace(secret, REDACTED),
            _ => text.to_string(),
        }
    }

    fn redact_bytes(&self, body: &[u8]) -> Vec<u8> {
        let Some(secret) = self.settings.app_secret.as_deref() else {
            return body.to_vec();
        };
        let secret = secret.as_bytes();
        if secret.is_empty() || !body.windows(secret.len()).any(|w| w == secret) {
            return body.to_vec();
        }
        let mut out = Vec::with_capacity(body.len());
        let mut rest = body;
        while let Some(at) = rest.windows(secret.len()).position(|w| w == secret) {
            out.extend_from_slice(&rest[..at]);
            out.extend_from_slice(REDACTED.as_bytes());
            rest = &rest[at + secret.len()..];
        }
        out.extend_from_slice(rest);
        out
    }

    /// The call's log line and metrics. The status label is the HTTP status, or `timeout`,
    /// `connect_error`, `not_configured`.
    fn observe(&self, ended: &Ended<'_>) {
        let request = ended.request;
        let api = request.api_name();
        let path = request.path();
        let ms = ended.took.as_millis();
        let (status, request_id) = match ended.result {
            Ok(response) => (
                response.status.to_string(),
                response
                    .request_id
                    .clone()
                    .or_else(|| envelope_request_id(&response.body))
                    .unwrap_or_default(),
            ),
            Err(e) => (
                status_label(e).to_string(),
                e.request_id().unwrap_or_default().to_string(),
            ),
        };
        self.metrics
            .bkapi_calls
            .with_label_values(&[api.as_str(), status.as_str()])
            .inc();
        self.metrics
            .bkapi_duration
            .with_label_values(&[api.as_str(), status.as_str()])
            .observe(ended.took.as_secs_f64());
        let method = request.method.as_str();
        let attempts = ended.attempts;
        match ended.result {
            Ok(response) if response.status < 400 => tracing::info!(
                method,
                api,
                path,
                status,
                duration_ms = ms,
                request_id,
                attempts,
                "bk api {method} {api} {path}: {status} in {ms} ms"
            ),
            Ok(_) => tracing::warn!(
                method,
                api,
                path,
                status,
                duration_ms = ms,
                request_id,
                attempts,
                "bk api {method} {api} {path}: {status} in {ms} ms"
            ),
            Err(e) => tracing::warn!(
                method,
                api,
                path,
                status,
                duration_ms = ms,
                request_id,
                attempts,
                "bk api {method} {api} {path}: {status} in {ms} ms: {}",
                e.message()
            ),
        }
    }
}

/// The `request_id` of an answer's envelope (ESB sends it there rather than in a header), for
/// the log line; `None` when the body is no JSON object or has none.
fn envelope_request_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        request_id: Option<serde_json::Value>,
    }
    match serde_json::from_slice::<Envelope>(body).ok()?.request_id? {
        serde_json::Value::String(id) => Some(id),
        serde_json::Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// Whether another attempt is safe and may help: only a GET, after a connection error or a 5xx.
fn retry_is_safe(request: &BkApiRequest, result: &Result<BkApiResponse, BkApiError>) -> bool {
    request.method == Method::Get
        && match result {
            Ok(response) => response.status >= 500,
            Err(e) => e.kind() == BkApiErrorKind::Connect,
        }
}

fn status_label(error: &BkApiError) -> &'static str {
    match error.kind() {
        BkApiErrorKind::Timeout => "timeout",
        BkApiErrorKind::NotConfigured | BkApiErrorKind::Request => "not_configured",
        _ => "connect_error",
    }
}

#[cfg(test)]
mod tests;
