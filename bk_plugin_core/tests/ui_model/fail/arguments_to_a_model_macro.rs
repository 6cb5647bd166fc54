use bk_plugin_core::prelude::*;

#[inputs(version = "1.0.0")]
pub struct Inputs {
    pub name: String,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
}
