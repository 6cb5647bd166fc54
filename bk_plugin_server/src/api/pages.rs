//! Pages for people and the machine-readable API description, outside `/bk_plugin/`:
//!
//! | route | dev | stag / prod |
//! |---|---|---|
//! | `GET /schema/` | OpenAPI 3.1 JSON (`?format=yaml` for YAML) | the same |
//! | `GET /swagger/` | the API reference page | the same, unless `BK_PLUGIN_SWAGGER=0` (404) |
//! | `GET /` | the debug panel | the API reference page, unless `BK_PLUGIN_SWAGGER=0` (404) |
//! | `GET /debug/` | the debug panel | 404 |
//!
//! As in the Python runtime, `/` is the debug panel in dev and the API documentation elsewhere.
//! Both pages are single self-contained HTML files compiled into the binary: nothing is fetched
//! from anywhere but this server. Behind PaaS's path prefix (`Config::sub_path`), every link
//! and fetch of the pages and the document's `servers` start with it: the pages carry
//! `{{BK_PLUGIN_ROOT}}` where the prefix goes, filled in when served.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::app::AppState;
use crate::error::ApiError;
use crate::openapi::{Described, document, to_yaml};

/// The debug panel: pick a version, fill its form, run it, follow it.
const DEBUG_PANEL: &str = include_str!("../../assets/debug_panel.html");
/// The API reference: renders `/schema/` for a person.
const API_PAGE: &str = include_str!("../../assets/api_page.html");

/// Registers `/`, `/debug/`, `/swagger/` and `/schema/`.
pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/").route(web::get().to(home)))
        .service(web::resource(["/debug", "/debug/"]).route(web::get().to(debug_panel)))
        .service(web::resource(["/swagger", "/swagger/"]).route(web::get().to(api_page)))
        .service(web::resource(["/schema", "/schema/"]).route(web::get().to(schema)));
}

/// Where the path prefix goes in the pages.
const ROOT_PLACEHOLDER: &str = "{{BK_PLUGIN_ROOT}}";

/// A page with the path prefix (`""` or `/a/b`, checked by the config) in place.
fn html(page: &'static str, root: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(page.replace(ROOT_PLACEHOLDER, root))
}

/// `GET /`: the debug panel in dev, the API page elsewhere.
async fn home(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.config().is_dev() {
        return Ok(html(DEBUG_PANEL, &state.config().sub_path));
    }
    api_page(state).await
}

/// `GET /debug/`: the debug panel, in dev only.
async fn debug_panel(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.config().is_dev() {
        Ok(html(DEBUG_PANEL, &state.config().sub_path))
    } else {
        Err(ApiError::DebugPanelOff)
    }
}

/// `GET /swagger/`: the API reference page (off outside dev with `BK_PLUGIN_SWAGGER=0`).
async fn api_page(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if state.config().is_dev() || state.config().api_page {
        Ok(html(API_PAGE, &state.config().sub_path))
    } else {
        Err(ApiError::ApiPageOff)
    }
}

/// `GET /schema/`: the OpenAPI document; `?format=json` (default) or `?format=yaml`.
async fn schema(state: web::Data<AppState>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let format =
        web::Query::<std::collections::HashMap<String, String>>::from_query(req.query_string())
            .map(|q| q.get("format").cloned().unwrap_or_default())
            .unwrap_or_default();
    let doc = document(Described {
        app_code: &state.config().app_code,
        root: &state.config().sub_path,
        description: &state.meta().description,
        registry: state.registry(),
        apis: state.apis(),
    });
    match format.as_str() {
        "" | "json" | "openapi-json" => Ok(HttpResponse::Ok().json(doc)),
        "yaml" | "openapi" => Ok(HttpResponse::Ok()
            .content_type("application/yaml; charset=utf-8")
            .body(to_yaml(&doc))),
        other => Err(ApiError::BadRequest(format!(
            "format {other:?} is not supported: use json or yaml"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_url_in_the_pages_starts_from_the_root_placeholder() {
        for (name, page) in [("debug panel", DEBUG_PANEL), ("API page", API_PAGE)] {
            assert!(page.contains(ROOT_PLACEHOLDER), "{name}");
            // `call(method, "/bk_plugin/...")` puts ROOT before its path itself.
            for absolute in ["href=\"/", "fetch(\"/", "fetch(`/", "fetch(path"] {
                assert!(
                    !page.contains(absolute),
                    "{name} has a URL without the prefix: {absolute}"
                );
            }
        }
    }
}
