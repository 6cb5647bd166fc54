//! A minimal plugin project to copy: one version that greets, optionally after waiting.
//!
//! ```text
//! cargo run -p bkp-hello                      # serves on :5000 with SQLite, no setup
//! curl -XPOST localhost:5000/bk_plugin/invoke/1.0.0 \
//!      -d '{"inputs": {"name": "BlueKing"}, "context": {"executor": "admin"}}'
//! ```

use bk_plugin_server::prelude::*;

/// What the caller fills in.
#[inputs]
pub struct Inputs {
    /// Who to greet.
    pub name: String,
    /// Seconds to wait before greeting (0: greet at once).
    #[field(default)]
    pub delay: u64,
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
#[bk_plugin(version = "1.0.0", desc = "greets someone", inputs = Inputs, context_inputs = ContextInputs, outputs = Outputs)]
pub struct Hello;

impl Plugin for Hello {
    async fn execute(&self, inputs: Self::Inputs, ctx: &mut Context<Self>) -> Step<Self> {
        if ctx.run() == Run::First && inputs.delay > 0 {
            tracing::info!("waiting {}s before greeting", inputs.delay);
            return Ok(Next::Poll(Duration::from_secs(inputs.delay)));
        }
        if inputs.name.trim().is_empty() {
            return Err(PluginError::new("name must not be blank"));
        }
        let greeting = format!("hello, {} (from {})", inputs.name, ctx.data().executor);
        Ok(Next::Done(Outputs { greeting }))
    }
}

fn main() {
    bk_plugin_server::Server::new().description("greets").run()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn greets_at_once_without_delay() -> Result<(), HarnessError> {
        let mut harness = Harness::new(Hello);
        let context = json!({"executor": "admin"});
        harness.invoke(json!({"name": "Ada"}), context).await?;
        assert_eq!(harness.state(), State::Success);
        assert_eq!(harness.typed_outputs()?.greeting, "hello, Ada (from admin)");
        Ok(())
    }

    #[tokio::test]
    async fn waits_then_greets_when_a_delay_is_given() -> Result<(), HarnessError> {
        let mut harness = Harness::new(Hello);
        let context = json!({"executor": "admin"});
        harness
            .invoke(json!({"name": "Ada", "delay": "5"}), context)
            .await?;
        assert_eq!(harness.state(), State::Poll);
        assert_eq!(harness.poll_interval(), Some(Duration::from_secs(5)));
        harness.poll().await?;
        assert_eq!(harness.state(), State::Success);
        Ok(())
    }

    #[tokio::test]
    async fn a_blank_name_is_a_plugin_error() -> Result<(), HarnessError> {
        let mut harness = Harness::new(Hello);
        let context = json!({"executor": "admin"});
        harness.invoke(json!({"name": " "}), context).await?;
        let err = Some("plugin execute failed: name must not be blank");
        assert_eq!(harness.err(), err);
        Ok(())
    }
}
