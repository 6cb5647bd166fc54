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
    async fn execute(&self, inputs: Self::Inputs, ctx: &mut Context<Self>) -> Step<Self> {
        let _ = (&self.endpoint, &ctx.data().plugin_callback_info.url);
        match ctx.run() {
            Run::First => Ok(Next::Poll(Duration::from_millis(1500))),
            Run::Poll => Ok(Next::Callback),
            Run::Callback => Ok(Next::Done(Outputs { total: inputs.count })),
        }
    }
}

/// No models at all, and a unit struct: no `Default` needed.
#[bk_plugin(version = "0.0.1", callback_timeout = 3600)]
pub struct Minimal;

impl Plugin for Minimal {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Empty {}))
    }
}

/// A struct with fields and no `init` is built with its `Default`.
#[bk_plugin(version = "0.0.2")]
#[derive(Default)]
pub struct WithDefault {
    pub retries: u32,
}

impl Plugin for WithDefault {
    async fn execute(&self, _: Self::Inputs, ctx: &mut Context<Self>) -> Step<Self> {
        ctx.set_output("retries", self.retries)?;
        Ok(Next::Done(Empty {}))
    }
}

fn main() {}
