//! `GET /bk_plugin/logs/{trace_id}`: every captured line of a trace, oldest first (dev, or
//! `BK_PLUGIN_LOGS_API=1`).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;
use crate::logging::capture_enabled;

use super::success;

/// The lines logged for `trace_id` across its invoke and every re-run.
pub(crate) async fn logs(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !capture_enabled(&state.config) {
        return Err(ApiError::not_found(
            "the logs API is available in dev only (or with BK_PLUGIN_LOGS_API=1)",
        ));
    }
    let trace_id = path.into_inner();
    // Lines logged before this request may still be queued for the batch writer.
    crate::logging::flush_captured().await;
    let lines = state.store.logs_of(&trace_id).await?;
    Ok(success("", json!({"log": lines.join("\n")}), None))
}
