//! The OpenAPI document as YAML, written by hand: block style, every key and string
//! double-quoted, so that it reads back to exactly the same value.

use serde_json::Value;

/// The document as YAML: block style, every key and string double-quoted (JSON escapes are
/// valid YAML escapes), so it reads back to exactly the same value.
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    write_yaml(value, 0, &mut out);
    out
}

fn write_yaml(value: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match value {
        Value::Object(object) if !object.is_empty() => {
            for (key, item) in object {
                out.push_str(&pad);
                out.push_str(&yaml_string(key));
                out.push(':');
                write_yaml_child(item, indent, out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for item in items {
                out.push_str(&pad);
                out.push('-');
                write_yaml_child(item, indent, out);
            }
        }
        scalar => {
            out.push_str(&pad);
            out.push_str(&yaml_scalar(scalar));
            out.push('\n');
        }
    }
}

/// The value after `key:` or `-`: nested blocks on the following lines, scalars inline.
fn write_yaml_child(item: &Value, indent: usize, out: &mut String) {
    let nested = match item {
        Value::Object(object) => !object.is_empty(),
        Value::Array(items) => !items.is_empty(),
        _ => false,
    };
    if nested {
        out.push('\n');
        write_yaml(item, indent + 2, out);
    } else {
        out.push(' ');
        out.push_str(&yaml_scalar(item));
        out.push('\n');
    }
}

fn yaml_scalar(value: &Value) -> String {
    match value {
        Value::String(text) => yaml_string(text),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

/// A double-quoted YAML scalar: JSON's escaping, plus the C1 controls and BOM that YAML does not
/// allow raw.
fn yaml_string(text: &str) -> String {
    let json = Value::String(text.to_string()).to_string();
    json.chars()
        .map(|c| match c {
            '\u{80}'..='\u{9f}' | '\u{feff}' => format!("\\u{:04x}", c as u32),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn yaml_keeps_every_value_and_quotes_every_string() {
        let value = json!({"a": [1, {"b": "x\"y\n"}, [], {}], "c": null, "d": {"e": true}});
        let yaml = to_yaml(&value);
        assert_eq!(
            yaml,
            "\"a\":\n  - 1\n  -\n    \"b\": \"x\\\"y\\n\"\n  - []\n  - {}\n\"c\": null\n\"d\":\n  \"e\": true\n"
        );
    }
}
