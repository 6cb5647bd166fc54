//! Lenient, schema-driven coercion of request JSON, the way pydantic v1 accepts it, and the
//! problems it finds in pydantic v1's words.
//!
//! BK-SOPS renders template variables as strings, so a plugin receives `"7"` for an integer and
//! `"true"` for a boolean. Before strict serde deserialization runs, [`coerce`] walks the value
//! along the model's draft-07 schema (as schemars derives it, nullability and enums included) and
//! converts what pydantic v1 would have converted:
//!
//! | schema type | accepted and converted |
//! |---|---|
//! | `integer` | `"7"`, `" 7 "`, `7.0`, `true`/`false` |
//! | `number`  | `"1.5"`, `true`/`false` |
//! | `boolean` | `"true"`/`"false"`, `"1"`/`"0"`, `"yes"`/`"no"`, `"on"`/`"off"`, `"t"`/`"f"`, `"y"`/`"n"` (any case, no surrounding spaces), `0`/`1` |
//! | `string`  | numbers (`123` -> `"123"`), booleans (`true` -> `"True"`, as Python's `str(True)`) |
//! | model or map | a list of `[key, value]` pairs (Python's `dict(value)`), `[]` as `{}` |
//!
//! A fractional number for an integer field is refused (pydantic v1 would silently truncate
//! `7.5` to `7`). Nested models, lists and maps are coerced the same way. Every missing required
//! field, every `null` where the type is not optional, every value outside an enum, every value
//! that cannot be converted, every broken `#[field]` constraint ([`crate::constraint`]) and, for
//! a model with `#[serde(deny_unknown_fields)]`, every unknown key is reported, all at once, in field order, each with pydantic v1's
//! message and error type. At most [`MAX_LISTED`] problems are kept; the rest are counted.

use serde_json::{Map, Number, Value};

use crate::constraint;
pub use crate::problem::{MAX_LISTED, Problem, Problems};

/// Coerces `value` in place along `schema` (whose `$ref`s point into `definitions`) and returns
/// every problem found. No problem means strict deserialization can take it from here.
pub fn coerce(value: &mut Value, schema: &Value, definitions: &Map<String, Value>) -> Problems {
    let mut walker = Walker {
        definitions,
        problems: Problems::default(),
        path: Vec::new(),
    };
    walker.visit(value, schema, None, 0);
    walker.problems
}

const MAX_DEPTH: usize = 64;

struct Walker<'a> {
    definitions: &'a Map<String, Value>,
    problems: Problems,
    path: Vec<String>,
}

/// What a schema says about `null`.
fn allows_null(schema: &Value) -> bool {
    let is_null_type = |t: &Value| t.as_str() == Some("null");
    match schema {
        Value::Bool(b) => *b,
        Value::Object(map) => {
            if map.is_empty() {
                return true;
            }
            match map.get("type") {
                Some(Value::Array(types)) => return types.iter().any(is_null_type),
                Some(t) => return is_null_type(t),
                None => {}
            }
            if let Some(Value::Array(values)) = map.get("enum") {
                return values.iter().any(Value::is_null);
            }
            if let Some(constant) = map.get("const") {
                return constant.is_null();
            }
            for key in ["anyOf", "oneOf"] {
                if let Some(Value::Array(variants)) = map.get(key) {
                    return variants
                        .iter()
                        .any(|v| v.get("type").is_some_and(is_null_type));
                }
            }
            // `$ref`s are resolved before this is asked; anything else (`not`, a bare `allOf`)
            // is left to serde.
            !(map.contains_key("properties") || map.contains_key("items"))
        }
        _ => true,
    }
}

impl<'a> Walker<'a> {
    fn report(&mut self, message: &str, kind: &str) {
        self.problems
            .push(Problem::new(self.path.clone(), message, kind));
    }

    /// Follows `$ref` and single-element `allOf` to the schema that says what the value is;
    /// also returns the name of the last definition passed through (an enum's class name).
    fn resolve(
        &self,
        mut schema: &'a Value,
        mut name: Option<&'a str>,
    ) -> (&'a Value, Option<&'a str>) {
        for _ in 0..MAX_DEPTH {
            if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
                let target = reference.rsplit('/').next().unwrap_or_default();
                match self.definitions.get_key_value(target) {
                    Some((key, definition)) => {
                        schema = definition;
                        name = Some(key.as_str());
                    }
                    None => return (schema, name),
                }
            } else if let Some(Value::Array(all)) = schema.get("allOf") {
                match all.as_slice() {
                    [only] => schema = only,
                    _ => return (schema, name),
                }
            } else {
                return (schema, name);
            }
        }
        (schema, name)
    }

    fn visit(&mut self, value: &mut Value, schema: &'a Value, name: Option<&'a str>, depth: usize) {
        if depth > MAX_DEPTH {
            self.report("nested too deeply", "value_error");
            return;
        }
        let (schema, name) = self.resolve(schema, name);
        if value.is_null() {
            if !allows_null(schema) {
                self.report(
                    "none is not an allowed value",
                    "type_error.none.not_allowed",
                );
            }
            return;
        }
        // `Option<T>` and documented enums: pick the one variant that says what a value is.
        for key in ["anyOf", "oneOf"] {
            if let Some(Value::Array(variants)) = schema.get(key) {
                let constants: Option<Vec<&Value>> =
                    variants.iter().map(|v| v.get("const")).collect();
                if let Some(constants) = constants {
                    self.check_enum(value, &constants, name);
                    return;
                }
                let mut others = variants
                    .iter()
                    .filter(|v| v.get("type").and_then(Value::as_str) != Some("null"));
                if let (Some(only), None) = (others.next(), others.next()) {
                    self.visit(value, only, name, depth + 1);
                }
                return;
            }
        }
        if let Some(Value::Array(values)) = schema.get("enum") {
            let constants: Vec<&Value> = values.iter().collect();
            self.check_enum(value, &constants, name);
            return;
        }
        if let Some(constant) = schema.get("const") {
            self.check_enum(value, &[constant], name);
            return;
        }
        let kind = match schema.get("type") {
            Some(Value::String(t)) => Some(t.as_str()),
            Some(Value::Array(types)) => {
                let mut others = types
                    .iter()
                    .filter_map(Value::as_str)
                    .filter(|t| *t != "null");
                match (others.next(), others.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            }
            _ => None,
        };
        let before = self.problems.total;
        match kind {
            Some("integer") => self.coerce_integer(value, schema),
            Some("number") => self.coerce_number(value, schema),
            Some("boolean") => self.coerce_boolean(value),
            Some("string") => self.coerce_string(value, schema),
            Some("array") => self.visit_array(value, schema, depth),
            Some("object") => self.visit_object(value, schema, depth),
            _ => {}
        }
        // `not: {"const": v}` once the value is coerced and otherwise fits.
        if self.problems.total == before
            && let Some(problem) = constraint::not_const(&self.path, value, schema)
        {
            self.problems.push(problem);
        }
    }

    fn check_enum(&mut self, value: &Value, members: &[&Value], name: Option<&str>) {
        if members.contains(&value) {
            return;
        }
        let class = name.unwrap_or("Enum");
        let permitted: Vec<String> = members.iter().map(|m| python_repr(m)).collect();
        let reprs: Vec<String> = members
            .iter()
            .map(|m| {
                let member = m.as_str().map_or_else(|| m.to_string(), str::to_string);
                format!("<{class}.{member}: {}>", python_repr(m))
            })
            .collect();
        let mut problem = Problem::new(
            self.path.clone(),
            format!(
                "value is not a valid enumeration member; permitted: {}",
                permitted.join(", ")
            ),
            "type_error.enum",
        );
        problem.context = format!("; enum_values=[{}]", reprs.join(", "));
        self.problems.push(problem);
    }

    fn visit_array(&mut self, value: &mut Value, schema: &'a Value, depth: usize) {
        let Value::Array(items) = value else {
            self.report("value is not a valid list", "type_error.list");
            return;
        };
        // pydantic checks the list itself (its length, then uniqueness) before its items, and
        // stops there when the list does not fit.
        if let Some(problem) = constraint::list(&self.path, items, schema) {
            self.problems.push(problem);
            return;
        }
        let Some(item_schema) = schema.get("items") else {
            return;
        };
        for (index, item) in items.iter_mut().enumerate() {
            self.path.push(index.to_string());
            self.visit(item, item_schema, None, depth + 1);
            self.path.pop();
        }
    }

    fn visit_object(&mut self, value: &mut Value, schema: &'a Value, depth: usize) {
        if !as_dict(value) {
            self.report("value is not a valid dict", "type_error.dict");
            return;
        }
        let Value::Object(object) = value else {
            return;
        };
        let required: Vec<&str> = schema
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let properties = schema.get("properties").and_then(Value::as_object);
        // Declared fields in declaration order, as pydantic validates them.
        for (name, field_schema) in properties.into_iter().flatten() {
            self.path.push(name.clone());
            match object.get_mut(name) {
                Some(field) => self.visit(field, field_schema, None, depth + 1),
                None if required.contains(&name.as_str()) => {
                    self.report("field required", "value_error.missing");
                }
                None => {}
            }
            self.path.pop();
        }
        for name in required {
            if properties.is_none_or(|p| !p.contains_key(name)) && !object.contains_key(name) {
                self.path.push(name.to_string());
                self.report("field required", "value_error.missing");
                self.path.pop();
            }
        }
        // `patternProperties`: a key that is not a declared field and matches a pattern takes
        // that pattern's schema (every matching one), and is no "additional" property.
        let patterns = schema.get("patternProperties").and_then(Value::as_object);
        let mut patterned = std::collections::HashSet::new();
        for (name, field) in object.iter_mut() {
            if properties.is_some_and(|p| p.contains_key(name)) {
                continue;
            }
            for (pattern, pattern_schema) in patterns.into_iter().flatten() {
                if constraint::matches_pattern_property(pattern, name) {
                    patterned.insert(name.clone());
                    self.path.push(name.clone());
                    self.visit(field, pattern_schema, None, depth + 1);
                    self.path.pop();
                }
            }
        }
        if schema.get("additionalProperties") == Some(&Value::Bool(false)) {
            for name in object.keys() {
                if properties.is_none_or(|p| !p.contains_key(name)) && !patterned.contains(name) {
                    self.path.push(name.clone());
                    self.report("extra fields not permitted", "value_error.extra");
                    self.path.pop();
                }
            }
        }
        if let Some(additional) = schema.get("additionalProperties").filter(|s| s.is_object()) {
            for (name, field) in object.iter_mut() {
                if properties.is_some_and(|p| p.contains_key(name)) || patterned.contains(name) {
                    continue;
                }
                self.path.push(name.clone());
                self.visit(field, additional, None, depth + 1);
                self.path.pop();
            }
        }
    }

    fn coerce_integer(&mut self, value: &mut Value, schema: &Value) {
        let converted = match value {
            Value::Number(n) if n.is_i64() || n.is_u64() => Some(None),
            Value::Number(n) => n.as_f64().and_then(integral).map(Some),
            Value::String(s) => parse_integer(s.trim()).map(Some),
            Value::Bool(b) => Some(Some(Value::from(i64::from(*b)))),
            _ => None,
        };
        let refused = ("value is not a valid integer", "type_error.integer");
        self.convert_number(value, schema, converted, refused);
    }

    fn coerce_number(&mut self, value: &mut Value, schema: &Value) {
        let converted = match value {
            Value::Number(_) => Some(None),
            Value::String(s) => parse_integer(s.trim())
                .or_else(|| {
                    s.trim()
                        .parse::<f64>()
                        .ok()
                        .and_then(Number::from_f64)
                        .map(Value::Number)
                })
                .map(Some),
            Value::Bool(b) => Some(Some(Value::from(i64::from(*b)))),
            _ => None,
        };
        let refused = ("value is not a valid float", "type_error.float");
        self.convert_number(value, schema, converted, refused);
    }

    /// Puts the `converted` number in place of `value` (`Some(None)`: `value` is one already) and
    /// checks its bounds, or reports `refused` (message, error type) when it could not be converted.
    fn convert_number(
        &mut self,
        value: &mut Value,
        schema: &Value,
        converted: Option<Option<Value>>,
        refused: (&'static str, &'static str),
    ) {
        match converted {
            None => self.report(refused.0, refused.1),
            Some(converted) => {
                if let Some(v) = converted {
                    *value = v;
                }
                self.check_bounds(value, schema);
            }
        }
    }

    /// pydantic's `gt`, `ge`, `lt`, `le`, `multiple_of` (see [`crate::constraint`]).
    fn check_bounds(&mut self, value: &Value, schema: &Value) {
        if let Some(problem) = constraint::number(&self.path, value, schema) {
            self.problems.push(problem);
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
            None => self.report("value could not be parsed to a boolean", "type_error.bool"),
        }
    }

    fn coerce_string(&mut self, value: &mut Value, schema: &Value) {
        match value {
            Value::Number(n) => *value = Value::String(n.to_string()),
            Value::Bool(b) => *value = Value::String(if *b { "True" } else { "False" }.into()),
            Value::String(_) => {}
            _ => return self.report("str type expected", "type_error.str"),
        }
        if let Value::String(text) = value
            && let Some(problem) = constraint::text(&self.path, text, schema)
                .or_else(|| constraint::text_format(&self.path, text, schema))
        {
            self.problems.push(problem);
        }
    }
}

/// Python's `dict(value)` for JSON: an object stays, a list of `[key, value]` pairs (or `[]`)
/// becomes an object; anything else is not a dict.
fn as_dict(value: &mut Value) -> bool {
    match value {
        Value::Object(_) => true,
        Value::Array(items) => {
            let pairs: Option<Map<String, Value>> = items
                .iter()
                .map(|item| match item.as_array().map(Vec::as_slice) {
                    Some([Value::String(key), v]) => Some((key.clone(), v.clone())),
                    _ => None,
                })
                .collect();
            match pairs {
                Some(object) => {
                    *value = Value::Object(object);
                    true
                }
                None => false,
            }
        }
        _ => false,
    }
}

/// How Python's `repr` writes a JSON value: `'red'`, `1`, `True`, `None`.
fn python_repr(value: &Value) -> String {
    match value {
        Value::String(s) => {
            let quote = if s.contains('\'') && !s.contains('"') {
                '"'
            } else {
                '\''
            };
            let mut out = String::with_capacity(s.len() + 2);
            out.push(quote);
            for ch in s.chars() {
                match ch {
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if c == quote => {
                        out.push('\\');
                        out.push(c);
                    }
                    c => out.push(c),
                }
            }
            out.push(quote);
            out
        }
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Null => "None".into(),
        other => other.to_string(),
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

    /// Each constraint keyword in `constraint::ENFORCED_KEYWORDS` refuses a value that breaks it.
    #[test]
    fn every_constraint_keyword_refuses_a_value_that_breaks_it() {
        let cases = [
            (json!({"type": "integer", "exclusiveMinimum": 1}), json!(1)),
            (json!({"type": "integer", "exclusiveMaximum": 1}), json!(1)),
            (json!({"type": "integer", "minimum": 1}), json!(0)),
            (json!({"type": "integer", "maximum": 1}), json!(2)),
            (json!({"type": "number", "multipleOf": 0.5}), json!(0.7)),
            (json!({"type": "string", "minLength": 2}), json!("a")),
            (json!({"type": "string", "maxLength": 1}), json!("ab")),
            (json!({"type": "string", "pattern": "^a"}), json!("ba")),
            (json!({"type": "array", "minItems": 1}), json!([])),
            (json!({"type": "array", "maxItems": 1}), json!([1, 2])),
            (
                json!({"type": "array", "uniqueItems": true}),
                json!([1, 1.0]),
            ),
            (
                json!({"type": "object", "additionalProperties": false}),
                json!({"x": 1}),
            ),
            (json!({"enum": ["a"]}), json!("b")),
            (json!({"type": "object", "required": ["x"]}), json!({})),
        ];
        for (schema, mut value) in cases {
            let found = coerce(&mut value, &schema, &Map::new());
            assert_eq!(found.total, 1, "{schema} should refuse {value}");
        }
    }

    fn schema() -> (Value, Map<String, Value>) {
        let definitions = json!({
            "Options": {"type": "object",
                "properties": {"name": {"type": "string"}, "value": {"type": "integer"}},
                "required": ["name"]},
            "Color": {"type": "string", "enum": ["red", "green"]}
        });
        let root = json!({"type": "object", "properties": {
            "count": {"type": "integer"}, "ratio": {"type": "number"}, "flag": {"type": "boolean"},
            "label": {"type": "string"}, "tags": {"type": "array", "items": {"type": "integer"}},
            "options": {"$ref": "#/definitions/Options"},
            "more": {"anyOf": [{"$ref": "#/definitions/Options"}, {"type": "null"}]},
            "note": {"type": ["string", "null"]},
            "color": {"$ref": "#/definitions/Color"},
            "small": {"type": "integer", "format": "uint8", "minimum": 0, "maximum": 255}
        }, "required": ["count"]});
        (root, definitions.as_object().cloned().unwrap_or_default())
    }

    fn problems(value: Value) -> (Vec<String>, usize) {
        let (root, defs) = schema();
        let mut value = value;
        let found = coerce(&mut value, &root, &defs);
        (
            found.listed.iter().map(ToString::to_string).collect(),
            found.total,
        )
    }

    #[test]
    fn strings_become_the_numbers_and_booleans_the_schema_asks_for() {
        let (root, defs) = schema();
        let mut v = json!({"count": " 7 ", "ratio": "1.5", "flag": "TRUE", "label": 123,
            "tags": ["1", 2, "3"], "options": {"name": 5, "value": "9"},
            "more": {"name": "x", "value": 2.0}, "note": null, "small": "200"});
        assert!(coerce(&mut v, &root, &defs).is_empty());
        assert_eq!(
            v,
            json!({"count": 7, "ratio": 1.5, "flag": true, "label": "123",
            "tags": [1, 2, 3], "options": {"name": "5", "value": 9},
            "more": {"name": "x", "value": 2}, "note": null, "small": 200})
        );
    }

    #[test]
    fn every_problem_is_reported_in_field_order_with_its_location() {
        let (found, total) = problems(json!({"flag": "maybe", "tags": [1, "x"],
            "options": {"value": 1.5}, "more": null, "label": null, "small": 300}));
        assert_eq!(
            found,
            vec![
                "count\n  field required (type=value_error.missing)",
                "flag\n  value could not be parsed to a boolean (type=type_error.bool)",
                "label\n  none is not an allowed value (type=type_error.none.not_allowed)",
                "tags -> 1\n  value is not a valid integer (type=type_error.integer)",
                "options -> name\n  field required (type=value_error.missing)",
                "options -> value\n  value is not a valid integer (type=type_error.integer)",
                "small\n  ensure this value is less than or equal to 255 (type=value_error.number.not_le; limit_value=255)",
            ]
        );
        assert_eq!(total, 7);
    }

    #[test]
    fn enum_members_are_listed_the_way_python_prints_them() {
        let (found, _) = problems(json!({"count": 1, "color": "it's"}));
        assert_eq!(
            found,
            vec![
                "color\n  value is not a valid enumeration member; permitted: 'red', 'green' (type=type_error.enum; enum_values=[<Color.red: 'red'>, <Color.green: 'green'>])"
            ]
        );
    }

    #[test]
    fn lists_of_pairs_are_dicts_as_in_python() {
        let (found, _) = problems(json!({"count": 1, "options": [["name", "n"]]}));
        assert!(found.is_empty(), "{found:?}");
        let (found, _) = problems(json!({"count": 1, "options": "nope"}));
        assert_eq!(
            found,
            vec!["options\n  value is not a valid dict (type=type_error.dict)"]
        );
    }

    #[test]
    fn only_the_first_problems_are_kept_and_all_are_counted() {
        let (root, defs) = schema();
        let mut v = json!({"count": 1, "tags": vec!["x"; MAX_LISTED + 25]});
        let found = coerce(&mut v, &root, &defs);
        assert_eq!(found.listed.len(), MAX_LISTED);
        assert_eq!(found.total, MAX_LISTED + 25);
    }

    #[test]
    fn python_reprs_quote_like_python() {
        assert_eq!(python_repr(&json!("a")), "'a'");
        assert_eq!(python_repr(&json!("it's")), "\"it's\"");
        assert_eq!(python_repr(&json!("a'\"b")), "'a\\'\"b'");
        assert_eq!(python_repr(&json!(true)), "True");
        assert_eq!(python_repr(&json!(3)), "3");
    }
}
