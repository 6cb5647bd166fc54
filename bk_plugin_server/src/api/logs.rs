//! `GET /bk_plugin/logs/{trace_id}`: every captured line of a trace, oldest first (dev, or
//! `BK_PLUGIN_LOGS_API=1`).

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;
use crate::error::{ApiError, Envelope};

/// The lines logged for `trace_id` across its invoke and every re-run.
pub(crate) async fn logs(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.config().capture_logs {
        return Err(ApiError::LogsApiOff);
    }
    let trace_id = path.into_inner();
    // Lines logged before this request may still be queued for the batch writer.
    crate::logging::flush_captured().await;
    let lines = state.store().logs_of(&trace_id).await?;
    Ok(Envelope::success("", json!({"log": lines.join("\n")})).ok())
}
