use bk_plugin_core::prelude::*;

#[inputs]
pub enum Mode {
    #[field(default)]
    Fast,
    Slow,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Mode>();
}
