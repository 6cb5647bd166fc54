//! JSON schemas in the shape the Python runtime publishes (pydantic v1, JSON Schema draft-07).
//!
//! schemars derives a draft-07 schema for each model; [`model_schema`] then rewrites it the way
//! pydantic v1 would have written the same model: every property gets a `title` (the field name
//! title-cased, unless one was given), `Option<T>` is a plain optional `T` (no `"null"` type,
//! no `null` default), integer `format`s are dropped, nested models live under `definitions`
//! and are referenced as `#/definitions/Name` (`allOf`-wrapped when the field carries its own
//! title, description or default). [`trim`] cuts a model schema down to the four keys that
//! `detail` publishes.

use schemars::JsonSchema;
use schemars::generate::SchemaSettings;
use serde_json::{Map, Value, json};

/// The full pydantic-v1-style schema of a model: `title`, `type`, `properties`, `required`,
/// `definitions` (and whatever else the model declares, such as `description`).
pub fn model_schema<T: JsonSchema>() -> Value {
    let settings = SchemaSettings::draft07();
    let root: Value = settings.into_generator().into_root_schema_for::<T>().into();
    pydanticize(root)
}

/// The schema `detail` publishes: exactly `type`, `properties`, `required`, `definitions`.
pub fn trim(schema: &Value) -> Value {
    let field = |key: &str, default: Value| schema.get(key).cloned().unwrap_or(default);
    json!({
        "type": field("type", json!("object")),
        "properties": field("properties", json!({})),
        "required": field("required", json!([])),
        "definitions": field("definitions", json!({})),
    })
}

/// The schema of a model that a plugin does not define.
pub fn empty_model_schema() -> Value {
    json!({"type": "object", "properties": {}, "required": [], "definitions": {}})
}

/// Title-cases a field name the way pydantic v1 does (`str.title()`, then `_` -> space):
/// `task_name` -> `Task Name`, `biz_id2x` -> `Biz Id2X`.
pub fn python_title(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut previous_cased = false;
    for ch in name.chars() {
        if ch.is_alphabetic() {
            if previous_cased {
                out.extend(ch.to_lowercase());
            } else {
                out.extend(ch.to_uppercase());
            }
            previous_cased = true;
        } else {
            out.push(if ch == '_' { ' ' } else { ch });
            previous_cased = false;
        }
    }
    out
}

fn pydanticize(root: Value) -> Value {
    let Value::Object(mut root) = root else {
        return empty_model_schema();
    };
    root.remove("$schema");
    let enums = enum_definitions(&root);
    if let Some(Value::Object(definitions)) = root.get_mut("definitions") {
        for (name, definition) in definitions.iter_mut() {
            normalize_definition(name, definition, &enums);
        }
    }
    normalize_model(&mut root, &enums);
    if !root.contains_key("properties") && root.get("type") == Some(&json!("object")) {
        root.insert("properties".into(), json!({}));
    }
    Value::Object(root)
}

/// The `$ref`s of definitions that are enums: pydantic gives fields of these types no title.
fn enum_definitions(root: &Map<String, Value>) -> Vec<String> {
    let Some(Value::Object(definitions)) = root.get("definitions") else {
        return Vec::new();
    };
    definitions
        .iter()
        .filter(|(_, d)| d.get("enum").is_some() || d.get("oneOf").is_some())
        .map(|(name, _)| format!("#/definitions/{name}"))
        .collect()
}

fn normalize_definition(name: &str, definition: &mut Value, enums: &[String]) {
    if *definition == Value::Bool(true) {
        *definition = json!({});
    }
    let Value::Object(map) = definition else {
        return;
    };
    normalize_model(map, enums);
    if map.get("enum").is_some() && !map.contains_key("description") {
        map.insert("description".into(), json!("An enumeration."));
    }
    let title = map
        .remove("title")
        .unwrap_or_else(|| Value::String(name.to_string()));
    *map = pydantic_order(std::mem::take(map), Some(title));
}

fn normalize_model(model: &mut Map<String, Value>, enums: &[String]) {
    let Some(Value::Object(properties)) = model.get_mut("properties") else {
        return;
    };
    for (name, property) in properties.iter_mut() {
        *property = normalize_property(name, std::mem::take(property), enums);
    }
}

fn refers_to_enum(map: &Map<String, Value>, enums: &[String]) -> bool {
    let is_enum_ref = |v: &Value| {
        v.get("$ref")
            .and_then(Value::as_str)
            .is_some_and(|r| enums.iter().any(|e| e == r))
    };
    is_enum_ref(&Value::Object(map.clone()))
        || map.get("items").is_some_and(is_enum_ref)
        || map
            .get("allOf")
            .and_then(Value::as_array)
            .is_some_and(|all| all.iter().any(is_enum_ref))
}

fn normalize_property(name: &str, property: Value, enums: &[String]) -> Value {
    let mut map = match normalize_subschema(property) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if let Some(reference) = map.remove("$ref") {
        if map.is_empty() {
            return json!({ "$ref": reference });
        }
        map.insert("allOf".into(), json!([{ "$ref": reference }]));
    }
    let title = match map.remove("title") {
        Some(title) => Some(title),
        None if refers_to_enum(&map, enums) => None,
        None => Some(Value::String(python_title(name))),
    };
    Value::Object(pydantic_order(map, title))
}

/// Rewrites one subschema (a property, an array's items, a map's values) in pydantic's style.
fn normalize_subschema(schema: Value) -> Value {
    let mut map = match schema {
        Value::Bool(true) => return json!({}),
        Value::Object(map) => map,
        other => return other,
    };
    unwrap_nullable(&mut map);
    if map.get("default") == Some(&Value::Null) {
        map.remove("default");
    }
    if matches!(map.get("type"), Some(Value::String(t)) if t == "integer" || t == "number") {
        map.remove("format");
    }
    for key in ["items", "additionalProperties"] {
        if let Some(sub) = map.remove(key) {
            let sub = normalize_subschema(sub);
            // `additionalProperties: true` (any value) is what an object allows anyway.
            if !(key == "additionalProperties" && sub == json!({})) {
                map.insert(key.into(), sub);
            }
        }
    }
    Value::Object(map)
}

/// `Option<T>`: `{"type": ["T", "null"]}` or `{"anyOf": [T, {"type": "null"}]}` become plain `T`.
fn unwrap_nullable(map: &mut Map<String, Value>) {
    if let Some(Value::Array(types)) = map.get("type") {
        let non_null: Vec<Value> = types
            .iter()
            .filter(|t| t.as_str() != Some("null"))
            .cloned()
            .collect();
        if non_null.len() == 1 {
            map.insert("type".into(), non_null[0].clone());
        } else if non_null.len() < types.len() {
            map.insert("type".into(), Value::Array(non_null));
        }
    }
    for key in ["anyOf", "oneOf"] {
        let Some(Value::Array(variants)) = map.get(key) else {
            continue;
        };
        let is_null = |v: &Value| v.get("type").and_then(Value::as_str) == Some("null");
        if variants.len() == 2 && variants.iter().any(is_null) {
            let inner = variants.iter().find(|v| !is_null(v)).cloned();
            map.remove(key);
            if let Some(Value::Object(inner)) = inner {
                for (k, v) in inner {
                    map.entry(k).or_insert(v);
                }
            }
        }
    }
}

/// The constraint keywords `#[field(...)]` publishes, in the order pydantic writes them.
const CONSTRAINT_ORDER: [&str; 11] = [
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minimum",
    "maximum",
    "multipleOf",
    "maxLength",
    "minLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
];

/// Orders keys as pydantic writes them: `title`, `description`, `default`, the constraints, then
/// the rest.
fn pydantic_order(mut map: Map<String, Value>, title: Option<Value>) -> Map<String, Value> {
    let mut out = Map::with_capacity(map.len() + 1);
    if let Some(title) = title {
        out.insert("title".into(), title);
    }
    for key in ["description", "default"]
        .into_iter()
        .chain(CONSTRAINT_ORDER)
    {
        if let Some(value) = map.remove(key) {
            out.insert(key.into(), value);
        }
    }
    out.extend(map);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn titles_follow_python_str_title() {
        assert_eq!(python_title("task_name"), "Task Name");
        assert_eq!(python_title("biz_id"), "Biz Id");
        assert_eq!(python_title("biz_id2x"), "Biz Id2X");
        assert_eq!(python_title("HTTPCode"), "Httpcode");
    }

    #[test]
    fn trim_keeps_exactly_four_keys_and_fills_the_missing_ones() {
        let trimmed = trim(&json!({"title": "X", "type": "object", "description": "d"}));
        assert_eq!(trimmed, empty_model_schema());
    }
}
