//! `GET /bk_plugin/meta` and `GET /bk_plugin/detail/{version}`.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::app::AppState;
use crate::error::ApiError;

use crate::error::Envelope;

/// The plugin's code, description, versions (newest first) and runtime.
pub(crate) async fn meta(state: web::Data<AppState>) -> HttpResponse {
    let version = env!("CARGO_PKG_VERSION");
    let data = json!({
        "code": state.config().app_code,
        "description": state.meta().description,
        "versions": state.registry().version_names(),
        "language": "rust",
        "framework_version": version,
        "runtime_version": version,
        "allow_scope": state.meta().allow_scope,
    });
    Envelope::success("", data).ok()
}

/// One version's description, schemas and form.
pub(crate) async fn detail(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let version = path.into_inner();
    let found = state
        .registry()
        .get(&version)
        .ok_or(ApiError::VersionNotFound(version))?;
    Ok(Envelope::success("", found.detail().clone()).ok())
}
