//! Every `#[field(...)]` setting compiles, and a defaulted nested model is the same omitted or
//! given as `{}`.
use bk_plugin_core::model::validate;
use bk_plugin_core::prelude::*;
use bk_plugin_core::ModelShape;

#[inputs]
#[serde(rename_all = "lowercase")]
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    Fast,
    Slow,
}

#[inputs]
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    #[field(default = 3, ge = 0, le = 10)]
    pub retries: i64,
    #[field(default = Mode::Fast)]
    pub mode: Mode,
    pub note: Option<String>,
}

#[inputs]
#[derive(Debug, PartialEq)]
pub struct Inputs {
    #[field(title = "Name", description = "who", min_length = 1, max_length = 64, regex = "^[a-z]")]
    pub name: String,
    #[field(default)]
    pub options: Options,
    #[field(default, min_items = 0, max_items = 5, unique_items)]
    pub tags: Vec<String>,
    #[field(gt = 0.0, lt = 1.0, multiple_of = 0.25)]
    pub ratio: Option<f64>,
    #[field(ge = -5)]
    pub offset: Option<i32>,
}


fn main() {
    let shape = ModelShape::of::<Inputs>();
    let omitted: Result<Inputs, _> = validate(&serde_json::json!({"name": "a"}), &shape);
    let empty: Result<Inputs, _> = validate(&serde_json::json!({"name": "a", "options": {}}), &shape);
    assert_eq!(omitted, empty);
    assert_eq!(omitted.map(|i| i.options), Ok(Options::default()));
    assert_eq!(Options::default().retries, 3);
}
