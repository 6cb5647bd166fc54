//! The schedule queue: writing waiting invocations, claiming due ones with a lease, recording
//! how their steps end (guarded by state and lease owner), queue depth and cleanup.

use std::time::Duration;

use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, QueryTrait, TransactionTrait,
};

use super::entity::{NotifyState, StoredState, callback, schedule};
use super::inbox::wake_if_called_back;
use super::transition::{
    FinishedStep, NewWaiting, Transition, Wait, transition_update, waiting_model,
    wants_finish_callback, without_lease,
};
use super::{Store, StoreError, first_ids, now_ms, retry_transient};
use crate::time::duration_ms;

impl Store {
    /// Writes a waiting invocation.
    #[cfg(test)]
    pub(crate) async fn insert_waiting(&self, row: NewWaiting) -> Result<(), StoreError> {
        self.insert_waiting_many(vec![row]).await
    }

    /// Writes many new waiting invocations in one statement.
    pub(crate) async fn insert_waiting_many(
        &self,
        rows: Vec<NewWaiting>,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let callbacks: Vec<String> = rows
            .iter()
            .filter(|row| matches!(row.wait, Wait::Callback { .. }))
            .map(|row| row.trace_id.clone())
            .collect();
        let models: Vec<_> = rows
            .into_iter()
            .map(|row| waiting_model(row, now))
            .collect();
        retry_transient(|| {
            schedule::Entity::insert_many(models.clone()).exec_without_returning(&self.db)
        })
        .await?;
        if !callbacks.is_empty() {
            // A callback that arrived during the first run is already in the inbox.
            wake_if_called_back(&self.db, callbacks, now).await?;
        }
        Ok(())
    }

    /// Deletes these invocations if they are still in their first wait (`invoke_count = 1`):
    /// rows whose invoke was not answered with their waiting state. Returns how many went.
    pub(crate) async fn delete_waiting(&self, trace_ids: &[String]) -> Result<u64, StoreError> {
        let deleted = schedule::Entity::delete_many()
            .filter(schedule::Column::TraceId.is_in(trace_ids.to_vec()))
            .filter(schedule::Column::InvokeCount.eq(1))
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
            backend => {
                let mut picked = due().select_only().column(schedule::Column::TraceId);
                if backend == DatabaseBackend::Postgres {
                    picked = picked.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
                }
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
    /// `plugin_callback_info`, up to 100 waiting invocations of versions not in `known` that
    /// have been due since before `due_before` and are not leased: nobody who knows their
    /// version took them. Each is a compare-and-set on the row as read, so a worker that claims
    /// it meanwhile wins. Returns the trace ids failed.
    pub(crate) async fn fail_unknown_versions(
        &self,
        known: &[String],
        due_before: i64,
        err: impl Fn(&str) -> String,
    ) -> Result<Vec<String>, StoreError> {
        let now = now_ms();
        let rows = live()
            .filter(schedule::Column::RunAt.lt(due_before))
            .filter(schedule::Column::PluginVersion.is_not_in(known.to_vec()))
            .filter(
                sea_orm::Condition::any()
                    .add(schedule::Column::LeaseUntil.is_null())
                    .add(schedule::Column::LeaseUntil.lt(now)),
            )
            .limit(100)
            .all(&self.db)
            .await?;
        let mut failed = Vec::new();
        for row in rows {
            let notify = wants_finish_callback(&row.context);
            let fail = Transition::fail(err(&row.plugin_version), row.invoke_count, None, notify);
            let done = transition_update(&fail, now)
                .filter(schedule::Column::TraceId.eq(row.trace_id.as_str()))
                .filter(schedule::Column::State.eq(row.state))
                .filter(schedule::Column::RunAt.eq(row.run_at))
                .filter(
                    sea_orm::Condition::any()
                        .add(schedule::Column::LeaseUntil.is_null())
                        .add(schedule::Column::LeaseUntil.lt(now)),
                )
                .exec(&self.db)
                .await?;
            if done.rows_affected == 1 {
                failed.push(row.trace_id);
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
fn due_rows(now: i64, limit: u64) -> sea_orm::Select<schedule::Entity> {
    live()
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
