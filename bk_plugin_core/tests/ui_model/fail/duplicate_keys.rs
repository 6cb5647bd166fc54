use bk_plugin_core::prelude::*;

#[outputs]
pub struct Outputs {
    #[field(description = "d", default = 1, description = "again")]
    #[field(default = 2)]
    pub result: i64,
}

fn main() {
    let _ = Outputs::default();
}
