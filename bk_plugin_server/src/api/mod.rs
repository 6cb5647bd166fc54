//! The HTTP protocol under `/bk_plugin/`: one module per route family. Every answer, including
//! unknown routes, wrong methods and unreadable bodies, is the protocol's JSON envelope.

mod callback;
mod data_api;
mod dispatch;
mod invoke;
mod logs;
mod meta;
mod pages;
mod schedule;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, HttpResponse, web};
use futures_util::StreamExt;
use serde_json::Value;

use crate::auth::Caller;
use crate::error::ApiError;

/// Registers every route, each with and without its trailing slash.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    pages::configure(cfg);
    cfg.service(resource("/bk_plugin/meta").route(web::get().to(meta::meta)))
        .service(resource("/bk_plugin/detail/{version}").route(web::get().to(meta::detail)))
        .service(resource("/bk_plugin/invoke/{version}").route(web::post().to(invoke::invoke)))
        .service(
            resource("/bk_plugin/schedule/{trace_id}").route(web::get().to(schedule::schedule)),
        )
        .service(resource("/bk_plugin/callback/{token}").route(web::post().to(callback::callback)))
        .service(resource("/bk_plugin/logs/{trace_id}").route(web::get().to(logs::logs)))
        .service(
            resource("/bk_plugin/plugin_api_dispatch").route(web::post().to(dispatch::dispatch)),
        )
        .service(
            web::resource([
                "/bk_plugin/plugin_api/{tail:.*}",
                "/bk_plugin/openapi/{tail:.*}",
                "/bk_plugin/private/{tail:.*}",
            ])
            .route(web::get().to(data_api::handle))
            .route(web::post().to(data_api::handle))
            .default_service(web::to(method_not_allowed)),
        )
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .default_service(web::to(not_found));
}

/// `GET /metrics`: Prometheus text exposition.
async fn metrics(state: web::Data<crate::app::AppState>) -> HttpResponse {
    let text = state.metrics().render(state.store()).await;
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(text)
}

/// Counts every request and its latency by route pattern (not raw path, so trace ids and
/// versions do not explode the label set).
pub(crate) async fn observe_http(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().as_str().to_string();
    let state = req.app_data::<web::Data<crate::app::AppState>>().cloned();
    let response = next.call(req).await?;
    if let Some(state) = state {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".to_string());
        let status = response.status().as_u16().to_string();
        let metrics = state.metrics();
        metrics
            .http_requests
            .with_label_values(&[route.as_str(), method.as_str(), status.as_str()])
            .inc();
        metrics
            .http_duration
            .with_label_values(&[route.as_str()])
            .observe(started.elapsed().as_secs_f64());
    }
    Ok(response)
}

fn resource(path: &str) -> actix_web::Resource {
    web::resource([path.to_string(), format!("{path}/")])
        .default_service(web::to(method_not_allowed))
}

async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute {
        method: req.method().to_string(),
        path: req.path().to_string(),
    })
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(req.method().to_string()))
}

/// A request to a protected route: its caller (authenticated when extracted, 401 outside dev
/// without a valid gateway JWT), the request, and its body, not read yet.
pub(crate) struct Protected {
    /// Who calls.
    pub(crate) caller: Caller,
    /// The request.
    pub(crate) req: HttpRequest,
    /// The body.
    pub(crate) body: actix_web::dev::Payload,
}

impl FromRequest for Protected {
    type Error = ApiError;
    type Future = std::future::Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut actix_web::dev::Payload) -> Self::Future {
        let caller = Caller::from_request(req, payload).into_inner();
        std::future::ready(caller.map(|caller| Self {
            caller,
            req: req.clone(),
            body: payload.take(),
        }))
    }
}

/// Reads a JSON body of at most `limit` bytes. A body sent under another content type (curl's
/// default form type, say) is still taken when it is valid JSON; otherwise that is a 415.
pub(crate) async fn read_json(
    req: &HttpRequest,
    mut payload: actix_web::dev::Payload,
    limit: usize,
) -> Result<Value, ApiError> {
    let foreign_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or("").to_string())
        .filter(|text| !is_json_type(text));
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge(limit));
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(256).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("cannot read request body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    match (parse_json(&body), foreign_type) {
        (Err(_), Some(content_type)) => Err(ApiError::UnsupportedMediaType(content_type)),
        (result, _) => result,
    }
}

fn is_json_type(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence.is_empty() || essence == "application/json" || essence.ends_with("+json")
}

/// Parses JSON with serde_json's recursion limit (128 levels), naming where it failed.
pub(crate) fn parse_json(body: &[u8]) -> Result<Value, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::BadRequest(
            "request body is empty: send a JSON object".into(),
        ));
    }
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("request body is not valid JSON: {e}")))
}
