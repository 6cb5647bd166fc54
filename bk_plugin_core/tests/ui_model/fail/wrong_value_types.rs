use bk_plugin_core::prelude::*;

#[inputs]
pub struct Inputs {
    #[field(title = 1, description)]
    pub name: String,
    #[field(ge = "1", multiple_of = 0)]
    pub count: i64,
    #[field(min_length = -1, max_length = 2.5, regex = "(")]
    pub code: String,
    #[field(min_items = "1", unique_items = 1)]
    pub tags: Vec<String>,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
}
