//! Storing new waiting invocations and recording finished steps, each group-committed with the
//! others arriving at the same moment; when a wait is due; how large a stored state may be; and
//! the wake-up signal of this process's worker.

use std::sync::Arc;
use std::time::Duration;

use bk_plugin_core::Registry;
use bk_plugin_core::executor::{Next, StepOutcome};
use serde_json::Value;
use tokio::sync::Notify;
use tracing::Instrument;

use crate::config::Config;
use crate::store::batch::{BatchError, Batcher};
use crate::store::{FinishedStep, JsonText, NewWaiting, Store, Wait, now_ms};
use crate::time::due_after;

/// Stores and moves on waiting invocations.
pub(crate) struct Invocations {
    registry: Arc<Registry>,
    store: Store,
    /// Wakes this process's worker when new work is created here.
    wake: Arc<Notify>,
    /// `BK_PLUGIN_CALLBACK_TIMEOUT_SECONDS`, for versions that do not set their own.
    callback_timeout: Duration,
    /// `BK_PLUGIN_MAX_STATE_BYTES`.
    max_state_bytes: usize,
    /// `BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS`.
    invoke_db_timeout: Duration,
    /// Group-commits new waiting invocations, parked.
    parking: Batcher<NewWaiting, ()>,
    /// Group-commits handing parked invocations to the workers, once their invoke has
    /// answered POLL or CALLBACK.
    unparking: Batcher<String, ()>,
    /// Group-commits finished steps.
    recorder: Batcher<FinishedStep, bool>,
    /// This process's parking token.
    parker: String,
}

/// What became of a first run's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Parked {
    /// It did not ask to wait: nothing is stored.
    NotWaiting,
    /// The waiting invocation is stored.
    Stored,
    /// It asked to wait but cannot be stored: FAIL with this err.
    Refused(String),
}

impl Invocations {
    /// Starts the batch writers and the database clock sync (on the current runtime).
    pub(crate) fn start(registry: Arc<Registry>, store: Store, config: &Config) -> Self {
        // SQLite has one writer at a time; the servers take several transactions at once.
        let writers = match store.connection().get_database_backend() {
            sea_orm::DatabaseBackend::Sqlite => 1,
            _ => 4,
        };
        // This process's parking token: the `lease_owner` of the invocations it has stored
        // but not yet answered for (see `store::PARKED`).
        let parker = format!("parked:{}", uuid::Uuid::new_v4().simple());
        let parking = {
            let (store, undo) = (store.clone(), store.clone());
            let (parker, undo_parker) = (parker.clone(), parker.clone());
            let statement_limit = config.invoke_db_timeout;
            // A write that hangs (a black-holed connection) is given up after this long, so
            // that the writer serves the items queued behind it.
            let write_limit = config.invoke_db_timeout * 2 + Duration::from_secs(10);
            Batcher::spawn_abandoning(
                writers,
                256,
                move |rows: Vec<NewWaiting>| {
                    let (store, parker) = (store.clone(), parker.clone());
                    async move {
                        let count = rows.len();
                        let write = store.insert_waiting_many(rows, &parker, Some(statement_limit));
                        match tokio::time::timeout(write_limit, write).await {
                            Ok(written) => written.map(|()| vec![(); count]).map_err(Into::into),
                            Err(_) => Err(BatchError::transient(format!(
                                "the database did not answer within {} s",
                                write_limit.as_secs()
                            ))),
                        }
                    }
                },
                move |rows: Vec<NewWaiting>| {
                    let ids = rows.into_iter().map(|row| row.trace_id).collect();
                    undo_unanswered(undo.clone(), undo_parker.clone(), ids);
                },
            )
        };
        let unparking = {
            let (store, parker) = (store.clone(), parker.clone());
            Batcher::spawn(writers, 256, move |ids: Vec<String>| {
                let (store, parker) = (store.clone(), parker.clone());
                async move {
                    store
                        .unpark(&ids, &parker)
                        .await
                        .map(|_| vec![(); ids.len()])
                }
            })
        };
        {
            // Leases and due times follow the database's clock (see `store::now_ms`).
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(crate::store::CLOCK_SYNC_EVERY).await;
                    if let Err(e) = store.sync_clock().await {
                        tracing::warn!(error = %e, "cannot read the database's clock");
                    }
                }
            });
        }
        let recorder = {
            let store = store.clone();
            Batcher::spawn(writers, 256, move |steps: Vec<FinishedStep>| {
                let store = store.clone();
                async move { store.finish_steps(steps).await }
            })
        };
        Self {
            registry,
            store,
            wake: Arc::new(Notify::new()),
            callback_timeout: config.callback_timeout,
            max_state_bytes: config.max_state_bytes,
            invoke_db_timeout: config.invoke_db_timeout,
            parking,
            unparking,
            parker,
            recorder,
        }
    }

    /// The signal this process's worker waits on besides its poll interval.
    pub(crate) fn wake_signal(&self) -> &Notify {
        &self.wake
    }

    /// Wakes this process's worker: there is work due now, or soon.
    pub(crate) fn wake(&self) {
        self.wake.notify_one();
    }

    /// How long invocations of `version` wait for a callback.
    pub(crate) fn callback_timeout_of(&self, version: &str) -> Duration {
        self.registry
            .get(version)
            .and_then(|v| v.callback_timeout())
            .unwrap_or(self.callback_timeout)
    }

    /// The storage and outputs of a step as stored, or the FAIL err when together they are
    /// larger than `BK_PLUGIN_MAX_STATE_BYTES`.
    pub(crate) fn state_text(&self, outcome: &StepOutcome) -> Result<(JsonText, JsonText), String> {
        let storage = JsonText::of_object(&outcome.storage);
        let outputs = JsonText::of_object(&outcome.outputs);
        let size = storage.len() + outputs.len();
        if size > self.max_state_bytes {
            return Err(format!(
                "plugin state too large: storage and outputs take {size} bytes, more than the limit of {} (BK_PLUGIN_MAX_STATE_BYTES)",
                self.max_state_bytes
            ));
        }
        Ok((storage, outputs))
    }

    /// What a step of `version` that ended with `next` waits for, from now; `None` when `next`
    /// is not a wait.
    pub(crate) fn wait_for(&self, version: &str, next: &Next) -> Option<Wait> {
        wait_times(next, self.callback_timeout_of(version), now_ms())
    }

    /// Records a finished step (group-committed with the others finishing now); false when the
    /// lease was lost.
    pub(crate) async fn record_step(&self, step: FinishedStep) -> Result<bool, BatchError> {
        let span = crate::otel::db_span("record step", step.trace_id());
        let recorded = self.recorder.submit(step).instrument(span.clone()).await;
        if let Err(e) = &recorded {
            crate::otel::record_error(&span, &e.to_string());
        }
        recorded
    }

    /// Stores a new invocation whose first run asked to wait (group-committed with the others
    /// arriving now), parked: no worker takes it until it is unparked, which happens once this
    /// returns `Stored` (the invoke answers POLL or CALLBACK), and then wakes the local worker.
    /// Any other outcome leaves it parked for the undo to delete. The trace context current
    /// when this is called (the invoke's request span) is stored with it.
    pub(crate) async fn park(
        &self,
        version: &str,
        trace_id: &str,
        inputs: &Value,
        context: &Value,
        outcome: &StepOutcome,
    ) -> Result<Parked, BatchError> {
        let Some(wait) = self.wait_for(version, &outcome.next) else {
            return Ok(Parked::NotWaiting);
        };
        let (storage, outputs) = match self.state_text(outcome) {
            Ok(text) => text,
            Err(err) => return Ok(Parked::Refused(err)),
        };
        let row = NewWaiting {
            trace_id: trace_id.to_string(),
            version: version.to_string(),
            wait,
            inputs: JsonText::of(inputs),
            context: JsonText::of(context),
            storage,
            outputs,
            trace_context: crate::otel::propagation::current_text(),
        };
        // Bounded: past the limit the caller gets FAIL, and the batch writer then skips or
        // undoes the row, since nobody will be told it is waiting.
        let limit = self.invoke_db_timeout;
        let span = crate::otel::db_span("park", trace_id);
        let submitted = self.parking.submit(row).instrument(span.clone());
        match tokio::time::timeout(limit, submitted).await {
            Ok(Ok(())) => {
                self.unpark(trace_id.to_string());
                Ok(Parked::Stored)
            }
            Ok(Err(e)) => {
                crate::otel::record_error(&span, &e.to_string());
                // The write failed, but a lost connection may have committed it: make sure
                // an invocation answered FAIL is not stored.
                undo_unanswered(
                    self.store.clone(),
                    self.parker.clone(),
                    vec![trace_id.to_string()],
                );
                Err(e)
            }
            Err(_) => Err(BatchError::transient(format!(
                "the database did not answer within {} s (BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS)",
                limit.as_secs()
            ))),
        }
    }
}

impl Invocations {
    /// Hands a parked invocation whose invoke answered POLL or CALLBACK to the workers
    /// (group-committed), retrying while the database fails, then wakes the local worker.
    fn unpark(&self, trace_id: String) {
        let unparking = self.unparking.clone();
        let wake = self.wake.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(50);
            loop {
                match unparking.submit(trace_id.clone()).await {
                    Ok(()) => {
                        wake.notify_one();
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(trace_id = %trace_id, error = %e, "cannot yet hand a stored invocation to the workers; retrying");
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(Duration::from_secs(30));
                    }
                }
            }
        });
    }
}

/// What `next` waits for, from `now` (ms since the epoch): a POLL is due after its interval, a
/// CALLBACK is due (and gives up) after `callback_timeout`; `None` when `next` is not a wait.
pub(crate) fn wait_times(next: &Next, callback_timeout: Duration, now: i64) -> Option<Wait> {
    match next {
        Next::Poll(after) => Some(Wait::Poll {
            run_at: due_after(now, *after),
        }),
        Next::Callback => Some(Wait::Callback {
            deadline: due_after(now, callback_timeout),
        }),
        _ => None,
    }
}

/// Deletes parked invocations whose invoke was answered FAIL (or whose caller left) although
/// their row may have been written, retrying while the database is unreachable (for up to an
/// hour). A row committed after this has looked stays parked, never run, until the daily
/// cleanup deletes it.
fn undo_unanswered(store: Store, parker: String, trace_ids: Vec<String>) {
    tokio::spawn(async move {
        let mut wait = Duration::from_millis(200);
        let give_up = std::time::Instant::now() + Duration::from_secs(3600);
        loop {
            match store.delete_parked(&trace_ids, &parker).await {
                Ok(deleted) => {
                    if deleted > 0 {
                        tracing::warn!(trace_ids = ?trace_ids, deleted, "deleted invocations stored after their invoke had answered FAIL or its caller had left");
                    }
                    return;
                }
                Err(e) if std::time::Instant::now() < give_up => {
                    tracing::warn!(error = %e, "cannot yet delete invocations whose invoke answered FAIL; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(30));
                }
                Err(e) => {
                    tracing::error!(trace_ids = ?trace_ids, error = %e, "cannot delete invocations whose invoke answered FAIL");
                    return;
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_poll_after_a_callers_huge_delay_is_due_in_366_days_without_overflow() {
        let now = 1_795_572_000_000;
        let huge = Next::Poll(Duration::from_secs(9_000_000_000_000_000));
        let wait = wait_times(&huge, Duration::from_secs(60), now);
        let year_ms = 366 * 24 * 3600 * 1000;
        assert!(
            matches!(wait, Some(Wait::Poll { run_at }) if run_at == now + year_ms),
            "{wait:?}"
        );
    }
}
