use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0")]
#[derive(Default)]
pub struct Generic<T> {
    pub value: T,
}

fn main() {}
