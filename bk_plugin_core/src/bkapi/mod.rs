//! Calling other BlueKing systems (CMDB, JOB, ITSM...) from a plugin: through the API gateway
//! or as ESB components, as the executor of an invocation or as the user of a data-API request.
//!
//! Core does no IO, so this module describes a call ([`BkApiRequest`]), reads what came back
//! ([`BkApiResponse`], the `{result, code, message, data}` envelope) and says how a call failed
//! ([`BkApiError`]); the runtime implements [`BkApiTransport`] over HTTP (adding the app's code
//! and secret, retries, timeouts, logs and metrics), and the test harness answers from a
//! [`crate::testing::BkApiMock`].
//!
//! ```
//! use bk_plugin_core::prelude::*;
//!
//! #[derive(serde::Deserialize)]
//! struct Businesses {
//!     count: u64,
//! }
//!
//! async fn count_businesses(api: &BkApi, biz_id: i64) -> Result<u64, PluginError> {
//!     let found: Businesses = api
//!         .esb("cc")
//!         .post("search_business")
//!         .json(&json!({"condition": {"bk_biz_id": biz_id}}))
//!         .send()
//!         .await?;
//!     Ok(found.count)
//! }
//! ```

mod error;
pub(crate) mod mock;
mod request;
mod response;

pub use error::{BkApiError, BkApiErrorKind};
pub use request::{BkApiRequest, BkUser, Method, Target};
pub use response::{Answer, BkApiResponse};

use std::sync::Arc;
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Sends calls to BlueKing APIs: the runtime's HTTP client, or the test harness's mock.
pub trait BkApiTransport: Send + Sync {
    /// Sends one call and returns the HTTP answer, whatever its status; an error only when no
    /// answer came (cannot connect, timed out, not configured).
    fn send(&self, request: BkApiRequest) -> BoxFuture<'static, Result<BkApiResponse, BkApiError>>;
}

/// A transport that refuses every call: where no BK API client is configured (a hand-built
/// data-API request in a test, say).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoBkApi;

impl BkApiTransport for NoBkApi {
    fn send(&self, request: BkApiRequest) -> BoxFuture<'static, Result<BkApiResponse, BkApiError>> {
        let error = BkApiError::new(
            &request,
            BkApiErrorKind::NotConfigured,
            "no BK API client here (in a test, give the request a testing::BkApiMock)",
        );
        Box::pin(async move { Err(error) })
    }
}

/// A client for BlueKing APIs, acting as one user. Cheap to clone.
///
/// From `execute`, `ctx.bkapi()` acts as the invocation's executor (the `executor` of the
/// context); from a data-API handler, `request.bkapi()` acts as the verified calling user.
#[derive(Clone)]
pub struct BkApi {
    transport: Arc<dyn BkApiTransport>,
    user: BkUser,
}

impl std::fmt::Debug for BkApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BkApi").field("user", &self.user).finish()
    }
}

impl BkApi {
    /// A client sending through `transport` as `user`.
    pub fn new(transport: Arc<dyn BkApiTransport>, user: BkUser) -> Self {
        Self { transport, user }
    }

    /// Who the calls are made as.
    pub fn user(&self) -> &BkUser {
        &self.user
    }

    /// The same client acting as another user (by name only: a user credential this client
    /// carried is not passed on to them).
    pub fn as_user(&self, username: impl Into<String>) -> Self {
        Self {
            transport: self.transport.clone(),
            user: BkUser::named(username),
        }
    }

    /// An API behind the API gateway, by its gateway name (`bk-cmdb`, `bk-job`...): the base
    /// URL is `BK_API_URL_TMPL` with `{api_name}` filled in, then the stage.
    pub fn gateway(&self, api_name: &str) -> Gateway<'_> {
        Gateway {
            api: self,
            name: api_name.to_string(),
            stage: None,
        }
    }

    /// An ESB system (`cc`, `job`, `itsm`...): its components are at
    /// `{BK_COMPONENT_API_URL}/api/c/compapi/v2/<system>/<component>/`.
    pub fn esb(&self, system: &str) -> Esb<'_> {
        Esb {
            api: self,
            system: system.to_string(),
        }
    }

    fn call(&self, target: Target, method: Method) -> Call {
        Call {
            transport: self.transport.clone(),
            request: BkApiRequest {
                target,
                method,
                query: Vec::new(),
                body: None,
                user: self.user.clone(),
                timeout: None,
            },
            body_error: None,
        }
    }
}

/// One API gateway; its methods start a call to a resource path.
#[derive(Debug)]
pub struct Gateway<'a> {
    api: &'a BkApi,
    name: String,
    stage: Option<String>,
}

impl Gateway<'_> {
    /// Calls this stage instead of the runtime's (`BK_PLUGIN_BKAPI_STAGE`, else `prod` in prod
    /// and `stag` elsewhere).
    pub fn stage(mut self, stage: &str) -> Self {
        self.stage = Some(stage.to_string());
        self
    }

    /// A call with `method` to `path` (the resource path after the stage: `/api/v3/biz/search/`).
    pub fn call(&self, method: Method, path: &str) -> Call {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        self.api.call(
            Target::Gateway {
                api_name: self.name.clone(),
                stage: self.stage.clone(),
                path,
            },
            method,
        )
    }

    /// A GET of `path`.
    pub fn get(&self, path: &str) -> Call {
        self.call(Method::Get, path)
    }

    /// A POST to `path`.
    pub fn post(&self, path: &str) -> Call {
        self.call(Method::Post, path)
    }
}

/// One ESB system; its methods start a call to a component.
#[derive(Debug)]
pub struct Esb<'a> {
    api: &'a BkApi,
    system: String,
}

impl Esb<'_> {
    /// A GET of `component`: the app's code and secret and the user go into the query.
    pub fn get(&self, component: &str) -> Call {
        self.call(Method::Get, component)
    }

    /// A POST to `component`: the app's code and secret and the user go into the JSON body.
    pub fn post(&self, component: &str) -> Call {
        self.call(Method::Post, component)
    }

    fn call(&self, method: Method, component: &str) -> Call {
        self.api.call(
            Target::Esb {
                system: self.system.clone(),
                component: component.trim_matches('/').to_string(),
            },
            method,
        )
    }
}

/// One call being built: add query parameters, a JSON body, a timeout, then `send`.
#[must_use = "a call does nothing until it is sent"]
pub struct Call {
    transport: Arc<dyn BkApiTransport>,
    request: BkApiRequest,
    body_error: Option<String>,
}

impl std::fmt::Debug for Call {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Call")
            .field("request", &self.request)
            .finish_non_exhaustive()
    }
}

impl Call {
    /// Adds a query parameter.
    pub fn query(mut self, name: &str, value: impl ToString) -> Self {
        self.request
            .query
            .push((name.to_string(), value.to_string()));
        self
    }

    /// The JSON body (POST, PUT, PATCH). For an ESB call it must be an object: the app's
    /// credentials and the user are added to it.
    pub fn json(mut self, body: &impl Serialize) -> Self {
        match serde_json::to_value(body) {
            Ok(value) => self.request.body = Some(value),
            Err(e) => self.body_error = Some(format!("the body cannot be JSON: {e}")),
        }
        self
    }

    /// The longest this call may take, each attempt (default: `BK_PLUGIN_BKAPI_TIMEOUT_SECONDS`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.request.timeout = Some(timeout);
        self
    }

    /// The call as it will be sent (before the runtime adds the app's credentials).
    pub fn request(&self) -> &BkApiRequest {
        &self.request
    }

    /// Sends the call and returns the envelope's `data` as `T` (`Value` takes any JSON).
    pub async fn send<T: DeserializeOwned>(self) -> Result<T, BkApiError> {
        self.send_answer().await.map(|answer| answer.data)
    }

    /// Sends the call and returns the whole answer: `data` as `T`, and the envelope's code,
    /// message, the HTTP status and the request id.
    pub async fn send_answer<T: DeserializeOwned>(self) -> Result<Answer<T>, BkApiError> {
        if let Some(reason) = self.body_error {
            return Err(BkApiError::new(
                &self.request,
                BkApiErrorKind::Request,
                reason,
            ));
        }
        if matches!(self.request.target, Target::Esb { .. })
            && !matches!(self.request.body, None | Some(Value::Object(_)))
        {
            return Err(BkApiError::new(
                &self.request,
                BkApiErrorKind::Request,
                "an ESB call's body must be a JSON object",
            ));
        }
        let described = self.request.describe();
        let response = self.transport.send(self.request).await?;
        response.decode(described)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::Mutex;

    /// Answers every call with one response and keeps the requests.
    struct Canned {
        answer: BkApiResponse,
        seen: Mutex<Vec<BkApiRequest>>,
    }

    impl BkApiTransport for Canned {
        fn send(
            &self,
            request: BkApiRequest,
        ) -> BoxFuture<'static, Result<BkApiResponse, BkApiError>> {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(request);
            }
            let answer = self.answer.clone();
            Box::pin(async move { Ok(answer) })
        }
    }

    fn client(status: u16, body: Value) -> (BkApi, Arc<Canned>) {
        let canned = Arc::new(Canned {
            answer: BkApiResponse {
                status,
                request_id: Some("header-id".into()),
                gateway_error: None,
                body: body.to_string().into_bytes(),
            },
            seen: Mutex::default(),
        });
        (BkApi::new(canned.clone(), BkUser::named("admin")), canned)
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures_util::FutureExt::now_or_never(future)
            .unwrap_or_else(|| unreachable!("the canned transport answers at once"))
    }

    #[test]
    fn a_call_describes_target_method_body_and_user() {
        let (api, canned) = client(200, json!({"result": true, "data": 1}));
        let sent: Result<i64, _> = block_on(
            api.gateway("bk-cmdb")
                .stage("prod")
                .post("api/v3/biz/search/")
                .query("a", 1)
                .json(&json!({"condition": {}}))
                .send(),
        );
        assert_eq!(sent.ok(), Some(1));
        let seen = canned.seen.lock().map(|s| s.clone()).unwrap_or_default();
        assert_eq!(seen.len(), 1);
        let request = &seen[0];
        assert_eq!(
            request.target,
            Target::Gateway {
                api_name: "bk-cmdb".into(),
                stage: Some("prod".into()),
                path: "/api/v3/biz/search/".into()
            }
        );
        assert_eq!(request.method, Method::Post);
        assert_eq!(request.query, vec![("a".to_string(), "1".to_string())]);
        assert_eq!(request.body, Some(json!({"condition": {}})));
        assert_eq!(request.user.username(), Some("admin"));
    }

    #[test]
    fn an_esb_body_that_is_not_an_object_is_refused_before_sending() {
        let (api, canned) = client(200, json!({"result": true}));
        let sent: Result<Value, _> = block_on(api.esb("cc").post("x").json(&json!([1])).send());
        let error = sent.err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some("cc.x failed: an ESB call's body must be a JSON object")
        );
        assert!(canned.seen.lock().map(|s| s.is_empty()).unwrap_or(false));
    }

    #[test]
    fn as_user_drops_the_credential_of_the_first_user() {
        let api = BkApi::new(
            Arc::new(NoBkApi),
            BkUser::named("alice").with_credential("bk_token", "t0ken"),
        );
        let bob = api.as_user("bob");
        assert_eq!(bob.user().username(), Some("bob"));
        assert_eq!(bob.user().credential(), None);
        assert_eq!(api.user().credential(), Some(("bk_token", "t0ken")));
    }
}
