//! Plugin-level meta (Python's `bk_plugin/meta.py`): the description and `allow_scope`.

use std::collections::BTreeMap;

use serde::Serialize;

/// One caller's scope restriction: its `Bkplugin-Scope-Type` must equal `scope_type` and its
/// `Bkplugin-Scope-Value` must be one of `values`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ScopeRule {
    /// The scope type, e.g. `project`.
    #[serde(rename = "type")]
    pub scope_type: String,
    /// The allowed scope values.
    #[serde(rename = "value")]
    pub values: Vec<String>,
}

/// What the plugin says about itself as a whole.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PluginMeta {
    /// Shown as `description` in `meta`.
    pub description: String,
    /// Caller app code -> the scope it is restricted to. Apps not listed are not restricted.
    pub allow_scope: BTreeMap<String, ScopeRule>,
}

impl PluginMeta {
    /// Meta with a description and no scope restrictions.
    pub fn new(description: impl Into<String>) -> Self {
        Self {
            description: description.into(),
            allow_scope: BTreeMap::new(),
        }
    }

    /// Restricts the caller `app_code` to `scope_type` and the given values.
    pub fn allow_scope<I, S>(mut self, app_code: &str, scope_type: &str, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allow_scope.insert(
            app_code.to_string(),
            ScopeRule {
                scope_type: scope_type.to_string(),
                values: values.into_iter().map(Into::into).collect(),
            },
        );
        self
    }

    /// Checks the shape of `allow_scope`; the message names the first problem.
    pub fn check(&self) -> Result<(), String> {
        for (app, rule) in &self.allow_scope {
            if app.trim().is_empty() {
                return Err("allow_scope has an empty app code".into());
            }
            if rule.scope_type.trim().is_empty() {
                return Err(format!("allow_scope[{app}] has an empty type"));
            }
            if rule.values.is_empty() {
                return Err(format!(
                    "allow_scope[{app}] allows no value: list at least one"
                ));
            }
        }
        Ok(())
    }
}
