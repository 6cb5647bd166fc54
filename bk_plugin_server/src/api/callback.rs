//! `POST /bk_plugin/callback/{token}`: a third-party system reports back to a waiting invocation.

use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::app::{AppState, unix_now};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::store::CallbackAcceptance;

use super::read_json;

/// Verifies the token, stores the callback and wakes the worker.
pub(crate) async fn callback(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
    _caller: Caller,
) -> Result<HttpResponse, ApiError> {
    let token = path.into_inner();
    let signer = state.signer.as_ref().ok_or_else(|| {
        ApiError::bad_request("invalid token: this deployment has no callback secret configured")
    })?;
    let claims = signer
        .verify(&token, unix_now())
        .map_err(|e| ApiError::bad_request(e.to_string()))?;
    let body = read_json(&req, payload, state.config.max_body_bytes)
        .await
        .map_err(|e| match e {
            ApiError::BadRequest { .. } => ApiError::bad_request("invalid request body: send JSON"),
            other => other,
        })?;
    let data = body.to_string();
    let hostname = [state.metrics.hostname()];
    let started = std::time::Instant::now();
    let may_be_early = state.may_be_early(&claims.trace_id, claims.expires_at);
    let result = state
        .store
        .accept_callback_for(&claims.trace_id, &claims.callback_id, data, may_be_early)
        .await;
    let time = state.metrics.callback_time.with_label_values(&hostname);
    time.observe(started.elapsed().as_secs_f64());
    let acceptance = result.inspect_err(|_| {
        state
            .metrics
            .callback_exception
            .with_label_values(&hostname)
            .inc();
    })?;
    tracing::info!(trace_id = %claims.trace_id, callback_id = %claims.callback_id, ?acceptance, "callback received");
    match acceptance {
        CallbackAcceptance::Accepted { runnable } => {
            if runnable {
                state.wake.notify_one();
            }
            Ok(accepted())
        }
        CallbackAcceptance::Duplicate => Ok(accepted()),
        CallbackAcceptance::NotFound => Err(ApiError::bad_request(format!(
            "callback fail, can not find schedule for trace_id {}",
            claims.trace_id
        ))),
        CallbackAcceptance::NotWaiting(s) => Err(ApiError::bad_request(format!(
            "callback fail, schedule plugin state[{}]: is not callback",
            s.as_i32()
        ))),
    }
}

fn accepted() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "result": true, "message": "callback success", "data": Value::Null
    }))
}
