//! The schedule store: stateless query and mutation functions over the `bkp_schedule` and
//! `bkp_callback` tables. Handlers and the worker call these; nothing else builds SQL.
//!
//! Every transition of a leased row is guarded by the state it leaves and the lease owner, so
//! a paused or stale worker whose lease was taken over can never overwrite newer progress.

pub(crate) mod batch;
pub(crate) mod entity;
mod inbox;
mod inspect;
mod logs;
pub(crate) mod migration;
mod notifications;
#[cfg(test)]
mod query_plan_tests;
mod queue;
mod transition;
#[cfg(test)]
mod transition_tests;

pub(crate) use entity::{JsonText, NotifyState, StoredState};
pub(crate) use inbox::CallbackAcceptance;
pub(crate) use inspect::{ScheduleFilter, ScheduleSummary};
pub(crate) use logs::LogLine;
pub(crate) use notifications::Notification;
pub(crate) use transition::{
    FinishedStep, NewWaiting, Transition, Wait, finish_callback_receiver, receiver_of,
};

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait};
use sea_orm_migration::MigratorTrait;

use entity::schedule;
use migration::Migrator;

/// A database failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Db(#[from] DbErr),
    /// The database server is too old for the claim query.
    #[error("{0}")]
    Unsupported(String),
}

/// Whether a database error is a conflict that succeeds when tried again: a deadlock or
/// serialization failure (MySQL 1213, SQLSTATE 40001 / 40P01), a lock wait timeout (MySQL 1205),
/// or a busy SQLite database.
pub(crate) fn is_transient(error: &DbErr) -> bool {
    let text = error.to_string();
    [
        "1213",
        "1205",
        "40001",
        "40P01",
        "Deadlock",
        "deadlock",
        "database is locked",
    ]
    .iter()
    .any(|needle| text.contains(needle))
}

/// Whether the database answered and refused the statement itself — a value too long for its
/// column (MySQL 1406), a constraint or trigger — so that running it again cannot succeed:
/// SQLSTATE classes 22 (data exception), 23 (integrity constraint) and 54 (program limit) on
/// PostgreSQL and MySQL, `SQLITE_TOOBIG`, `SQLITE_CONSTRAINT` and `SQLITE_MISMATCH` on SQLite.
/// Outages, killed connections, timeouts and lock conflicts are not rejections.
pub(crate) fn is_rejection(error: &DbErr) -> bool {
    use sea_orm::{RuntimeErr, sqlx};
    let (DbErr::Exec(RuntimeErr::SqlxError(inner)) | DbErr::Query(RuntimeErr::SqlxError(inner))) =
        error
    else {
        return false;
    };
    let sqlx::Error::Database(database) = inner.as_ref() else {
        return false;
    };
    if is_transient(error) {
        return false;
    }
    let code = database.code().map(|c| c.to_string()).unwrap_or_default();
    if code.len() == 5 {
        // SQLSTATE (PostgreSQL, MySQL).
        return ["22", "23", "54"]
            .iter()
            .any(|class| code.starts_with(class));
    }
    // SQLite (extended) result code: the primary code is the low byte.
    code.parse::<u32>()
        .is_ok_and(|c| [18, 19, 20].contains(&(c & 0xff)))
}

impl StoreError {
    /// See [`is_rejection`].
    pub(crate) fn is_rejection(&self) -> bool {
        match self {
            Self::Db(e) => is_rejection(e),
            Self::Unsupported(_) => false,
        }
    }
}

impl From<StoreError> for batch::BatchError {
    fn from(error: StoreError) -> Self {
        Self {
            rejected: error.is_rejection(),
            message: error.to_string(),
        }
    }
}

/// The `lease_until` of a parked invocation: one an invoke has stored but not yet answered
/// POLL or CALLBACK for. Its `lease_owner` is the parking process's token (`parked:<random>`);
/// no claim takes it (its lease never runs out), only that invoke may hand it to the workers
/// (`Store::unpark`) or delete it (`Store::delete_parked`), and the daily cleanup deletes one
/// left parked for an hour.
pub(crate) const PARKED: i64 = i64::MAX;

/// The longest `err` the store keeps, in bytes: a longer one is cut at a character boundary
/// and ends with `... [err truncated: N bytes in all]`.
pub(crate) const MAX_ERR_BYTES: usize = 32 * 1024;

/// `err` cut to [`MAX_ERR_BYTES`].
pub(crate) fn cap_err(err: String) -> String {
    if err.len() <= MAX_ERR_BYTES {
        return err;
    }
    let mut end = MAX_ERR_BYTES;
    while !err.is_char_boundary(end) {
        end -= 1;
    }
    format!(
        "{}... [err truncated: {} bytes in all]",
        &err[..end],
        err.len()
    )
}

/// The `column` of at most `batch` rows of `select` (the ids a batched delete takes).
async fn first_ids<E, T>(
    db: &DatabaseConnection,
    select: sea_orm::Select<E>,
    column: E::Column,
    batch: u64,
) -> Result<Vec<T>, DbErr>
where
    E: EntityTrait,
    T: sea_orm::TryGetableMany,
{
    use sea_orm::QuerySelect;
    select
        .select_only()
        .column(column)
        .limit(batch)
        .into_tuple()
        .all(db)
        .await
}

/// The callbacks delivered to `trace_id`, oldest first.
fn callbacks_in_order(trace_id: &str) -> sea_orm::Select<entity::callback::Entity> {
    use entity::callback;
    use sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    callback::Entity::find()
        .filter(callback::Column::TraceId.eq(trace_id))
        .order_by_asc(callback::Column::CreatedAt)
}

/// Runs `attempt` again (up to 5 times, 5 ms doubling) while it fails with a transient conflict.
pub(crate) async fn retry_transient<T, F, Fut>(mut attempt: F) -> Result<T, DbErr>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, DbErr>>,
{
    let mut wait = Duration::from_millis(5);
    for _ in 0..5 {
        match attempt().await {
            Err(e) if is_transient(&e) => {
                tracing::debug!(error = %e, "transient database conflict; trying again");
                tokio::time::sleep(wait).await;
                wait *= 2;
            }
            other => return other,
        }
    }
    attempt().await
}

/// How far the database's clock is ahead of this process's clock, in milliseconds (measured by
/// [`Store::sync_clock`]; 0 until then).
static CLOCK_OFFSET_MS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Milliseconds since the Unix epoch, now, by the database's clock: every lease, due time and
/// deadline any process writes or compares uses it, so processes whose clocks disagree still
/// agree on when a lease has run out.
pub(crate) fn now_ms() -> i64 {
    local_ms() + CLOCK_OFFSET_MS.load(std::sync::atomic::Ordering::Relaxed)
}

fn local_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How often [`Store::sync_clock`] measures the database's clock again.
pub(crate) const CLOCK_SYNC_EVERY: Duration = Duration::from_secs(30);

/// A connection to the schedule database.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    db: DatabaseConnection,
}

impl Store {
    /// Connects, with WAL and a busy timeout on SQLite.
    pub(crate) async fn connect(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        crate::drivers::check_url(url).map_err(|e| StoreError::Unsupported(e.to_string()))?;
        let mut options = ConnectOptions::new(url.to_string());
        options
            .max_connections(max_connections)
            .min_connections(1)
            .connect_timeout(Duration::from_secs(10))
            .acquire_timeout(Duration::from_secs(30))
            .sqlx_logging(false);
        #[cfg(feature = "sqlite")]
        if url.starts_with("sqlite:") {
            options.map_sqlx_sqlite_opts(|opts| {
                opts.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .busy_timeout(Duration::from_secs(30))
                    .create_if_missing(true)
            });
        }
        let db = Database::connect(options).await?;
        if db.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            check_mysql_version(&db).await?;
        }
        let store = Self { db };
        if let Err(e) = store.sync_clock().await {
            tracing::warn!(error = %e, "cannot read the database's clock; using this host's clock");
        }
        Ok(store)
    }

    /// Measures how far the database's clock is from this process's clock (half the round
    /// trip is taken as the query's delay) and makes [`now_ms`] follow the database's clock.
    pub(crate) async fn sync_clock(&self) -> Result<i64, StoreError> {
        use sea_orm::ConnectionTrait;
        let backend = self.db.get_database_backend();
        let sql = match backend {
            sea_orm::DatabaseBackend::MySql => {
                "SELECT CAST(UNIX_TIMESTAMP(NOW(3)) * 1000 AS SIGNED)"
            }
            sea_orm::DatabaseBackend::Postgres => {
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
            _ => "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
        };
        let before = local_ms();
        let row = self
            .db
            .query_one_raw(sea_orm::Statement::from_string(backend, sql))
            .await?;
        let after = local_ms();
        let Some(database) = row.and_then(|r| r.try_get_by_index::<i64>(0).ok()) else {
            return Err(StoreError::Unsupported(
                "the database did not say what time it is".into(),
            ));
        };
        let offset = database - (before + after) / 2;
        CLOCK_OFFSET_MS.store(offset, std::sync::atomic::Ordering::Relaxed);
        Ok(offset)
    }

    /// The connection, for tests and tools.
    pub(crate) fn connection(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Applies every pending migration (idempotent).
    pub(crate) async fn migrate(&self) -> Result<(), StoreError> {
        Migrator::up(&self.db, None).await?;
        Ok(())
    }

    /// The names of migrations not yet applied.
    pub(crate) async fn pending_migrations(&self) -> Result<Vec<String>, StoreError> {
        let pending = Migrator::get_pending_migrations(&self.db).await?;
        Ok(pending.iter().map(|m| m.name().to_string()).collect())
    }

    /// One invocation by trace id.
    pub(crate) async fn get(&self, trace_id: &str) -> Result<Option<schedule::Model>, StoreError> {
        Ok(schedule::Entity::find_by_id(trace_id.to_string())
            .one(&self.db)
            .await?)
    }
}

/// The claim query needs `FOR UPDATE SKIP LOCKED`: MySQL 8.0+ or MariaDB 10.6+. An older
/// server would fail every claim, so refuse to start instead, saying why.
async fn check_mysql_version(db: &DatabaseConnection) -> Result<(), StoreError> {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::MySql,
            "SELECT VERSION()",
        ))
        .await?;
    let version: String = row
        .and_then(|r| r.try_get_by_index::<String>(0).ok())
        .unwrap_or_default();
    match mysql_too_old(&version) {
        Some(needed) => Err(StoreError::Unsupported(format!(
            "database server {version} is too old: the scheduler needs FOR UPDATE SKIP LOCKED ({needed})"
        ))),
        None => Ok(()),
    }
}

/// `Some(requirement)` when `version` (as `SELECT VERSION()` reports it) lacks SKIP LOCKED.
fn mysql_too_old(version: &str) -> Option<&'static str> {
    let mut numbers = version
        .split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let major = numbers.next().unwrap_or(0);
    let minor = numbers.next().unwrap_or(0);
    if version.to_ascii_lowercase().contains("mariadb") {
        ((major, minor) < (10, 6)).then_some("MariaDB 10.6 or newer")
    } else {
        (major < 8).then_some("MySQL 8.0 or newer")
    }
}

#[cfg(test)]
mod tests {
    use super::{MAX_ERR_BYTES, cap_err, mysql_too_old};

    #[test]
    fn a_long_err_is_cut_at_a_character_boundary_and_says_how_long_it_was() {
        assert_eq!(cap_err("short".into()), "short");
        let long = "错".repeat(MAX_ERR_BYTES);
        let capped = cap_err(long.clone());
        assert!(capped.len() < MAX_ERR_BYTES + 64, "{}", capped.len());
        assert!(capped.ends_with(&format!("[err truncated: {} bytes in all]", long.len())));
    }

    #[test]
    fn servers_without_skip_locked_are_recognised() {
        assert_eq!(mysql_too_old("5.7.44-log"), Some("MySQL 8.0 or newer"));
        assert_eq!(mysql_too_old("8.0.36"), None);
        assert_eq!(
            mysql_too_old("10.5.23-MariaDB-0+deb11u1"),
            Some("MariaDB 10.6 or newer")
        );
        assert_eq!(mysql_too_old("10.11.19-MariaDB-0+deb12u1"), None);
        assert_eq!(mysql_too_old("11.4.2-MariaDB"), None);
    }
}
