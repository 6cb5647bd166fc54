//! What validation enforces beyond a value's type: pydantic v1's `Field` constraints, checked
//! against the keywords pydantic publishes for them, in pydantic's words; and the rule that a
//! model's schema publishes nothing validation does not check.
//!
//! | `#[field(...)]` | keyword | pydantic error type |
//! |---|---|---|
//! | `gt`, `ge`, `lt`, `le` | `exclusiveMinimum`, `minimum`, `exclusiveMaximum`, `maximum` | `value_error.number.not_gt` ... `not_le` |
//! | `multiple_of` | `multipleOf` | `value_error.number.not_multiple` |
//! | `min_length`, `max_length` | `minLength`, `maxLength` | `value_error.any_str.min_length` / `max_length` |
//! | `regex` | `pattern` | `value_error.str.regex` |
//! | `min_items`, `max_items` | `minItems`, `maxItems` | `value_error.list.min_items` / `max_items` |
//! | `unique_items` | `uniqueItems` | `value_error.list.unique_items` |
//!
//! As in pydantic, only the first broken constraint of a value is reported.

use serde_json::Value;

use crate::problem::Problem;

/// A problem at `path` with pydantic's context (`; limit_value=1`).
fn problem(path: &[String], message: String, kind: String, context: String) -> Problem {
    let mut problem = Problem::new(path.to_vec(), message, kind);
    problem.context = context;
    problem
}

/// `exclusiveMinimum` / `minimum`, then `exclusiveMaximum` / `maximum`, then `multipleOf`
/// (schemars also sets `minimum` and `maximum` for unsigned and small integer types), in
/// pydantic's `conint` / `confloat` words.
pub(crate) fn number(path: &[String], value: &Value, schema: &Value) -> Option<Problem> {
    let x = value.as_f64()?;
    let bound = |key: &str| {
        schema
            .get(key)
            .filter(|b| b.is_number())
            .and_then(|b| Some((b, b.as_f64()?)))
    };
    let broken = if let Some((limit, _)) = bound("exclusiveMinimum").filter(|(_, m)| x <= *m) {
        Some(("greater than", "not_gt", limit))
    } else if let Some((limit, _)) = bound("minimum").filter(|(_, m)| x < *m) {
        Some(("greater than or equal to", "not_ge", limit))
    } else if let Some((limit, _)) = bound("exclusiveMaximum").filter(|(_, m)| x >= *m) {
        Some(("less than", "not_lt", limit))
    } else if let Some((limit, _)) = bound("maximum").filter(|(_, m)| x > *m) {
        Some(("less than or equal to", "not_le", limit))
    } else {
        None
    };
    if let Some((words, kind, limit)) = broken {
        return Some(problem(
            path,
            format!("ensure this value is {words} {limit}"),
            format!("value_error.number.{kind}"),
            format!("; limit_value={limit}"),
        ));
    }
    let (factor, f) = bound("multipleOf").filter(|(_, f)| *f > 0.0)?;
    // pydantic: `float(v) / float(multiple_of) % 1` must be (almost) 0 or 1.
    let rest = (x / f).rem_euclid(1.0);
    (rest.abs() > f64::EPSILON && (rest - 1.0).abs() > f64::EPSILON).then(|| {
        problem(
            path,
            format!("ensure this value is a multiple of {factor}"),
            "value_error.number.not_multiple".into(),
            format!("; multiple_of={factor}"),
        )
    })
}

/// `minLength` / `maxLength` with `unit` (characters or items): the first one `length` breaks.
fn length(
    path: &[String],
    length: usize,
    schema: &Value,
    (min_key, max_key): (&str, &str),
    unit: &str,
    kind: &str,
) -> Option<Problem> {
    let limit = |key: &str| schema.get(key).and_then(Value::as_u64);
    let length = length as u64;
    let (words, which, limit) = if let Some(min) = limit(min_key).filter(|m| length < *m) {
        ("at least", "min", min)
    } else if let Some(max) = limit(max_key).filter(|m| length > *m) {
        ("at most", "max", max)
    } else {
        return None;
    };
    Some(problem(
        path,
        format!("ensure this value has {words} {limit} {unit}"),
        format!(
            "{kind}.{which}_{}",
            if unit == "items" { "items" } else { "length" }
        ),
        format!("; limit_value={limit}"),
    ))
}

/// `minLength`, `maxLength`, then `pattern`. Lengths count characters, as Python's `len`; the
/// pattern must match at the start of the string, as pydantic's `re.match` (write `^...$` to
/// match the whole string).
pub(crate) fn text(path: &[String], text: &str, schema: &Value) -> Option<Problem> {
    let count = text.chars().count();
    let keys = ("minLength", "maxLength");
    if let Some(found) = length(
        path,
        count,
        schema,
        keys,
        "characters",
        "value_error.any_str",
    ) {
        return Some(found);
    }
    let pattern = schema.get("pattern").and_then(Value::as_str)?;
    (!matches_at_start(pattern, text)).then(|| {
        problem(
            path,
            format!("string does not match regex \"{pattern}\""),
            "value_error.str.regex".into(),
            format!("; pattern={pattern}"),
        )
    })
}

/// `minItems`, `maxItems`, then `uniqueItems` (pydantic checks these before the items).
pub(crate) fn list(path: &[String], items: &[Value], schema: &Value) -> Option<Problem> {
    let keys = ("minItems", "maxItems");
    if let Some(found) = length(path, items.len(), schema, keys, "items", "value_error.list") {
        return Some(found);
    }
    if schema.get("uniqueItems") != Some(&Value::Bool(true)) {
        return None;
    }
    has_duplicates(items).then(|| {
        Problem::new(
            path.to_vec(),
            "the list has duplicated items",
            "value_error.list.unique_items",
        )
    })
}

/// Whether two items are equal under Python's `==` (pydantic v1's `unique_items` asks
/// `value in v[i:]` for each item): numbers by exact value (`1 == 1.0`, and `True == 1`,
/// `False == 0` as in Python, which pydantic follows rather than JSON Schema), objects by key set
/// and values whatever the order, arrays element by element, recursively.
///
/// One pass: each item is reduced to a canonical key (`PyKey`) whose derived `Eq`/`Hash` is
/// exactly that equality, and looked up in a hash set, so a 10 MiB body with a hundred thousand
/// items costs a hundred thousand hashes, not five billion comparisons.
fn has_duplicates(items: &[Value]) -> bool {
    let mut seen = std::collections::HashSet::with_capacity(items.len());
    items.iter().any(|item| !seen.insert(PyKey::of(item)))
}

/// A JSON value reduced so that derived equality is Python's `==` on the decoded value.
#[derive(PartialEq, Eq, Hash)]
enum PyKey<'a> {
    Null,
    /// A bool, an integer, or a float with no fractional part, by exact value.
    Integer(i128),
    /// Any other float, by its bits (JSON has no NaN; `-0.0` is integral, so it is `Integer(0)`).
    Float(u64),
    Text(&'a str),
    List(Vec<PyKey<'a>>),
    /// Entries sorted by key: Python's dict equality ignores order.
    Object(Vec<(&'a str, PyKey<'a>)>),
}

impl<'a> PyKey<'a> {
    fn of(value: &'a Value) -> Self {
        match value {
            Value::Null => PyKey::Null,
            Value::Bool(b) => PyKey::Integer(i128::from(*b)),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    PyKey::Integer(i128::from(i))
                } else if let Some(u) = n.as_u64() {
                    PyKey::Integer(i128::from(u))
                } else {
                    let f = n.as_f64().unwrap_or(f64::NAN);
                    // Integral floats within i128 compare with integers exactly, as in Python
                    // (`2**53 + 1 != float(2**53)`): the cast is exact for such values.
                    if f.fract() == 0.0 && f.abs() < 1.0e38 {
                        PyKey::Integer(f as i128)
                    } else {
                        PyKey::Float(f.to_bits())
                    }
                }
            }
            Value::String(s) => PyKey::Text(s),
            Value::Array(items) => PyKey::List(items.iter().map(PyKey::of).collect()),
            Value::Object(map) => {
                let mut entries: Vec<_> = map
                    .iter()
                    .map(|(k, v)| (k.as_str(), PyKey::of(v)))
                    .collect();
                entries.sort_by(|a, b| a.0.cmp(b.0));
                PyKey::Object(entries)
            }
        }
    }
}

/// Python's `==` on two JSON values (the equality `has_duplicates` finds in one pass).
#[cfg(test)]
fn python_eq(a: &Value, b: &Value) -> bool {
    PyKey::of(a) == PyKey::of(b)
}

/// Whether `pattern` matches at the start of `text`, as Python's `re.match`. Compiled patterns
/// are kept for the life of the process (there are only as many as the models declare); a
/// pattern that does not compile matches nothing.
fn matches_at_start(pattern: &str, text: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock, PoisonError};
    static COMPILED: OnceLock<Mutex<HashMap<String, Option<regex::Regex>>>> = OnceLock::new();
    let mut compiled = COMPILED
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let regex = compiled
        .entry(pattern.to_string())
        .or_insert_with(|| regex::Regex::new(&format!("^(?:{pattern})")).ok());
    regex.as_ref().is_some_and(|r| r.is_match(text))
}

const MAX_DEPTH: usize = 64;

/// The JSON Schema keywords validation enforces: [`coerce`] checks the value against them (the
/// structure, `enum`/`const`, pydantic's constraints, `not: {"const": v}` as schemars publishes
/// for a signed `NonZero` integer, `patternProperties` as it publishes for a map with integer
/// keys, and the formats in [`CHECKED_FORMATS`]), or, for the shapes schemars derives from Rust
/// types (a tuple's `items` list, a data-carrying enum's `oneOf`), the type's own deserializer
/// does. `not` with anything but a lone `const`, and any other `format`, are refused.
pub const ENFORCED_KEYWORDS: &[&str] = &[
    "type",
    "properties",
    "patternProperties",
    "required",
    "additionalProperties",
    "items",
    "definitions",
    "$ref",
    "allOf",
    "anyOf",
    "oneOf",
    "enum",
    "const",
    "not",
    "format",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minimum",
    "maximum",
    "multipleOf",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "uniqueItems",
];

/// The `format`s validation checks: numbers' widths (schemars publishes the bounds beside them,
/// which [`coerce`] checks), and the strings [`text_format`] parses.
pub const CHECKED_FORMATS: &[&str] = &[
    "int8", "int16", "int32", "int64", "int128", "int", "uint8", "uint16", "uint32", "uint64",
    "uint128", "uint", "float", "double", "ipv4", "ipv6", "ip", "uuid",
];

/// A string's `format`, when it is one validation parses (an IP address, a UUID), as pydantic
/// reports its own types.
pub(crate) fn text_format(path: &[String], text: &str, schema: &Value) -> Option<Problem> {
    let (fits, message, kind) = match schema.get("format").and_then(Value::as_str)? {
        "ipv4" => (
            text.parse::<std::net::Ipv4Addr>().is_ok(),
            "value is not a valid IPv4 address",
            "value_error.ipv4address",
        ),
        "ipv6" => (
            text.parse::<std::net::Ipv6Addr>().is_ok(),
            "value is not a valid IPv6 address",
            "value_error.ipv6address",
        ),
        "ip" => (
            text.parse::<std::net::IpAddr>().is_ok(),
            "value is not a valid IPv4 or IPv6 address",
            "value_error.ipvanyaddress",
        ),
        "uuid" => (
            uuid::Uuid::parse_str(text).is_ok(),
            "value is not a valid uuid",
            "type_error.uuid",
        ),
        _ => return None,
    };
    (!fits).then(|| Problem::new(path.to_vec(), message, kind))
}

/// `not: {"const": forbidden}`: the value must differ from `forbidden` (compared as Python
/// would, so `0.0` is `0`).
pub(crate) fn not_const(path: &[String], value: &Value, schema: &Value) -> Option<Problem> {
    let forbidden = schema.get("not")?.get("const")?;
    (PyKey::of(value) == PyKey::of(forbidden)).then(|| {
        problem(
            path,
            format!("value must not be {forbidden}"),
            "value_error.const".into(),
            format!("; given={value}"),
        )
    })
}

/// Whether `key` matches a `patternProperties` pattern (JSON Schema's search semantics: the
/// pattern may match anywhere unless it is anchored).
pub(crate) fn matches_pattern_property(pattern: &str, key: &str) -> bool {
    matches_at_start(&format!(".*?(?:{pattern})"), key)
}

/// The JSON Schema keywords that describe and constrain nothing.
pub const ANNOTATION_KEYWORDS: &[&str] = &[
    "title",
    "description",
    "default",
    "examples",
    "deprecated",
    "readOnly",
    "writeOnly",
    "$comment",
    "$schema",
    "$id",
];

/// Every keyword in `schema` (a model schema, `definitions` included) that validation would not
/// enforce, as `location: keyword`. A model whose schema has one would publish a promise that is
/// not kept, so the registry refuses it at start-up. `#[inputs]` models cannot have one (their
/// schema attributes are compile errors); a hand-written `JsonSchema` can.
pub fn unenforced_keywords(schema: &Value) -> Vec<String> {
    let mut found = Vec::new();
    walk_keywords(schema, &mut Vec::new(), &mut found, 0);
    found
}

/// Where a keyword sits in a schema, as [`unenforced_keywords`] names it.
fn location(at: &[String]) -> String {
    if at.is_empty() {
        "__root__".to_string()
    } else {
        at.join(" -> ")
    }
}

fn walk_keywords(schema: &Value, at: &mut Vec<String>, found: &mut Vec<String>, depth: usize) {
    let Value::Object(map) = schema else {
        return;
    };
    if depth > MAX_DEPTH {
        return;
    }
    for (keyword, value) in map {
        if !ENFORCED_KEYWORDS.contains(&keyword.as_str())
            && !ANNOTATION_KEYWORDS.contains(&keyword.as_str())
        {
            found.push(format!("{}: {keyword}", location(at)));
            continue;
        }
        let refused = match (keyword.as_str(), value) {
            ("not", Value::Object(inner)) => !(inner.len() == 1 && inner.contains_key("const")),
            ("not", _) => true,
            ("format", Value::String(format)) => !CHECKED_FORMATS.contains(&format.as_str()),
            ("patternProperties", Value::Object(patterns)) => {
                patterns.keys().any(|p| regex::Regex::new(p).is_err())
            }
            ("patternProperties", _) => true,
            _ => false,
        };
        if refused {
            found.push(format!("{}: {keyword} {value}", location(at)));
            continue;
        }
        match (keyword.as_str(), value) {
            ("patternProperties", Value::Object(patterns)) => {
                for sub in patterns.values() {
                    walk_keywords(sub, at, found, depth + 1);
                }
            }
            ("properties" | "definitions", Value::Object(named)) => {
                for (name, sub) in named {
                    at.push(name.clone());
                    walk_keywords(sub, at, found, depth + 1);
                    at.pop();
                }
            }
            ("allOf" | "anyOf" | "oneOf" | "items", Value::Array(subs)) => {
                for sub in subs {
                    walk_keywords(sub, at, found, depth + 1);
                }
            }
            ("items" | "additionalProperties", sub) => walk_keywords(sub, at, found, depth + 1),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every draft-07 keyword is either enforced, a mere annotation, or found by
    /// [`unenforced_keywords`] (so the registry refuses a model that publishes it).
    #[test]
    fn every_schema_keyword_is_enforced_an_annotation_or_refused() {
        const DRAFT_07: &[&str] = &[
            "$id",
            "$schema",
            "$ref",
            "$comment",
            "title",
            "description",
            "default",
            "readOnly",
            "writeOnly",
            "examples",
            "deprecated",
            "multipleOf",
            "maximum",
            "exclusiveMaximum",
            "minimum",
            "exclusiveMinimum",
            "maxLength",
            "minLength",
            "pattern",
            "additionalItems",
            "items",
            "maxItems",
            "minItems",
            "uniqueItems",
            "contains",
            "maxProperties",
            "minProperties",
            "required",
            "additionalProperties",
            "definitions",
            "properties",
            "patternProperties",
            "dependencies",
            "propertyNames",
            "const",
            "enum",
            "type",
            "format",
            "contentMediaType",
            "contentEncoding",
            "if",
            "then",
            "else",
            "allOf",
            "anyOf",
            "oneOf",
            "not",
        ];
        let mut refused = Vec::new();
        // Enforced in one shape only, checked below.
        for keyword in DRAFT_07
            .iter()
            .filter(|k| !["not", "format", "patternProperties"].contains(k))
        {
            let known =
                ENFORCED_KEYWORDS.contains(keyword) || ANNOTATION_KEYWORDS.contains(keyword);
            let schema =
                json!({"type": "object", "properties": {"x": {"type": "string", *keyword: 1}}});
            let flagged = unenforced_keywords(&schema);
            if known {
                assert!(flagged.is_empty(), "{keyword}: {flagged:?}");
            } else {
                assert_eq!(flagged, vec![format!("x: {keyword}")]);
                refused.push(*keyword);
            }
        }
        assert_eq!(
            refused,
            [
                "additionalItems",
                "contains",
                "maxProperties",
                "minProperties",
                "dependencies",
                "propertyNames",
                "contentMediaType",
                "contentEncoding",
                "if",
                "then",
                "else",
            ]
        );
        let property = |schema: Value| json!({"properties": {"x": schema}});
        let flagged = |schema: Value| unenforced_keywords(&property(schema));
        assert!(flagged(json!({"type": "integer", "not": {"const": 0}})).is_empty());
        assert_eq!(
            flagged(json!({"not": {"type": "string"}})),
            ["x: not {\"type\":\"string\"}"]
        );
        assert_eq!(flagged(json!({"not": 1})), ["x: not 1"]);
        assert!(flagged(json!({"type": "string", "format": "uuid"})).is_empty());
        assert_eq!(
            flagged(json!({"type": "string", "format": "email"})),
            ["x: format \"email\""]
        );
        let map = json!({"type": "object", "patternProperties": {"^\\d+$": {"type": "string"}}});
        assert!(flagged(map).is_empty());
        let nested = json!({"patternProperties": {"^\\d+$": {"type": "string", "if": {}}}});
        assert_eq!(flagged(nested), ["x: if"]);
        // Found at any depth: in definitions, list items and variants too.
        let nested = json!({"definitions": {"Opt": {"properties": {"tags": {"type": "array",
            "items": {"anyOf": [{"type": "string", "not": {}}, {"type": "null"}]}}}}}});
        assert_eq!(unenforced_keywords(&nested), vec!["Opt -> tags: not {}"]);
    }

    #[test]
    fn unique_items_compares_like_python() {
        assert!(python_eq(&json!(1), &json!(1.0)));
        assert!(python_eq(&json!(true), &json!(1)));
        assert!(!python_eq(&json!("1"), &json!(1)));
    }

    #[test]
    fn unique_items_uses_python_equality_through_nested_values() {
        assert!(python_eq(&json!(-0.0), &json!(0)));
        assert!(python_eq(&json!(2.0e3), &json!(2000)));
        assert!(!python_eq(&json!(1.5), &json!(1)));
        assert!(python_eq(&json!([1, true]), &json!([1.0, 1])));
        assert!(!python_eq(&json!([1, 2]), &json!([2, 1])));
        assert!(python_eq(
            &json!({"a": 1, "b": [0]}),
            &json!({"b": [false], "a": 1.0})
        ));
        assert!(!python_eq(&json!({"a": 1}), &json!({"a": 1, "b": null})));
        assert!(!python_eq(&json!(null), &json!(0)));
        // Python compares an int and a float exactly: 2**53 + 1 != 2.0**53.
        assert!(!python_eq(
            &json!(9_007_199_254_740_993_u64),
            &json!(9_007_199_254_740_992.0)
        ));
        assert!(python_eq(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!python_eq(&json!(u64::MAX), &json!(-1)));
    }

    #[test]
    fn a_list_with_one_late_duplicate_among_many_distinct_items_is_refused() {
        let schema = json!({"uniqueItems": true});
        let mut items: Vec<Value> = (0..100_000)
            .map(|i| json!({"id": i, "tags": [i]}))
            .collect();
        assert!(list(&[], &items, &schema).is_none());
        items.push(json!({"tags": [99_999.0], "id": 99_999}));
        let found = list(&["tags".into()], &items, &schema);
        assert_eq!(
            found.map(|p| p.kind),
            Some("value_error.list.unique_items".into())
        );
    }
}
