//! Models: the typed inputs, context inputs and outputs of a plugin version, and how request JSON
//! is validated into them.

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use schemars::generate::SchemaSettings;
use serde_path_to_error::Segment;

use crate::coerce::{Problem, Problems, coerce};

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

/// What validation walks for one model: the schema schemars derives (draft-07, with `Option`s
/// still nullable and enums still listed) and the model's name, as pydantic names the class.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelShape {
    /// The author's type name, without its module path (`NestedInputs`).
    pub name: String,
    /// The model's own schema (`definitions` inside).
    pub schema: Value,
}

impl ModelShape {
    /// The shape of `T`.
    pub fn of<T: JsonSchema>() -> Self {
        let schema: Value = SchemaSettings::draft07()
            .into_generator()
            .into_root_schema_for::<T>()
            .into();
        let full = std::any::type_name::<T>();
        let plain = full.split('<').next().unwrap_or(full);
        let name = plain.rsplit("::").next().unwrap_or(plain).to_string();
        Self { name, schema }
    }
}

/// Why a JSON value does not fit a model: every problem (up to [`MAX_LISTED`](crate::coerce::MAX_LISTED)), each with its
/// location, in pydantic v1's text:
///
/// ```text
/// 2 validation errors for Inputs
/// hello
///   field required (type=value_error.missing)
/// tags -> 1
///   str type expected (type=type_error.str)
/// ```
///
/// When there are more than [`MAX_LISTED`](crate::coerce::MAX_LISTED), a last line says how many more there are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render(self))]
pub struct ValidationError {
    /// The model's name.
    pub model: String,
    /// What is wrong, field by field (the first [`MAX_LISTED`](crate::coerce::MAX_LISTED)).
    pub problems: Vec<Problem>,
    /// How many problems there are in all.
    pub total: usize,
}

fn render(error: &ValidationError) -> String {
    let plural = if error.total == 1 { "" } else { "s" };
    let mut text = format!(
        "{} validation error{plural} for {}",
        error.total, error.model
    );
    for problem in &error.problems {
        text.push('\n');
        text.push_str(&problem.to_string());
    }
    let unlisted = error.total.saturating_sub(error.problems.len());
    if unlisted > 0 {
        text.push_str(&format!(
            "\n... and {unlisted} more error{} not listed",
            if unlisted == 1 { "" } else { "s" }
        ));
    }
    text
}

/// Validates `value` into `T`: coerces it along `shape` the way pydantic v1 would, then
/// deserializes strictly. Unknown keys are ignored; missing optional fields take their defaults.
pub fn validate<T: DeserializeOwned>(
    value: &Value,
    shape: &ModelShape,
) -> Result<T, ValidationError> {
    let fail = |problems: Problems| ValidationError {
        model: shape.name.clone(),
        total: problems.total,
        problems: problems.listed,
    };
    if !value.is_object() {
        let mut problems = Problems::default();
        problems.push(Problem::new(
            vec!["__root__".into()],
            "value is not a valid dict",
            "type_error.dict",
        ));
        return Err(fail(problems));
    }
    let mut value = value.clone();
    let empty = Map::new();
    let definitions = shape
        .schema
        .get("definitions")
        .and_then(Value::as_object)
        .unwrap_or(&empty);
    let problems = coerce(&mut value, &shape.schema, definitions);
    if !problems.is_empty() {
        return Err(fail(problems));
    }
    serde_path_to_error::deserialize(value).map_err(|err| {
        let loc: Vec<String> = err
            .path()
            .iter()
            .filter_map(|segment| match segment {
                Segment::Seq { index } => Some(index.to_string()),
                Segment::Map { key } => Some(key.clone()),
                Segment::Enum { variant } => Some(variant.clone()),
                Segment::Unknown => None,
            })
            .collect();
        let loc = if loc.is_empty() {
            vec!["__root__".to_string()]
        } else {
            loc
        };
        let mut problems = Problems::default();
        problems.push(Problem::new(
            loc,
            err.into_inner().to_string(),
            "value_error",
        ));
        fail(problems)
    })
}

/// Used by the code `#[bk_plugin]` generates to check, on the author's type, that a type named
/// as `inputs`, `context_inputs` or `outputs` is a model.
pub const fn assert_model<T: Model>() {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::coerce::MAX_LISTED;
    use serde_json::json;

    #[test]
    fn empty_model_accepts_any_object_and_refuses_a_non_object() {
        let shape = ModelShape::of::<Empty>();
        assert!(validate::<Empty>(&json!({"anything": 1}), &shape).is_ok());
        let err = validate::<Empty>(&json!([1]), &shape)
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "1 validation error for Empty\n__root__\n  value is not a valid dict (type=type_error.dict)"
            )
        );
    }

    #[test]
    fn the_model_is_named_by_its_type_without_the_module_path() {
        assert_eq!(
            ModelShape::of::<PluginCallbackInfo>().name,
            "PluginCallbackInfo"
        );
        assert_eq!(ModelShape::of::<Vec<Empty>>().name, "Vec");
    }

    #[test]
    fn past_the_cap_a_last_line_counts_the_unlisted_problems() {
        let values: Vec<Value> = (0..MAX_LISTED + 3).map(|_| json!("x")).collect();
        let shape = ModelShape {
            name: "Many".into(),
            schema: json!({"type": "object", "properties": {"n": {"type": "array", "items": {"type": "integer"}}}}),
        };
        let err = validate::<Value>(&json!({"n": values}), &shape)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(
            lines[0],
            format!("{} validation errors for Many", MAX_LISTED + 3)
        );
        assert_eq!(lines.len(), 1 + 2 * MAX_LISTED + 1, "{err}");
        assert_eq!(lines[lines.len() - 1], "... and 3 more errors not listed");
    }
}
