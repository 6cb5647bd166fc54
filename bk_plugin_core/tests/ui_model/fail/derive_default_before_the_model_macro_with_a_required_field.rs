use bk_plugin_core::prelude::*;

// A derive written before the model macro runs first, so the macro cannot see it. The model has
// a required field, so the macro generates no `Default` and there is no conflict; a derived one
// would give a parent's bare `#[field(default)]` zeros. It is refused at the model's name.

#[derive(Debug, Default)]
#[inputs]
pub struct Options {
    pub name: String,
    #[field(default = 3)]
    pub retries: i64,
}

#[inputs]
pub struct Parent {
    #[field(default)]
    pub options: Options,
}

fn main() {
    println!("{:?}", Options::default());
}
