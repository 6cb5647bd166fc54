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

#[inputs]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Fast,
    Slow,
}

#[inputs]
pub struct RetryOptions {
    #[field(default = 3)]
    pub retries: i64,
    #[field(default = 1.5)]
    pub backoff: f64,
    #[field(default = Mode::Fast)]
    pub mode: Mode,
    #[field(default = vec!["a".to_string()])]
    pub labels: Vec<String>,
    pub note: Option<String>,
}

#[inputs]
pub struct WithDefaults {
    pub name: String,
    #[field(default)]
    pub options: RetryOptions,
}

#[inputs]
pub struct Constrained {
    #[field(ge = 1, le = 10, multiple_of = 2)]
    pub n: i64,
    #[field(default = 1.0, gt = 0, lt = 1.5)]
    pub f: f64,
    #[field(default = "ab", min_length = 2, max_length = 4, regex = "^a")]
    pub s: String,
    #[field(default = vec![1], min_items = 1, max_items = 3, unique_items)]
    pub l: Vec<i64>,
    #[field(ge = 0)]
    pub o: Option<i64>,
    #[field(
        default = "x",
        regex = r"^[a-z][a-z0-9_]*$",
        max_length = 32,
        description = "plugin code"
    )]
    pub code: String,
}

#[inputs]
#[serde(deny_unknown_fields)]
pub struct Strict {
    pub a: i64,
}

/// The error text our validation gives `input` for the model named `model` (None: it fits).
fn ours(model: &str, input: &Value) -> Result<Value, String> {
    fn check<T: bk_plugin_core::Model>(input: &Value) -> Result<Value, String> {
        validate::<T>(input, &ModelShape::of::<T>())
            .map(|valid| serde_json::to_value(valid).unwrap_or_default())
            .map_err(|e| e.to_string())
    }
    match model {
        "Inputs" => check::<Inputs>(input),
        "Flat" => check::<Flat>(input),
        "Nested" => check::<Nested>(input),
        "Paint" => check::<Paint>(input),
        "Lists" => check::<Lists>(input),
        "Optionals" => check::<Optionals>(input),
        "WithDefaults" => check::<WithDefaults>(input),
        "Constrained" => check::<Constrained>(input),
        "Strict" => check::<Strict>(input),
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
        let got = ours(model, &case["input"]);
        let expected = match case["error"].as_str() {
            Some(error) => Err(error.to_string()),
            // pydantic's `.json()` of the valid model, where the case records it.
            None => Ok(case.get("output").cloned()),
        };
        let got = got.map(|value| case.get("output").map(|_| value));
        if got != expected {
            let show = |r: &Result<Option<Value>, String>| match r {
                Ok(Some(value)) => format!("valid: {value}"),
                Ok(None) => "<valid>".to_string(),
                Err(e) => e.clone(),
            };
            mismatches.push(format!(
                "{name} ({model}, input {}):\n--- pydantic\n{}\n--- ours\n{}",
                case["input"],
                show(&expected),
                show(&got)
            ));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n\n"));
}
