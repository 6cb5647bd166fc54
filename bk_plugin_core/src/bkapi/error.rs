//! How a call to a BlueKing API failed: a typed error that keeps what the upstream said (its
//! code and message, the HTTP status, the request id) and names the API, so that `?` in
//! `execute` turns it into a FAIL whose `err` says which API failed and why.

use super::request::BkApiRequest;

/// What kind of failure a [`BkApiError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BkApiErrorKind {
    /// The API answered `result: false` (or a non-zero `code` without `result`).
    Failed,
    /// The HTTP status was not 2xx (the gateway's own errors included).
    Status,
    /// The answer is not a JSON envelope, or its `data` does not fit the type asked for.
    Decode,
    /// No answer within the timeout.
    Timeout,
    /// The upstream could not be reached (connection refused, DNS, TLS, a redirect to another host).
    Connect,
    /// The call could not be built (its body is not JSON, an ESB body is not an object).
    Request,
    /// The runtime lacks what the call needs (`BK_COMPONENT_API_URL`, `BK_API_URL_TMPL`, the
    /// app secret), or the test gave no answer for it.
    NotConfigured,
}

/// A failed call to a BlueKing API. Its text names the API and says why:
/// `cc.search_business failed: code 1199, business not found (HTTP 200, request id 4f...)`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct BkApiError {
    api: String,
    kind: BkApiErrorKind,
    status: Option<u16>,
    code: Option<String>,
    message: String,
    request_id: Option<String>,
}

impl BkApiError {
    /// An error of `kind` for `request`, with a message and nothing from an answer.
    pub fn new(request: &BkApiRequest, kind: BkApiErrorKind, message: impl Into<String>) -> Self {
        Self::named(request.describe(), kind, message)
    }

    /// An error of `kind` for the API described as `api` (see [`BkApiRequest::describe`]).
    pub fn named(api: impl Into<String>, kind: BkApiErrorKind, message: impl Into<String>) -> Self {
        Self {
            api: api.into(),
            kind,
            status: None,
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    /// The same error with the HTTP status of the answer.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// The same error with the upstream's code.
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    /// The same error with the upstream's request id.
    pub fn with_request_id(mut self, request_id: Option<String>) -> Self {
        self.request_id = request_id;
        self
    }

    /// The API, as errors name it: `cc.search_business`, `bk-cmdb POST /api/v3/biz/search/`.
    pub fn api(&self) -> &str {
        &self.api
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> BkApiErrorKind {
        self.kind
    }

    /// The HTTP status, when an answer came.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The upstream's `code` (or the gateway's `X-Bkapi-Error-Code`), as text.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The upstream's `message`, or what went wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The upstream's request id (`X-Bkapi-Request-Id`, else the envelope's `request_id`).
    pub fn request_id(&self) -> Option<&str> {
        self.request_id.as_deref()
    }

    /// Whether a timeout or a failure to connect: the kind of error worth trying again later
    /// (a POLL step may just wait and poll again).
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, BkApiErrorKind::Timeout | BkApiErrorKind::Connect)
            || self.status.is_some_and(|s| s >= 500)
    }

    fn render(&self) -> String {
        let mut text = format!("{} failed: ", self.api);
        match (self.kind, &self.code) {
            (BkApiErrorKind::Status, code) => {
                text.push_str(&format!("HTTP {}", self.status.unwrap_or(0)));
                if let Some(code) = code {
                    text.push_str(&format!(", code {code}"));
                }
                if !self.message.is_empty() {
                    text.push_str(&format!(", {}", self.message));
                }
            }
            (_, Some(code)) => text.push_str(&format!("code {code}, {}", self.message)),
            (_, None) => text.push_str(&self.message),
        }
        let mut tail = Vec::new();
        if let (Some(status), false) = (self.status, self.kind == BkApiErrorKind::Status) {
            tail.push(format!("HTTP {status}"));
        }
        if let Some(id) = &self.request_id {
            tail.push(format!("request id {id}"));
        }
        if !tail.is_empty() {
            text.push_str(&format!(" ({})", tail.join(", ")));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PluginError;

    #[test]
    fn the_text_names_the_api_the_code_the_message_and_the_request_id() {
        let failed = BkApiError::named("cc.search_business", BkApiErrorKind::Failed, "no biz")
            .with_status(200)
            .with_code(Some("1199".into()))
            .with_request_id(Some("abc".into()));
        assert_eq!(
            failed.to_string(),
            "cc.search_business failed: code 1199, no biz (HTTP 200, request id abc)"
        );
        let status = BkApiError::named("bk-cmdb GET /x/", BkApiErrorKind::Status, "bad gateway")
            .with_status(502);
        assert_eq!(
            status.to_string(),
            "bk-cmdb GET /x/ failed: HTTP 502, bad gateway"
        );
        assert!(status.is_transient());
        let timeout = BkApiError::named("cc.x", BkApiErrorKind::Timeout, "no answer within 2s");
        assert_eq!(timeout.to_string(), "cc.x failed: no answer within 2s");
        assert!(timeout.is_transient() && !failed.is_transient());
    }

    #[test]
    fn a_plugin_error_made_with_question_mark_keeps_the_text() {
        fn step() -> Result<(), PluginError> {
            Err(
                BkApiError::named("cc.search_business", BkApiErrorKind::Failed, "no biz")
                    .with_code(Some("1199".into())),
            )?;
            Ok(())
        }
        assert_eq!(
            step().map_err(|e| e.to_string()),
            Err("cc.search_business failed: code 1199, no biz".into())
        );
    }
}
