use bk_plugin_core::prelude::*;

#[bk_plugin(version = 100, desc = "x", enable_plugin_callback = "yes", inputs = "Inputs")]
#[derive(Default)]
pub struct WrongTypes;

impl Plugin for WrongTypes {
    async fn execute(&self, _: Empty, _: &mut Context<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn main() {}
