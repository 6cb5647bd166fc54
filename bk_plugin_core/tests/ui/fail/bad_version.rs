use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0")]
pub struct Bad;

impl Plugin for Bad {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
