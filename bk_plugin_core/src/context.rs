//! The context of one step: what `execute` knows about its invocation and how it asks to wait.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::callback::{CallbackIssuer, CallbackPreparation};
use crate::plugin::{PluginError, PluginModels};
use crate::state::State;

/// The callback that woke a CALLBACK re-run.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackDelivery {
    /// The id `prepare_callback` returned.
    pub id: String,
    /// The JSON body the other system posted.
    pub data: Value,
}

/// What the step asked for before returning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wait {
    Nothing,
    Poll(Duration),
    Callback,
}

/// The context `execute` receives.
pub struct Context<P: PluginModels> {
    trace_id: String,
    state: State,
    invoke_count: u32,
    data: P::ContextInputs,
    storage: Map<String, Value>,
    outputs: Map<String, Value>,
    callback: Option<CallbackDelivery>,
    pub(crate) wait: Wait,
    issuer: Arc<dyn CallbackIssuer>,
}

impl<P: PluginModels> Context<P> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        trace_id: String,
        state: State,
        invoke_count: u32,
        data: P::ContextInputs,
        storage: Map<String, Value>,
        outputs: Map<String, Value>,
        callback: Option<CallbackDelivery>,
        issuer: Arc<dyn CallbackIssuer>,
    ) -> Self {
        Self {
            trace_id,
            state,
            invoke_count,
            data,
            storage,
            outputs,
            callback,
            wait: Wait::Nothing,
            issuer,
        }
    }

    pub(crate) fn into_parts(self) -> (Map<String, Value>, Map<String, Value>, Wait) {
        (self.storage, self.outputs, self.wait)
    }

    /// The invocation's trace id (32 lowercase hex characters).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// EMPTY on the first run, POLL or CALLBACK on a re-run.
    pub fn state(&self) -> State {
        self.state
    }

    /// 1 on the first run, one more on every re-run.
    pub fn invoke_count(&self) -> u32 {
        self.invoke_count
    }

    /// The validated context inputs. Read-only: they are restored from the invoke on every run.
    pub fn data(&self) -> &P::ContextInputs {
        &self.data
    }

    /// The callback that woke this run (CALLBACK re-runs only).
    pub fn callback(&self) -> Option<&CallbackDelivery> {
        self.callback.as_ref()
    }

    /// The plugin's own JSON storage, persisted after every run.
    pub fn storage(&self) -> &Map<String, Value> {
        &self.storage
    }

    /// Mutable access to the storage.
    pub fn storage_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.storage
    }

    /// Reads a storage key as `T`; `None` when absent or of another shape.
    pub fn stored<T: DeserializeOwned>(&self, key: &str) -> Option<T> {
        self.storage.get(key).and_then(|v| T::deserialize(v).ok())
    }

    /// Writes a storage key.
    pub fn store(&mut self, key: &str, value: impl Serialize) -> Result<(), PluginError> {
        let value = serde_json::to_value(value)?;
        self.storage.insert(key.to_string(), value);
        Ok(())
    }

    /// The outputs so far, as raw JSON. Partial outputs are allowed between runs; when the
    /// invocation succeeds they must fit the Outputs model.
    pub fn outputs(&self) -> &Map<String, Value> {
        &self.outputs
    }

    /// Mutable access to the raw outputs.
    pub fn outputs_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.outputs
    }

    /// Sets one output key.
    pub fn set_output(&mut self, key: &str, value: impl Serialize) -> Result<(), PluginError> {
        let value = serde_json::to_value(value)?;
        self.outputs.insert(key.to_string(), value);
        Ok(())
    }

    /// Sets every field of the typed outputs (keys set earlier and not in the model are kept).
    pub fn set_outputs(&mut self, outputs: &P::Outputs) -> Result<(), PluginError> {
        match serde_json::to_value(outputs)? {
            Value::Object(map) => {
                self.outputs.extend(map);
                Ok(())
            }
            other => Err(PluginError::new(format!(
                "outputs must serialize to a JSON object, not {other}"
            ))),
        }
    }

    /// Reads the outputs so far as the typed model.
    pub fn typed_outputs(&self) -> Result<P::Outputs, PluginError> {
        Ok(serde_json::from_value(Value::Object(self.outputs.clone()))?)
    }

    /// Runs `execute` again after `seconds` (negative means 0). Replaces an earlier
    /// `wait_callback` in the same run.
    pub fn wait_poll(&mut self, seconds: i64) {
        let seconds = u64::try_from(seconds).unwrap_or(0);
        self.wait = Wait::Poll(Duration::from_secs(seconds));
    }

    /// Like [`Context::wait_poll`] with sub-second precision.
    pub fn wait_poll_for(&mut self, interval: Duration) {
        self.wait = Wait::Poll(interval);
    }

    /// Runs `execute` again when the callback URL is posted. Replaces an earlier `wait_poll`.
    pub fn wait_callback(&mut self) {
        self.wait = Wait::Callback;
    }

    /// A new callback id and the URL for another system to POST its result to.
    pub fn prepare_callback(&mut self) -> Result<CallbackPreparation, PluginError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let url = self.issuer.issue(&self.trace_id, &id)?;
        Ok(CallbackPreparation { id, url })
    }
}
