//! What one step is given (`StepInput`: which run it is, the invocation's inputs, storage and
//! partial outputs, the callback that woke it; [`StepServices`]: what the runtime lends it) and
//! the [`Run`] a plugin sees. The author-facing `Context` that wraps a `StepInput` lives in
//! `plugin.rs`, next to `Plugin`.

use std::sync::Arc;

use serde_json::{Map, Value};

use crate::bkapi::{BkApiTransport, NoBkApi};
use crate::callback::{CallbackIssuer, NoCallbacks};
use crate::state::State;

/// What the runtime lends a step: the issuer of callback URLs and the transport of BK API
/// calls. Cheap to clone.
#[derive(Clone)]
pub struct StepServices {
    /// Issues the URLs of `prepare_callback`.
    pub callbacks: Arc<dyn CallbackIssuer>,
    /// Sends the calls of `ctx.bkapi()`.
    pub bkapi: Arc<dyn BkApiTransport>,
}

impl StepServices {
    /// Services that refuse: no callbacks, no BK API calls.
    pub fn none() -> Self {
        Self {
            callbacks: Arc::new(NoCallbacks),
            bkapi: Arc::new(NoBkApi),
        }
    }
}

impl std::fmt::Debug for StepServices {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepServices").finish_non_exhaustive()
    }
}

/// The callback that woke a CALLBACK re-run.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackDelivery {
    /// The id `prepare_callback` returned.
    pub id: String,
    /// The JSON body the other system posted.
    pub data: Value,
}

/// Which run of `execute` this is: the only three states `execute` can be called in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Run {
    /// The first run of a new invocation (the protocol's EMPTY).
    First,
    /// A re-run after [`crate::Next::Poll`] (POLL).
    Poll,
    /// A re-run woken by a callback (CALLBACK); [`crate::Context::callback_data`] reads what arrived.
    Callback,
}

/// Everything a step needs to know about its invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct StepInput {
    /// The invocation's trace id.
    pub trace_id: String,
    /// EMPTY for the first run, POLL or CALLBACK for a re-run.
    pub state: State,
    /// 1 for the first run.
    pub invoke_count: u32,
    /// The invoke's `inputs`, as the caller sent them.
    pub inputs: Value,
    /// The invoke's `context`, as the caller sent it.
    pub context: Value,
    /// The storage persisted by the previous run (empty on the first).
    pub storage: Map<String, Value>,
    /// The outputs persisted by the previous run (empty on the first).
    pub outputs: Map<String, Value>,
    /// The delivered callback, on a CALLBACK re-run.
    pub callback: Option<CallbackDelivery>,
}

impl StepInput {
    /// The first run of a new invocation.
    pub fn first(trace_id: impl Into<String>, inputs: Value, context: Value) -> Self {
        Self {
            trace_id: trace_id.into(),
            state: State::Empty,
            invoke_count: 1,
            inputs,
            context,
            storage: Map::new(),
            outputs: Map::new(),
            callback: None,
        }
    }

    pub(crate) fn is_first_run(&self) -> bool {
        self.state == State::Empty
    }
}
