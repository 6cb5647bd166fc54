//! The test harness's stand-in for BlueKing APIs: a test says "when CMDB is asked this, answer
//! that", runs the plugin, then reads what the plugin sent. No network.
//!
//! Rules are tried in the order they were added; the first one that matches the call and has
//! answers left answers it. A call no rule matches fails with
//! [`BkApiErrorKind::NotConfigured`] naming the call, so a test never reaches a real system.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures_util::future::BoxFuture;
use serde::Serialize;
use serde_json::{Value, json};

use super::{
    BkApi, BkApiError, BkApiErrorKind, BkApiRequest, BkApiResponse, BkApiTransport, BkUser, Method,
    Target,
};

/// Answers BK API calls from rules and records every call. Cheap to clone (clones share rules
/// and records).
///
/// ```
/// use bk_plugin_core::prelude::*;
/// use bk_plugin_core::testing::BkApiMock;
///
/// let mock = BkApiMock::new();
/// mock.esb("cc", "search_business")
///     .with_body(json!({"condition": {"bk_biz_id": 3}}))
///     .answer_data(json!({"count": 1, "info": []}));
/// mock.gateway("bk-job", "/api/v3/get_job_instance_status/")
///     .once()
///     .answer_failure(1244, "job not found");
/// ```
#[derive(Clone, Default)]
pub struct BkApiMock {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    rules: Mutex<Vec<Rule>>,
    calls: Mutex<Vec<BkApiRequest>>,
    answered: AtomicU64,
}

struct Rule {
    target: Target,
    method: Option<Method>,
    body: Option<Value>,
    remaining: Option<usize>,
    reply: Reply,
}

#[derive(Clone)]
enum Reply {
    Response(u16, Value),
    Error(BkApiErrorKind, &'static str),
}

impl std::fmt::Debug for BkApiMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let rules = self.inner.rules.lock().map(|r| r.len()).unwrap_or(0);
        f.debug_struct("BkApiMock")
            .field("rules", &rules)
            .field("calls", &self.calls().len())
            .finish()
    }
}

impl BkApiMock {
    /// A mock with no rules: every call fails until the test adds one.
    pub fn new() -> Self {
        Self::default()
    }

    /// A rule for the ESB component `system.component` (any method unless [`When::method`]).
    pub fn esb(&self, system: &str, component: &str) -> When<'_> {
        self.when(Target::Esb {
            system: system.to_string(),
            component: component.trim_matches('/').to_string(),
        })
    }

    /// A rule for the resource `path` of the gateway `api_name` (any stage, any method unless
    /// [`When::method`]).
    pub fn gateway(&self, api_name: &str, path: &str) -> When<'_> {
        let path = if path.starts_with('/') {
            path.to_string()
        } else {
            format!("/{path}")
        };
        self.when(Target::Gateway {
            api_name: api_name.to_string(),
            stage: None,
            path,
        })
    }

    fn when(&self, target: Target) -> When<'_> {
        When {
            mock: self,
            target,
            method: None,
            body: None,
            remaining: None,
        }
    }

    /// Every call the plugin made, oldest first, as it built them (the app's credentials are
    /// the runtime's business and are not part of them).
    pub fn calls(&self) -> Vec<BkApiRequest> {
        self.inner
            .calls
            .lock()
            .map(|calls| calls.clone())
            .unwrap_or_default()
    }

    /// This mock as a transport, for a hand-built `ApiRequest` in a data-API handler's test.
    pub fn transport(&self) -> Arc<dyn BkApiTransport> {
        Arc::new(self.clone())
    }

    /// A client answered by this mock, acting as `username`, to test code that takes a
    /// [`BkApi`].
    pub fn client_as(&self, username: &str) -> BkApi {
        BkApi::new(self.transport(), BkUser::named(username))
    }

    fn answer(&self, request: &BkApiRequest) -> Result<BkApiResponse, BkApiError> {
        let n = self.inner.answered.fetch_add(1, Ordering::Relaxed) + 1;
        let mut rules = self
            .inner
            .rules
            .lock()
            .map_err(|_| BkApiError::new(request, BkApiErrorKind::NotConfigured, "poisoned"))?;
        let rule = rules
            .iter_mut()
            .find(|rule| rule.matches(request) && rule.remaining != Some(0));
        let Some(rule) = rule else {
            return Err(BkApiError::new(
                request,
                BkApiErrorKind::NotConfigured,
                format!(
                    "the test gave no answer for {} {} (add a BkApiMock rule)",
                    request.method,
                    request.describe()
                ),
            ));
        };
        if let Some(left) = rule.remaining.as_mut() {
            *left -= 1;
        }
        match rule.reply.clone() {
            Reply::Response(status, mut body) => {
                if let Value::Object(envelope) = &mut body {
                    envelope
                        .entry("request_id")
                        .or_insert_with(|| json!(format!("mock-{n}")));
                }
                Ok(BkApiResponse {
                    status,
                    request_id: None,
                    gateway_error: None,
                    body: body.to_string().into_bytes(),
                })
            }
            Reply::Error(kind, message) => Err(BkApiError::new(request, kind, message)),
        }
    }
}

impl Rule {
    fn matches(&self, request: &BkApiRequest) -> bool {
        let target = match (&self.target, &request.target) {
            (
                Target::Gateway { api_name, path, .. },
                Target::Gateway {
                    api_name: asked,
                    path: asked_path,
                    ..
                },
            ) => api_name == asked && path == asked_path,
            (esb @ Target::Esb { .. }, asked @ Target::Esb { .. }) => esb == asked,
            _ => false,
        };
        target
            && self.method.is_none_or(|m| m == request.method)
            && self
                .body
                .as_ref()
                .is_none_or(|body| request.body_contains(body))
    }
}

impl BkApiTransport for BkApiMock {
    fn send(&self, request: BkApiRequest) -> BoxFuture<'static, Result<BkApiResponse, BkApiError>> {
        let answer = self.answer(&request);
        if let Ok(mut calls) = self.inner.calls.lock() {
            calls.push(request);
        }
        Box::pin(async move { answer })
    }
}

/// A rule being written: narrow it, then give its answer.
#[must_use = "a rule is added by one of its answer methods"]
pub struct When<'a> {
    mock: &'a BkApiMock,
    target: Target,
    method: Option<Method>,
    body: Option<Value>,
    remaining: Option<usize>,
}

impl std::fmt::Debug for When<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("When")
            .field("target", &self.target)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl When<'_> {
    /// Only calls with this method.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Only calls whose body contains this (an object matches when each of its keys is in the
    /// body with a matching value; other keys of the body do not matter).
    pub fn with_body(mut self, partial: Value) -> Self {
        self.body = Some(partial);
        self
    }

    /// Answers once, then lets later rules answer.
    pub fn once(self) -> Self {
        self.times(1)
    }

    /// Answers `n` times, then lets later rules answer.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = Some(n);
        self
    }

    /// Answers `{"result": true, "code": 0, "message": "success", "data": data}`.
    pub fn answer_data(self, data: impl Serialize) {
        let data = serde_json::to_value(data).unwrap_or(Value::Null);
        let body = json!({"result": true, "code": 0, "message": "success", "data": data});
        self.add(Reply::Response(200, body));
    }

    /// Answers `{"result": false, "code": code, "message": message, "data": null}` with HTTP 200,
    /// as ESB and most gateway APIs report a refusal.
    pub fn answer_failure(self, code: impl Serialize, message: &str) {
        let code = serde_json::to_value(code).unwrap_or(Value::Null);
        let body = json!({"result": false, "code": code, "message": message, "data": null});
        self.add(Reply::Response(200, body));
    }

    /// Answers this HTTP status and JSON body as they are.
    pub fn answer(self, status: u16, body: Value) {
        self.add(Reply::Response(status, body));
    }

    /// Gives no answer: the call fails as timed out.
    pub fn time_out(self) {
        self.add(Reply::Error(
            BkApiErrorKind::Timeout,
            "no answer within the timeout (BkApiMock)",
        ));
    }

    fn add(self, reply: Reply) {
        let rule = Rule {
            target: self.target,
            method: self.method,
            body: self.body,
            remaining: self.remaining,
            reply,
        };
        if let Ok(mut rules) = self.mock.inner.rules.lock() {
            rules.push(rule);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Status {
        status: String,
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        futures_util::FutureExt::now_or_never(future)
            .unwrap_or_else(|| unreachable!("the mock answers at once"))
    }

    #[test]
    fn rules_answer_in_order_and_once_lets_the_next_rule_answer() {
        let mock = BkApiMock::new();
        let path = "/api/v3/get_job_instance_status/";
        mock.gateway("bk-job", path)
            .once()
            .answer_data(json!({"status": "running"}));
        mock.gateway("bk-job", path)
            .answer_data(json!({"status": "done"}));
        let api = mock.client_as("admin");
        let poll = || block_on(api.gateway("bk-job").get(path).send::<Status>());
        assert_eq!(poll().map(|s| s.status).ok().as_deref(), Some("running"));
        assert_eq!(poll().map(|s| s.status).ok().as_deref(), Some("done"));
        assert_eq!(poll().map(|s| s.status).ok().as_deref(), Some("done"));
        assert_eq!(mock.calls().len(), 3);
    }

    #[test]
    fn a_body_rule_only_answers_matching_bodies_and_unmatched_calls_fail_by_name() {
        let mock = BkApiMock::new();
        mock.esb("cc", "search_business")
            .method(Method::Post)
            .with_body(json!({"condition": {"bk_biz_id": 3}}))
            .answer_data(json!({"count": 1}));
        let api = mock.client_as("admin");
        let search = |id: i64| {
            block_on(
                api.esb("cc")
                    .post("search_business")
                    .json(&json!({"condition": {"bk_biz_id": id}}))
                    .send_answer::<Value>(),
            )
        };
        let found = search(3).ok();
        assert_eq!(found.as_ref().map(|a| &a.data), Some(&json!({"count": 1})));
        assert_eq!(found.and_then(|a| a.request_id).as_deref(), Some("mock-1"));
        let missing = search(4).err();
        assert_eq!(
            missing.as_ref().map(BkApiError::kind),
            Some(BkApiErrorKind::NotConfigured)
        );
        assert_eq!(
            missing.map(|e| e.to_string()).as_deref(),
            Some(
                "cc.search_business failed: the test gave no answer for POST cc.search_business (add a BkApiMock rule)"
            )
        );
        let sent = mock.calls();
        assert_eq!(sent.len(), 2);
        assert_eq!(sent[1].user.username(), Some("admin"));
    }

    #[test]
    fn failures_and_timeouts_become_typed_errors() {
        let mock = BkApiMock::new();
        mock.esb("cc", "a").answer_failure(1199, "no biz");
        mock.esb("cc", "b").time_out();
        let api = mock.client_as("admin");
        let failed = block_on(api.esb("cc").get("a").send::<Value>()).err();
        assert_eq!(failed.as_ref().and_then(|e| e.code()), Some("1199"));
        assert_eq!(failed.as_ref().map(|e| e.message()), Some("no biz"));
        let timed_out = block_on(api.esb("cc").get("b").send::<Value>()).err();
        assert_eq!(timed_out.map(|e| e.kind()), Some(BkApiErrorKind::Timeout));
    }
}
