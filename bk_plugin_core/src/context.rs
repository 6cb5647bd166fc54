//! The context of one step: what `execute` knows about its invocation (which run it is, the
//! context inputs, the callback that woke it), its storage and its partial outputs.

use std::sync::Arc;

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

/// Which run of `execute` this is: the only three states `execute` can be called in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Run {
    /// The first run of a new invocation (the protocol's EMPTY).
    First,
    /// A re-run after [`crate::Next::Poll`] (POLL).
    Poll,
    /// A re-run woken by a callback (CALLBACK); [`Context::callback_data`] reads what arrived.
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
            issuer,
        }
    }

    pub(crate) fn into_parts(self) -> (Map<String, Value>, Map<String, Value>) {
        (self.storage, self.outputs)
    }

    /// The invocation's trace id (32 lowercase hex characters).
    pub fn trace_id(&self) -> &str {
        &self.trace_id
    }

    /// Which run this is: [`Run::First`], or a re-run after a poll or a callback.
    pub fn run(&self) -> Run {
        match self.state {
            State::Poll => Run::Poll,
            State::Callback => Run::Callback,
            // The executor only ever builds a context for EMPTY, POLL and CALLBACK.
            State::Empty | State::Success | State::Fail => Run::First,
        }
    }

    /// 1 on the first run, one more on every re-run.
    pub fn invoke_count(&self) -> u32 {
        self.invoke_count
    }

    /// The validated context inputs. Read-only: they are restored from the invoke on every run.
    pub fn data(&self) -> &P::ContextInputs {
        &self.data
    }

    /// The callback that woke this run, raw (CALLBACK re-runs only).
    pub fn callback(&self) -> Option<&CallbackDelivery> {
        self.callback.as_ref()
    }

    /// The id of the callback that woke this run (the `id` of a [`CallbackPreparation`]);
    /// `None` on any other run.
    pub fn callback_id(&self) -> Option<&str> {
        self.callback.as_ref().map(|c| c.id.as_str())
    }

    /// The data the other system posted to the callback that woke this run, as `T`.
    ///
    /// An error (which `?` turns into a FAIL naming the problem) when this run was not woken by
    /// a callback, or when the data does not fit `T`: use `Value` to take any JSON.
    pub fn callback_data<T: DeserializeOwned>(&self) -> Result<T, PluginError> {
        let Some(callback) = &self.callback else {
            return Err(PluginError::new(
                "no callback woke this run: callback data is only there on Run::Callback",
            ));
        };
        from_json(&callback.data).map_err(|e| PluginError::new(format!("callback data {e}")))
    }

    /// The plugin's own JSON storage, persisted after every run.
    pub fn storage(&self) -> &Map<String, Value> {
        &self.storage
    }

    /// Mutable access to the storage.
    pub fn storage_mut(&mut self) -> &mut Map<String, Value> {
        &mut self.storage
    }

    /// Reads a storage key as `T`: `Ok(None)` when the key is absent, an error when it holds
    /// something that is not a `T` (never a silent `None`, so a mismatch cannot reset a counter).
    pub fn stored<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PluginError> {
        read_key(&self.storage, "storage", key)
    }

    /// Writes a storage key and returns the value, so a counter is one line:
    /// `let n = ctx.store("n", ctx.stored::<i64>("n")?.unwrap_or(0) + 1)?;`
    pub fn store<T: Serialize>(&mut self, key: &str, value: T) -> Result<T, PluginError> {
        let json = serde_json::to_value(&value)?;
        self.storage.insert(key.to_string(), json);
        Ok(value)
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

    /// Reads one output set so far (by this run or an earlier one) as `T`: `Ok(None)` when it
    /// is not set, an error when it is not a `T`.
    pub fn output<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, PluginError> {
        read_key(&self.outputs, "output", key)
    }

    /// A new callback id and the URL for another system to POST its result to; return
    /// [`crate::Next::Callback`] to wait for it.
    pub fn prepare_callback(&mut self) -> Result<CallbackPreparation, PluginError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let url = self.issuer.issue(&self.trace_id, &id)?;
        Ok(CallbackPreparation { id, url })
    }
}

/// `map[key]` as `T`; `what` names the map in the error (`storage key "n" ...`).
fn read_key<T: DeserializeOwned>(
    map: &Map<String, Value>,
    what: &str,
    key: &str,
) -> Result<Option<T>, PluginError> {
    let Some(value) = map.get(key) else {
        return Ok(None);
    };
    from_json(value)
        .map(Some)
        .map_err(|e| PluginError::new(format!("{what} key \"{key}\" {e}")))
}

/// `value` as `T`, or the problem with its path: `does not fit the type asked for: at .a: ...`.
fn from_json<T: DeserializeOwned>(value: &Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if path == "." {
            format!("does not fit the type asked for: {inner}")
        } else {
            format!("does not fit the type asked for: at {path}: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::callback::NoCallbacks;
    use crate::model::Empty;
    use serde_json::json;

    struct Models;

    impl PluginModels for Models {
        type Inputs = Empty;
        type ContextInputs = Empty;
        type Outputs = Empty;
    }

    fn context(state: State, storage: Value, callback: Option<Value>) -> Context<Models> {
        Context::new(
            "t".repeat(32),
            state,
            2,
            Empty {},
            storage.as_object().cloned().unwrap_or_default(),
            Map::new(),
            callback.map(|data| CallbackDelivery {
                id: "c".repeat(32),
                data,
            }),
            Arc::new(NoCallbacks),
        )
    }

    #[test]
    fn a_stored_value_of_another_type_is_an_error_not_a_missing_key() {
        let ctx = context(State::Poll, json!({"n": "three", "m": 3}), None);
        assert_eq!(ctx.stored::<i64>("m"), Ok(Some(3)));
        assert_eq!(ctx.stored::<i64>("absent"), Ok(None));
        assert_eq!(
            ctx.stored::<i64>("n").map_err(|e| e.to_string()),
            Err(
                "storage key \"n\" does not fit the type asked for: invalid type: string \"three\", expected i64"
                    .into()
            )
        );
    }

    #[test]
    fn callback_data_is_typed_and_a_mismatch_names_the_path() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        struct Report {
            status: String,
        }
        let ctx = context(State::Callback, json!({}), Some(json!({"status": "ok"})));
        assert_eq!(ctx.run(), Run::Callback);
        assert_eq!(
            ctx.callback_data::<Report>(),
            Ok(Report {
                status: "ok".into()
            })
        );
        assert_eq!(ctx.callback_id(), Some("c".repeat(32).as_str()));
        let ctx = context(State::Callback, json!({}), Some(json!({"status": 7})));
        assert_eq!(
            ctx.callback_data::<Report>().map_err(|e| e.to_string()),
            Err("callback data does not fit the type asked for: at status: invalid type: integer `7`, expected a string".into())
        );
        let ctx = context(State::Poll, json!({}), None);
        assert_eq!(ctx.run(), Run::Poll);
        assert!(ctx.callback_data::<Value>().is_err());
        assert_eq!(ctx.callback_id(), None);
    }
}
