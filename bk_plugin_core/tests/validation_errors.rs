//! Validation errors read exactly as pydantic v1's for the same models and inputs. The expected
//! text in `errors/validation_errors.json` was produced by pydantic 1.10
//! (`errors/generate_errors.py`); each Rust model below mirrors the Python model of that name.
#![allow(missing_docs)]

use bk_plugin_core::model::validate;
use bk_plugin_core::{ModelShape, inputs};
use serde_json::{Map, Value};

#[inputs]
pub struct Inputs {
    pub hello: String,
}

#[inputs]
pub struct Flat {
    pub hello: String,
    pub count: i64,
    pub ratio: f64,
    pub enabled: bool,
}

#[inputs]
pub struct Options {
    pub name: String,
    #[field(default = 1)]
    pub value: i64,
}

#[inputs]
pub struct Nested {
    pub action: String,
    pub options: Options,
    #[field(default)]
    pub tags: Vec<String>,
    #[field(default = 3)]
    pub count: i64,
    #[field(default = true)]
    pub flag: bool,
}

#[inputs]
#[serde(rename_all = "lowercase")]
pub enum Color {
    Red,
    Green,
}

#[inputs]
pub struct Paint {
    pub color: Color,
    #[field(default)]
    pub shades: Vec<Color>,
}

#[inputs]
pub struct Item {
    pub key: String,
}

#[inputs]
pub struct Lists {
    pub names: Vec<String>,
    #[field(default)]
    pub items: Vec<Item>,
    #[field(default)]
    pub matrix: Vec<Vec<i64>>,
    #[field(default)]
    pub extra: Map<String, Value>,
}

#[inputs]
pub struct Optionals {
    pub note: Option<String>,
    pub limit: Option<i64>,
    pub required_one: String,
}

/// The error text our validation gives `input` for the model named `model` (None: it fits).
fn ours(model: &str, input: &Value) -> Option<String> {
    fn check<T: bk_plugin_core::Model>(input: &Value) -> Option<String> {
        validate::<T>(input, &ModelShape::of::<T>())
            .err()
            .map(|e| e.to_string())
    }
    match model {
        "Inputs" => check::<Inputs>(input),
        "Flat" => check::<Flat>(input),
        "Nested" => check::<Nested>(input),
        "Paint" => check::<Paint>(input),
        "Lists" => check::<Lists>(input),
        "Optionals" => check::<Optionals>(input),
        other => panic!("no Rust model mirrors {other}: add it above"),
    }
}

#[test]
fn validation_errors_read_as_pydantic_v1_writes_them() {
    let path = format!(
        "{}/tests/errors/validation_errors.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let cases: Vec<Value> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert!(cases.len() >= 10, "{path} has only {} cases", cases.len());
    let mut mismatches = Vec::new();
    for case in &cases {
        let name = case["name"].as_str().unwrap_or_default();
        let model = case["model"].as_str().unwrap_or_default();
        let expected = case["error"].as_str().map(str::to_string);
        let got = ours(model, &case["input"]);
        if got != expected {
            mismatches.push(format!(
                "{name} ({model}, input {}):\n--- pydantic\n{}\n--- ours\n{}",
                case["input"],
                expected.as_deref().unwrap_or("<valid>"),
                got.as_deref().unwrap_or("<valid>")
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
