//! `POST /bk_plugin/callback/{token}`: a third-party system reports back to a waiting invocation.

use actix_web::{HttpResponse, web};
use serde_json::Value;

use crate::app::AppState;
use crate::error::{ApiError, Envelope};
use crate::store::{CallbackAcceptance, JsonText};

use super::{Protected, read_json};

/// Verifies the token, stores the callback and wakes the worker.
pub(crate) async fn callback(
    state: web::Data<AppState>,
    path: web::Path<String>,
    call: Protected,
) -> Result<HttpResponse, ApiError> {
    let Protected { req, body, .. } = call;
    let token = path.into_inner();
    let claims = state
        .tokens()
        .verify(&token)
        .map_err(|e| ApiError::InvalidToken(e.to_string()))?;
    let body = read_json(&req, body, state.config().max_body_bytes)
        .await
        .map_err(|e| match e {
            ApiError::BadRequest(_) => {
                ApiError::BadRequest("invalid request body: send JSON".into())
            }
            other => other,
        })?;
    let data = JsonText::of(&body);
    let hostname = [state.metrics().hostname()];
    let started = std::time::Instant::now();
    let may_be_early = state
        .tokens()
        .may_be_early(&claims.trace_id, claims.expires_at);
    let result = state
        .store()
        .accept_callback_for(&claims.trace_id, &claims.callback_id, data, may_be_early)
        .await;
    let time = state.metrics().callback_time.with_label_values(&hostname);
    time.observe(started.elapsed().as_secs_f64());
    let acceptance = result.inspect_err(|_| {
        state
            .metrics()
            .callback_exception
            .with_label_values(&hostname)
            .inc();
    })?;
    tracing::info!(trace_id = %claims.trace_id, callback_id = %claims.callback_id, ?acceptance, "callback received");
    match acceptance {
        CallbackAcceptance::Accepted { runnable } => {
            if runnable {
                state.invocations().wake();
            }
            Ok(accepted())
        }
        CallbackAcceptance::Duplicate => Ok(accepted()),
        CallbackAcceptance::NotFound => Err(ApiError::CallbackNotFound(claims.trace_id)),
        CallbackAcceptance::NotWaiting(s) => Err(ApiError::CallbackNotWaiting(s)),
    }
}

fn accepted() -> HttpResponse {
    Envelope::success("callback success", Value::Null).ok()
}
