//! Lenient, schema-driven coercion of request JSON, the way pydantic v1 accepts it.
//!
//! BK-SOPS renders template variables as strings, so a plugin receives `"7"` for an integer and
//! `"true"` for a boolean. Before strict serde deserialization runs, [`coerce`] walks the value
//! along the model's schema and converts what pydantic v1 would have converted:
//!
//! | schema type | accepted and converted |
//! |---|---|
//! | `integer` | `"7"`, `" 7 "`, `7.0`, `true`/`false` |
//! | `number`  | `"1.5"`, `true`/`false` |
//! | `boolean` | `"true"`/`"false"`, `"1"`/`"0"`, `"yes"`/`"no"`, `"on"`/`"off"`, `"t"`/`"f"`, `"y"`/`"n"` (any case, no surrounding spaces), `0`/`1` |
//! | `string`  | numbers (`123` -> `"123"`), booleans (`true` -> `"True"`, as Python's `str(True)`) |
//!
//! A fractional number for an integer field is refused (pydantic v1 would silently truncate
//! `7.5` to `7`). Nested models, lists and maps are coerced the same way. Every missing required
//! field and every value that cannot be converted is reported with its path, all at once.

use serde_json::{Map, Number, Value};

/// One reason a value does not fit its model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the offending field (`options.value`, `tags.2`); empty for the root.
    pub path: String,
    /// What is wrong, in pydantic's words where it has some.
    pub message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Coerces `value` in place along `schema` (whose `$ref`s point into `definitions`) and returns
/// every problem found. An empty list means strict deserialization can take it from here.
pub fn coerce(value: &mut Value, schema: &Value, definitions: &Map<String, Value>) -> Vec<Problem> {
    let mut walker = Walker {
        definitions,
        problems: Vec::new(),
        path: Vec::new(),
    };
    walker.visit(value, schema, 0);
    walker.problems
}

const MAX_DEPTH: usize = 64;

struct Walker<'a> {
    definitions: &'a Map<String, Value>,
    problems: Vec<Problem>,
    path: Vec<String>,
}

impl<'a> Walker<'a> {
    fn report(&mut self, message: impl Into<String>) {
        self.problems.push(Problem {
            path: self.path.join("."),
            message: message.into(),
        });
    }

    /// Follows `$ref` and single-element `allOf` to the schema that says what the value is.
    fn resolve(&self, mut schema: &'a Value) -> &'a Value {
        for _ in 0..MAX_DEPTH {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let name = reference.rsplit('/').next().unwrap_or_default();
                match self.definitions.get(name) {
                    Some(target) => schema = target,
                    None => return schema,
                }
            } else if let Some(Value::Array(all)) = schema.get("allOf") {
                match all.as_slice() {
                    [only] => schema = only,
                    _ => return schema,
                }
            } else {
                return schema;
            }
        }
        schema
    }

    fn visit(&mut self, value: &mut Value, schema: &'a Value, depth: usize) {
        if depth > MAX_DEPTH {
            self.report("nested too deeply");
            return;
        }
        let schema = self.resolve(schema);
        if value.is_null() {
            return; // Option fields accept null; serde reports the others.
        }
        match schema.get("type").and_then(Value::as_str) {
            Some("integer") => self.coerce_integer(value),
            Some("number") => self.coerce_number(value),
            Some("boolean") => self.coerce_boolean(value),
            Some("string") => to_string(value),
            Some("array") => self.visit_array(value, schema, depth),
            Some("object") => self.visit_object(value, schema, depth),
            _ => {}
        }
    }

    fn visit_array(&mut self, value: &mut Value, schema: &'a Value, depth: usize) {
        let Value::Array(items) = value else {
            self.report("value is not a valid list");
            return;
        };
        let Some(item_schema) = schema.get("items") else {
            return;
        };
        for (index, item) in items.iter_mut().enumerate() {
            self.path.push(index.to_string());
            self.visit(item, item_schema, depth + 1);
            self.path.pop();
        }
    }

    fn visit_object(&mut self, value: &mut Value, schema: &'a Value, depth: usize) {
        let Value::Object(object) = value else {
            self.report("value is not a valid dict");
            return;
        };
        if let Some(Value::Array(required)) = schema.get("required") {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    self.path.push(name.to_string());
                    self.report("field required");
                    self.path.pop();
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties").filter(|s| s.is_object());
        for (name, field) in object.iter_mut() {
            let field_schema = properties.and_then(|p| p.get(name)).or(additional);
            if let Some(field_schema) = field_schema {
                self.path.push(name.clone());
                self.visit(field, field_schema, depth + 1);
                self.path.pop();
            }
        }
    }

    fn coerce_integer(&mut self, value: &mut Value) {
        let converted = match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => return,
            Value::Number(n) => n.as_f64().and_then(integral),
            Value::String(s) => parse_integer(s.trim()),
            Value::Bool(b) => Some(Value::from(i64::from(*b))),
            _ => None,
        };
        match converted {
            Some(v) => *value = v,
            None => self.report("value is not a valid integer"),
        }
    }

    fn coerce_number(&mut self, value: &mut Value) {
        let converted = match value {
            Value::Number(_) => return,
            Value::String(s) => parse_integer(s.trim()).or_else(|| {
                s.trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(Number::from_f64)
                    .map(Value::Number)
            }),
            Value::Bool(b) => Some(Value::from(i64::from(*b))),
            _ => None,
        };
        match converted {
            Some(v) => *value = v,
            None => self.report("value is not a valid float"),
        }
    }

    fn coerce_boolean(&mut self, value: &mut Value) {
        let converted = match value {
            Value::Bool(_) => return,
            // Like pydantic v1: lower-cased, not trimmed (" true " is refused).
            Value::String(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" | "t" | "y" => Some(true),
                "false" | "0" | "no" | "off" | "f" | "n" => Some(false),
                _ => None,
            },
            Value::Number(n) => match n.as_f64() {
                Some(1.0) => Some(true),
                Some(0.0) => Some(false),
                _ => None,
            },
            _ => None,
        };
        match converted {
            Some(b) => *value = Value::Bool(b),
            None => self.report("value could not be parsed to a boolean"),
        }
    }
}

fn to_string(value: &mut Value) {
    match value {
        Value::Number(n) => *value = Value::String(n.to_string()),
        Value::Bool(b) => *value = Value::String(if *b { "True" } else { "False" }.into()),
        _ => {}
    }
}

fn parse_integer(text: &str) -> Option<Value> {
    let text = text.strip_prefix('+').unwrap_or(text);
    if let Ok(i) = text.parse::<i64>() {
        return Some(Value::from(i));
    }
    text.parse::<u64>().ok().map(Value::from)
}

fn integral(x: f64) -> Option<Value> {
    if x.fract() == 0.0 && x.abs() < 9.007_199_254_740_992e15 {
        Some(Value::from(x as i64))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> (Value, Map<String, Value>) {
        let definitions = json!({
            "Options": {"title": "Options", "type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
                "required": ["name"]}
        });
        let root = json!({"type": "object", "properties": {
            "count": {"type": "integer"}, "ratio": {"type": "number"}, "flag": {"type": "boolean"},
            "label": {"type": "string"}, "tags": {"type": "array", "items": {"type": "integer"}},
            "options": {"$ref": "#/definitions/Options"},
            "more": {"title": "More", "allOf": [{"$ref": "#/definitions/Options"}]}
        }, "required": ["count"]});
        (root, definitions.as_object().cloned().unwrap_or_default())
    }

    #[test]
    fn strings_become_the_numbers_and_booleans_the_schema_asks_for() {
        let (root, defs) = schema();
        let mut v = json!({"count": " 7 ", "ratio": "1.5", "flag": "TRUE", "label": 123,
            "tags": ["1", 2, "3"], "options": {"name": 5, "value": "9"},
            "more": {"name": "x", "value": 2.0}});
        assert!(coerce(&mut v, &root, &defs).is_empty());
        assert_eq!(
            v,
            json!({"count": 7, "ratio": 1.5, "flag": true, "label": "123",
            "tags": [1, 2, 3], "options": {"name": "5", "value": 9},
            "more": {"name": "x", "value": 2}})
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let (root, defs) = schema();
        let mut v = json!({"flag": "maybe", "tags": [1, "x"], "options": {"value": 1.5}});
        let problems: Vec<String> = coerce(&mut v, &root, &defs)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            problems,
            vec![
                "count: field required",
                "flag: value could not be parsed to a boolean",
                "tags.1: value is not a valid integer",
                "options.name: field required",
                "options.value: value is not a valid integer",
            ]
        );
    }

    #[test]
    fn booleans_become_python_style_strings() {
        let mut v = json!(true);
        to_string(&mut v);
        assert_eq!(v, json!("True"));
    }
}
