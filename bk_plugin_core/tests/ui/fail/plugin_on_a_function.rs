use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0")]
fn not_a_plugin() {}

fn main() {
    not_a_plugin();
}
