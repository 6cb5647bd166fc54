//! One step of an invocation, with every rule of the protocol and no IO.
//!
//! [`run_step`] validates the inputs and context inputs, runs `execute` (catching panics),
//! decides the next state and says what must be persisted. The server calls it for an invoke
//! and for every re-run; the test harness calls it directly.
//!
//! | what happened | first run (EMPTY) | re-run (POLL / CALLBACK) |
//! |---|---|---|
//! | inputs do not fit | FAIL `inputs validation error: …` | FAIL, same prefix (the Inputs model changed incompatibly) |
//! | context does not fit | FAIL `context validation error: …` | FAIL, same prefix |
//! | neither fits | FAIL `inputs validation error: …` and, on the next line, `context validation error: …` | the same |
//! | plugin error | FAIL `plugin execute failed: …` | FAIL `plugin schedule failed: …`, storage/outputs of the run kept |
//! | panic | FAIL `plugin execute raise unexpected error: …` | FAIL `plugin schedule raise unexpected error: …`, storage/outputs of the run discarded |
//! | `Next::Done(o)`, outputs do not fit Outputs | FAIL `outputs validation error: …` | the same, storage/outputs kept |
//! | `Next::Poll(d)` | POLL after `d` | POLL after `d` |
//! | `Next::Callback` | CALLBACK | CALLBACK |
//! | `Next::Done(o)` | SUCCESS, outputs `o` then the other keys set so far | the same |

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures_util::FutureExt;
use serde_json::{Map, Value};
use tracing::Instrument;

use crate::callback::CallbackIssuer;
pub use crate::context::StepInput;
use crate::model::{ModelShape, validate};
use crate::plugin::Context;
use crate::plugin::{self, Plugin};
use crate::state::State;

/// The schemas of one version's three models: in full (with `definitions`) as pydantic v1
/// publishes them, and the shapes validation walks.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSchemas {
    /// The Inputs model.
    pub inputs: Value,
    /// The ContextInputs model.
    pub context_inputs: Value,
    /// The Outputs model.
    pub outputs: Value,
    /// What validation of inputs walks.
    pub inputs_shape: ModelShape,
    /// What validation of the context walks.
    pub context_inputs_shape: ModelShape,
    /// What validation of outputs walks.
    pub outputs_shape: ModelShape,
}

impl ModelSchemas {
    /// The schemas of a plugin type's models.
    pub fn of<P: Plugin>() -> Self {
        use crate::schema::model_schema;
        Self {
            inputs: model_schema::<P::Inputs>(),
            context_inputs: model_schema::<P::ContextInputs>(),
            outputs: model_schema::<P::Outputs>(),
            inputs_shape: ModelShape::of::<P::Inputs>(),
            context_inputs_shape: ModelShape::of::<P::ContextInputs>(),
            outputs_shape: ModelShape::of::<P::Outputs>(),
        }
    }
}

/// Why a step failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailureKind {
    /// The inputs do not fit the Inputs model (and perhaps the context does not fit either:
    /// the message then has a `context validation error:` part too).
    InvalidInputs,
    /// The context does not fit the ContextInputs model.
    InvalidContext,
    /// `execute` returned a [`crate::PluginError`].
    Plugin,
    /// `execute` panicked.
    Unexpected,
    /// `execute` succeeded but its outputs do not fit the Outputs model.
    InvalidOutputs,
}

/// What happens next to the invocation, as the runtime sees it (the plugin's
/// [`crate::Next`] plus the failures).
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    /// Finished: SUCCESS.
    Success,
    /// Run again after this long: POLL.
    Poll(Duration),
    /// Run again when the callback arrives: CALLBACK.
    Callback,
    /// Finished: FAIL.
    Fail {
        /// Why.
        kind: FailureKind,
        /// The `err` the caller sees.
        err: String,
    },
}

/// The result of a step: what comes next and what to persist.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    /// What comes next.
    pub next: Next,
    /// The storage to persist.
    pub storage: Map<String, Value>,
    /// The outputs to persist.
    pub outputs: Map<String, Value>,
    /// Whether the plugin's run got as far as `execute` (false when validation failed first).
    pub executed: bool,
}

impl StepOutcome {
    /// The protocol state this outcome puts the invocation in.
    pub fn state(&self) -> State {
        match self.next {
            Next::Success => State::Success,
            Next::Poll(_) => State::Poll,
            Next::Callback => State::Callback,
            Next::Fail { .. } => State::Fail,
        }
    }

    /// The `err`, when the step failed.
    pub fn err(&self) -> Option<&str> {
        match &self.next {
            Next::Fail { err, .. } => Some(err),
            _ => None,
        }
    }

    /// The failure kind, when the step failed.
    pub fn failure(&self) -> Option<FailureKind> {
        match &self.next {
            Next::Fail { kind, .. } => Some(*kind),
            _ => None,
        }
    }
}

/// Runs one step of `plugin` for `input`.
pub async fn run_step<P: Plugin>(
    plugin: &P,
    schemas: &ModelSchemas,
    input: StepInput,
    issuer: Arc<dyn CallbackIssuer>,
) -> StepOutcome {
    let span = tracing::info_span!("step", trace_id = %input.trace_id);
    run_step_inner(plugin, schemas, input, issuer)
        .instrument(span)
        .await
}

async fn run_step_inner<P: Plugin>(
    plugin: &P,
    schemas: &ModelSchemas,
    input: StepInput,
    issuer: Arc<dyn CallbackIssuer>,
) -> StepOutcome {
    let first = input.is_first_run();
    let fail_early = |kind, err: String, input: StepInput| StepOutcome {
        next: Next::Fail { kind, err },
        storage: input.storage,
        outputs: input.outputs,
        executed: false,
    };
    // Both are validated before either is reported, so a caller sees every problem at once.
    let inputs = validate::<P::Inputs>(&input.inputs, &schemas.inputs_shape);
    let data = validate::<P::ContextInputs>(&input.context, &schemas.context_inputs_shape);
    let (inputs, data) = match (inputs, data) {
        (Ok(inputs), Ok(data)) => (inputs, data),
        (Err(e), Ok(_)) => {
            let err = format!("inputs validation error: {e}");
            return fail_early(FailureKind::InvalidInputs, err, input);
        }
        (Ok(_), Err(e)) => {
            let err = format!("context validation error: {e}");
            return fail_early(FailureKind::InvalidContext, err, input);
        }
        (Err(inputs), Err(context)) => {
            let err =
                format!("inputs validation error: {inputs}\ncontext validation error: {context}");
            return fail_early(FailureKind::InvalidInputs, err, input);
        }
    };
    let (kept_storage, kept_outputs) = if first {
        (Map::new(), Map::new())
    } else {
        (input.storage.clone(), input.outputs.clone())
    };
    let mut ctx = Context::<P>::new(input, data, issuer);
    let result = AssertUnwindSafe(plugin.execute(inputs, &mut ctx))
        .catch_unwind()
        .await;
    let (storage, mut outputs) = ctx.into_parts();
    let (execute_failed, unexpected) = if first {
        (
            "plugin execute failed",
            "plugin execute raise unexpected error",
        )
    } else {
        (
            "plugin schedule failed",
            "plugin schedule raise unexpected error",
        )
    };
    let next = match result {
        Err(panic) => {
            let err = format!("{unexpected}: {}", panic_message(panic.as_ref()));
            tracing::error!("{err}");
            return StepOutcome {
                next: Next::Fail {
                    kind: FailureKind::Unexpected,
                    err,
                },
                storage: kept_storage,
                outputs: kept_outputs,
                executed: true,
            };
        }
        Ok(Err(e)) => {
            let err = format!("{execute_failed}: {e}");
            // ERROR, as Python logs it (`logger.exception`): BK-SOPS shows this line.
            tracing::error!("{err}");
            Next::Fail {
                kind: FailureKind::Plugin,
                err,
            }
        }
        Ok(Ok(plugin::Next::Poll(after))) => Next::Poll(after),
        Ok(Ok(plugin::Next::Callback)) => Next::Callback,
        Ok(Ok(plugin::Next::Done(done))) => match add_outputs(&mut outputs, &done) {
            Ok(()) => check_outputs::<P::Outputs>(&outputs, &schemas.outputs_shape),
            Err(err) => Next::Fail {
                kind: FailureKind::InvalidOutputs,
                err,
            },
        },
    };
    StepOutcome {
        next,
        storage,
        outputs,
        executed: true,
    }
}

/// The typed outputs in the model's field order, followed by the other keys set so far with
/// `set_output` (in the order they were set).
fn add_outputs<O: serde::Serialize>(
    outputs: &mut Map<String, Value>,
    done: &O,
) -> Result<(), String> {
    match serde_json::to_value(done) {
        Ok(Value::Object(mut map)) => {
            for (key, value) in std::mem::take(outputs) {
                if !map.contains_key(&key) {
                    map.insert(key, value);
                }
            }
            *outputs = map;
            Ok(())
        }
        Ok(other) => Err(format!(
            "outputs validation error: the outputs must be a JSON object, not {other}"
        )),
        Err(e) => Err(format!("outputs validation error: {e}")),
    }
}

fn check_outputs<O: crate::Model>(outputs: &Map<String, Value>, shape: &ModelShape) -> Next {
    match validate::<O>(&Value::Object(outputs.clone()), shape) {
        Ok(_) => Next::Success,
        Err(e) => Next::Fail {
            kind: FailureKind::InvalidOutputs,
            err: format!("outputs validation error: {e}"),
        },
    }
}

/// The message of a caught panic.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

#[cfg(test)]
#[allow(unreachable_pub)]
mod tests {
    use super::*;
    use super::{Next, plugin};
    use crate::callback::NoCallbacks;
    use crate::prelude::*;
    use serde_json::json;

    #[inputs]
    pub struct In {
        pub n: i64,
        #[field(default)]
        pub mode: String,
    }

    #[context_inputs]
    pub struct Ctx {
        pub who: String,
    }

    #[outputs]
    pub struct Out {
        pub total: i64,
    }

    /// Behaves according to `mode`, so each rule can be driven by inputs.
    #[bk_plugin(version = "0.0.1", inputs = In, context_inputs = Ctx, outputs = Out)]
    pub struct Probe;

    impl Plugin for Probe {
        #[allow(clippy::panic)]
        async fn execute(&self, inputs: Self::Inputs, ctx: &mut Context<Self>) -> Step<Self> {
            ctx.store("seen", ctx.invoke_count())?;
            ctx.set_output("partial", true)?;
            let seconds = u64::try_from(inputs.n).unwrap_or(0);
            match inputs.mode.as_str() {
                "poll" => Ok(plugin::Next::Poll(Duration::from_secs(seconds))),
                "callback" => Ok(plugin::Next::Callback),
                "error" => Err(PluginError::new("nope")),
                "panic" => panic!("exploded"),
                _ => Ok(plugin::Next::Done(Out { total: inputs.n })),
            }
        }
    }

    async fn run(input: StepInput) -> StepOutcome {
        run_step(
            &Probe,
            &ModelSchemas::of::<Probe>(),
            input,
            Arc::new(NoCallbacks),
        )
        .await
    }

    fn first(inputs: Value) -> StepInput {
        StepInput::first("t".repeat(32), inputs, json!({"who": "me"}))
    }

    fn rerun(inputs: Value, state: State) -> StepInput {
        let mut input = first(inputs);
        input.state = state;
        input.invoke_count = 2;
        input.storage = json!({"before": 1})
            .as_object()
            .cloned()
            .unwrap_or_default();
        input.outputs = json!({"kept": 1}).as_object().cloned().unwrap_or_default();
        input
    }

    #[tokio::test]
    async fn invalid_inputs_fail_with_the_inputs_prefix_and_the_field() {
        let outcome = run(first(json!({"n": "x"}))).await;
        assert_eq!(outcome.failure(), Some(FailureKind::InvalidInputs));
        let err = outcome.err().unwrap_or_default();
        assert_eq!(
            err,
            "inputs validation error: 1 validation error for In\nn\n  value is not a valid integer (type=type_error.integer)"
        );
        assert!(!outcome.executed);
    }

    #[tokio::test]
    async fn invalid_context_fails_with_the_context_prefix() {
        let mut input = first(json!({"n": 1}));
        input.context = json!({});
        let outcome = run(input).await;
        assert_eq!(outcome.failure(), Some(FailureKind::InvalidContext));
        assert_eq!(
            outcome.err(),
            Some(
                "context validation error: 1 validation error for Ctx\nwho\n  field required (type=value_error.missing)"
            )
        );
    }

    #[tokio::test]
    async fn invalid_inputs_and_context_are_reported_together() {
        let mut input = first(json!({"n": "x"}));
        input.context = json!({"who": null});
        let outcome = run(input).await;
        assert_eq!(outcome.failure(), Some(FailureKind::InvalidInputs));
        assert_eq!(
            outcome.err(),
            Some(
                "inputs validation error: 1 validation error for In\nn\n  value is not a valid integer (type=type_error.integer)\n\
                 context validation error: 1 validation error for Ctx\nwho\n  none is not an allowed value (type=type_error.none.not_allowed)"
            )
        );
        assert!(!outcome.executed);
    }

    #[tokio::test]
    async fn returning_without_waiting_is_success_with_outputs() {
        let outcome = run(first(json!({"n": "4"}))).await;
        assert_eq!(outcome.state(), State::Success);
        assert_eq!(
            Value::Object(outcome.outputs),
            json!({"partial": true, "total": 4})
        );
    }

    #[tokio::test]
    async fn next_poll_is_poll_after_the_interval() {
        let outcome = run(first(json!({"n": 7, "mode": "poll"}))).await;
        assert_eq!(outcome.next, Next::Poll(Duration::from_secs(7)));
    }

    #[tokio::test]
    async fn next_callback_is_callback() {
        let outcome = run(first(json!({"n": 0, "mode": "callback"}))).await;
        assert_eq!(outcome.next, Next::Callback);
        assert_eq!(outcome.outputs.get("partial"), Some(&json!(true)));
    }

    #[tokio::test]
    async fn plugin_error_on_the_first_run_is_execute_failed() {
        let outcome = run(first(json!({"n": 0, "mode": "error"}))).await;
        assert_eq!(outcome.err(), Some("plugin execute failed: nope"));
        assert_eq!(outcome.failure(), Some(FailureKind::Plugin));
    }

    #[tokio::test]
    async fn panic_on_the_first_run_is_an_unexpected_error_with_its_message() {
        let outcome = run(first(json!({"n": 0, "mode": "panic"}))).await;
        assert_eq!(
            outcome.err(),
            Some("plugin execute raise unexpected error: exploded")
        );
        assert_eq!(outcome.failure(), Some(FailureKind::Unexpected));
    }

    #[tokio::test]
    async fn plugin_error_on_a_rerun_keeps_that_runs_storage_and_outputs() {
        let outcome = run(rerun(json!({"n": 0, "mode": "error"}), State::Poll)).await;
        assert_eq!(outcome.err(), Some("plugin schedule failed: nope"));
        assert_eq!(outcome.storage.get("seen"), Some(&json!(2)));
        assert_eq!(outcome.outputs.get("partial"), Some(&json!(true)));
    }

    #[tokio::test]
    async fn panic_on_a_rerun_discards_that_runs_storage_and_outputs() {
        let outcome = run(rerun(json!({"n": 0, "mode": "panic"}), State::Callback)).await;
        assert_eq!(
            outcome.err(),
            Some("plugin schedule raise unexpected error: exploded")
        );
        assert_eq!(Value::Object(outcome.storage), json!({"before": 1}));
        assert_eq!(Value::Object(outcome.outputs), json!({"kept": 1}));
    }

    #[tokio::test]
    async fn a_rerun_sees_its_state_count_and_previous_storage() {
        let outcome = run(rerun(json!({"n": 5}), State::Poll)).await;
        assert_eq!(outcome.state(), State::Success);
        assert_eq!(outcome.storage.get("before"), Some(&json!(1)));
        assert_eq!(outcome.storage.get("seen"), Some(&json!(2)));
        assert_eq!(
            outcome.outputs.get("kept"),
            Some(&json!(1)),
            "partial outputs accumulate across runs"
        );
    }

    #[test]
    fn outputs_that_do_not_fit_the_model_fail_naming_the_field() {
        let shape = ModelShape::of::<Out>();
        let wrong = json!({"total": "many"})
            .as_object()
            .cloned()
            .unwrap_or_default();
        let next = check_outputs::<Out>(&wrong, &shape);
        assert_eq!(
            next,
            Next::Fail {
                kind: FailureKind::InvalidOutputs,
                err: "outputs validation error: 1 validation error for Out\ntotal\n  value is not a valid integer (type=type_error.integer)".into()
            }
        );
    }

    #[test]
    fn typed_outputs_come_first_and_the_outputs_set_so_far_stay() {
        let mut outputs = json!({"partial": 1, "total": 0})
            .as_object()
            .cloned()
            .unwrap_or_default();
        assert_eq!(add_outputs(&mut outputs, &Out { total: 9 }), Ok(()));
        let keys: Vec<_> = outputs.keys().cloned().collect();
        assert_eq!(
            keys,
            ["total", "partial"],
            "model fields first, then the others"
        );
        assert_eq!(
            Value::Object(outputs.clone()),
            json!({"partial": 1, "total": 9})
        );
        assert_eq!(
            add_outputs(&mut outputs, &"text"),
            Err("outputs validation error: the outputs must be a JSON object, not \"text\"".into())
        );
    }

    #[tokio::test]
    async fn waiting_does_not_check_outputs_yet() {
        let outcome = run(first(json!({"n": 1, "mode": "poll"}))).await;
        assert_eq!(outcome.state(), State::Poll);
        assert!(outcome.err().is_none());
    }
}
