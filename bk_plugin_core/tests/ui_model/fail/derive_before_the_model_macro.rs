use bk_plugin_core::prelude::*;

// A derive written before the model macro runs first, so the macro cannot refuse it the way it
// refuses a derive after it (derived_default.rs); the one error is then rustc's conflict, pointing
// at the derived `Default`.

#[derive(Debug, Default)]
#[inputs]
pub struct Options {
    #[field(default = 3)]
    pub retries: i64,
}

fn main() {
    println!("{:?}", Options::default());
}
