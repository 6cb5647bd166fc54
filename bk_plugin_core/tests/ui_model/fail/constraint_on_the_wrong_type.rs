use bk_plugin_core::prelude::*;

#[inputs]
pub struct Inputs {
    #[field(ge = 1)]
    pub name: String,
    #[field(min_length = 1)]
    pub tags: Vec<String>,
    #[field(min_items = 1)]
    pub code: Option<String>,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
}
