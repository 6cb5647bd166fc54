//! Captured log lines for the per-trace logs API.

use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::log;
use super::{Store, StoreError, first_ids};

/// A captured log line waiting to be written.
#[derive(Debug, Clone)]
pub(crate) struct LogLine {
    /// The trace it belongs to.
    pub trace_id: String,
    /// When it was emitted (ms since the epoch).
    pub created_at: i64,
    /// The formatted line.
    pub line: String,
}

impl Store {
    /// Writes captured log lines in one statement.
    pub(crate) async fn insert_logs(&self, lines: Vec<LogLine>) -> Result<(), StoreError> {
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
    pub(crate) async fn logs_of(&self, trace_id: &str) -> Result<Vec<String>, StoreError> {
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
    pub(crate) async fn delete_logs_before(
        &self,
        before: i64,
        batch: u64,
    ) -> Result<u64, StoreError> {
        let old = log::Entity::find().filter(log::Column::CreatedAt.lt(before));
        let ids: Vec<i64> = first_ids(&self.db, old, log::Column::Id, batch).await?;
        // An empty `IN ()` matches nothing: the statement is then a no-op.
        let deleted = log::Entity::delete_many()
            .filter(log::Column::Id.is_in(ids))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }
}
