//! The keywords schemars publishes for ordinary Rust field types are enforced by validation,
//! not only listed as enforced: a value that breaks `not`, `patternProperties`, `format`,
//! `const`, `oneOf` or `anyOf` is refused with the field's location.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::num::NonZeroI8;

use bk_plugin_core::ModelShape;
use bk_plugin_core::constraint::unenforced_keywords;
use bk_plugin_core::model::validate;
use bk_plugin_core::prelude::*;
use serde_json::{Value, json};

#[inputs]
#[derive(Debug, PartialEq)]
pub enum Level {
    /// Quiet.
    Low,
    /// Loud.
    High,
}

#[inputs]
#[derive(Debug, PartialEq)]
pub enum Shape {
    Circle { radius: i64 },
    Square { side: i64 },
}

#[inputs]
#[derive(Debug, PartialEq)]
pub struct Inputs {
    pub count: Option<NonZeroI8>,
    pub by_id: Option<HashMap<u32, String>>,
    pub address: Option<Ipv4Addr>,
    pub level: Option<Level>,
    pub shape: Option<Shape>,
}

fn schema() -> Value {
    bk_plugin_core::schema::model_schema::<Inputs>()
}

/// The field and error type of each problem, or `[]` when the value fits.
fn refusals(value: Value) -> Vec<(String, String)> {
    let shape = ModelShape::of::<Inputs>();
    match validate::<Inputs>(&value, &shape) {
        Ok(_) => Vec::new(),
        Err(e) => e
            .problems
            .iter()
            .map(|p| (p.loc.join("."), p.kind.clone()))
            .collect(),
    }
}

#[test]
fn the_schema_publishes_these_keywords_and_none_unenforced() {
    let text = schema().to_string();
    for keyword in [
        "\"not\"",
        "\"patternProperties\"",
        "\"format\"",
        "\"const\"",
        "\"oneOf\"",
    ] {
        assert!(text.contains(keyword), "{keyword} in {text}");
    }
    assert_eq!(unenforced_keywords(&schema()), Vec::<String>::new());
}

#[test]
fn values_that_fit_every_keyword_validate() {
    let fits = json!({"count": "-3", "by_id": {"1": "a", "20": "b"}, "address": "10.0.0.1",
        "level": "High", "shape": {"Square": {"side": 2}}});
    assert_eq!(refusals(fits), []);
}

#[test]
fn not_const_refuses_zero() {
    assert_eq!(
        refusals(json!({"count": 0})),
        [("count".into(), "value_error.const".into())]
    );
}

#[test]
fn pattern_properties_refuse_a_key_that_is_not_an_integer_and_check_values() {
    let found = refusals(json!({"by_id": {"x": "a"}}));
    assert_eq!(found, [("by_id.x".into(), "value_error.extra".into())]);
    let found = refusals(json!({"by_id": {"1": ["not", "a", "string"]}}));
    assert_eq!(found, [("by_id.1".into(), "type_error.str".into())]);
}

#[test]
fn format_refuses_a_string_that_is_not_an_address() {
    let found = refusals(json!({"address": "10.0.0"}));
    assert_eq!(
        found,
        [("address".into(), "value_error.ipv4address".into())]
    );
}

#[test]
fn const_variants_refuse_another_value() {
    let found = refusals(json!({"level": "Middle"}));
    assert_eq!(found, [("level".into(), "type_error.enum".into())]);
}

#[test]
fn one_of_and_any_of_refuse_a_value_matching_no_variant() {
    assert_eq!(refusals(json!({"shape": {"Triangle": {}}})).len(), 1);
    assert_eq!(
        refusals(json!({"shape": {"Circle": {"radius": "wide"}}})).len(),
        1
    );
}
