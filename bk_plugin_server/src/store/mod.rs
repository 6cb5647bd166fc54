//! The schedule store: stateless query and mutation functions over the `bkp_schedule` and
//! `bkp_callback` tables. Handlers and the worker call these; nothing else builds SQL.
//!
//! Every transition of a leased row is guarded by the state it leaves and the lease owner, so
//! a paused or stale worker whose lease was taken over can never overwrite newer progress.

pub mod batch;
pub mod entity;
pub mod migration;

use std::time::Duration;

use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseBackend,
    DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
    SqlErr, TransactionTrait, sea_query::Expr,
};
use sea_orm_migration::MigratorTrait;

use bk_plugin_core::State;
use entity::{callback, log, schedule};
use migration::Migrator;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// A stored JSON document could not be read back.
    #[error("stored data of {trace_id} is not valid JSON: {message}")]
    Corrupt {
        /// The invocation.
        trace_id: String,
        /// What serde said.
        message: String,
    },
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX / 4)
}

/// Finish-callback delivery states (`notify_state`).
pub mod notify {
    /// Nothing to deliver.
    pub const NONE: i16 = 0;
    /// Waiting for delivery.
    pub const PENDING: i16 = 1;
    /// Delivered.
    pub const DELIVERED: i16 = 2;
    /// Every try failed.
    pub const GAVE_UP: i16 = 3;
}

/// A connection to the schedule database.
#[derive(Debug, Clone)]
pub struct Store {
    db: DatabaseConnection,
}

/// A new waiting invocation, written when its first run asks to wait.
#[derive(Debug, Clone)]
pub struct NewWaiting {
    /// The trace id.
    pub trace_id: String,
    /// The plugin version.
    pub version: String,
    /// POLL or CALLBACK.
    pub state: State,
    /// The invoke's inputs (JSON text).
    pub inputs: String,
    /// The invoke's context (JSON text).
    pub context: String,
    /// Storage after the first run (JSON text).
    pub storage: String,
    /// Outputs after the first run (JSON text).
    pub outputs: String,
    /// When the worker picks it up.
    pub run_at: i64,
    /// For CALLBACK: when it gives up waiting.
    pub callback_deadline: Option<i64>,
}

/// How a leased step ends.
#[derive(Debug, Clone)]
pub struct Transition {
    /// The state the row moves to.
    pub state: State,
    /// The new invoke count.
    pub invoke_count: i32,
    /// New storage (JSON text), or `None` to keep what is stored.
    pub storage: Option<String>,
    /// New outputs (JSON text), or `None` to keep what is stored.
    pub outputs: Option<String>,
    /// The `err` of a failure.
    pub err: Option<String>,
    /// POLL: when it is due again.
    pub run_at: Option<i64>,
    /// CALLBACK: when it gives up waiting.
    pub callback_deadline: Option<i64>,
    /// The callback this step consumed.
    pub consumed_callback: Option<String>,
    /// Whether a finish callback must be delivered.
    pub notify: bool,
}

/// What became of a delivered callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackAcceptance {
    /// Stored; the invocation re-runs with it.
    Accepted {
        /// Whether the row is runnable now (not mid-step).
        runnable: bool,
    },
    /// The same callback was delivered before: nothing changes.
    Duplicate,
    /// No such invocation.
    NotFound,
    /// The invocation is not waiting for a callback.
    NotWaiting(State),
}

impl Store {
    /// Connects, with WAL and a busy timeout on SQLite.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        let mut options = ConnectOptions::new(url.to_string());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        if url.starts_with("sqlite:") {
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .create_if_missing(true)
            });
        }
        let db = Database::connect(options).await?;
        Ok(Self { db })
    }

    /// The connection, for tests and tools.
    pub fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration (idempotent).
    pub async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// The names of migrations not yet applied.
    pub async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.db).await?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    }

    /// Writes a waiting invocation.
    pub async fn insert_waiting(&self, row: NewWaiting) -> Result<(), StoreError> {
        self.insert_waiting_many(vec![row]).await
    }

    /// One invocation by trace id.
    pub async fn get(&self, trace_id: &str) -> Result<Option<schedule::Model>, StoreError> {
        Ok(schedule::Entity::find_by_id(trace_id.to_string())
            .one(&self.db)
            .await?)
    }

    /// Claims up to `limit` due rows for `owner` until `lease_until`, oldest due first, in one
    /// statement (SQLite, PostgreSQL: `UPDATE ... WHERE trace_id IN (SELECT ... FOR UPDATE SKIP
    /// LOCKED) RETURNING *`) or one transaction (MySQL: `SELECT ... FOR UPDATE SKIP LOCKED`,
    /// then `UPDATE`).
    pub async fn claim_due(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<schedule::Model>, StoreError> {
        let now = now_ms();
        let lease_until = now + ms(lease);
        let due = || {
            schedule::Entity::find()
                .filter(
                    schedule::Column::State.is_in([State::Poll.as_i32(), State::Callback.as_i32()]),
                )
                .filter(schedule::Column::RunAt.lte(now))
                .filter(
                    sea_orm::Condition::any()
                        .add(schedule::Column::LeaseUntil.is_null())
                        .add(schedule::Column::LeaseUntil.lt(now)),
                )
                .order_by_asc(schedule::Column::RunAt)
                .limit(limit)
        };
        let lease_columns = |update: sea_orm::UpdateMany<schedule::Entity>| {
            update
                .col_expr(schedule::Column::LeaseOwner, Expr::value(owner.to_string()))
                .col_expr(schedule::Column::LeaseUntil, Expr::value(lease_until))
                .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
        };
        match self.db.get_database_backend() {
            DatabaseBackend::MySql => {
                let txn = self.db.begin().await?;
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

    /// The earliest due time of any waiting, unleased row.
    pub async fn next_due(&self) -> Result<Option<i64>, StoreError> {
        let row: Option<Option<i64>> = schedule::Entity::find()
            .select_only()
            .column_as(schedule::Column::RunAt.min(), "next")
            .filter(schedule::Column::State.is_in([State::Poll.as_i32(), State::Callback.as_i32()]))
            .filter(schedule::Column::LeaseOwner.is_null())
            .into_tuple()
            .one(&self.db)
            .await?;
        Ok(row.flatten())
    }

    /// Extends `owner`'s lease; false when the lease was lost.
    pub async fn heartbeat(
        &self,
        trace_id: &str,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let result = schedule::Entity::update_many()
            .col_expr(schedule::Column::LeaseUntil, Expr::value(now + ms(lease)))
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Gives a leased row back untouched (shutdown, or a step that cannot run here).
    pub async fn release(&self, trace_id: &str, owner: &str) -> Result<bool, StoreError> {
        let result = schedule::Entity::update_many()
            .col_expr(
                schedule::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                schedule::Column::LeaseUntil,
                Expr::value(Option::<i64>::None),
            )
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::LeaseOwner.eq(owner))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Moves a leased row out of the step `owner` ran from `left`. Returns false (and changes
    /// nothing) when the lease was lost or the row moved on.
    pub async fn finish_step(
        &self,
        trace_id: &str,
        owner: &str,
        left: State,
        transition: Transition,
    ) -> Result<bool, StoreError> {
        let step = FinishedStep {
            trace_id: trace_id.to_string(),
            owner: owner.to_string(),
            left,
            transition,
        };
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
    pub async fn finish_steps(&self, steps: Vec<FinishedStep>) -> Result<Vec<bool>, StoreError> {
        let now = now_ms();
        let txn = self.db.begin().await?;
        let mut recorded = Vec::with_capacity(steps.len());
        for step in steps {
            recorded.push(record_step(&txn, step, now).await?);
        }
        txn.commit().await?;
        Ok(recorded)
    }

    /// Writes many new waiting invocations in one statement.
    pub async fn insert_waiting_many(&self, rows: Vec<NewWaiting>) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let models = rows.into_iter().map(|row| waiting_model(row, now));
        schedule::Entity::insert_many(models)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Stores a delivered callback and makes the invocation runnable. A duplicate of a callback
    /// already delivered changes nothing. A callback for an invocation that is mid-step (POLL or
    /// CALLBACK, leased) is kept and runs as soon as that step asks to wait for a callback.
    pub async fn accept_callback(
        &self,
        trace_id: &str,
        callback_id: &str,
        data: String,
    ) -> Result<CallbackAcceptance, StoreError> {
        let Some(row) = self.get(trace_id).await? else {
            return Ok(CallbackAcceptance::NotFound);
        };
        let state = State::from_i32(row.state).unwrap_or(State::Fail);
        let already = callback::Entity::find_by_id((trace_id.to_string(), callback_id.to_string()))
            .one(&self.db)
            .await?
            .is_some();
        if already {
            return Ok(CallbackAcceptance::Duplicate);
        }
        let mid_step = row.lease_owner.is_some() && state == State::Poll;
        if state != State::Callback && !mid_step {
            return Ok(CallbackAcceptance::NotWaiting(state));
        }
        let now = now_ms();
        let inserted = callback::Entity::insert(callback::ActiveModel {
            trace_id: Set(trace_id.to_string()),
            callback_id: Set(callback_id.to_string()),
            data: Set(data),
            consumed: Set(false),
            created_at: Set(now),
        })
        .exec_without_returning(&self.db)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Ok(CallbackAcceptance::Duplicate);
            }
            Err(e) => return Err(e.into()),
        }
        let woke = schedule::Entity::update_many()
            .col_expr(schedule::Column::RunAt, Expr::value(now))
            .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::State.eq(State::Callback.as_i32()))
            .filter(schedule::Column::LeaseOwner.is_null())
            .exec(&self.db)
            .await?;
        Ok(CallbackAcceptance::Accepted {
            runnable: woke.rows_affected == 1,
        })
    }

    /// The oldest callback delivered to `trace_id` that no step has consumed.
    pub async fn oldest_callback(
        &self,
        trace_id: &str,
    ) -> Result<Option<callback::Model>, StoreError> {
        Ok(callback::Entity::find()
            .filter(callback::Column::TraceId.eq(trace_id))
            .filter(callback::Column::Consumed.eq(false))
            .order_by_asc(callback::Column::CreatedAt)
            .one(&self.db)
            .await?)
    }

    /// Claims finished rows whose finish callback is due.
    pub async fn claim_notifications(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<schedule::Model>, StoreError> {
        let now = now_ms();
        let candidates: Vec<schedule::Model> = schedule::Entity::find()
            .filter(schedule::Column::NotifyState.eq(notify::PENDING))
            .filter(schedule::Column::NotifyAt.lte(now))
            .order_by_asc(schedule::Column::NotifyAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::new();
        for mut row in candidates {
            // Push notify_at past the lease: another notifier skips it until then.
            let until = now + ms(lease);
            let taken = schedule::Entity::update_many()
                .col_expr(schedule::Column::NotifyAt, Expr::value(until))
                .col_expr(schedule::Column::LeaseOwner, Expr::value(owner.to_string()))
                .filter(schedule::Column::TraceId.eq(row.trace_id.clone()))
                .filter(schedule::Column::NotifyState.eq(notify::PENDING))
                .filter(schedule::Column::NotifyAt.eq(row.notify_at))
                .exec(&self.db)
                .await?;
            if taken.rows_affected == 1 {
                row.notify_at = Some(until);
                claimed.push(row);
            }
        }
        Ok(claimed)
    }

    /// Records a finish-callback attempt: delivered, retry at `retry_at`, or given up.
    pub async fn record_notification(
        &self,
        trace_id: &str,
        attempts: i32,
        outcome: i16,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        schedule::Entity::update_many()
            .col_expr(schedule::Column::NotifyState, Expr::value(outcome))
            .col_expr(schedule::Column::NotifyAttempts, Expr::value(attempts))
            .col_expr(schedule::Column::NotifyAt, Expr::value(retry_at))
            .col_expr(
                schedule::Column::LeaseOwner,
                Expr::value(Option::<String>::None),
            )
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::NotifyState.eq(notify::PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Deletes up to `batch` finished rows (and their callbacks) that finished before `before`.
    /// Returns how many schedule rows went.
    pub async fn delete_finished_before(&self, before: i64, batch: u64) -> Result<u64, StoreError> {
        let ids: Vec<String> = schedule::Entity::find()
            .select_only()
            .column(schedule::Column::TraceId)
            .filter(schedule::Column::FinishedAt.lt(before))
            .filter(schedule::Column::NotifyState.ne(notify::PENDING))
            .limit(batch)
            .into_tuple()
            .all(&self.db)
            .await?;
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
    pub async fn queue_depth(&self) -> Result<(u64, u64, u64), StoreError> {
        use sea_orm::PaginatorTrait;
        let now = now_ms();
        let live = || {
            schedule::Entity::find().filter(
                schedule::Column::State.is_in([State::Poll.as_i32(), State::Callback.as_i32()]),
            )
        };
        let due = live()
            .filter(schedule::Column::RunAt.lte(now))
            .filter(schedule::Column::LeaseOwner.is_null())
            .count(&self.db)
            .await?;
        let running = live()
            .filter(schedule::Column::LeaseOwner.is_not_null())
            .count(&self.db)
            .await?;
        let waiting = live()
            .filter(schedule::Column::State.eq(State::Callback.as_i32()))
            .filter(schedule::Column::RunAt.gt(now))
            .count(&self.db)
            .await?;
        Ok((due, running, waiting))
    }
}

/// A captured log line waiting to be written.
#[derive(Debug, Clone)]
pub struct LogLine {
    /// The trace it belongs to.
    pub trace_id: String,
    /// When it was emitted (ms since the epoch).
    pub created_at: i64,
    /// The formatted line.
    pub line: String,
}

impl Store {
    /// Writes captured log lines in one statement.
    pub async fn insert_logs(&self, lines: Vec<LogLine>) -> Result<(), StoreError> {
        if lines.is_empty() {
            return Ok(());
        }
        let models = lines.into_iter().map(|l| log::ActiveModel {
            id: sea_orm::ActiveValue::NotSet,
            trace_id: Set(l.trace_id),
            created_at: Set(l.created_at),
            line: Set(l.line),
        });
        log::Entity::insert_many(models)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Every captured line of a trace, oldest first.
    pub async fn logs_of(&self, trace_id: &str) -> Result<Vec<String>, StoreError> {
        Ok(log::Entity::find()
            .select_only()
            .column(log::Column::Line)
            .filter(log::Column::TraceId.eq(trace_id))
            .order_by_asc(log::Column::CreatedAt)
            .order_by_asc(log::Column::Id)
            .into_tuple()
            .all(&self.db)
            .await?)
    }

    /// Deletes up to `batch` captured lines older than `before`; returns how many went.
    pub async fn delete_logs_before(&self, before: i64, batch: u64) -> Result<u64, StoreError> {
        let ids: Vec<i64> = log::Entity::find()
            .select_only()
            .column(log::Column::Id)
            .filter(log::Column::CreatedAt.lt(before))
            .limit(batch)
            .into_tuple()
            .all(&self.db)
            .await?;
        if ids.is_empty() {
            return Ok(0);
        }
        let deleted = log::Entity::delete_many()
            .filter(log::Column::Id.is_in(ids))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}

/// One step to record with [`Store::finish_steps`].
#[derive(Debug, Clone)]
pub struct FinishedStep {
    /// The invocation.
    pub trace_id: String,
    /// The worker that leased it.
    pub owner: String,
    /// The state the step ran from.
    pub left: State,
    /// How it ends.
    pub transition: Transition,
}

fn waiting_model(row: NewWaiting, now: i64) -> schedule::ActiveModel {
    schedule::ActiveModel {
        trace_id: Set(row.trace_id),
        plugin_version: Set(row.version),
        state: Set(row.state.as_i32()),
        invoke_count: Set(1),
        inputs: Set(row.inputs),
        context: Set(row.context),
        storage: Set(row.storage),
        outputs: Set(row.outputs),
        error: Set(None),
        run_at: Set(Some(row.run_at)),
        lease_owner: Set(None),
        lease_until: Set(None),
        callback_deadline: Set(row.callback_deadline),
        notify_state: Set(notify::NONE),
        notify_attempts: Set(0),
        notify_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
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
    let terminal = transition.state.is_terminal();
    let mut update = schedule::Entity::update_many()
        .col_expr(
            schedule::Column::State,
            Expr::value(transition.state.as_i32()),
        )
        .col_expr(
            schedule::Column::InvokeCount,
            Expr::value(transition.invoke_count),
        )
        .col_expr(schedule::Column::Error, Expr::value(transition.err))
        .col_expr(schedule::Column::RunAt, Expr::value(transition.run_at))
        .col_expr(
            schedule::Column::CallbackDeadline,
            Expr::value(transition.callback_deadline),
        )
        .col_expr(
            schedule::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            schedule::Column::LeaseUntil,
            Expr::value(Option::<i64>::None),
        )
        .col_expr(schedule::Column::UpdatedAt, Expr::value(now));
    if let Some(storage) = transition.storage {
        update = update.col_expr(schedule::Column::Storage, Expr::value(storage));
    }
    if let Some(outputs) = transition.outputs {
        update = update.col_expr(schedule::Column::Outputs, Expr::value(outputs));
    }
    if terminal {
        update = update.col_expr(schedule::Column::FinishedAt, Expr::value(now));
    }
    if transition.notify {
        update = update
            .col_expr(schedule::Column::NotifyState, Expr::value(notify::PENDING))
            .col_expr(schedule::Column::NotifyAt, Expr::value(now));
    }
    let result = update
        .filter(schedule::Column::TraceId.eq(trace_id.as_str()))
        .filter(schedule::Column::State.eq(left.as_i32()))
        .filter(schedule::Column::LeaseOwner.eq(owner))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        // The lease was lost: this step changes nothing.
        return Ok(false);
    }
    if let Some(callback_id) = transition.consumed_callback {
        callback::Entity::update_many()
            .col_expr(callback::Column::Consumed, Expr::value(true))
            .filter(callback::Column::TraceId.eq(trace_id.as_str()))
            .filter(callback::Column::CallbackId.eq(callback_id))
            .exec(db)
            .await?;
    }
    if transition.state == State::Callback && has_unconsumed(db, &trace_id).await? {
        schedule::Entity::update_many()
            .col_expr(schedule::Column::RunAt, Expr::value(now))
            .filter(schedule::Column::TraceId.eq(trace_id.as_str()))
            .exec(db)
            .await?;
    }
    Ok(true)
}

async fn has_unconsumed<C: ConnectionTrait>(db: &C, trace_id: &str) -> Result<bool, DbErr> {
    Ok(callback::Entity::find()
        .filter(callback::Column::TraceId.eq(trace_id))
        .filter(callback::Column::Consumed.eq(false))
        .one(db)
        .await?
        .is_some())
}
