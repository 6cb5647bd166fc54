//! `GET /bk_plugin/schedule/{trace_id}`: the state of an invocation that went through the
//! scheduler.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;
use crate::error::{ApiError, Envelope};
use crate::time::format_ms;

/// The stored invocation, or the protocol's "can not find" answer (HTTP 200, result false).
pub(crate) async fn schedule(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let trace_id = path.into_inner();
    let Some(row) = state.store().get(&trace_id).await? else {
        let message = format!("can not find schedule for trace_id {trace_id}");
        return Ok(Envelope::failure(&message).traced(&trace_id).ok());
    };
    let zone = state.config().time_zone;
    let outputs = row.outputs.value_or_null();
    let created_at = format_ms(row.created_at, zone);
    let finish_at = row
        .finished_at
        .map(|t| format_ms(t, zone))
        .unwrap_or_default();
    let data = json!({
        "trace_id": row.trace_id,
        "plugin_version": row.plugin_version,
        "version": row.plugin_version,
        "state": row.state.state().as_i32(),
        "invoke_count": row.invoke_count,
        "outputs": outputs,
        "err": row.error.unwrap_or_default(),
        "created_at": created_at,
        "create_at": created_at,
        "finish_at": finish_at,
    });
    Ok(Envelope::success("", data).traced(&trace_id).ok())
}
