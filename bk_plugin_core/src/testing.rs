//! A test harness for plugin authors: drive one version through its runs (first, poll,
//! callback) in-process, with no server and no database, and inspect every step.
//!
//! Every step returns `Result<_, HarnessError>`, so a test written with `?` stops at a step
//! that could not run (a `poll` while the plugin waits for a callback, say) instead of
//! carrying on; a step whose plugin *failed* is `Ok` and shows in [`Harness::state`] and
//! [`Harness::err`].
//!
//! ```
//! use bk_plugin_core::prelude::*;
//!
//! #[inputs]
//! pub struct Inputs {
//!     pub rounds: u32,
//! }
//!
//! #[bk_plugin(version = "1.0.0", inputs = Inputs)]
//! pub struct Waiter;
//!
//! impl Plugin for Waiter {
//!     async fn execute(&self, inputs: Self::Inputs, ctx: &mut Context<Self>) -> Step<Self> {
//!         if ctx.invoke_count() <= inputs.rounds {
//!             return Ok(Next::Poll(Duration::from_secs(5)));
//!         }
//!         Ok(Next::Done(Empty {}))
//!     }
//! }
//!
//! async fn waits_one_round() -> Result<(), HarnessError> {
//!     let mut harness = Harness::new(Waiter);
//!     harness.invoke(json!({"rounds": "1"}), json!({})).await?;
//!     assert_eq!(harness.state(), State::Poll);
//!     assert_eq!(harness.poll_interval(), Some(Duration::from_secs(5)));
//!     harness.poll().await?;
//!     assert_eq!(harness.state(), State::Success);
//!     Ok(())
//! }
//! # let rt = tokio::runtime::Builder::new_current_thread().build();
//! # let Ok(rt) = rt else { return };
//! # assert_eq!(rt.block_on(waits_one_round()), Ok(()));
//! ```

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Map, Value};

pub use crate::bkapi::mock::{BkApiMock, When};
use crate::callback::{CallbackIssuer, IssueCallbackError};
use crate::context::CallbackDelivery;
use crate::executor::{ModelSchemas, Next, StepInput, StepOutcome, StepServices, run_step};
use crate::plugin::Plugin;
use crate::state::State;

/// Why the harness refused a step, or could not read what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HarnessError {
    /// `poll`, `callback` or `set_storage` before `invoke`.
    #[error("invoke first")]
    NotInvoked,
    /// `invoke` a second time: one harness drives one invocation (make another harness).
    #[error("this harness has already invoked; use a new Harness for another invocation")]
    AlreadyInvoked,
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
    /// `typed_outputs` when the outputs so far do not fit the Outputs model.
    #[error("the outputs do not fit the Outputs model: {0}")]
    Outputs(String),
    /// `invoke` on a plugin the server would refuse to start with (a schema keyword validation
    /// does not check, `enable_plugin_callback` without `plugin_callback_info`): the same
    /// start-up checks, so the author's own tests catch it.
    #[error("the server would refuse this plugin: {0}")]
    Refused(String),
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
    bkapi: BkApiMock,
    trace_id: String,
    inputs: Value,
    context: Value,
    state: Option<State>,
    invoke_count: u32,
    storage: Map<String, Value>,
    outputs: Map<String, Value>,
    last: Option<StepOutcome>,
    /// What the server's start-up checks say against this plugin, if anything.
    refused: Option<String>,
}

impl<P: Plugin> Harness<P> {
    /// A harness around this plugin instance.
    ///
    /// The server's start-up checks on the plugin's models run here too; if the server would
    /// refuse the plugin, [`Harness::invoke`] returns [`HarnessError::Refused`].
    pub fn new(plugin: P) -> Self {
        let schemas = ModelSchemas::of::<P>();
        let type_name = std::any::type_name::<P>();
        let (version, enable_plugin_callback) = crate::registry::record_named(type_name)
            .map_or(("(not registered)", false), |record| {
                (record.version, record.enable_plugin_callback)
            });
        let refused =
            crate::registry::check_schemas(type_name, version, enable_plugin_callback, &schemas)
                .err()
                .map(|e| e.to_string());
        Self {
            plugin,
            schemas,
            refused,
            issuer: Arc::new(Recorder::default()),
            bkapi: BkApiMock::new(),
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
    pub async fn invoke(
        &mut self,
        inputs: Value,
        context: Value,
    ) -> Result<&StepOutcome, HarnessError> {
        if let Some(refused) = &self.refused {
            return Err(HarnessError::Refused(refused.clone()));
        }
        if self.state.is_some() {
            return Err(HarnessError::AlreadyInvoked);
        }
        self.inputs = inputs;
        self.context = context;
        let input = StepInput::first(
            self.trace_id.clone(),
            self.inputs.clone(),
            self.context.clone(),
        );
        Ok(self.step(input).await)
    }

    /// Runs the POLL re-run (without waiting for the interval).
    pub async fn poll(&mut self) -> Result<&StepOutcome, HarnessError> {
        self.expect_state(State::Poll)?;
        let input = self.rerun_input(State::Poll, None);
        Ok(self.step(input).await)
    }

    /// Delivers `data` to the callback the plugin prepared last and runs the CALLBACK re-run
    /// (see [`Harness::callback_with_id`] for another id).
    pub async fn callback(&mut self, data: Value) -> Result<&StepOutcome, HarnessError> {
        if self.state.is_none() {
            return Err(HarnessError::NotInvoked);
        }
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

    /// The persisted outputs as the typed Outputs model (after SUCCESS they always fit).
    pub fn typed_outputs(&self) -> Result<P::Outputs, HarnessError> {
        serde_json::from_value(Value::Object(self.outputs.clone()))
            .map_err(|e| HarnessError::Outputs(e.to_string()))
    }

    /// The persisted storage.
    pub fn storage(&self) -> &Map<String, Value> {
        &self.storage
    }

    /// Overwrites one storage key before the next re-run, e.g. to test how a version reads
    /// storage an earlier build of it wrote. Before `invoke` it is [`HarnessError::NotInvoked`]:
    /// the first run always starts with empty storage, on the server too.
    pub fn set_storage(&mut self, key: &str, value: Value) -> Result<(), HarnessError> {
        if self.state.is_none() {
            return Err(HarnessError::NotInvoked);
        }
        self.storage.insert(key.to_string(), value);
        Ok(())
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

    /// The stand-in for BlueKing APIs that `ctx.bkapi()` calls reach: add its answers before
    /// the step that calls, read [`BkApiMock::calls`] after. With no rule, every call fails
    /// naming the call; nothing leaves the process.
    pub fn bkapi(&self) -> &BkApiMock {
        &self.bkapi
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
        let services = StepServices {
            callbacks: self.issuer.clone(),
            bkapi: self.bkapi.transport(),
        };
        let outcome = run_step(&self.plugin, &self.schemas, input, services).await;
        if outcome.executed {
            self.invoke_count = count;
        }
        self.state = Some(outcome.state());
        self.storage = outcome.storage.clone();
        self.outputs = outcome.outputs.clone();
        self.last.insert(outcome)
    }
}
