//! A literal `#[field(default = ...)]` compiles for every integer and float type, for an
//! `Option` of one, and for a `String` from a string literal; `Default` and validation both give
//! the literal's value.
use bk_plugin_core::model::validate;
use bk_plugin_core::prelude::*;
use bk_plugin_core::ModelShape;

#[inputs]
#[derive(Debug, PartialEq)]
pub struct Inputs {
    #[field(default = 5)]
    pub a_u8: u8,
    #[field(default = 5)]
    pub a_u16: u16,
    #[field(default = 5)]
    pub a_u32: u32,
    #[field(default = 5)]
    pub a_u64: u64,
    #[field(default = 5)]
    pub a_u128: u128,
    #[field(default = 5)]
    pub a_usize: usize,
    #[field(default = -5)]
    pub an_i8: i8,
    #[field(default = -5)]
    pub an_i16: i16,
    #[field(default = -5)]
    pub an_i32: i32,
    #[field(default = -5)]
    pub an_i64: i64,
    #[field(default = -5)]
    pub an_i128: i128,
    #[field(default = -5)]
    pub an_isize: isize,
    #[field(default = 1.5)]
    pub an_f32: f32,
    #[field(default = -1.5)]
    pub an_f64: f64,
    #[field(default = 7)]
    pub an_option_u8: Option<u8>,
    #[field(default = 2.5)]
    pub an_option_f32: Option<f32>,
    #[field(default = "hi")]
    pub a_string: String,
    #[field(default = "there")]
    pub an_option_string: Option<String>,
    #[field(default = true)]
    pub a_bool: bool,
}

fn main() {
    let d = Inputs::default();
    assert_eq!((d.a_u8, d.a_u16, d.a_u32, d.a_u64, d.a_u128, d.a_usize), (5, 5, 5, 5, 5, 5));
    assert_eq!((d.an_i8, d.an_i16, d.an_i32, d.an_i64, d.an_i128, d.an_isize), (-5, -5, -5, -5, -5, -5));
    assert_eq!((d.an_f32, d.an_f64), (1.5, -1.5));
    assert_eq!((d.an_option_u8, d.an_option_f32), (Some(7), Some(2.5)));
    assert_eq!((d.a_string.as_str(), d.an_option_string.as_deref(), d.a_bool), ("hi", Some("there"), true));
    let shape = ModelShape::of::<Inputs>();
    let validated: Result<Inputs, _> = validate(&serde_json::json!({}), &shape);
    assert_eq!(validated, Ok(d));
}
