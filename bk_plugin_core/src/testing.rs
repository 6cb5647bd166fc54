//! A test harness for plugin authors: drive one version through EMPTY -> POLL -> CALLBACK ->
//! terminal in-process, with no server and no database, and inspect every step.
//!
//! ```
//! use bk_plugin_core::prelude::*;
//! use bk_plugin_core::testing::Harness;
//! use serde_json::json;
//!
//! #[inputs]
//! pub struct Inputs { pub rounds: i64 }
//!
//! #[bk_plugin(version = "1.0.0", inputs = Inputs)]
//! #[derive(Default)]
//! pub struct Waiter;
//!
//! impl Plugin for Waiter {
//!     async fn execute(&self, inputs: Inputs, ctx: &mut Context<Self>) -> Result<(), PluginError> {
//!         if i64::from(ctx.invoke_count()) <= inputs.rounds {
//!             ctx.wait_poll(5);
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # tokio_test();
//! # fn tokio_test() { let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
//! # rt.block_on(async {
//! let mut harness = Harness::new(Waiter);
//! harness.invoke(json!({"rounds": "1"}), json!({})).await;
//! assert_eq!(harness.state(), State::Poll);
//! harness.poll().await.unwrap();
//! assert_eq!(harness.state(), State::Success);
//! # }); }
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

use crate::callback::{CallbackIssuer, IssueCallbackError};
use crate::context::CallbackDelivery;
use crate::executor::{ModelSchemas, Next, StepInput, StepOutcome, run_step};
use crate::plugin::Plugin;
use crate::state::State;

/// Why the harness refused a step.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HarnessError {
    /// `poll` or `callback` before `invoke`.
    #[error("invoke first")]
    NotInvoked,
    /// The invocation is not in the state this step needs.
    #[error("the invocation is in state {actual}, not {expected}")]
    WrongState {
        /// The state the step needs.
        expected: State,
        /// The state it is in.
        actual: State,
    },
    /// `callback` with no prepared callback to answer.
    #[error("the plugin has not prepared a callback")]
    NoPreparedCallback,
}

#[derive(Default)]
struct Recorder {
    issued: Mutex<Vec<(String, String)>>,
}

impl CallbackIssuer for Recorder {
    fn issue(&self, trace_id: &str, callback_id: &str) -> Result<String, IssueCallbackError> {
        if let Ok(mut issued) = self.issued.lock() {
            issued.push((trace_id.to_string(), callback_id.to_string()));
        }
        Ok(format!(
            "http://harness.invalid/bk_plugin/callback/{trace_id}-{callback_id}/"
        ))
    }
}

/// Drives one plugin through an invocation, step by step.
pub struct Harness<P: Plugin> {
    plugin: P,
    schemas: ModelSchemas,
    issuer: Arc<Recorder>,
    trace_id: String,
    inputs: Value,
    context: Value,
    state: Option<State>,
    invoke_count: u32,
    storage: Map<String, Value>,
    outputs: Map<String, Value>,
    last: Option<StepOutcome>,
}

impl<P: Plugin> Harness<P> {
    /// A harness around this plugin instance.
    pub fn new(plugin: P) -> Self {
        Self {
            plugin,
            schemas: ModelSchemas::of::<P>(),
            issuer: Arc::new(Recorder::default()),
            trace_id: uuid::Uuid::new_v4().simple().to_string(),
            inputs: Value::Null,
            context: Value::Null,
            state: None,
            invoke_count: 0,
            storage: Map::new(),
            outputs: Map::new(),
            last: None,
        }
    }

    /// Runs the first step with these `inputs` and `context`, as `POST invoke` would.
    pub async fn invoke(&mut self, inputs: Value, context: Value) -> &StepOutcome {
        self.inputs = inputs;
        self.context = context;
        let input = StepInput::first(
            self.trace_id.clone(),
            self.inputs.clone(),
            self.context.clone(),
        );
        self.step(input).await
    }

    /// Runs the POLL re-run (without waiting for the interval).
    pub async fn poll(&mut self) -> Result<&StepOutcome, HarnessError> {
        self.expect_state(State::Poll)?;
        let input = self.rerun_input(State::Poll, None);
        Ok(self.step(input).await)
    }

    /// Delivers `data` to the callback the plugin prepared last and runs the CALLBACK re-run.
    pub async fn callback(&mut self, data: Value) -> Result<&StepOutcome, HarnessError> {
        let id = self
            .prepared_callbacks()
            .last()
            .cloned()
            .ok_or(HarnessError::NoPreparedCallback)?;
        self.callback_with_id(&id, data).await
    }

    /// Delivers `data` under an explicit callback id and runs the CALLBACK re-run.
    pub async fn callback_with_id(
        &mut self,
        id: &str,
        data: Value,
    ) -> Result<&StepOutcome, HarnessError> {
        self.expect_state(State::Callback)?;
        let delivery = CallbackDelivery {
            id: id.to_string(),
            data,
        };
        let input = self.rerun_input(State::Callback, Some(delivery));
        Ok(self.step(input).await)
    }

    /// The current state (EMPTY before `invoke`).
    pub fn state(&self) -> State {
        self.state.unwrap_or(State::Empty)
    }

    /// The persisted outputs.
    pub fn outputs(&self) -> &Map<String, Value> {
        &self.outputs
    }

    /// The persisted storage.
    pub fn storage(&self) -> &Map<String, Value> {
        &self.storage
    }

    /// The `err` of the last step, if it failed.
    pub fn err(&self) -> Option<&str> {
        self.last.as_ref().and_then(StepOutcome::err)
    }

    /// The interval the plugin asked for, when it is waiting to poll.
    pub fn poll_interval(&self) -> Option<Duration> {
        match self.last.as_ref().map(|o| &o.next) {
            Some(Next::Poll(after)) => Some(*after),
            _ => None,
        }
    }

    /// How many times `execute` has run.
    pub fn invoke_count(&self) -> u32 {
        self.invoke_count
    }

    /// The trace id of this invocation.
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// The callback ids the plugin prepared, oldest first.
    pub fn prepared_callbacks(&self) -> Vec<String> {
        self.issuer
            .issued
            .lock()
            .map(|issued| issued.iter().map(|(_, id)| id.clone()).collect())
            .unwrap_or_default()
    }

    fn expect_state(&self, expected: State) -> Result<(), HarnessError> {
        match self.state {
            None => Err(HarnessError::NotInvoked),
            Some(actual) if actual != expected => {
                Err(HarnessError::WrongState { expected, actual })
            }
            Some(_) => Ok(()),
        }
    }

    fn rerun_input(&self, state: State, callback: Option<CallbackDelivery>) -> StepInput {
        StepInput {
            trace_id: self.trace_id.clone(),
            state,
            invoke_count: self.invoke_count + 1,
            inputs: self.inputs.clone(),
            context: self.context.clone(),
            storage: self.storage.clone(),
            outputs: self.outputs.clone(),
            callback,
        }
    }

    async fn step(&mut self, input: StepInput) -> &StepOutcome {
        let count = input.invoke_count;
        let issuer: Arc<dyn CallbackIssuer> = self.issuer.clone();
        let outcome = run_step(&self.plugin, &self.schemas, input, issuer).await;
        if outcome.executed {
            self.invoke_count = count;
        }
        self.state = Some(outcome.state());
        self.storage = outcome.storage.clone();
        self.outputs = outcome.outputs.clone();
        self.last.insert(outcome)
    }
}
