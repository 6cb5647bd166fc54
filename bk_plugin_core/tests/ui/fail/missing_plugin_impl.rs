use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0")]
pub struct Forgotten;

fn main() {}
