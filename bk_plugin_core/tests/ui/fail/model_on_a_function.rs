use bk_plugin_core::prelude::*;

#[inputs]
fn not_a_model() {}

fn main() {
    not_a_model();
}
