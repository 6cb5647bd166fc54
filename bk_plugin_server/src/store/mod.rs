//! The schedule store: stateless query and mutation functions over the `bkp_schedule` and
//! `bkp_callback` tables. Handlers and the worker call these; nothing else builds SQL.
//!
//! Every transition of a leased row is guarded by the state it leaves and the lease owner, so
//! a paused or stale worker whose lease was taken over can never overwrite newer progress.

pub mod batch;
pub mod entity;
mod inbox;
mod logs;
pub mod migration;
mod notifications;
mod queue;

pub use inbox::CallbackAcceptance;
pub use logs::LogLine;
pub use queue::{FinishedStep, NewWaiting, Transition};

use std::time::Duration;

use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, EntityTrait};
use sea_orm_migration::MigratorTrait;

use entity::schedule;
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

    /// One invocation by trace id.
    pub async fn get(&self, trace_id: &str) -> Result<Option<schedule::Model>, StoreError> {
        Ok(schedule::Entity::find_by_id(trace_id.to_string())
            .one(&self.db)
            .await?)
    }
}
