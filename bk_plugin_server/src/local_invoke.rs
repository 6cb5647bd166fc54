//! `invoke`: runs one invocation from the command line on the configured database, with a
//! worker of its own, and follows it to its end.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use bk_plugin_core::State;
use bk_plugin_core::executor::StepInput;
use serde_json::{Value, json};

use crate::app::{AppState, Parked};
use crate::error::{new_trace_id, no_such_version};

/// Runs the first step of `version_name`, then (when it waits) re-runs it here until it
/// finishes or `timeout` passes, printing the result.
pub(crate) async fn invoke_and_follow(
    state: Arc<AppState>,
    version_name: &str,
    inputs: &str,
    context: &str,
    timeout: Duration,
) -> anyhow::Result<()> {
    let version = state
        .registry()
        .get(version_name)
        .with_context(|| no_such_version(version_name))?;
    let inputs: Value = serde_json::from_str(inputs).context("--inputs is not valid JSON")?;
    let context: Value = serde_json::from_str(context).context("--context is not valid JSON")?;
    let trace_id = new_trace_id();
    let outcome = version
        .run(
            StepInput::first(trace_id.clone(), inputs.clone(), context.clone()),
            state.step_services(),
        )
        .await;
    println!("trace_id: {trace_id}");
    match state
        .invocations()
        .park(version_name, &trace_id, &inputs, &context, &outcome)
        .await?
    {
        Parked::Stored => {}
        Parked::NotWaiting => {
            let err = outcome.err().map(str::to_string);
            print_result(
                outcome.state(),
                &Value::Object(outcome.outputs),
                err.as_deref(),
            );
            return Ok(());
        }
        Parked::Refused(err) => {
            print_result(State::Fail, &Value::Null, Some(&err));
            return Ok(());
        }
    }
    println!(
        "state: {} ({}), following it to its end",
        outcome.state().as_i32(),
        outcome.state()
    );
    if outcome.state() == State::Callback {
        println!("outputs so far: {}", Value::Object(outcome.outputs.clone()));
    }
    let worker = crate::worker::start(state.clone());
    let started = std::time::Instant::now();
    let result = loop {
        if let Some(row) = state.store().get(&trace_id).await?
            && row.state.is_terminal()
        {
            let outputs = row.outputs.value_or_null();
            print_result(row.state.state(), &outputs, row.error.as_deref());
            break Ok(());
        }
        if started.elapsed() > timeout {
            break Err(anyhow::anyhow!(
                "gave up after {}s; the invocation is still waiting (trace_id {trace_id})",
                timeout.as_secs()
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    worker.shutdown().await;
    result
}

fn print_result(state: State, outputs: &Value, err: Option<&str>) {
    let result = json!({"state": state.as_i32(), "state_name": state.name(), "outputs": outputs, "err": err});
    println!(
        "{}",
        serde_json::to_string_pretty(&result).unwrap_or_default()
    );
}
