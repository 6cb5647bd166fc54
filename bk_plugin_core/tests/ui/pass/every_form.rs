//! Every supported way to declare models and plugins compiles.
use bk_plugin_core::prelude::*;

#[inputs]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Fast,
    Safe,
}

#[inputs]
pub struct Inputs {
    /// A documented field.
    pub name: String,
    #[field(title = "Count", description = "how many", default = 3)]
    pub count: i64,
    #[field(default)]
    pub tags: Vec<String>,
    pub mode: Option<Mode>,
    #[field(default = "x")]
    pub label: String,
}

#[context_inputs]
pub struct Ctx {
    pub plugin_callback_info: PluginCallbackInfo,
}

#[outputs]
pub struct Outputs {
    pub total: i64,
}

impl Full {
    fn from_env() -> Result<Self, std::env::VarError> {
        Ok(Self { endpoint: std::env::var("PATH")? })
    }
}

#[bk_plugin(
    version = "2.10.0rc1",
    desc = "everything",
    enable_plugin_callback = true,
    inputs = Inputs,
    context_inputs = Ctx,
    outputs = Outputs,
    init = Full::from_env,
)]
/// State built once at start-up (the Python `__init__` case).
pub struct Full {
    pub endpoint: String,
}

impl Plugin for Full {
    async fn execute(&self, inputs: Inputs, ctx: &mut Context<Self>) -> Result<(), PluginError> {
        let _ = (&self.endpoint, &ctx.data().plugin_callback_info.url);
        ctx.set_outputs(&Outputs { total: inputs.count })
    }
}

/// No models at all.
#[bk_plugin(version = "0.0.1", callback_timeout = 3600)]
#[derive(Default)]
pub struct Minimal;

impl Plugin for Minimal {
    async fn execute(&self, _inputs: Empty, ctx: &mut Context<Self>) -> Result<(), PluginError> {
        ctx.wait_poll(-5);
        Ok(())
    }
}

fn main() {}
