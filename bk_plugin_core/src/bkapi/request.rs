//! A call to a BlueKing API as the plugin asked for it: where it goes, the method, query and
//! body, and the user it is made as. The runtime adds the app's code and secret when it sends it.

use std::time::Duration;

use serde_json::Value;

/// Where a call goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A resource behind the API gateway:
    /// `{BK_API_URL_TMPL with api_name}/{stage}{path}`.
    Gateway {
        /// The gateway's name (`bk-cmdb`).
        api_name: String,
        /// The stage; `None` for the runtime's default.
        stage: Option<String>,
        /// The resource path, starting with `/`.
        path: String,
    },
    /// An ESB component: `{BK_COMPONENT_API_URL}/api/c/compapi/v2/{system}/{component}/`.
    Esb {
        /// The system (`cc`).
        system: String,
        /// The component (`search_business`).
        component: String,
    },
}

/// The HTTP method of a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET: the only method the runtime retries.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
    /// DELETE.
    Delete,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
            Self::Delete => "DELETE",
        }
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who a call is made as: a user name (`bk_username`) and perhaps a credential of theirs
/// (`bk_token`, `jwt` or `access_token`). Its `Debug` hides the credential.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct BkUser {
    username: Option<String>,
    credential: Option<(String, String)>,
}

impl std::fmt::Debug for BkUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BkUser")
            .field("username", &self.username)
            .field(
                "credential",
                &self.credential.as_ref().map(|(kind, _)| (kind, "<hidden>")),
            )
            .finish()
    }
}

impl BkUser {
    /// No user: the call is made as the app alone.
    pub fn app_only() -> Self {
        Self::default()
    }

    /// The user with this name (blank means none).
    pub fn named(username: impl Into<String>) -> Self {
        let username = username.into();
        Self {
            username: (!username.trim().is_empty()).then_some(username),
            credential: None,
        }
    }

    /// The same user with a credential: `kind` is the key it is sent under (`bk_token`, `jwt`,
    /// `access_token`).
    pub fn with_credential(mut self, kind: impl Into<String>, value: impl Into<String>) -> Self {
        self.credential = Some((kind.into(), value.into()));
        self
    }

    /// The user name, when there is one.
    pub fn username(&self) -> Option<&str> {
        self.username.as_deref()
    }

    /// The credential as (kind, value). Never log the value.
    pub fn credential(&self) -> Option<(&str, &str)> {
        self.credential
            .as_ref()
            .map(|(kind, value)| (kind.as_str(), value.as_str()))
    }
}

/// One call, as the plugin built it.
#[derive(Debug, Clone, PartialEq)]
pub struct BkApiRequest {
    /// Where it goes.
    pub target: Target,
    /// The method.
    pub method: Method,
    /// Query parameters, in the order added.
    pub query: Vec<(String, String)>,
    /// The JSON body, if any.
    pub body: Option<Value>,
    /// Who the call is made as.
    pub user: BkUser,
    /// The timeout the plugin asked for (else the runtime's).
    pub timeout: Option<Duration>,
}

impl BkApiRequest {
    /// The API's name in logs and metrics: `cc.search_business` for an ESB component, the
    /// gateway's name (`bk-cmdb`) for a gateway resource.
    pub fn api_name(&self) -> String {
        match &self.target {
            Target::Gateway { api_name, .. } => api_name.clone(),
            Target::Esb { system, component } => format!("{system}.{component}"),
        }
    }

    /// The path logged for the call: the gateway resource path, or the ESB component's path.
    pub fn path(&self) -> String {
        match &self.target {
            Target::Gateway { path, .. } => path.clone(),
            Target::Esb { system, component } => {
                format!("/api/c/compapi/v2/{system}/{component}/")
            }
        }
    }

    /// How errors name the call: `cc.search_business`, or `bk-cmdb POST /api/v3/biz/search/`.
    pub fn describe(&self) -> String {
        match &self.target {
            Target::Gateway { api_name, path, .. } => {
                format!("{api_name} {} {path}", self.method)
            }
            Target::Esb { system, component } => format!("{system}.{component}"),
        }
    }

    /// Whether the body contains `expected`: every key of an expected object is in the actual
    /// object with a value that contains the expected one (recursively); anything else must be
    /// equal. What the test harness's mock matches bodies with.
    pub fn body_contains(&self, expected: &Value) -> bool {
        contains(self.body.as_ref().unwrap_or(&Value::Null), expected)
    }
}

fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(actual), Value::Object(expected)) => expected
            .iter()
            .all(|(key, value)| actual.get(key).is_some_and(|a| contains(a, value))),
        _ => actual == expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(body: Value) -> BkApiRequest {
        BkApiRequest {
            target: Target::Esb {
                system: "cc".into(),
                component: "search_business".into(),
            },
            method: Method::Post,
            query: vec![],
            body: Some(body),
            user: BkUser::named("admin"),
            timeout: None,
        }
    }

    #[test]
    fn a_body_contains_a_partial_object_but_not_a_different_value() {
        let sent = request(json!({"condition": {"bk_biz_id": 3, "x": 1}, "fields": ["a"]}));
        assert!(sent.body_contains(&json!({})));
        assert!(sent.body_contains(&json!({"condition": {"bk_biz_id": 3}})));
        assert!(!sent.body_contains(&json!({"condition": {"bk_biz_id": 4}})));
        assert!(!sent.body_contains(&json!({"fields": ["a", "b"]})));
        assert!(!sent.body_contains(&json!({"missing": null})));
    }

    #[test]
    fn names_paths_and_descriptions_of_both_kinds_of_target() {
        let esb = request(json!({}));
        assert_eq!(esb.api_name(), "cc.search_business");
        assert_eq!(esb.path(), "/api/c/compapi/v2/cc/search_business/");
        assert_eq!(esb.describe(), "cc.search_business");
        let gateway = BkApiRequest {
            target: Target::Gateway {
                api_name: "bk-cmdb".into(),
                stage: None,
                path: "/api/v3/biz/search/".into(),
            },
            ..esb
        };
        assert_eq!(gateway.api_name(), "bk-cmdb");
        assert_eq!(gateway.describe(), "bk-cmdb POST /api/v3/biz/search/");
    }

    #[test]
    fn a_blank_user_name_is_no_user_and_debug_hides_the_credential() {
        assert_eq!(BkUser::named("  ").username(), None);
        let user = BkUser::named("alice").with_credential("bk_token", "s3cret-token");
        let shown = format!("{user:?}");
        assert!(!shown.contains("s3cret-token"), "{shown}");
        assert!(shown.contains("bk_token"), "{shown}");
    }
}
