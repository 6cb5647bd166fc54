use bk_plugin_core::prelude::*;

pub struct PlainStruct {
    pub x: i64,
}

#[bk_plugin(version = "1.0.0", inputs = PlainStruct)]
pub struct UsesPlain;

impl Plugin for UsesPlain {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
