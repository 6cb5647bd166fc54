use bk_plugin_core::prelude::*;

#[inputs]
#[derive(Debug, Default, Clone)]
pub struct Options {
    #[field(default = 3)]
    pub retries: i64,
}

fn main() {
    // `Default` still exists, from the field defaults.
    let options = Options::default().clone();
    println!("{options:?}");
}
