use bk_plugin_core::prelude::*;

pub struct PlainStruct {
    pub x: i64,
}

#[bk_plugin(version = "1.0.0", inputs = PlainStruct)]
#[derive(Default)]
pub struct UsesPlain;

impl Plugin for UsesPlain {
    async fn execute(&self, _: PlainStruct, _: &mut Context<Self>) -> Result<(), PluginError> {
        Ok(())
    }
}

fn main() {}
