use bk_plugin_core::prelude::*;

#[outputs]
pub fn not_a_model() {}

fn main() {
    not_a_model();
}
