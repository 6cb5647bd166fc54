//! Re-running one claimed invocation and recording how its step ended.

use std::sync::Arc;
use std::time::Duration;

use bk_plugin_core::CallbackDelivery;
use bk_plugin_core::executor::{FailureKind, Next, StepInput, StepOutcome};

use crate::app::AppState;
use crate::metrics::StepTimer;
use crate::otel::{self, RunKind};
use crate::store::entity::schedule;
use crate::store::{StoreError, StoredState, Transition, finish_callback_receiver, now_ms};
use tracing::Instrument;

use super::lease_keeper::LeaseKeeper;

/// Runs the step of a row this worker leased, then moves the row on (guarded by the lease),
/// inside the step's span, which continues the trace stored with the invocation.
pub(crate) async fn run_claimed(
    state: &Arc<AppState>,
    keeper: &LeaseKeeper,
    owner: &str,
    row: schedule::Model,
) {
    let run = match row.state {
        StoredState::Callback => RunKind::Callback,
        _ => RunKind::Poll,
    };
    let span = otel::step_span(
        &row.plugin_version,
        run,
        i64::from(row.invoke_count) + 1,
        &row.trace_id,
    );
    otel::propagation::continue_stored(&span, row.trace_context.as_deref());
    run_claimed_in(state, keeper, owner, row, &span)
        .instrument(span.clone())
        .await;
}

async fn run_claimed_in(
    state: &Arc<AppState>,
    keeper: &LeaseKeeper,
    owner: &str,
    row: schedule::Model,
    span: &tracing::Span,
) {
    let trace_id = row.trace_id.clone();
    let left = row.state;
    if left.is_terminal() {
        let _ = state.store().release(&trace_id, owner).await;
        return;
    }
    let transition = match prepare(state, &row, left).await {
        Ok(Prepared::Run(input, consumed)) => {
            let (_kept, mut lost) = keeper.keep(&trace_id, owner);
            let limit = state.config().step_timeout;
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
            let _ = state.store().release(&trace_id, owner).await;
            return;
        }
    };
    otel::record_step_end(span, transition.state().name(), transition.error());
    record(state, owner, &row, left, transition).await;
}

enum Prepared {
    Run(Box<StepInput>, Option<String>),
    Finish(Transition),
}

/// FAIL without running the step, keeping what is stored; the finish callback still fires.
fn fail(state: &AppState, row: &schedule::Model, err: String) -> Transition {
    Transition::fail(err, row.invoke_count, None, notifies(state, row))
}

async fn prepare(
    state: &AppState,
    row: &schedule::Model,
    left: StoredState,
) -> Result<Prepared, StoreError> {
    if state.registry().get(&row.plugin_version).is_none() {
        let err = format!(
            "plugin version {} is not registered in this binary: it was removed or renamed while invocations of it were waiting",
            row.plugin_version
        );
        return Ok(Prepared::Finish(fail(state, row, err)));
    }
    let mut delivery = None;
    if left == StoredState::Callback {
        match state.store().oldest_callback(&row.trace_id).await? {
            Some(cb) => {
                let data = cb.data.value_or_null();
                delivery = Some(CallbackDelivery {
                    id: cb.callback_id,
                    data,
                });
            }
            None => {
                let deadline = row.callback_deadline.unwrap_or(0);
                if now_ms() >= deadline {
                    let waited = state
                        .invocations()
                        .callback_timeout_of(&row.plugin_version)
                        .as_secs();
                    let err =
                        format!("callback timeout: no callback arrived within {waited} seconds");
                    return Ok(Prepared::Finish(fail(state, row, err)));
                }
                // Woken early with nothing to consume: wait on until the deadline.
                return Ok(Prepared::Finish(Transition::keep_waiting(
                    deadline,
                    row.invoke_count,
                )));
            }
        }
    }
    let object = |text: &crate::store::JsonText, what: &str| {
        text.object()
            .ok_or_else(|| format!("stored {what} of {} is not a JSON object", row.trace_id))
    };
    let parsed = (|| {
        Ok::<_, String>((
            row.inputs.value()?,
            row.context.value()?,
            object(&row.storage, "storage")?,
            object(&row.outputs, "outputs")?,
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
        state: left.state(),
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
    match state.registry().get(&row.plugin_version) {
        Some(version) => {
            let outcome = {
                let _timer = StepTimer::start(state.metrics(), &row.plugin_version, true);
                version.run(input, state.step_services()).await
            };
            state
                .metrics()
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
    let notify = if outcome.state().is_terminal() {
        notifies(state, row)
    } else {
        None
    };
    let wait = state
        .invocations()
        .wait_for(&row.plugin_version, &outcome.next);
    let written = if keep_run {
        state.invocations().state_text(&outcome).map(Some)
    } else {
        Ok(None)
    };
    let transition = match (written, &outcome.next, wait) {
        // Too large to keep: the run's storage and outputs are dropped, the invocation fails.
        (Err(err), _, _) => Transition::fail(err, invoke_count, None, notifies(state, row)),
        (Ok(Some((storage, outputs))), _, Some(wait)) => {
            Transition::wait(wait, invoke_count, storage, outputs)
        }
        (Ok(Some((storage, outputs))), Next::Success, _) => {
            Transition::succeed(invoke_count, storage, outputs, notify)
        }
        (Ok(written), _, _) => Transition::fail(
            outcome.err().unwrap_or_default().to_string(),
            invoke_count,
            written,
            notify,
        ),
    };
    transition.consuming(consumed_callback)
}

/// The receiver of the finish callback, when the row's version sends them and its context
/// asks for one.
fn notifies(state: &AppState, row: &schedule::Model) -> Option<String> {
    let enabled = state
        .registry()
        .get(&row.plugin_version)
        .is_some_and(|v| v.enable_plugin_callback());
    if enabled {
        finish_callback_receiver(&row.context)
    } else {
        None
    }
}

/// Writes the transition, retrying transient database errors with backoff for as long as the
/// lease could still be ours. A lost lease means another worker took over: nothing is written.
async fn record(
    state: &AppState,
    owner: &str,
    row: &schedule::Model,
    left: StoredState,
    transition: Transition,
) {
    let mut backoff = Duration::from_millis(50);
    let give_up = std::time::Instant::now() + state.config().lease;
    let mut transition = transition;
    let mut refused_once = false;
    loop {
        let step = transition.clone().of_lease(&row.trace_id, owner, left);
        match state.invocations().record_step(step).await {
            Ok(true) => {
                tracing::info!(trace_id = %row.trace_id, state = %transition.state(), "step recorded");
                if !transition.state().is_terminal() {
                    state.invocations().wake();
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
                transition = Transition::fail(
                    format!(
                        "plugin schedule raise unexpected error: the step's result could not be stored: {reason}"
                    ),
                    transition.invoke_count(),
                    None,
                    notifies(state, row),
                )
                .consuming(transition.consumed_callback().map(str::to_string));
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
