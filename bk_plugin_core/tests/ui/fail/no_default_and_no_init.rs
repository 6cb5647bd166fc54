use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0")]
pub struct NeedsConfig {
    pub endpoint: String,
}

impl Plugin for NeedsConfig {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
