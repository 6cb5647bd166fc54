use bk_plugin_core::prelude::*;

#[inputs]
pub struct Inputs {
    #[field(ge = 5, le = 1)]
    pub count: i64,
    #[field(min_length = 3, max_length = 2)]
    pub code: String,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
}
