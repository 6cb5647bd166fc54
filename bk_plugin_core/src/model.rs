//! Models: the typed inputs, context inputs and outputs of a plugin version, and how request JSON
//! is validated into them.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::coerce::{Problem, coerce};

/// A type usable as a plugin's Inputs, ContextInputs or Outputs. Implemented for every type that
/// `#[inputs]`, `#[context_inputs]` or `#[outputs]` produces (and any other serde + schemars type).
pub trait Model: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + JsonSchema + Send + Sync + 'static> Model for T {}

/// The model of a plugin that declares no inputs, context inputs or outputs: accepts any object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Empty {}

/// Where a finished invocation of an `enable_plugin_callback` version reports to: declare a
/// `plugin_callback_info: PluginCallbackInfo` field in its ContextInputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PluginCallbackInfo {
    /// The URL the runtime POSTs `data` to when the invocation finishes.
    pub url: String,
    /// The JSON object posted. Required, as in Python's `PluginCallbackModel` (`data: dict`):
    /// BK-SOPS always sends it (`{}` when it has nothing to add).
    pub data: Map<String, Value>,
}

/// Why a JSON value does not fit a model: every problem, each with its field path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(.problems))]
pub struct ValidationError {
    /// What is wrong, field by field.
    pub problems: Vec<Problem>,
}

fn render(problems: &[Problem]) -> String {
    let noun = if problems.len() == 1 {
        "error"
    } else {
        "errors"
    };
    let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
    format!("{} validation {noun}: {}", problems.len(), lines.join("; "))
}

/// Validates `value` into `T`: coerces it along `schema` the way pydantic v1 would, then
/// deserializes strictly. Unknown keys are ignored; missing optional fields take their defaults.
pub fn validate<T: DeserializeOwned>(value: &Value, schema: &Value) -> Result<T, ValidationError> {
    if !value.is_object() {
        return Err(ValidationError {
            problems: vec![Problem {
                path: String::new(),
                message: "value is not a valid dict".into(),
            }],
        });
    }
    let mut value = value.clone();
    let empty = Map::new();
    let definitions = schema
        .get("definitions")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let problems = coerce(&mut value, schema, definitions);
    if !problems.is_empty() {
        return Err(ValidationError { problems });
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        ValidationError {
            problems: vec![Problem {
                path: if path == "." { String::new() } else { path },
                message: err.into_inner().to_string(),
            }],
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::model_schema;
    use serde_json::json;

    #[test]
    fn empty_model_accepts_any_object_and_refuses_a_non_object() {
        let schema = model_schema::<Empty>();
        assert!(validate::<Empty>(&json!({"anything": 1}), &schema).is_ok());
        let err = validate::<Empty>(&json!([1]), &schema)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("1 validation error: value is not a valid dict")
        );
    }
}
