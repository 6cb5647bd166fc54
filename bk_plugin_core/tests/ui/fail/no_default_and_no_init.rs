use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0.0")]
pub struct NeedsConfig {
    pub endpoint: String,
}

impl Plugin for NeedsConfig {
    async fn execute(&self, _: Empty, _: &mut Context<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn main() {}
