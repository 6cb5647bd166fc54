//! Fuzzing the invoke-body validation path (proptest): arbitrary JSON never panics the
//! coercion or deserialization, and whatever validates re-validates to the same value.
//! CI runs proptest's default case count; set `PROPTEST_CASES` for longer runs (docs/security.md).
#![allow(missing_docs)]

use bk_plugin_core::model::validate;
use bk_plugin_core::{Empty, ModelShape, PluginCallbackInfo, inputs};
use proptest::prelude::*;
use serde_json::{Map, Value};

#[inputs]
#[derive(Debug, PartialEq)]
pub struct Options {
    pub name: String,
    #[field(default = 1)]
    pub value: i64,
}

#[inputs]
#[derive(Debug, PartialEq)]
pub struct Everything {
    pub action: String,
    pub options: Options,
    #[field(default)]
    pub tags: Vec<String>,
    #[field(default = 3)]
    pub count: i64,
    #[field(default = true)]
    pub flag: bool,
    pub ratio: Option<f64>,
    pub matrix: Option<Vec<Vec<u8>>>,
    pub extra: Option<Map<String, Value>>,
    pub callback: Option<PluginCallbackInfo>,
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        "[ -~]{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("7"),
            Just("true"),
            Just("off"),
            Just("1.5"),
            Just("-0"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ];
    leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(
                (
                    prop_oneof![
                        Just("action".to_string()),
                        Just("options".to_string()),
                        Just("name".to_string()),
                        Just("value".to_string()),
                        Just("tags".to_string()),
                        Just("count".to_string()),
                        Just("flag".to_string()),
                        Just("ratio".to_string()),
                        Just("matrix".to_string()),
                        Just("extra".to_string()),
                        Just("callback".to_string()),
                        Just("url".to_string()),
                        "[a-z]{1,6}",
                    ],
                    inner
                ),
                0..8
            )
            .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn arbitrary_json_never_panics_and_valid_values_round_trip(value in json_value()) {
        let schema = ModelShape::of::<Everything>();
        if let Ok(first) = validate::<Everything>(&value, &schema) {
            let again = serde_json::to_value(&first).unwrap_or(Value::Null);
            let second = validate::<Everything>(&again, &schema);
            prop_assert_eq!(second.ok(), Some(first));
        }
        let empty = ModelShape::of::<Empty>();
        prop_assert_eq!(validate::<Empty>(&value, &empty).is_ok(), value.is_object());
    }
}
