use bk_plugin_core::prelude::*;

#[bk_plugin(version = 100, desc = "x", enable_plugin_callback = "yes", inputs = "Inputs")]
pub struct WrongTypes;

impl Plugin for WrongTypes {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
