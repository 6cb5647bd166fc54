//! `sync-apigw`: registers the plugin with its API gateway the way the Python and Go runtimes
//! do, in the gateway manager's order: basic info, stage, the seven resources, grants, a new
//! resource version, release.
//!
//! What is sent is a function of the environment and the plugin description only; its SHA-256
//! is kept in the database after a successful sync, and a later run with the same hash sends
//! nothing (unless `--force`), so a retried or repeated pre-release hook is cheap and safe. The
//! resource version is `<BK_APIGW_RELEASE_VERSION or 1.0.0>+<UTC yyyymmddHHMMSS>`, so a retried
//! hook never collides with the version an earlier attempt created.

use crate::config::var;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::context;
use super::manager::{Manager, ManagerError};
use crate::config::Config;
use crate::store::Store;

/// Why a sync could not be planned or did not complete.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SyncError {
    /// The environment does not say enough to build the definition.
    #[error("{0}")]
    Config(String),
    /// A gateway call failed (the message is the gateway's).
    #[error(transparent)]
    Manager(#[from] ManagerError),
    /// The sync state could not be read or written.
    #[error("database error: {0}")]
    Db(#[from] sea_orm::DbErr),
}

/// One gateway manager call.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    /// The HTTP method (all are POST).
    pub method: Method,
    /// Relative to `api/v1/apis/<gateway>/`.
    pub path: String,
    /// The JSON body.
    pub body: Value,
}

/// Everything one sync sends, in order.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    /// The gateway.
    pub gateway: String,
    /// The stage released to.
    pub stage: String,
    /// The calls, in the order they are made.
    pub calls: Vec<Call>,
    /// SHA-256 of the definition and resources (the version timestamp excluded).
    pub hash: String,
    /// The resource version this sync creates.
    pub version: String,
}

fn csv(name: &str) -> Vec<String> {
    var(name)
        .unwrap_or_default()
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// A boolean variable; a value that is not a boolean counts as false.
fn truthy(name: &str, default: bool) -> bool {
    crate::config::flag(name, default).unwrap_or(false)
}

/// The stage's backend (`scheme://host[:port]`) and sub path from
/// `BKPAAS_DEFAULT_PREALLOCATED_URLS` (`{"stag": url, "prod": url}`), for `environment`.
pub(crate) fn backend(environment: &str) -> Result<(String, String), SyncError> {
    let url = crate::config::preallocated_url(environment)
        .map_err(SyncError::Config)?
        .ok_or_else(|| {
            SyncError::Config(match var("BKPAAS_DEFAULT_PREALLOCATED_URLS") {
                None => "BKPAAS_DEFAULT_PREALLOCATED_URLS is not set: the gateway stage needs this module's address (PaaS injects it)".into(),
                Some(raw) => format!(
                    "BKPAAS_DEFAULT_PREALLOCATED_URLS has no address for {environment:?}: {raw}"
                ),
            })
        })?;
    let host = url.host_str().unwrap_or_default();
    let netloc = match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_string(),
    };
    Ok((
        format!("{}://{netloc}", url.scheme()),
        url.path().trim_matches('/').to_string(),
    ))
}

/// One row of the resource table: path, method, operation id, backend path, user verified,
/// app verified, resource permission required (unset for the author's open API groups, as in
/// Python), match sub path.
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    bool,
    bool,
    Option<bool>,
    bool,
);

/// The seven resources every plugin registers (the Python runtime's set).
const RESOURCES: [Row; 7] = [
    (
        "/callback/{token}/",
        "post",
        "callback",
        "bk_plugin/callback/{token}/",
        false,
        true,
        Some(true),
        false,
    ),
    (
        "/invoke/{version}/",
        "post",
        "invoke",
        "bk_plugin/invoke/{version}",
        false,
        true,
        Some(true),
        false,
    ),
    (
        "/bk_plugin/schedule/{id}",
        "get",
        "schedule",
        "bk_plugin/schedule/{id}",
        false,
        true,
        Some(false),
        false,
    ),
    (
        "/bk_plugin/plugin_api/",
        "any",
        "plugin_api",
        "bk_plugin/plugin_api/",
        true,
        false,
        None,
        true,
    ),
    (
        "/bk_plugin/openapi/",
        "any",
        "plugin_openapi",
        "bk_plugin/openapi/",
        false,
        true,
        None,
        true,
    ),
    (
        "/bk_plugin/private/",
        "any",
        "plugin_private",
        "bk_plugin/private/",
        true,
        true,
        Some(false),
        true,
    ),
    (
        "/plugin_api_dispatch",
        "post",
        "plugin_api_dispatch",
        "bk_plugin/plugin_api_dispatch/",
        false,
        true,
        Some(true),
        false,
    ),
];

/// The resources document (OpenAPI 3.0.3 with `x-bk-apigateway-resource`; sent as JSON, which
/// the manager reads as YAML). With a sub path, backend paths start with `/{env.api_sub_path}`.
pub(crate) fn resources(sub_path: bool) -> Value {
    let mut paths = serde_json::Map::new();
    for (path, method, operation, backend, user, app, perm, subpath) in RESOURCES {
        let backend_path = if sub_path {
            format!("/{{env.api_sub_path}}{backend}")
        } else {
            format!("/{backend}")
        };
        let mut auth = json!({"userVerifiedRequired": user, "appVerifiedRequired": app});
        if let Some(perm) = perm {
            auth["resourcePermissionRequired"] = json!(perm);
        }
        let key = if method == "any" {
            "x-bk-apigateway-method-any".to_string()
        } else {
            method.to_string()
        };
        let operation_doc = json!({
            "operationId": operation,
            "summary": operation,
            "tags": [operation],
            "responses": {"default": {"description": "plugin response"}},
            "x-bk-apigateway-resource": {
                "isPublic": true,
                "allowApplyPermission": true,
                "matchSubpath": subpath,
                "backend": {
                    "type": "HTTP",
                    "name": "default",
                    "method": method,
                    "path": backend_path,
                    "matchSubpath": subpath,
                    "timeout": 0,
                },
                "authConfig": auth,
                "disabledStages": [],
                "descriptionEn": operation,
            }
        });
        paths.insert(path.to_string(), json!({ key: operation_doc }));
    }
    json!({
        "openapi": "3.0.3",
        "info": {"title": "BK Plugin API", "version": "1.0.0"},
        "paths": paths,
    })
}

/// The UTC time as `yyyymmddHHMMSS`.
fn timestamp() -> String {
    chrono::Utc::now().format("%Y%m%d%H%M%S").to_string()
}

/// Builds what a sync of `config`'s gateway sends, from the environment (the variable names
/// are those of the Python and Go runtimes; docs/deployment.md lists them).
pub(crate) fn plan(config: &Config, description: &str) -> Result<Plan, SyncError> {
    let stage = config.stage_name.clone();
    let env_name = match config.environment {
        crate::config::Environment::Stag => "stag",
        _ => "prod",
    };
    let (host, sub_path) = backend(env_name)?;
    let description = if description.trim().is_empty() {
        format!("BlueKing plugin {}", config.app_code)
    } else {
        description.to_string()
    };
    let mut maintainers = csv("BK_APIGW_MAINTAINERS");
    if maintainers.is_empty() {
        maintainers.push("admin".into());
    }
    let basic = json!({
        "description": description,
        "description_en": description,
        "is_public": truthy("BK_APIGW_IS_PUBLIC", true),
        "api_type": if truthy("BK_APIGW_IS_OFFICIAL", false) { 1 } else { 10 },
        "maintainers": maintainers,
    });
    let mut vars = serde_json::Map::new();
    if !sub_path.is_empty() {
        vars.insert("api_sub_path".into(), json!(format!("{sub_path}/")));
    }
    if let Some(extra) = var("BK_APIGW_STAGE_ENV_VARS") {
        let extra: serde_json::Map<String, Value> = serde_json::from_str(&extra).map_err(|e| {
            SyncError::Config(format!("BK_APIGW_STAGE_ENV_VARS is not a JSON object: {e}"))
        })?;
        vars.extend(extra);
    }
    let timeout: u64 = match var("BK_APIGW_DEFAULT_TIMEOUT") {
        Some(v) => v.trim().parse().map_err(|_| {
            SyncError::Config(format!(
                "BK_APIGW_DEFAULT_TIMEOUT={v:?} is not a number of seconds"
            ))
        })?,
        None => 60,
    };
    let (description_zh, description_en) = if stage == "stag" {
        ("预发布环境", "Staging Env")
    } else {
        ("生产环境", "Production Env")
    };
    let stage_body = json!({
        "name": stage,
        "description": description_zh,
        "description_en": description_en,
        "vars": vars,
        "backends": [{
            "name": "default",
            "config": {
                "timeout": timeout,
                "loadbalance": "roundrobin",
                "hosts": [{"host": host, "weight": 100}],
            }
        }],
    });
    let resources = resources(!sub_path.is_empty());
    let mut grants =
        vec![json!({"target_app_code": config.app_code, "grant_dimension": "gateway"})];
    for app in csv("BK_APIGW_GRANTED_APPS") {
        if app != config.app_code {
            grants.push(json!({"target_app_code": app, "grant_dimension": "gateway"}));
        }
    }
    if truthy("BK_PLUGIN_APIGW_GRANT_SOPS", false) {
        let sops = var("BK_SOPS_APP_CODE").unwrap_or_else(|| "bk_sops".into());
        grants.push(json!({"target_app_code": sops, "grant_dimension": "api"}));
    }
    let base_version = var("BK_APIGW_RELEASE_VERSION").unwrap_or_else(|| "1.0.0".into());
    let hash = {
        let document = json!({
            "gateway": config.gateway_name,
            "basic": basic,
            "stage": stage_body,
            "resources": resources,
            "grants": grants,
            "version": base_version,
        });
        hex(&Sha256::digest(document.to_string().as_bytes()))
    };
    let version = if base_version.contains('+') {
        base_version
    } else {
        format!("{base_version}+{}", timestamp())
    };
    let comment = format!("auto release by bk-plugin-framework-rust (stage={stage})");
    let calls = vec![
        post("sync/", basic),
        post("stages/sync/", stage_body),
        post(
            "resources/sync/",
            json!({"content": serde_json::to_string_pretty(&resources).unwrap_or_default(), "delete": true}),
        ),
    ]
    .into_iter()
    .chain(grants.into_iter().map(|g| post("permissions/grant/", g)))
    .chain([
        post(
            "resource_versions/",
            json!({"version": version, "title": format!("gateway release(stage={stage})"), "comment": comment}),
        ),
        post(
            "resource_versions/release/",
            json!({"version": version, "stage_names": [stage], "comment": comment}),
        ),
    ])
    .collect();
    Ok(Plan {
        gateway: config.gateway_name.clone(),
        stage,
        calls,
        hash,
        version,
    })
}

fn post(path: &str, body: Value) -> Call {
    Call {
        method: Method::POST,
        path: path.to_string(),
        body,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Nothing changed since the last successful sync; nothing was sent.
    Unchanged,
    /// Every call succeeded; the version released.
    Released(String),
}

/// Runs `plan` against the gateway manager unless the last successful sync had the same hash
/// (and not `force`). The outcome (hash, success) is recorded either way.
pub(crate) async fn run(
    config: &Config,
    store: &Store,
    plan: &Plan,
    force: bool,
) -> Result<Outcome, SyncError> {
    let previous = context::get(store, context::SYNC_STATE, &plan.gateway).await?;
    let previous: Value = previous
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    if !force
        && previous["success"] == json!(true)
        && previous["hash"].as_str() == Some(plan.hash.as_str())
    {
        return Ok(Outcome::Unchanged);
    }
    let manager = Manager::from_config(config)?;
    let mut failure = None;
    for call in &plan.calls {
        let started = std::time::Instant::now();
        match manager
            .call(call.method.clone(), &call.path, Some(&call.body))
            .await
        {
            Ok(_) => {
                tracing::info!(call = %format!("{} {}", call.method, call.path), ms = started.elapsed().as_millis() as u64, "gateway call done")
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    let state = json!({
        "hash": plan.hash,
        "success": failure.is_none(),
        "version": plan.version,
        "synced_at": chrono::Utc::now().to_rfc3339(),
    });
    context::put(
        store,
        context::SYNC_STATE,
        &plan.gateway,
        &state.to_string(),
    )
    .await?;
    match failure {
        Some(e) => Err(e.into()),
        None => Ok(Outcome::Released(plan.version.clone())),
    }
}
