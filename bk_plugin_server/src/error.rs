//! Every failure an HTTP route can answer with: one variant each, knowing its status and
//! rendered once, as the protocol's envelope, through actix's `ResponseError`.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde_json::{Value, json};

use crate::store::StoreError;

/// An error answer of the protocol.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 404: unknown route, version or handler.
    #[error("{message}")]
    NotFound {
        /// What was not found.
        message: String,
        /// The trace id, on invoke and dispatch.
        trace_id: Option<String>,
    },
    /// 400: the request is not what the route takes.
    #[error("{message}")]
    BadRequest {
        /// What is wrong.
        message: String,
        /// The trace id, on invoke and dispatch.
        trace_id: Option<String>,
    },
    /// 405.
    #[error("method {0} is not allowed here")]
    MethodNotAllowed(String),
    /// 413.
    #[error("request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// 415.
    #[error("content type {0:?} is not supported: send application/json")]
    UnsupportedMediaType(String),
    /// 401: gateway authentication is required and missing or invalid.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the caller is not allowed.
    #[error("{0}")]
    Forbidden(String),
    /// 500: the database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// 500: something else failed.
    #[error("{message}")]
    Internal {
        /// What failed.
        message: String,
        /// The trace id, on invoke and dispatch.
        trace_id: Option<String>,
    },
}

impl ApiError {
    /// 400 with this message.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest {
            message: message.into(),
            trace_id: None,
        }
    }

    /// 404 with this message.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::NotFound {
            message: message.into(),
            trace_id: None,
        }
    }

    /// The same error, answered with `trace_id` in its envelope.
    pub fn with_trace(self, trace: &str) -> Self {
        let trace_id = Some(trace.to_string());
        match self {
            Self::NotFound { message, .. } => Self::NotFound { message, trace_id },
            Self::BadRequest { message, .. } => Self::BadRequest { message, trace_id },
            Self::Internal { message, .. } => Self::Internal { message, trace_id },
            other => other,
        }
    }

    fn trace_id(&self) -> Option<&str> {
        match self {
            Self::NotFound { trace_id, .. }
            | Self::BadRequest { trace_id, .. }
            | Self::Internal { trace_id, .. } => trace_id.as_deref(),
            _ => None,
        }
    }
}

/// The protocol's failure envelope.
pub fn failure(message: &str, trace_id: Option<&str>) -> Value {
    let mut body = json!({"result": false, "message": message, "data": null});
    if let Some(trace_id) = trace_id {
        body["trace_id"] = json!(trace_id);
    }
    body
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NotFound { .. } => StatusCode::NOT_FOUND,
            Self::BadRequest { .. } => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::Store(_) | Self::Internal { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Store(e) = self {
            tracing::error!(error = %e, "request failed on the database");
        }
        HttpResponse::build(self.status_code()).json(failure(&self.to_string(), self.trace_id()))
    }
}
