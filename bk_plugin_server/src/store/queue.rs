//! The schedule queue: writing waiting invocations, claiming due ones with a lease, recording
//! how their steps end (guarded by state and lease owner), queue depth and cleanup.

use std::time::Duration;

use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};

use super::entity::{NotifyState, StoredState, callback, schedule};
use super::inbox::wake_if_called_back;
use super::transition::{
    FinishedStep, NewWaiting, Transition, finish_callback_receiver, transition_update,
    waiting_model, without_lease,
};
use super::{PARKED, Store, StoreError, first_ids, now_ms, retry_transient};
use crate::time::duration_ms;

impl Store {
    /// Writes a waiting invocation as an invoke that answered POLL or CALLBACK leaves it:
    /// stored, then unparked.
    #[cfg(test)]
    pub(crate) async fn insert_waiting(&self, row: NewWaiting) -> Result<(), StoreError> {
        self.insert_answered(vec![row]).await
    }

    /// [`Store::insert_waiting`] of many rows.
    #[cfg(test)]
    pub(crate) async fn insert_answered(&self, rows: Vec<NewWaiting>) -> Result<(), StoreError> {
        let ids: Vec<String> = rows.iter().map(|row| row.trace_id.clone()).collect();
        self.insert_waiting_many(rows, "parked:test", None).await?;
        self.unpark(&ids, "parked:test").await?;
        Ok(())
    }

    /// Writes many new waiting invocations in one statement, each parked by `parker`
    /// (`lease_owner = parker`, `lease_until` = [`PARKED`]): no worker claims them until
    /// [`Store::unpark`] — the invoke that stored them has answered POLL or CALLBACK. On
    /// PostgreSQL the insert runs under `statement_timeout` and `lock_timeout` = `limit`, so a
    /// write that outlives the invoke's wait is cancelled by the server rather than committed
    /// late.
    pub(crate) async fn insert_waiting_many(
        &self,
        rows: Vec<NewWaiting>,
        parker: &str,
        limit: Option<Duration>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let models: Vec<_> = rows
            .into_iter()
            .map(|row| waiting_model(row, parker, now))
            .collect();
        match (self.db.get_database_backend(), limit) {
            (DatabaseBackend::Postgres, Some(limit)) => {
                let ms = duration_ms(limit).max(1);
                retry_transient(|| async {
                    let txn = self.db.begin().await?;
                    txn.execute_unprepared(&format!(
                        "SET LOCAL statement_timeout = {ms}; SET LOCAL lock_timeout = {ms}"
                    ))
                    .await?;
                    schedule::Entity::insert_many(models.clone())
                        .exec_without_returning(&txn)
                        .await?;
                    txn.commit().await
                })
                .await?;
            }
            _ => {
                retry_transient(|| {
                    schedule::Entity::insert_many(models.clone()).exec_without_returning(&self.db)
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Hands parked invocations to the workers: clears `parker`'s parking lease, and makes the
    /// CALLBACK rows among them due now when a callback already waits for them (one that came
    /// while they were parked). Returns how many were parked.
    pub(crate) async fn unpark(
        &self,
        trace_ids: &[String],
        parker: &str,
    ) -> Result<u64, StoreError> {
        let now = now_ms();
        let unparked = retry_transient(|| {
            without_lease(schedule::Entity::update_many())
                .filter(schedule::Column::TraceId.is_in(trace_ids.to_vec()))
                .filter(schedule::Column::LeaseOwner.eq(parker))
                .exec(&self.db)
        })
        .await?;
        wake_if_called_back(&self.db, trace_ids.to_vec(), now).await?;
        Ok(unparked.rows_affected)
    }

    /// Deletes these invocations if they are still parked by `parker`: rows whose invoke was
    /// not answered with their waiting state. Returns how many went.
    pub(crate) async fn delete_parked(
        &self,
        trace_ids: &[String],
        parker: &str,
    ) -> Result<u64, StoreError> {
        let deleted = schedule::Entity::delete_many()
            .filter(schedule::Column::TraceId.is_in(trace_ids.to_vec()))
            .filter(schedule::Column::LeaseOwner.eq(parker))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Deletes invocations parked before `before` by any process: their invoke never learned
    /// that they were stored (a write committed after the invoke had answered FAIL and its undo
    /// had looked), or the process died between answering and unparking. Returns how many went.
    pub(crate) async fn delete_parked_before(&self, before: i64) -> Result<u64, StoreError> {
        let deleted = schedule::Entity::delete_many()
            .filter(schedule::Column::LeaseUntil.eq(PARKED))
            .filter(schedule::Column::State.is_in([StoredState::Poll, StoredState::Callback]))
            .filter(schedule::Column::CreatedAt.lt(before))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// Claims up to `limit` due rows for `owner` until `lease_until`, oldest due first, in one
    /// statement (SQLite, PostgreSQL: `UPDATE ... WHERE trace_id IN (SELECT ... FOR UPDATE SKIP
    /// LOCKED) RETURNING *`) or one transaction (MySQL: `SELECT ... FOR UPDATE SKIP LOCKED`,
    /// then `UPDATE`).
    #[cfg(test)]
    pub(crate) async fn claim_due(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<schedule::Model>, StoreError> {
        self.claim_due_of(owner, lease, limit, None).await
    }

    /// [`Store::claim_due`], of these plugin versions only (`None`: any): a worker claims only
    /// the versions its binary has, and leaves the others for workers that have them.
    pub(crate) async fn claim_due_of(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
        versions: Option<&[String]>,
    ) -> Result<Vec<schedule::Model>, StoreError> {
        let now = now_ms();
        let lease_until = now + duration_ms(lease);
        let due = || of_versions(due_rows(now, limit), versions);
        let lease_columns = |update: sea_orm::UpdateMany<schedule::Entity>| {
            update
                .col_expr(schedule::Column::LeaseOwner, Expr::value(owner.to_string()))
                .col_expr(schedule::Column::LeaseUntil, Expr::value(lease_until))
                .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
        };
        match self.db.get_database_backend() {
            DatabaseBackend::MySql => {
                // READ COMMITTED: no gap locks, so concurrent inserts of new waiting rows do
                // not deadlock with the claim's range scan.
                let txn = self
                    .db
                    .begin_with_config(Some(sea_orm::IsolationLevel::ReadCommitted), None)
                    .await?;
                let mut rows = due()
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
                    .all(&txn)
                    .await?;
                if rows.is_empty() {
                    txn.commit().await?;
                    return Ok(rows);
                }
                let ids: Vec<String> = rows.iter().map(|r| r.trace_id.clone()).collect();
                lease_columns(schedule::Entity::update_many())
                    .filter(schedule::Column::TraceId.is_in(ids))
                    .exec(&txn)
                    .await?;
                txn.commit().await?;
                for row in &mut rows {
                    row.lease_owner = Some(owner.to_string());
                    row.lease_until = Some(lease_until);
                }
                Ok(rows)
            }
            DatabaseBackend::Postgres => {
                let picked = due()
                    .select_only()
                    .column(schedule::Column::TraceId)
                    .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
                // The due rows must be read in `run_at` order from the index, never gathered
                // and sorted: a sort reads every due row, so each claim would cost as much as
                // the backlog is long. The planner picks the sort when its statistics say few
                // rows are due — which is what they say when a burst arrives after a quiet
                // time, or on a server whose autovacuum (hence auto-analyze) is off.
                let txn = self.db.begin().await?;
                if let Some(settings) = claim_settings(DatabaseBackend::Postgres) {
                    txn.execute_unprepared(settings).await?;
                }
                let mut rows = lease_columns(schedule::Entity::update_many())
                    .filter(schedule::Column::TraceId.in_subquery(picked.into_query()))
                    .exec_with_returning(&txn)
                    .await?;
                txn.commit().await?;
                rows.sort_by_key(|r| r.run_at);
                Ok(rows)
            }
            _ => {
                // SQLite runs one writer at a time: the statement is atomic without row locks.
                let picked = due().select_only().column(schedule::Column::TraceId);
                let mut rows = lease_columns(schedule::Entity::update_many())
                    .filter(schedule::Column::TraceId.in_subquery(picked.into_query()))
                    .exec_with_returning(&self.db)
                    .await?;
                rows.sort_by_key(|r| r.run_at);
                Ok(rows)
            }
        }
    }

    /// The earliest due time of any waiting, unleased row of these plugin versions (`None`:
    /// any).
    pub(crate) async fn next_due_of(
        &self,
        versions: Option<&[String]>,
    ) -> Result<Option<i64>, StoreError> {
        let row: Option<Option<i64>> = of_versions(next_due_query(), versions)
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(row.flatten())
    }

    /// Fails, with `err(version)` and a finish callback when the stored context has
    /// `plugin_callback_info`, up to `limit` waiting invocations of versions not in `known`
    /// that have been due since before `due_before` and are not leased: nobody who knows their
    /// version took them. Reads only the columns this needs (the context for the finish
    /// callback, not inputs, storage or outputs). Each is a compare-and-set on the row as read,
    /// so a worker that claims it meanwhile wins. Returns the trace ids failed.
    pub(crate) async fn fail_unknown_versions(
        &self,
        known: &[String],
        due_before: i64,
        limit: u64,
        err: impl Fn(&str) -> String,
    ) -> Result<Vec<String>, StoreError> {
        let now = now_ms();
        let unleased = || {
            sea_orm::Condition::any()
                .add(schedule::Column::LeaseUntil.is_null())
                .add(schedule::Column::LeaseUntil.lt(now))
        };
        let rows: Vec<(
            String,
            String,
            StoredState,
            Option<i64>,
            i32,
            super::JsonText,
        )> = live()
            .select_only()
            .columns([
                schedule::Column::TraceId,
                schedule::Column::PluginVersion,
                schedule::Column::State,
                schedule::Column::RunAt,
                schedule::Column::InvokeCount,
                schedule::Column::Context,
            ])
            .filter(schedule::Column::RunAt.lt(due_before))
            .filter(schedule::Column::PluginVersion.is_not_in(known.to_vec()))
            .filter(unleased())
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        let mut failed = Vec::new();
        for (trace_id, version, state, run_at, invoke_count, context) in rows {
            let notify = finish_callback_receiver(&context);
            drop(context);
            let fail = Transition::fail(err(&version), invoke_count, None, notify);
            let done = transition_update(&fail, now)
                .filter(schedule::Column::TraceId.eq(trace_id.as_str()))
                .filter(schedule::Column::State.eq(state))
                .filter(schedule::Column::RunAt.eq(run_at))
                .filter(unleased())
                .exec(&self.db)
                .await?;
            if done.rows_affected == 1 {
                failed.push(trace_id);
            }
        }
        Ok(failed)
    }

    /// Extends `owner`'s lease; false when the lease was lost.
    pub(crate) async fn heartbeat(
        &self,
        trace_id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let result = schedule::Entity::update_many()
            .col_expr(
                schedule::Column::LeaseUntil,
                Expr::value(now + duration_ms(lease)),
            )
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Gives a leased row back untouched (shutdown, or a step that cannot run here).
    pub(crate) async fn release(&self, trace_id: &str, owner: &str) -> Result<bool, StoreError> {
        let result = without_lease(schedule::Entity::update_many())
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Moves a leased row out of the step `owner` ran from `left`. Returns false (and changes
    /// nothing) when the lease was lost or the row moved on.
    #[cfg(test)]
    pub(crate) async fn finish_step(
        &self,
        trace_id: &str,
        owner: &str,
        left: StoredState,
        transition: Transition,
    ) -> Result<bool, StoreError> {
        let step = transition.of_lease(trace_id, owner, left);
        Ok(self
            .finish_steps(vec![step])
            .await?
            .first()
            .copied()
            .unwrap_or(false))
    }

    /// Records many finished steps in one transaction (one commit, one fsync): for each, the
    /// guarded row update, the consumed callback, and an immediate re-run when a callback
    /// arrived mid-step. Returns, per step, whether it was recorded (false: lease lost).
    pub(crate) async fn finish_steps(
        &self,
        steps: Vec<FinishedStep>,
    ) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        let txn = self.db.begin().await?;
        let mut recorded = Vec::with_capacity(steps.len());
        for step in steps {
            recorded.push(record_step(&txn, step, now).await?);
        }
        txn.commit().await?;
        Ok(recorded)
    }

    /// Deletes up to `batch` finished rows (and their callbacks) that finished before `before`.
    /// Returns how many schedule rows went.
    pub(crate) async fn delete_finished_before(
        &self,
        before: i64,
        batch: u64,
    ) -> Result<u64, StoreError> {
        let finished = schedule::Entity::find()
            .filter(schedule::Column::FinishedAt.lt(before))
            .filter(schedule::Column::NotifyState.ne(NotifyState::Pending));
        let ids: Vec<String> =
            first_ids(&self.db, finished, schedule::Column::TraceId, batch).await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let txn = self.db.begin().await?;
        callback::Entity::delete_many()
            .filter(callback::Column::TraceId.is_in(ids.clone()))
            .exec(&txn)
            .await?;
        let deleted = schedule::Entity::delete_many()
            .filter(schedule::Column::TraceId.is_in(ids))
            .exec(&txn)
            .await?;
        txn.commit().await?;
        Ok(deleted.rows_affected)
    }

    /// How many rows are in each live state: (due now, running, waiting for a callback).
    pub(crate) async fn queue_depth(&self) -> Result<(u64, u64, u64), StoreError> {
        use sea_orm::PaginatorTrait;
        let [due, running, waiting] = queue_depth_queries(now_ms());
        Ok((
            due.count(&self.db).await?,
            running.count(&self.db).await?,
            waiting.count(&self.db).await?,
        ))
    }
}

fn live() -> sea_orm::Select<schedule::Entity> {
    schedule::Entity::find()
        .filter(schedule::Column::State.is_in([StoredState::Poll, StoredState::Callback]))
}

/// The rows `claim_due` takes: due, unleased or with an expired lease, oldest due first.
///
/// The state test is written `+state IN (2, 3)` so that no index on `state` can serve it: the
/// rows must come from the `run_at` index, in order, the scan stopping after the rows taken.
/// Through `(state, run_at)` the two states' due rows would have to be gathered and sorted —
/// every due row on every claim — and planners pick that when their statistics, taken before a
/// burst, say that few rows are due.
fn due_rows(now: i64, limit: u64) -> sea_orm::Select<schedule::Entity> {
    schedule::Entity::find()
        .filter(Expr::cust(format!(
            "+state IN ({}, {})",
            StoredState::Poll.to_value(),
            StoredState::Callback.to_value()
        )))
        .filter(schedule::Column::RunAt.lte(now))
        .filter(
            sea_orm::Condition::any()
                .add(schedule::Column::LeaseUntil.is_null())
                .add(schedule::Column::LeaseUntil.lt(now)),
        )
        .order_by_asc(schedule::Column::RunAt)
        .limit(limit)
}

fn of_versions(
    select: sea_orm::Select<schedule::Entity>,
    versions: Option<&[String]>,
) -> sea_orm::Select<schedule::Entity> {
    match versions {
        Some(versions) => select.filter(schedule::Column::PluginVersion.is_in(versions.to_vec())),
        None => select,
    }
}

fn next_due_query() -> sea_orm::Select<schedule::Entity> {
    live()
        .select_only()
        .column_as(schedule::Column::RunAt.min(), "next")
        .filter(schedule::Column::LeaseOwner.is_null())
}

fn queue_depth_queries(now: i64) -> [sea_orm::Select<schedule::Entity>; 3] {
    [
        live()
            .filter(schedule::Column::RunAt.lte(now))
            .filter(schedule::Column::LeaseOwner.is_null()),
        live().filter(schedule::Column::LeaseOwner.is_not_null()),
        live()
            .filter(schedule::Column::State.eq(StoredState::Callback))
            .filter(schedule::Column::RunAt.gt(now)),
    ]
}

/// The session settings the claim runs under on `backend`, inside its transaction: on
/// PostgreSQL, no sort and no bitmap scan, so that the due rows are read from the `run_at`
/// index in order and the scan stops after the rows it takes, whatever the statistics say.
pub(crate) fn claim_settings(backend: DatabaseBackend) -> Option<&'static str> {
    (backend == DatabaseBackend::Postgres)
        .then_some("SET LOCAL enable_sort = off; SET LOCAL enable_bitmapscan = off")
}

/// The claim's selection of due rows as `backend` runs it (with its row lock), for plan tests.
#[cfg(test)]
pub(crate) fn claim_statement(backend: DatabaseBackend) -> sea_orm::Statement {
    let versions = ["1.0.0".to_string(), "1.1.0".to_string()];
    let due = of_versions(due_rows(now_ms(), 8), Some(&versions));
    match backend {
        DatabaseBackend::Sqlite => due.build(backend),
        _ => due
            .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
            .build(backend),
    }
}

/// The statements the worker and `/metrics` run against the whole table, by name, as this
/// backend sees them: the due rows a claim takes, the next due time, and the three queue-depth
/// counts. Tests ask the database for their plans (they must use an index).
#[cfg(test)]
pub(crate) fn hot_queries(backend: DatabaseBackend) -> Vec<(&'static str, sea_orm::Statement)> {
    let now = now_ms();
    let [due, running, waiting] = queue_depth_queries(now);
    let count = |select: sea_orm::Select<schedule::Entity>| {
        select
            .select_only()
            .column_as(schedule::Column::TraceId.count(), "n")
            .build(backend)
    };
    let versions = ["1.0.0".to_string(), "1.1.0".to_string()];
    vec![
        (
            "claim: due rows",
            of_versions(due_rows(now, 256), Some(&versions)).build(backend),
        ),
        (
            "next due time",
            of_versions(next_due_query(), Some(&versions)).build(backend),
        ),
        ("queue depth: due", count(due)),
        ("queue depth: running", count(running)),
        ("queue depth: waiting_callback", count(waiting)),
    ]
}

/// The guarded transition of one step, inside the caller's transaction.
async fn record_step<C: ConnectionTrait>(
    db: &C,
    step: FinishedStep,
    now: i64,
) -> Result<bool, DbErr> {
    let FinishedStep {
        trace_id,
        owner,
        left,
        transition,
    } = step;
    let result = transition_update(&transition, now)
        .filter(schedule::Column::TraceId.eq(trace_id.as_str()))
        .filter(schedule::Column::State.eq(left))
        .filter(schedule::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        // The lease was lost: this step changes nothing.
        return Ok(false);
    }
    if let Some(callback_id) = &transition.consumed_callback {
        callback::Entity::update_many()
            .col_expr(callback::Column::Consumed, Expr::value(true))
            .filter(callback::Column::TraceId.eq(trace_id.as_str()))
            .filter(callback::Column::CallbackId.eq(callback_id))
            .exec(db)
            .await?;
    }
    if transition.stored_state() == StoredState::Callback {
        wake_if_called_back(db, vec![trace_id], now).await?;
    }
    Ok(true)
}
