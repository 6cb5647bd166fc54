use bk_plugin_core::prelude::*;

#[inputs]
pub struct Options {
    pub name: String,
    #[field(default = 3)]
    pub retries: i64,
}

#[inputs]
pub struct Inputs {
    #[field(default)]
    pub options: Options,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
}
