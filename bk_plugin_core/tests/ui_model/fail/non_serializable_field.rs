use bk_plugin_core::prelude::*;

pub struct Opaque;

#[inputs]
pub struct Inputs {
    pub handle: Opaque,
}

fn main() {}
