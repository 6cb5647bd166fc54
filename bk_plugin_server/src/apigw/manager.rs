//! The API gateway manager (`bk-apigateway`) called with the plugin app's own credentials:
//! `BK_APIGW_MANAGER_URL_TMPL` (else `BK_APIGW_MANAGER_URL_TEMPL`, else `BK_API_URL_TMPL`) with
//! `{api_name}` = `bk-apigateway`, stage `prod`, then `api/v1/apis/<gateway>/...`.

use crate::config::var;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;

use crate::config::Config;

/// A failed gateway manager call.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ManagerError {
    /// Something needed to call the gateway is not configured.
    #[error("{0}")]
    Config(String),
    /// The call did not get an answer.
    #[error("{call}: {error}")]
    Transport {
        /// `METHOD path`.
        call: String,
        /// What went wrong.
        error: String,
    },
    /// The gateway answered with an error; `message` is its own.
    #[error("{call}: the gateway answered HTTP {status}, code {code}: {message}")]
    Gateway {
        /// `METHOD path`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The envelope's `code` (or `-` when there was none).
        code: String,
        /// The envelope's `message`, or the start of the body.
        message: String,
    },
}

/// Where the gateway manager is and who calls it.
#[derive(Debug, Clone)]
pub(crate) struct Manager {
    http: reqwest::Client,
    base: String,
    authorization: String,
    tenant_id: Option<String>,
}

/// The manager URL template and the variable it came from.
pub(crate) fn url_template() -> Option<(String, &'static str)> {
    [
        "BK_APIGW_MANAGER_URL_TMPL",
        "BK_APIGW_MANAGER_URL_TEMPL",
        "BK_API_URL_TMPL",
    ]
    .into_iter()
    .find_map(|name| var(name).map(|v| (v, name)))
}

impl Manager {
    /// A client for `config.gateway_name`; needs a URL template, `BKPAAS_APP_ID` and
    /// `BKPAAS_APP_SECRET`.
    pub(crate) fn from_config(config: &Config) -> Result<Self, ManagerError> {
        let (template, _) = url_template().ok_or_else(|| {
            ManagerError::Config(
                "the gateway manager address is unknown: set BK_API_URL_TMPL (PaaS injects it) or BK_APIGW_MANAGER_URL_TMPL".into(),
            )
        })?;
        let secret = config.app_secret.as_deref().ok_or_else(|| {
            ManagerError::Config(
                "BKPAAS_APP_SECRET is not set: the gateway manager is called with the app's credentials".into(),
            )
        })?;
        if var("BKPAAS_APP_ID").is_none() {
            return Err(ManagerError::Config(
                "BKPAAS_APP_ID is not set: the gateway manager is called with the app's credentials".into(),
            ));
        }
        let base = format!(
            "{}/prod/api/v1/apis/{}/",
            template
                .replace("{api_name}", "bk-apigateway")
                .trim_end_matches('/'),
            config.gateway_name
        );
        // Never follow a redirect: every request carries the app secret
        // (`X-Bkapi-Authorization`), which reqwest would send on to the redirect's target.
        let http = crate::http_client::builder(config.apigw_tls_verify, Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ManagerError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            http,
            base,
            authorization: crate::bkapi_client::wire::authorization(
                &config.app_code,
                secret,
                &bk_plugin_core::bkapi::BkUser::app_only(),
            ),
            tenant_id: config.tenant_id.clone(),
        })
    }

    /// The URL of `path` (relative to `api/v1/apis/<gateway>/`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Calls `path` and returns the envelope's `data`; an HTTP error status, a non-zero `code`
    /// or `result: false` is an error carrying the gateway's message.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ManagerError> {
        let call = format!("{method} {path}");
        let mut request = self
            .http
            .request(method, self.url(path))
            .header("X-Bkapi-Authorization", &self.authorization);
        if let Some(tenant) = &self.tenant_id {
            request = request.header("X-Bk-Tenant-Id", tenant);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let response =
            crate::http_client::send(request)
                .await
                .map_err(|e| ManagerError::Transport {
                    call: call.clone(),
                    error: error_chain(&e),
                })?;
        let status = response.status();
        let text = response.text().await.map_err(|e| ManagerError::Transport {
            call: call.clone(),
            error: error_chain(&e),
        })?;
        let envelope: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let code = envelope.get("code").cloned().unwrap_or(Value::Null);
        let code_ok = match &code {
            Value::Null => true,
            Value::Number(n) => n.as_i64() == Some(0),
            Value::String(s) => s == "0",
            _ => false,
        };
        let result_ok = envelope.get("result") != Some(&Value::Bool(false));
        if status.is_success() && envelope.is_object() && code_ok && result_ok {
            return Ok(envelope.get("data").cloned().unwrap_or(Value::Null));
        }
        let message = envelope
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| text.chars().take(500).collect());
        Err(ManagerError::Gateway {
            call,
            status: status.as_u16(),
            code: match code {
                Value::Null => "-".into(),
                Value::String(s) => s,
                other => other.to_string(),
            },
            message,
        })
    }
}

/// An error with its causes (reqwest hides the TLS reason in a source).
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
