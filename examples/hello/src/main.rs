//! A minimal plugin project to copy: one version that greets, optionally after waiting.
//!
//! ```text
//! cargo run -p bkp-hello                      # serves on :5000 with SQLite, no setup
//! curl -XPOST localhost:5000/bk_plugin/invoke/1.0.0 \
//!      -d '{"inputs": {"name": "BlueKing"}, "context": {"executor": "admin"}}'
//! ```

use bk_plugin_server::prelude::*;
use bk_plugin_server::tracing;

/// What the caller fills in.
#[inputs]
pub struct Inputs {
    /// Who to greet.
    pub name: String,
    /// Seconds to wait before greeting (0: greet at once).
    #[field(default = 0)]
    pub delay: i64,
}

/// Taken from the task's context.
#[context_inputs]
pub struct ContextInputs {
    /// Who runs the task.
    #[field(title = "任务执行人")]
    pub executor: String,
}

/// What the plugin returns.
#[outputs]
pub struct Outputs {
    /// The greeting.
    pub greeting: String,
}

/// Greets `name`, after `delay` seconds when asked to.
#[bk_plugin(
    version = "1.0.0",
    desc = "greets someone",
    inputs = Inputs,
    context_inputs = ContextInputs,
    outputs = Outputs
)]
#[derive(Default)]
pub struct Hello;

impl Plugin for Hello {
    async fn execute(&self, inputs: Inputs, ctx: &mut Context<Self>) -> Result<(), PluginError> {
        if ctx.state() == State::Empty && inputs.delay > 0 {
            tracing::info!("waiting {}s before greeting", inputs.delay);
            ctx.wait_poll(inputs.delay);
            return Ok(());
        }
        if inputs.name.trim().is_empty() {
            return Err(PluginError::new("name must not be blank"));
        }
        let greeting = format!("hello, {} (from {})", inputs.name, ctx.data().executor);
        ctx.set_outputs(&Outputs { greeting })
    }
}

fn main() {
    bk_plugin_server::Server::new()
        .description("a minimal example plugin")
        .run()
}

#[cfg(test)]
mod tests {
    use super::*;
    use bk_plugin_server::serde_json::json;
    use bk_plugin_server::testing::Harness;

    #[tokio::test]
    async fn greets_at_once_without_delay() {
        let mut harness = Harness::new(Hello);
        harness
            .invoke(json!({"name": "Ada"}), json!({"executor": "admin"}))
            .await;
        assert_eq!(harness.state(), State::Success);
        assert_eq!(
            harness.outputs()["greeting"],
            json!("hello, Ada (from admin)")
        );
    }

    #[tokio::test]
    async fn waits_then_greets_when_a_delay_is_given() {
        let mut harness = Harness::new(Hello);
        harness
            .invoke(
                json!({"name": "Ada", "delay": "5"}),
                json!({"executor": "admin"}),
            )
            .await;
        assert_eq!(harness.state(), State::Poll);
        assert_eq!(
            harness.poll_interval(),
            Some(std::time::Duration::from_secs(5))
        );
        harness.poll().await.ok();
        assert_eq!(harness.state(), State::Success);
    }

    #[tokio::test]
    async fn a_blank_name_is_a_plugin_error() {
        let mut harness = Harness::new(Hello);
        harness
            .invoke(json!({"name": " "}), json!({"executor": "admin"}))
            .await;
        assert_eq!(
            harness.err(),
            Some("plugin execute failed: name must not be blank")
        );
    }
}
