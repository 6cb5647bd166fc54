use bk_plugin_core::prelude::*;

#[bk_plugin(desc = "no version")]
#[derive(Default)]
pub struct NoVersion;

impl Plugin for NoVersion {
    async fn execute(&self, _: Empty, _: &mut Context<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn main() {}
