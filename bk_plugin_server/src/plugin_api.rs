//! Author-defined data APIs for form widgets (Python's `PluginAPIView`): handlers under
//! `/bk_plugin/plugin_api/`, `/bk_plugin/openapi/` and `/bk_plugin/private/`, reachable over
//! HTTP and, in-process, through `plugin_api_dispatch`.
//!
//! ```
//! use bk_plugin_server::{ApiRequest, HandlerError, PluginApis};
//! use serde_json::{json, Value};
//!
//! async fn task_list(request: ApiRequest) -> Result<Value, HandlerError> {
//!     let biz_id: i64 = request.param_as("biz_id")?;
//!     Ok(json!([{"text": "biz", "value": biz_id}]))
//! }
//!
//! let apis = PluginApis::new().get("task_list/{biz_id:\\d+}", task_list);
//! ```

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use actix_router::{Path, ResourceDef};
use bk_plugin_core::BkApi;
use bk_plugin_core::bkapi::{BkApiTransport, BkUser, NoBkApi};
use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Map, Value};

/// The three handler groups and their URL prefixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiGroup {
    /// `/bk_plugin/plugin_api/`: data sources for forms; reachable through dispatch.
    PluginApi,
    /// `/bk_plugin/openapi/`.
    OpenApi,
    /// `/bk_plugin/private/`.
    Private,
}

impl ApiGroup {
    /// The URL prefix of the group.
    pub fn prefix(self) -> &'static str {
        match self {
            Self::PluginApi => "/bk_plugin/plugin_api/",
            Self::OpenApi => "/bk_plugin/openapi/",
            Self::Private => "/bk_plugin/private/",
        }
    }
}

/// The HTTP methods handlers answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiMethod {
    /// GET.
    Get,
    /// POST.
    Post,
}

impl ApiMethod {
    /// Parses `GET` / `POST` (any case).
    pub fn parse(method: &str) -> Option<Self> {
        match method.to_ascii_uppercase().as_str() {
            "GET" => Some(Self::Get),
            "POST" => Some(Self::Post),
            _ => None,
        }
    }

    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
        }
    }
}

/// A request as a handler sees it, whether it came over HTTP or through dispatch. Its `Debug`
/// hides the user's credential and credential-bearing headers (JWT, authorization, cookies,
/// tokens).
#[derive(Clone, Default)]
pub struct ApiRequest {
    /// GET or POST.
    pub method: Option<ApiMethod>,
    /// Path parameters captured by the route pattern.
    pub params: HashMap<String, String>,
    /// Query parameters (for a dispatched GET, the dispatch `data` too).
    pub query: Map<String, Value>,
    /// The JSON body of a POST (`null` for GET).
    pub data: Value,
    /// The calling user, when known.
    pub username: Option<String>,
    /// The caller's app code, when a verified gateway JWT says it.
    pub app_code: Option<String>,
    /// `Bk-Plugin-*` headers and the gateway JWT, forwarded as they came.
    pub headers: Vec<(String, String)>,
    /// The user's credential for calling other BlueKing APIs as them: the `bk_token` cookie in
    /// dev, the gateway JWT in production.
    pub user_credential: Option<(String, String)>,
    /// What [`ApiRequest::bkapi`] sends through: the runtime's BK API client. `None` in a
    /// request built by hand, where calls fail; a test gives it a
    /// `testing::BkApiMock::transport()`.
    pub bkapi: Option<Arc<dyn BkApiTransport>>,
}

impl std::fmt::Debug for ApiRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let secret = |name: &str| {
            let name = name.to_ascii_lowercase();
            ["jwt", "authorization", "cookie", "token", "secret"]
                .iter()
                .any(|word| name.contains(word))
        };
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(name, value)| {
                let shown = if secret(name) {
                    "<hidden>"
                } else {
                    value.as_str()
                };
                (name.as_str(), shown)
            })
            .collect();
        f.debug_struct("ApiRequest")
            .field("method", &self.method)
            .field("params", &self.params)
            .field("query", &self.query)
            .field("data", &self.data)
            .field("username", &self.username)
            .field("app_code", &self.app_code)
            .field("headers", &headers)
            .field(
                "user_credential",
                &self
                    .user_credential
                    .as_ref()
                    .map(|(kind, _)| (kind, "<hidden>")),
            )
            .field("bkapi", &self.bkapi.is_some())
            .finish()
    }
}

/// A handler's failure: answered with the status it names (400..=599; anything else is 500)
/// and the envelope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct HandlerError {
    /// HTTP status (400..=599).
    pub status: u16,
    /// What went wrong.
    pub message: String,
}

impl HandlerError {
    /// The HTTP status to answer with: `status` when it is an error status, else 500.
    pub fn http_status(&self) -> u16 {
        if (400..=599).contains(&self.status) {
            self.status
        } else {
            500
        }
    }

    /// A 400: the request was wrong.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: 400,
            message: message.into(),
        }
    }

    /// A 500: the handler failed.
    pub fn internal(message: impl Into<String>) -> Self {
        Self {
            status: 500,
            message: message.into(),
        }
    }
}

impl ApiRequest {
    /// A path parameter.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// A path parameter parsed as `T`; a 400 naming it when absent or unparsable.
    pub fn param_as<T: std::str::FromStr>(&self, name: &str) -> Result<T, HandlerError> {
        self.param(name)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| HandlerError::bad_request(format!("path parameter `{name}` is invalid")))
    }

    /// The calling user as BK API calls carry them: the verified user name and their
    /// credential (the `bk_token` cookie in dev, the gateway JWT in production).
    pub fn bk_user(&self) -> BkUser {
        let user = self
            .username
            .as_deref()
            .map_or_else(BkUser::app_only, BkUser::named);
        match &self.user_credential {
            Some((kind, value)) => user.with_credential(kind, value),
            None => user,
        }
    }

    /// A client for BlueKing APIs acting as the calling user ([`ApiRequest::bk_user`]), sent
    /// by the runtime with the app's code and secret.
    pub fn bkapi(&self) -> BkApi {
        let transport = self
            .bkapi
            .clone()
            .unwrap_or_else(|| Arc::new(NoBkApi) as Arc<dyn BkApiTransport>);
        BkApi::new(transport, self.bk_user())
    }

    /// The `X-Bkapi-Authorization` header value for calling another BlueKing API as this user
    /// with an HTTP client of one's own (`bkapi()` does it for you):
    /// `{"bk_app_code", "bk_app_secret", "bk_token" (dev) or "jwt" (gateway), "bk_username"}`.
    /// Never log it.
    pub fn bkapi_authorization(&self, app_code: &str, app_secret: &str) -> String {
        crate::bkapi_client::wire::authorization(app_code, app_secret, &self.bk_user())
    }
}

type Handler =
    Arc<dyn Fn(ApiRequest) -> BoxFuture<'static, Result<Value, HandlerError>> + Send + Sync>;

struct Route {
    group: ApiGroup,
    method: ApiMethod,
    pattern: ResourceDef,
    handler: Handler,
}

/// The author's handlers, by group, method and path pattern (`task_list/{biz_id}`;
/// `{name:regex}` restricts a segment). A trailing slash never matters.
#[derive(Default, Clone)]
pub struct PluginApis {
    routes: Vec<Arc<Route>>,
}

impl std::fmt::Debug for PluginApis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginApis")
            .field("routes", &self.routes.len())
            .finish()
    }
}

/// A data-API handler: `Fn(ApiRequest) -> impl Future<Output = Result<V, HandlerError>>`, as an
/// async closure or function is (implemented for every such function; not to be implemented by
/// hand).
pub trait ApiHandler<Fut>: Fn(ApiRequest) -> Fut + Send + Sync + 'static {}

impl<F, Fut> ApiHandler<Fut> for F where F: Fn(ApiRequest) -> Fut + Send + Sync + 'static {}

/// What a data-API handler returns: a future of the value to answer (serialized as JSON) or a
/// [`HandlerError`].
pub trait ApiFuture<V>: Future<Output = Result<V, HandlerError>> + Send + 'static {}

impl<T, V> ApiFuture<V> for T where T: Future<Output = Result<V, HandlerError>> + Send + 'static {}

fn normalize(path: &str) -> String {
    let trimmed = path.trim_matches('/');
    format!("/{trimmed}")
}

impl PluginApis {
    /// No handlers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a handler for `method` on `pattern` in `group`.
    pub fn route<F: ApiHandler<Fut>, Fut: ApiFuture<V>, V: Serialize>(
        mut self,
        group: ApiGroup,
        method: ApiMethod,
        pattern: &str,
        handler: F,
    ) -> Self {
        let handler: Handler = Arc::new(move |request| {
            let fut = handler(request);
            Box::pin(async move {
                let value = fut.await?;
                serde_json::to_value(value).map_err(|e| HandlerError::internal(e.to_string()))
            })
        });
        self.routes.push(Arc::new(Route {
            group,
            method,
            pattern: ResourceDef::new(normalize(pattern)),
            handler,
        }));
        self
    }

    /// The GET handler `h` for the pattern `p` under `/bk_plugin/plugin_api/`.
    pub fn get<F: ApiHandler<Fut>, Fut: ApiFuture<V>, V: Serialize>(self, p: &str, h: F) -> Self {
        self.route(ApiGroup::PluginApi, ApiMethod::Get, p, h)
    }

    /// The POST handler `h` for the pattern `p` under `/bk_plugin/plugin_api/`.
    pub fn post<F: ApiHandler<Fut>, Fut: ApiFuture<V>, V: Serialize>(self, p: &str, h: F) -> Self {
        self.route(ApiGroup::PluginApi, ApiMethod::Post, p, h)
    }

    /// Every registered handler as (group, method, pattern relative to the group prefix, with
    /// a leading slash and any `{name:regex}` as written), in registration order.
    pub fn routes(&self) -> impl Iterator<Item = (ApiGroup, ApiMethod, &str)> {
        self.routes
            .iter()
            .map(|r| (r.group, r.method, r.pattern.pattern().unwrap_or("/")))
    }

    /// Finds the handler for `method` on `path` (relative to the group prefix) and fills the
    /// request's path parameters. `Err(true)` when the path exists for another method.
    pub(crate) fn find(
        &self,
        group: ApiGroup,
        method: ApiMethod,
        path: &str,
        request: &mut ApiRequest,
    ) -> Result<impl Future<Output = Result<Value, HandlerError>> + use<>, bool> {
        let path_text = normalize(path);
        let mut other_method = false;
        for route in self.routes.iter().filter(|r| r.group == group) {
            let mut matched = Path::new(path_text.as_str());
            if !route.pattern.capture_match_info(&mut matched) {
                continue;
            }
            if route.method != method {
                other_method = true;
                continue;
            }
            request.method = Some(method);
            request.params = matched
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let handler = route.handler.clone();
            let request = std::mem::take(request);
            return Ok(async move { handler(request).await });
        }
        Err(other_method)
    }
}
