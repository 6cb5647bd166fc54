//! Read-only queries behind the inspection commands (`schedule`, `schedules`, `logs`): a
//! filtered listing of stored invocations and the callbacks delivered to one of them.

use sea_orm::{ColumnTrait, EntityTrait, FromQueryResult, QueryFilter, QueryOrder, QuerySelect};

use super::entity::{NotifyState, StoredState, callback, schedule};
use super::{Store, StoreError};

/// Which invocations `schedules` lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ScheduleFilter {
    /// Only these states (any state when empty).
    pub(crate) states: Vec<StoredState>,
    /// Only this plugin version.
    pub(crate) version: Option<String>,
    /// Only invocations created at or after this time (ms since the epoch).
    pub(crate) since: Option<i64>,
    /// At most this many rows.
    pub(crate) limit: u64,
}

/// One line of the listing: everything but the JSON documents, which can be megabytes each.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub(crate) struct ScheduleSummary {
    /// The invocation's trace id.
    pub(crate) trace_id: String,
    /// The plugin version it runs.
    pub(crate) plugin_version: String,
    /// The protocol state.
    pub(crate) state: StoredState,
    /// How many times `execute` has run.
    pub(crate) invoke_count: i32,
    /// The `err` of a failed invocation.
    pub(crate) err: Option<String>,
    /// Finish-callback delivery state.
    pub(crate) notify_state: NotifyState,
    /// Finish-callback attempts so far.
    pub(crate) notify_attempts: i32,
    /// When it was created (ms).
    pub(crate) created_at: i64,
    /// When it reached SUCCESS or FAIL (ms).
    pub(crate) finished_at: Option<i64>,
}

impl From<&schedule::Model> for ScheduleSummary {
    fn from(row: &schedule::Model) -> Self {
        Self {
            trace_id: row.trace_id.clone(),
            plugin_version: row.plugin_version.clone(),
            state: row.state,
            invoke_count: row.invoke_count,
            err: row.error.clone(),
            notify_state: row.notify_state,
            notify_attempts: row.notify_attempts,
            created_at: row.created_at,
            finished_at: row.finished_at,
        }
    }
}

impl Store {
    /// Stored invocations matching `filter`, newest first (ties by trace id).
    pub(crate) async fn list_schedules(
        &self,
        filter: &ScheduleFilter,
    ) -> Result<Vec<ScheduleSummary>, StoreError> {
        let mut query = schedule::Entity::find().select_only().columns([
            schedule::Column::TraceId,
            schedule::Column::PluginVersion,
            schedule::Column::State,
            schedule::Column::InvokeCount,
            schedule::Column::Error,
            schedule::Column::NotifyState,
            schedule::Column::NotifyAttempts,
            schedule::Column::CreatedAt,
            schedule::Column::FinishedAt,
        ]);
        if !filter.states.is_empty() {
            query = query.filter(schedule::Column::State.is_in(filter.states.clone()));
        }
        if let Some(version) = &filter.version {
            query = query.filter(schedule::Column::PluginVersion.eq(version.clone()));
        }
        if let Some(since) = filter.since {
            query = query.filter(schedule::Column::CreatedAt.gte(since));
        }
        Ok(query
            .order_by_desc(schedule::Column::CreatedAt)
            .order_by_desc(schedule::Column::TraceId)
            .limit(filter.limit)
            .into_model::<ScheduleSummary>()
            .all(&self.db)
            .await?)
    }

    /// The callbacks delivered to `trace_id`, in arrival order.
    pub(crate) async fn callbacks_of(
        &self,
        trace_id: &str,
    ) -> Result<Vec<callback::Model>, StoreError> {
        Ok(super::callbacks_in_order(trace_id)
            .order_by_asc(callback::Column::CallbackId)
            .all(&self.db)
            .await?)
    }
}
