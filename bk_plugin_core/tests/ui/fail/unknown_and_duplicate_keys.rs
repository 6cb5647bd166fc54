use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0", versoin = "1.0.1", desc = "a", desc = "b")]
#[derive(Default)]
pub struct Typo;

impl Plugin for Typo {
    async fn execute(&self, _: Empty, _: &mut Context<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn main() {}
