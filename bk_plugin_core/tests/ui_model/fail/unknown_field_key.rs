use bk_plugin_core::prelude::*;

#[inputs]
pub struct Options {
    #[field(default = 3, titel = "Retries")]
    pub retries: i64,
}

#[inputs]
pub struct Inputs {
    pub name: String,
    #[field(default)]
    pub options: Options,
}

fn main() {
    // The models are still generated: schema, serde and `Default` all work.
    let _ = bk_plugin_core::schema::model_schema::<Inputs>();
    let _ = Options::default().retries;
}
