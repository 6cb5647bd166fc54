//! `POST /bk_plugin/plugin_api_dispatch`: call an author's `plugin_api` handler in-process, as
//! the given user, without an HTTP hop to ourselves.

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::app::AppState;
use crate::auth::AuthPolicy;
use crate::error::{ApiError, Envelope, TraceId};
use crate::plugin_api::{ApiGroup, ApiMethod, ApiRequest};

use super::data_api::{forwarded_headers, query_map};
use super::{Protected, read_json};

/// Dispatches to the handler named by `url` and `method`.
pub(crate) async fn dispatch(
    state: web::Data<AppState>,
    auth: web::Data<AuthPolicy>,
    call: Protected,
) -> Result<HttpResponse, ApiError> {
    let Protected { caller, req, body } = call;
    let trace_id = TraceId::assign(&req);
    auth.check_scope(&caller, &req)?;
    let body = read_json(&req, body, state.config().max_body_bytes).await?;
    let call = DispatchCall::parse(body)?;
    let (path, query) = call.url.split_once('?').unwrap_or((call.url.as_str(), ""));
    let relative = path
        .strip_prefix(ApiGroup::PluginApi.prefix())
        .unwrap_or_default();
    let mut request = ApiRequest {
        query: query_map(query),
        username: Some(call.username.clone()),
        app_code: caller.app_code.clone(),
        user_credential: caller.jwt.clone().map(|jwt| ("jwt".to_string(), jwt)),
        headers: forwarded_headers(&req),
        ..ApiRequest::default()
    };
    match call.method {
        ApiMethod::Get => {
            // A dispatched GET carries `data` as query parameters, which are strings.
            for (key, value) in call.data {
                let text = match value {
                    Value::String(text) => text,
                    other => other.to_string(),
                };
                request.query.insert(key, Value::String(text));
            }
            request.data = Value::Null;
        }
        ApiMethod::Post => request.data = Value::Object(call.data),
    }
    let handler = state
        .apis()
        .find(ApiGroup::PluginApi, call.method, relative, &mut request)
        .map_err(|_| ApiError::NoHandler(call.url.clone()))?;
    let span = crate::otel::data_api_span(ApiGroup::PluginApi.prefix(), relative);
    match handler.instrument(span.clone()).await {
        Ok(data) => Ok(Envelope::success("success", data).traced(&trace_id).ok()),
        Err(e) => {
            crate::otel::record_error(&span, &e.message);
            Err(ApiError::PluginApi(e.message))
        }
    }
}

struct DispatchCall {
    url: String,
    method: ApiMethod,
    username: String,
    data: Map<String, Value>,
}

impl DispatchCall {
    fn parse(body: Value) -> Result<Self, ApiError> {
        let Value::Object(mut body) = body else {
            return Err(ApiError::BadRequest(
                "request body must be a JSON object".into(),
            ));
        };
        let url = match body.remove("url") {
            Some(Value::String(url)) if url.starts_with(ApiGroup::PluginApi.prefix()) => url,
            Some(Value::String(url)) => {
                return Err(ApiError::BadRequest(format!(
                    "`url` must start with {}, got {url}",
                    ApiGroup::PluginApi.prefix()
                )));
            }
            _ => {
                return Err(ApiError::BadRequest(
                    "`url` is required and must be a string".into(),
                ));
            }
        };
        let method = body
            .get("method")
            .and_then(Value::as_str)
            .and_then(ApiMethod::parse)
            .ok_or_else(|| ApiError::BadRequest("`method` must be GET or POST".into()))?;
        // Required and non-blank, as Python's serializer (`CharField(required=True)`) has it.
        let username = match body.remove("username") {
            Some(Value::String(name)) if !name.trim().is_empty() => name,
            Some(Value::String(_)) => {
                return Err(ApiError::BadRequest("`username` must not be blank".into()));
            }
            None | Some(Value::Null) => {
                return Err(ApiError::BadRequest(
                    "`username` is required: the user the call is made for".into(),
                ));
            }
            Some(_) => return Err(ApiError::BadRequest("`username` must be a string".into())),
        };
        let mut data = match body.remove("data") {
            Some(Value::Object(data)) => data,
            None | Some(Value::Null) => Map::new(),
            Some(_) => return Err(ApiError::BadRequest("`data` must be a JSON object".into())),
        };
        match body.remove("dumped_data") {
            None | Some(Value::Null) => {}
            Some(Value::String(text)) if text.trim().is_empty() => {}
            Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(extra)) => data.extend(extra),
                _ => {
                    return Err(ApiError::BadRequest(
                        "`dumped_data` must be a JSON object encoded as a string".into(),
                    ));
                }
            },
            Some(_) => {
                return Err(ApiError::BadRequest(
                    "`dumped_data` must be a string".into(),
                ));
            }
        }
        Ok(Self {
            url,
            method,
            username,
            data,
        })
    }
}

#[cfg(test)]
mod fuzz {
    //! Fuzzing the dispatch body: arbitrary JSON never panics, and only plugin_api URLs pass.
    use super::*;
    use proptest::prelude::*;

    fn body() -> impl Strategy<Value = Value> {
        let field = prop_oneof![
            Just(Value::Null),
            any::<i64>().prop_map(Value::from),
            "\\PC{0,30}".prop_map(Value::String),
            Just(Value::String("/bk_plugin/plugin_api/echo/?a=1".into())),
            Just(Value::String("GET".into())),
            Just(Value::String("{\"k\": 1}".into())),
            Just(serde_json::json!({"a": [1, {"b": null}]})),
        ];
        prop::collection::vec(
            (
                prop_oneof![
                    Just("url"),
                    Just("method"),
                    Just("username"),
                    Just("data"),
                    Just("dumped_data")
                ],
                field,
            ),
            0..6,
        )
        .prop_map(|pairs| {
            Value::Object(pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
        })
    }

    proptest! {
        #[test]
        fn dispatch_bodies_never_panic_and_only_plugin_api_urls_pass(value in body()) {
            if let Ok(call) = DispatchCall::parse(value) {
                prop_assert!(call.url.starts_with(ApiGroup::PluginApi.prefix()));
            }
        }
    }
}
