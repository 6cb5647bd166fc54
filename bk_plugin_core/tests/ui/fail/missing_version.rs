use bk_plugin_core::prelude::*;

#[bk_plugin(desc = "no version")]
pub struct NoVersion;

impl Plugin for NoVersion {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
