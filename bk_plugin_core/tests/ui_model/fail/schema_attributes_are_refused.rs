use bk_plugin_core::prelude::*;

#[inputs]
#[schemars(extend("minProperties" = 1))]
pub struct Inputs {
    #[schemars(length(min = 1))]
    pub tags: Vec<String>,
    #[validate(range(min = 1))]
    pub count: i64,
    #[garde(ascii)]
    pub name: String,
}

#[inputs]
pub enum Mode {
    #[schemars(rename = "FAST")]
    Fast,
}

fn main() {
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
    let _ = bk_plugin_core::schema::model_schema::<Mode>();
}
