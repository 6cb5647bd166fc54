use bk_plugin_core::prelude::*;

#[bk_plugin(version = "1.0")]
#[derive(Default)]
pub struct Bad;

impl Plugin for Bad {
    async fn execute(&self, _: Empty, _: &mut Context<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn main() {}
