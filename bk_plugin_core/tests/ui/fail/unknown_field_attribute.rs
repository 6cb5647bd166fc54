use bk_plugin_core::prelude::*;

#[outputs]
pub struct Outputs {
    #[field(titel = "Result", description = "d", description = "again")]
    pub result: String,
}

fn main() {}
