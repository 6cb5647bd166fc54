//! Every failure an HTTP route can answer with: one variant each, knowing its status and
//! message, rendered once, as the protocol's [`Envelope`], through actix's `ResponseError`.
//!
//! The trace id of an invoke or a dispatch is not carried by the error: the handler stamps it on
//! the request ([`TraceId::assign`]) and [`stamp_trace_id`] adds it to whatever error envelope
//! that request is answered with (a 403, 413 or 415 included).

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError};
use bk_plugin_core::State;
use serde::Serialize;
use serde_json::Value;

use crate::store::StoreError;

/// The protocol's answer: `{"result", "message", "data"}`, with `trace_id` on invoke, dispatch
/// and schedule answers.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Envelope {
    result: bool,
    message: String,
    data: Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    trace_id: Option<String>,
}

impl Envelope {
    /// `result: true` with `message` and `data`.
    pub(crate) fn success(message: &str, data: Value) -> Self {
        Self {
            result: true,
            message: message.to_string(),
            data,
            trace_id: None,
        }
    }

    /// `result: false` with `message` and null `data`.
    pub(crate) fn failure(message: &str) -> Self {
        Self {
            result: false,
            message: message.to_string(),
            data: Value::Null,
            trace_id: None,
        }
    }

    /// The same envelope with `trace_id`.
    pub(crate) fn traced(mut self, trace_id: &str) -> Self {
        self.trace_id = Some(trace_id.to_string());
        self
    }

    /// The envelope answered with `status`.
    pub(crate) fn respond(&self, status: StatusCode) -> HttpResponse {
        HttpResponse::build(status).json(self)
    }

    /// The envelope answered with 200.
    pub(crate) fn ok(&self) -> HttpResponse {
        self.respond(StatusCode::OK)
    }
}

/// The trace id a request is answered with, kept in the request's extensions.
#[derive(Debug, Clone)]
pub(crate) struct TraceId(String);

impl TraceId {
    /// Gives `req` a new trace id (a UUID4 as 32 lowercase hex characters) and returns it; every
    /// error the request is answered with from now on carries it.
    pub(crate) fn assign(req: &HttpRequest) -> String {
        let trace_id = new_trace_id();
        req.extensions_mut().insert(Self(trace_id.clone()));
        trace_id
    }
}

/// A new trace id: a UUID4 as 32 lowercase hex characters.
pub(crate) fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Middleware: an error answer of a request that was given a [`TraceId`] carries it.
pub(crate) async fn stamp_trace_id(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let response = next.call(req).await?.map_into_boxed_body();
    let trace_id = response.request().extensions().get::<TraceId>().cloned();
    let stamped = match (trace_id, response.response().error()) {
        (Some(TraceId(trace_id)), Some(error)) => error.as_error::<ApiError>().map(|error| {
            error
                .envelope()
                .traced(&trace_id)
                .respond(error.status_code())
        }),
        _ => None,
    };
    Ok(match stamped {
        Some(answer) => response.into_response(answer),
        None => response,
    })
}

/// An error answer of the protocol.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// 404: no route for this method and path.
    #[error("no route for {method} {path}")]
    NoRoute {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
    },
    /// 404: no data API handler at this path.
    #[error("no route for {0}")]
    NoApiRoute(String),
    /// 404: no such plugin version.
    #[error("{}", version_not_found(.0))]
    VersionNotFound(String),
    /// 404: no data API handler for this URL (dispatch).
    #[error("404 error: {0}")]
    NoHandler(String),
    /// 404: the logs API is switched off.
    #[error("the logs API is available in dev only (or with BK_PLUGIN_LOGS_API=1)")]
    LogsApiOff,
    /// 404: the debug panel outside dev.
    #[error("the debug panel is available in dev only (BKPAAS_ENVIRONMENT=dev)")]
    DebugPanelOff,
    /// 404: the API page switched off.
    #[error("the API page is switched off (BK_PLUGIN_SWAGGER=0); the document is at /schema/")]
    ApiPageOff,
    /// 400: the request is not what the route takes.
    #[error("{0}")]
    BadRequest(String),
    /// 400: a callback token that is not ours, or expired.
    #[error("{0}")]
    InvalidToken(String),
    /// 400: a callback for an invocation that is not stored.
    #[error("callback fail, can not find schedule for trace_id {0}")]
    CallbackNotFound(String),
    /// 400: a callback for an invocation that is not waiting for one.
    #[error("callback fail, schedule plugin state[{}]: is not callback", .0.as_i32())]
    CallbackNotWaiting(State),
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
    /// 403: the caller app is outside its `allow_scope`.
    #[error(
        "app {app} may only call this plugin within scope type {scope_type:?} and values {values:?}; the request has {sent_type:?} {sent_value:?}"
    )]
    OutOfScope {
        /// The caller app.
        app: String,
        /// The scope type it is allowed.
        scope_type: String,
        /// The scope values it is allowed.
        values: Vec<String>,
        /// The scope type the request sent.
        sent_type: String,
        /// The scope value the request sent.
        sent_value: String,
    },
    /// 500: the database failed.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// 500: an author's data API handler failed (dispatch).
    #[error("plugin api failed: {0}")]
    PluginApi(String),
    /// 500: the application state is not registered (a programming error).
    #[error("application state is missing")]
    StateMissing,
}

/// How an HTTP answer names an unknown version.
pub(crate) fn version_not_found(version: &str) -> String {
    format!("plugin version {version} not found")
}

/// How the command line (`detail`, `invoke`) names an unknown version.
pub(crate) fn no_such_version(version: &str) -> String {
    format!("no plugin version {version}")
}

impl ApiError {
    /// The envelope this error is answered with (without trace id).
    fn envelope(&self) -> Envelope {
        Envelope::failure(&self.to_string())
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::NoRoute { .. }
            | Self::VersionNotFound(_)
            | Self::NoHandler(_)
            | Self::NoApiRoute(_)
            | Self::LogsApiOff
            | Self::DebugPanelOff
            | Self::ApiPageOff => StatusCode::NOT_FOUND,
            Self::BadRequest(_)
            | Self::InvalidToken(_)
            | Self::CallbackNotFound(_)
            | Self::CallbackNotWaiting(_) => StatusCode::BAD_REQUEST,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::OutOfScope { .. } => StatusCode::FORBIDDEN,
            Self::Store(_) | Self::PluginApi(_) | Self::StateMissing => {
                StatusCode::INTERNAL_SERVER_ERROR
            }
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let Self::Store(e) = self {
            tracing::error!(error = %e, "request failed on the database");
        }
        self.envelope().respond(self.status_code())
    }
}
