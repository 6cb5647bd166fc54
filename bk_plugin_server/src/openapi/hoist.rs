//! Moving a version's draft-07 schemas into `components/schemas`: nested models hoisted beside
//! their schema, `#/definitions/...` references rewritten, tuple `items` as `prefixItems`.

use serde_json::{Map, Value};

/// A name OpenAPI accepts for a component (`^[a-zA-Z0-9._-]+$`).
pub(super) fn component_name(raw: &str) -> String {
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Moves a draft-07 schema and its `definitions` into `schemas` under `name` and
/// `<name>_<definition>`, rewriting `#/definitions/...` references to them.
pub(super) fn hoist(schema: &Value, name: &str, schemas: &mut Map<String, Value>) {
    let mut top = schema.clone();
    let definitions = match top.as_object_mut().and_then(|o| o.remove("definitions")) {
        Some(Value::Object(definitions)) => definitions,
        _ => Map::new(),
    };
    let target = |definition: &str| format!("{name}_{}", component_name(definition));
    for (definition, mut body) in definitions {
        rewrite(&mut body, &target);
        schemas.insert(target(&definition), body);
    }
    rewrite(&mut top, &target);
    schemas.insert(name.to_string(), top);
}

/// Rewrites `#/definitions/X` to `#/components/schemas/<target(X)>` and draft-07 tuple `items`
/// (an array) to 2020-12 `prefixItems`, everywhere in `schema`.
fn rewrite(schema: &mut Value, target: &dyn Fn(&str) -> String) {
    match schema {
        Value::Object(object) => {
            if let Some(Value::String(reference)) = object.get_mut("$ref")
                && let Some(definition) = reference.strip_prefix("#/definitions/")
            {
                let definition = definition.replace("~1", "/").replace("~0", "~");
                *reference = format!("#/components/schemas/{}", target(&definition));
            }
            if matches!(object.get("items"), Some(Value::Array(_))) {
                let tuple = object.remove("items").unwrap_or(Value::Null);
                let rest = object.remove("additionalItems");
                object.insert("prefixItems".into(), tuple);
                if let Some(rest) = rest {
                    object.insert("items".into(), rest);
                }
            }
            for value in object.values_mut() {
                rewrite(value, target);
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite(item, target);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_definitions_are_hoisted_and_references_rewritten() {
        let schema = json!({
            "type": "object",
            "properties": {"o": {"$ref": "#/definitions/Options"},
                           "t": {"type": "array", "items": [{"type": "string"}]}},
            "required": ["o"],
            "definitions": {
                "Options": {"type": "object", "properties": {"i": {"$ref": "#/definitions/Inner"}}},
                "Inner": {"type": "string"},
            },
        });
        let mut schemas = Map::new();
        hoist(&schema, "Inputs_1.0.0", &mut schemas);
        let top = &schemas["Inputs_1.0.0"];
        assert!(top.get("definitions").is_none());
        assert_eq!(
            top["properties"]["o"]["$ref"],
            "#/components/schemas/Inputs_1.0.0_Options"
        );
        assert_eq!(
            top["properties"]["t"]["prefixItems"],
            json!([{"type": "string"}])
        );
        assert_eq!(
            schemas["Inputs_1.0.0_Options"]["properties"]["i"]["$ref"],
            "#/components/schemas/Inputs_1.0.0_Inner"
        );
    }
}
