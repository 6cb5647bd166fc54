//! How a BK API call goes over the wire: the URL, where the app's code and secret and the user
//! go, the headers. API gateway: `{BK_API_URL_TMPL with api_name}/{stage}{path}` with
//! `X-Bkapi-Authorization` (and `X-Bk-Tenant-Id` when the app has a tenant). ESB:
//! `{BK_COMPONENT_API_URL}/api/c/compapi/v2/<system>/<component>/` with `bk_app_code`,
//! `bk_app_secret` and the user (`bk_username`, `bk_token`) in the query of a GET and in the JSON
//! body otherwise, as the Python runtime's component client sends them (the caller's own keys win).

use std::time::Duration;

use bk_plugin_core::bkapi::{BkApiError, BkApiErrorKind, BkApiRequest, BkUser, Method, Target};
use serde_json::{Map, Value, json};

use crate::config::Config;

/// What the runtime needs to send BK API calls, from the configuration. Its `Debug` hides the
/// secret.
#[derive(Clone)]
pub(crate) struct Settings {
    /// `BKPAAS_APP_ID`.
    pub app_code: String,
    /// `BKPAAS_APP_SECRET`.
    pub app_secret: Option<String>,
    /// `BK_COMPONENT_API_URL` (ESB).
    pub component_api_url: Option<String>,
    /// `BK_API_URL_TMPL` (API gateway).
    pub api_url_tmpl: Option<String>,
    /// The gateway stage called when the plugin names none.
    pub stage: String,
    /// `BKPAAS_APP_TENANT_ID`.
    pub tenant_id: Option<String>,
    /// The timeout of an attempt when the plugin sets none.
    pub timeout: Duration,
    /// How many times a GET is tried again after a connection error or a 5xx.
    pub retries: u32,
    /// The wait before the first retry; doubled before each next one.
    pub backoff: Duration,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("app_code", &self.app_code)
            .field("app_secret", &self.app_secret.as_ref().map(|_| "<hidden>"))
            .field("component_api_url", &self.component_api_url)
            .field("api_url_tmpl", &self.api_url_tmpl)
            .field("stage", &self.stage)
            .field("tenant_id", &self.tenant_id)
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("backoff", &self.backoff)
            .finish()
    }
}

impl Settings {
    /// The BK API settings of this configuration.
    pub(crate) fn of(config: &Config) -> Self {
        Self {
            app_code: config.app_code.clone(),
            app_secret: config.app_secret.clone(),
            component_api_url: config.component_api_url.clone(),
            api_url_tmpl: config.api_url_tmpl.clone(),
            stage: config.bkapi_stage.clone(),
            tenant_id: config.tenant_id.clone(),
            timeout: config.bkapi_timeout,
            retries: config.bkapi_retries,
            backoff: config.bkapi_retry_backoff,
        }
    }
}

/// One call ready to send. Holds the secret (in a header, the query or the body): no `Debug`.
pub(crate) struct Prepared {
    /// The HTTP method.
    pub method: reqwest::Method,
    /// The URL, without the query.
    pub url: String,
    /// The query parameters.
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The JSON body.
    pub body: Option<Value>,
}

/// The `X-Bkapi-Authorization` value: the app's code and secret, then the user's credential
/// (`bk_token`, `jwt` or `access_token`) and name (`bk_username`) when there are.
pub(crate) fn authorization(app_code: &str, app_secret: &str, user: &BkUser) -> String {
    let mut auth = json!({"bk_app_code": app_code, "bk_app_secret": app_secret});
    if let Some((kind, value)) = user.credential() {
        auth[kind] = json!(value);
    }
    if let Some(username) = user.username() {
        auth["bk_username"] = json!(username);
    }
    auth.to_string()
}

/// The HTTP request for `request`, or why it cannot be sent.
pub(crate) fn prepare(settings: &Settings, request: &BkApiRequest) -> Result<Prepared, BkApiError> {
    let not_configured = |what: &str| {
        BkApiError::new(
            request,
            BkApiErrorKind::NotConfigured,
            format!("{what} is not set"),
        )
    };
    let secret = settings
        .app_secret
        .as_deref()
        .ok_or_else(|| not_configured("BKPAAS_APP_SECRET (the app secret calls are made with)"))?;
    let method = http_method(request.method);
    match &request.target {
        Target::Gateway {
            api_name,
            stage,
            path,
        } => {
            let template = settings
                .api_url_tmpl
                .as_deref()
                .ok_or_else(|| not_configured("BK_API_URL_TMPL (where API gateways are)"))?;
            let base = template.replace("{api_name}", api_name);
            let stage = stage.as_deref().unwrap_or(&settings.stage);
            let mut headers = vec![(
                "X-Bkapi-Authorization",
                authorization(&settings.app_code, secret, &request.user),
            )];
            if let Some(tenant) = &settings.tenant_id {
                headers.push(("X-Bk-Tenant-Id", tenant.clone()));
            }
            Ok(Prepared {
                method,
                url: format!("{}/{stage}{path}", base.trim_end_matches('/')),
                query: request.query.clone(),
                headers,
                body: request.body.clone(),
            })
        }
        Target::Esb { .. } => {
            let host = settings
                .component_api_url
                .as_deref()
                .ok_or_else(|| not_configured("BK_COMPONENT_API_URL (where ESB components are)"))?;
            let url = format!("{}{}", host.trim_end_matches('/'), request.path());
            let common = common_args(&settings.app_code, secret, &request.user);
            if request.method == Method::Get {
                let mut query: Vec<(String, String)> = common
                    .into_iter()
                    .filter(|(key, _)| !request.query.iter().any(|(k, _)| k == key))
                    .collect();
                query.extend(request.query.iter().cloned());
                return Ok(Prepared {
                    method,
                    url,
                    query,
                    headers: Vec::new(),
                    body: None,
                });
            }
            let mut body: Map<String, Value> = common
                .into_iter()
                .map(|(key, value)| (key, Value::String(value)))
                .collect();
            if let Some(Value::Object(own)) = &request.body {
                body.extend(own.clone());
            }
            Ok(Prepared {
                method,
                url,
                query: request.query.clone(),
                headers: Vec::new(),
                body: Some(Value::Object(body)),
            })
        }
    }
}

/// The ESB common arguments: the app's code and secret, then the user (`bk_username`, and a
/// `bk_token` or `access_token` credential; ESB knows no gateway `jwt`).
fn common_args(app_code: &str, secret: &str, user: &BkUser) -> Vec<(String, String)> {
    let mut args = vec![
        ("bk_app_code".to_string(), app_code.to_string()),
        ("bk_app_secret".to_string(), secret.to_string()),
    ];
    if let Some(username) = user.username() {
        args.push(("bk_username".into(), username.into()));
    }
    if let Some((kind, value)) = user.credential()
        && matches!(kind, "bk_token" | "access_token")
    {
        args.push((kind.into(), value.into()));
    }
    args
}

fn http_method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        Settings {
            app_code: "bkp".into(),
            app_secret: Some("s3cret".into()),
            component_api_url: Some("http://paas.example/".into()),
            api_url_tmpl: Some("http://bkapi.example/api/{api_name}/".into()),
            stage: "prod".into(),
            tenant_id: Some("tenant-a".into()),
            timeout: Duration::from_secs(30),
            retries: 2,
            backoff: Duration::from_millis(200),
        }
    }

    fn request(target: Target, method: Method, body: Option<Value>) -> BkApiRequest {
        BkApiRequest {
            target,
            method,
            query: vec![("page".into(), "2".into())],
            body,
            user: BkUser::named("admin").with_credential("bk_token", "tok"),
            timeout: None,
        }
    }

    fn esb(component: &str) -> Target {
        Target::Esb {
            system: "cc".into(),
            component: component.into(),
        }
    }

    #[test]
    fn an_esb_post_carries_the_app_and_the_user_in_the_body_and_the_callers_keys_win() {
        let body = json!({"condition": {"bk_biz_id": 3}, "bk_username": "someone-else"});
        let sent = request(esb("search_business"), Method::Post, Some(body));
        let prepared = prepare(&settings(), &sent).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(prepared.method, reqwest::Method::POST);
        assert_eq!(
            prepared.url,
            "http://paas.example/api/c/compapi/v2/cc/search_business/"
        );
        assert_eq!(
            prepared.body,
            Some(json!({"bk_app_code": "bkp", "bk_app_secret": "s3cret",
                "bk_username": "someone-else", "bk_token": "tok", "condition": {"bk_biz_id": 3}}))
        );
        assert!(prepared.headers.is_empty());
        assert_eq!(prepared.query, vec![("page".to_string(), "2".to_string())]);
    }

    #[test]
    fn an_esb_get_carries_the_app_and_the_user_in_the_query() {
        let sent = request(esb("get_biz"), Method::Get, Some(json!({"ignored": 1})));
        let prepared = prepare(&settings(), &sent).unwrap_or_else(|e| panic!("{e}"));
        let keys: Vec<&str> = prepared.query.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "bk_app_code",
                "bk_app_secret",
                "bk_username",
                "bk_token",
                "page"
            ]
        );
        assert_eq!(prepared.body, None);
    }

    #[test]
    fn a_gateway_call_goes_to_the_stage_with_the_authorization_and_tenant_headers() {
        let target = Target::Gateway {
            api_name: "bk-cmdb".into(),
            stage: None,
            path: "/api/v3/biz/search/".into(),
        };
        let body = json!({"condition": {"bk_biz_id": 3}});
        let sent = request(target, Method::Post, Some(body.clone()));
        let prepared = prepare(&settings(), &sent).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            prepared.url,
            "http://bkapi.example/api/bk-cmdb/prod/api/v3/biz/search/"
        );
        assert_eq!(prepared.body, Some(body));
        assert_eq!(
            prepared.headers,
            vec![
                (
                    "X-Bkapi-Authorization",
                    r#"{"bk_app_code":"bkp","bk_app_secret":"s3cret","bk_token":"tok","bk_username":"admin"}"#.to_string()
                ),
                ("X-Bk-Tenant-Id", "tenant-a".to_string()),
            ]
        );
    }

    #[test]
    fn a_missing_host_or_secret_names_the_variable() {
        let mut bare = settings();
        bare.component_api_url = None;
        let sent = request(esb("search_business"), Method::Post, None);
        let error = prepare(&bare, &sent).err().map(|e| e.to_string());
        assert_eq!(
            error.as_deref(),
            Some(
                "cc.search_business failed: BK_COMPONENT_API_URL (where ESB components are) is not set"
            )
        );
        bare.app_secret = None;
        let error = prepare(&bare, &sent).err().map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("BKPAAS_APP_SECRET")));
        let shown = format!("{:?}", settings());
        assert!(!shown.contains("s3cret"), "{shown}");
    }
}
