//! The author's handler groups over HTTP: `/bk_plugin/plugin_api/*`, `/bk_plugin/openapi/*`,
//! `/bk_plugin/private/*`.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::app::AppState;
use crate::error::{ApiError, Envelope};
use crate::plugin_api::{ApiGroup, ApiMethod, ApiRequest};

use super::{Protected, read_json};

/// Routes one request to the author's handler.
pub(crate) async fn handle(
    state: web::Data<AppState>,
    call: Protected,
) -> Result<HttpResponse, ApiError> {
    let Protected { caller, req, body } = call;
    let path = req.path();
    let group = [ApiGroup::PluginApi, ApiGroup::OpenApi, ApiGroup::Private]
        .into_iter()
        .find(|g| path.starts_with(g.prefix()) || format!("{path}/") == g.prefix())
        .ok_or_else(|| ApiError::NoApiRoute(path.to_string()))?;
    let relative = path.get(group.prefix().len()..).unwrap_or("").to_string();
    let method = ApiMethod::parse(req.method().as_str())
        .ok_or_else(|| ApiError::MethodNotAllowed(req.method().to_string()))?;
    let data = match method {
        ApiMethod::Get => Value::Null,
        ApiMethod::Post => read_json(&req, body, state.config().max_body_bytes).await?,
    };
    let mut request = ApiRequest {
        query: query_map(req.query_string()),
        data,
        username: caller.username.clone(),
        app_code: caller.app_code.clone(),
        headers: forwarded_headers(&req),
        user_credential: match &caller.jwt {
            Some(jwt) => Some(("jwt".to_string(), jwt.clone())),
            None => req
                .cookie("bk_token")
                .map(|c| ("bk_token".to_string(), c.value().to_string())),
        },
        ..ApiRequest::default()
    };
    let handler = state
        .apis()
        .find(group, method, &relative, &mut request)
        .map_err(|other_method| {
            if other_method {
                ApiError::MethodNotAllowed(method.as_str().to_string())
            } else {
                ApiError::NoApiRoute(req.path().to_string())
            }
        })?;
    let span = crate::otel::data_api_span(group.prefix(), &relative);
    match handler.instrument(span.clone()).await {
        Ok(data) => Ok(HttpResponse::Ok().json(data)),
        Err(e) => {
            crate::otel::record_error(&span, &e.message);
            let status = actix_web::http::StatusCode::from_u16(e.http_status())
                .unwrap_or(actix_web::http::StatusCode::INTERNAL_SERVER_ERROR);
            Ok(Envelope::failure(&e.message).respond(status))
        }
    }
}

/// Query string -> JSON object of strings (the last value of a repeated key wins).
pub(crate) fn query_map(query: &str) -> Map<String, Value> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|q| {
            q.into_inner()
                .into_iter()
                .map(|(k, v)| (k, Value::String(v)))
                .collect()
        })
        .unwrap_or_default()
}

/// The `Bk-Plugin-*` headers and the gateway JWT, to forward to a handler.
pub(crate) fn forwarded_headers(req: &HttpRequest) -> Vec<(String, String)> {
    req.headers()
        .iter()
        .filter(|(name, _)| {
            let name = name.as_str();
            name.starts_with("bk-plugin-") || name == "x-bkapi-jwt"
        })
        .filter_map(|(name, value)| {
            value
                .to_str()
                .ok()
                .map(|v| (name.as_str().to_string(), v.to_string()))
        })
        .collect()
}
