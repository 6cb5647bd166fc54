//! Re-running one claimed invocation and recording how its step ended.

use std::sync::Arc;
use std::time::Duration;

use bk_plugin_core::executor::{FailureKind, Next, StepInput, StepOutcome};
use bk_plugin_core::{CallbackDelivery, State};
use serde_json::{Map, Value};

use crate::app::{AppState, wait_times};
use crate::metrics::StepTimer;
use crate::store::entity::schedule;
use crate::store::{FinishedStep, StoreError, Transition, now_ms};

use super::lease_keeper::LeaseKeeper;

/// Runs the step of a row this worker leased, then moves the row on (guarded by the lease).
pub(crate) async fn run_claimed(
    state: &Arc<AppState>,
    keeper: &LeaseKeeper,
    owner: &str,
    row: schedule::Model,
) {
    let trace_id = row.trace_id.clone();
    let Some(left) = State::from_i32(row.state).filter(|s| !s.is_terminal()) else {
        let _ = state.store.release(&trace_id, owner).await;
        return;
    };
    let transition = match prepare(state, &row, left).await {
        Ok(Prepared::Run(input, consumed)) => {
            let (_kept, mut lost) = keeper.keep(&trace_id, owner);
            let limit = state.config.step_timeout;
            // The step ends one of three ways: it returns; its lease is lost (another worker owns
            // the invocation now, so this run is abandoned and records nothing); or it runs past
            // BK_PLUGIN_STEP_TIMEOUT_SECONDS and fails.
            let outcome = tokio::select! {
                outcome = tokio::time::timeout(limit, run_step(state, &row, *input)) => outcome,
                Ok(()) = &mut lost => {
                    tracing::warn!(trace_id = %trace_id, "lease lost mid-step; abandoning this run");
                    return;
                }
            };
            match outcome {
                Ok(outcome) => transition_for(state, &row, outcome, consumed),
                Err(_) => {
                    let err = format!(
                        "plugin schedule raise unexpected error: the step ran longer than {} seconds (BK_PLUGIN_STEP_TIMEOUT_SECONDS)",
                        limit.as_secs()
                    );
                    fail(state, &row, err)
                }
            }
        }
        Ok(Prepared::Finish(transition)) => transition,
        Err(e) => {
            tracing::warn!(trace_id = %trace_id, error = %e, "cannot prepare the step; giving the row back");
            let _ = state.store.release(&trace_id, owner).await;
            return;
        }
    };
    record(state, owner, &row, left, transition).await;
}

enum Prepared {
    Run(Box<StepInput>, Option<String>),
    Finish(Transition),
}

/// FAIL without running the step, keeping what is stored; the finish callback still fires.
fn fail(state: &AppState, row: &schedule::Model, err: String) -> Transition {
    Transition {
        state: State::Fail,
        invoke_count: row.invoke_count,
        storage: None,
        outputs: None,
        err: Some(err),
        run_at: None,
        callback_deadline: None,
        consumed_callback: None,
        notify: wants_finish_callback(state, row),
    }
}

/// Keep waiting for a callback until `deadline` (woken with nothing to consume).
fn keep_waiting(row: &schedule::Model, deadline: i64) -> Transition {
    Transition {
        state: State::Callback,
        invoke_count: row.invoke_count,
        storage: None,
        outputs: None,
        err: None,
        run_at: Some(deadline),
        callback_deadline: Some(deadline),
        consumed_callback: None,
        notify: false,
    }
}

fn object(text: &str, what: &str, trace_id: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(format!("stored {what} of {trace_id} is not a JSON object")),
    }
}

async fn prepare(
    state: &AppState,
    row: &schedule::Model,
    left: State,
) -> Result<Prepared, StoreError> {
    if state.registry.get(&row.plugin_version).is_none() {
        let err = format!(
            "plugin version {} is not registered in this binary: it was removed or renamed while invocations of it were waiting",
            row.plugin_version
        );
        return Ok(Prepared::Finish(fail(state, row, err)));
    }
    let mut delivery = None;
    if left == State::Callback {
        match state.store.oldest_callback(&row.trace_id).await? {
            Some(cb) => {
                let data = serde_json::from_str(&cb.data).unwrap_or(Value::Null);
                delivery = Some(CallbackDelivery {
                    id: cb.callback_id,
                    data,
                });
            }
            None => {
                let deadline = row.callback_deadline.unwrap_or(0);
                if now_ms() >= deadline {
                    let waited = state.callback_timeout_of(&row.plugin_version).as_secs();
                    let err =
                        format!("callback timeout: no callback arrived within {waited} seconds");
                    return Ok(Prepared::Finish(fail(state, row, err)));
                }
                // Woken early with nothing to consume: wait on until the deadline.
                return Ok(Prepared::Finish(keep_waiting(row, deadline)));
            }
        }
    }
    let parsed = (|| {
        Ok::<_, String>((
            serde_json::from_str::<Value>(&row.inputs).map_err(|e| e.to_string())?,
            serde_json::from_str::<Value>(&row.context).map_err(|e| e.to_string())?,
            object(&row.storage, "storage", &row.trace_id)?,
            object(&row.outputs, "outputs", &row.trace_id)?,
        ))
    })();
    let (inputs, context, storage, outputs) = match parsed {
        Ok(parts) => parts,
        Err(e) => {
            let err = format!("stored invocation is corrupt: {e}");
            return Ok(Prepared::Finish(fail(state, row, err)));
        }
    };
    let consumed = delivery.as_ref().map(|d| d.id.clone());
    let input = StepInput {
        trace_id: row.trace_id.clone(),
        state: left,
        invoke_count: u32::try_from(row.invoke_count).unwrap_or(0) + 1,
        inputs,
        context,
        storage,
        outputs,
        callback: delivery,
    };
    Ok(Prepared::Run(Box::new(input), consumed))
}

async fn run_step(state: &AppState, row: &schedule::Model, input: StepInput) -> StepOutcome {
    match state.registry.get(&row.plugin_version) {
        Some(version) => {
            let outcome = {
                let _timer = StepTimer::start(&state.metrics, &row.plugin_version, true);
                version.run(input, state.issuer.clone()).await
            };
            state
                .metrics
                .count_failure(&row.plugin_version, true, outcome.failure());
            outcome
        }
        None => StepOutcome {
            next: Next::Fail {
                kind: FailureKind::Unexpected,
                err: format!("plugin version {} is not registered", row.plugin_version),
            },
            storage: input.storage,
            outputs: input.outputs,
            executed: false,
        },
    }
}

fn transition_for(
    state: &AppState,
    row: &schedule::Model,
    outcome: StepOutcome,
    consumed_callback: Option<String>,
) -> Transition {
    let invoke_count = if outcome.executed {
        row.invoke_count + 1
    } else {
        row.invoke_count
    };
    let keep_run = outcome.failure() != Some(FailureKind::Unexpected);
    let new_state = outcome.state();
    let timeout = state.callback_timeout_of(&row.plugin_version);
    let (run_at, callback_deadline) =
        wait_times(&outcome.next, timeout, now_ms()).map_or((None, None), |(r, d)| (Some(r), d));
    let notify = new_state.is_terminal() && wants_finish_callback(state, row);
    let text = if keep_run {
        state.state_text(&outcome).map(Some)
    } else {
        Ok(None)
    };
    match text {
        Ok(text) => {
            let (storage, outputs) = text.unzip();
            Transition {
                state: new_state,
                invoke_count,
                storage,
                outputs,
                err: outcome.err().map(str::to_string),
                run_at,
                callback_deadline,
                consumed_callback,
                notify,
            }
        }
        // Too large to keep: the run's storage and outputs are dropped, the invocation fails.
        Err(err) => Transition {
            consumed_callback,
            invoke_count,
            ..fail(state, row, err)
        },
    }
}

fn wants_finish_callback(state: &AppState, row: &schedule::Model) -> bool {
    let enabled = state
        .registry
        .get(&row.plugin_version)
        .is_some_and(|v| v.enable_plugin_callback());
    enabled
        && serde_json::from_str::<Value>(&row.context)
            .is_ok_and(|c| c.get("plugin_callback_info").is_some_and(Value::is_object))
}

/// Writes the transition, retrying transient database errors with backoff for as long as the
/// lease could still be ours. A lost lease means another worker took over: nothing is written.
async fn record(
    state: &AppState,
    owner: &str,
    row: &schedule::Model,
    left: State,
    transition: Transition,
) {
    let mut backoff = Duration::from_millis(50);
    let give_up = std::time::Instant::now() + state.config.lease;
    let mut transition = transition;
    let mut refused_once = false;
    loop {
        let step = FinishedStep {
            trace_id: row.trace_id.clone(),
            owner: owner.to_string(),
            left,
            transition: transition.clone(),
        };
        match state.record_step(step).await {
            Ok(true) => {
                tracing::info!(trace_id = %row.trace_id, state = %transition.state, "step recorded");
                if transition.state == State::Callback || transition.state == State::Poll {
                    state.wake.notify_one();
                }
                return;
            }
            Ok(false) => {
                tracing::warn!(trace_id = %row.trace_id, "lease lost before the step was recorded; another worker owns it now");
                return;
            }
            Err(e) if e.rejected && !refused_once => {
                // Writing the same result again cannot succeed; running the step again would
                // produce it again. The invocation fails, keeping its stored state.
                refused_once = true;
                tracing::error!(trace_id = %row.trace_id, error = %e, "the database refused the step's result; recording FAIL");
                let reason: String = e.message.chars().take(300).collect();
                transition = Transition {
                    consumed_callback: transition.consumed_callback.clone(),
                    invoke_count: transition.invoke_count,
                    ..fail(
                        state,
                        row,
                        format!(
                            "plugin schedule raise unexpected error: the step's result could not be stored: {reason}"
                        ),
                    )
                };
            }
            Err(e) if std::time::Instant::now() < give_up => {
                tracing::warn!(trace_id = %row.trace_id, error = %e, "recording the step failed; retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
            Err(e) => {
                tracing::error!(trace_id = %row.trace_id, error = %e, "recording the step failed; the lease will expire and the step runs again");
                return;
            }
        }
    }
}
