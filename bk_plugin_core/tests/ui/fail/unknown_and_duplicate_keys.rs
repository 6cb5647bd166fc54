use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0", versoin = "1.0.1", desc = "a", desc = "b")]
pub struct Typo;

impl Plugin for Typo {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
