//! The callback inbox: delivered callbacks, recognised duplicates, consumption by steps.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, SqlErr,
};

use bk_plugin_core::State;

use super::entity::{JsonText, StoredState, callback, schedule};
use super::{Store, StoreError, callbacks_in_order, now_ms, retry_transient};

/// What became of a delivered callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CallbackAcceptance {
    /// Stored; the invocation re-runs with it.
    Accepted {
        /// Whether the row is runnable now (not mid-step).
        runnable: bool,
    },
    /// The same callback was delivered before: nothing changes.
    Duplicate,
    /// No such invocation, and it cannot be an early arrival: the callback was not kept.
    NotFound,
    /// The invocation is not waiting for a callback.
    NotWaiting(State),
}

impl Store {
    /// Stores a delivered callback and makes the invocation runnable. A duplicate of a callback
    /// already delivered changes nothing. A callback for an invocation that is mid-step (POLL or
    /// CALLBACK, leased) is kept and runs as soon as that step asks to wait for a callback.
    ///
    /// A callback for an invocation not stored yet is kept too: its token proves we issued it,
    /// so its first run is still in progress (a fast third party can call back before the
    /// invoke has answered). Storing the waiting row then makes it due at once.
    #[cfg(test)]
    pub(crate) async fn accept_callback(
        &self,
        trace_id: &str,
        callback_id: &str,
        data: JsonText,
    ) -> Result<CallbackAcceptance, StoreError> {
        self.accept_callback_for(trace_id, callback_id, data, true)
            .await
    }

    /// [`Store::accept_callback`], keeping a callback for an invocation that is not stored only
    /// when `may_be_early` (the caller judged that its invocation's first run may still be in
    /// progress); otherwise such a callback is [`CallbackAcceptance::NotFound`].
    pub(crate) async fn accept_callback_for(
        &self,
        trace_id: &str,
        callback_id: &str,
        data: JsonText,
        may_be_early: bool,
    ) -> Result<CallbackAcceptance, StoreError> {
        let row = self.get(trace_id).await?;
        let already = callback::Entity::find_by_id((trace_id.to_string(), callback_id.to_string()))
            .one(&self.db)
            .await?
            .is_some();
        if already {
            return Ok(CallbackAcceptance::Duplicate);
        }
        if row.is_none() && !may_be_early {
            return Ok(CallbackAcceptance::NotFound);
        }
        if let Some(row) = &row {
            let mid_step = row.lease_owner.is_some() && row.state == StoredState::Poll;
            if row.state != StoredState::Callback && !mid_step {
                return Ok(CallbackAcceptance::NotWaiting(row.state.state()));
            }
        }
        let now = now_ms();
        let model = callback::ActiveModel {
            trace_id: Set(trace_id.to_string()),
            callback_id: Set(callback_id.to_string()),
            data: Set(data),
            consumed: Set(false),
            created_at: Set(now),
        };
        let inserted = retry_transient(|| {
            callback::Entity::insert(model.clone()).exec_without_returning(&self.db)
        })
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Ok(CallbackAcceptance::Duplicate);
            }
            Err(e) => return Err(e.into()),
        }
        let woke = retry_transient(|| {
            schedule::Entity::update_many()
                .col_expr(schedule::Column::RunAt, Expr::value(now))
                .col_expr(schedule::Column::UpdatedAt, Expr::value(now))
                .filter(schedule::Column::TraceId.eq(trace_id))
                .filter(schedule::Column::State.eq(StoredState::Callback))
                .filter(schedule::Column::LeaseOwner.is_null())
                .exec(&self.db)
        })
        .await?;
        Ok(CallbackAcceptance::Accepted {
            runnable: woke.rows_affected == 1,
        })
    }

    /// Deletes callbacks older than `before` whose invocation is not stored (early arrivals for
    /// invocations that then finished in the invoke call); returns how many went.
    pub(crate) async fn delete_orphan_callbacks_before(
        &self,
        before: i64,
    ) -> Result<u64, StoreError> {
        use sea_orm::{QuerySelect, QueryTrait};
        let stored = schedule::Entity::find()
            .select_only()
            .column(schedule::Column::TraceId)
            .into_query();
        let deleted = callback::Entity::delete_many()
            .filter(callback::Column::CreatedAt.lt(before))
            .filter(callback::Column::TraceId.not_in_subquery(stored))
            .exec(&self.db)
            .await?;
        Ok(deleted.rows_affected)
    }

    /// The oldest callback delivered to `trace_id` that no step has consumed.
    pub(crate) async fn oldest_callback(
        &self,
        trace_id: &str,
    ) -> Result<Option<callback::Model>, StoreError> {
        Ok(callbacks_in_order(trace_id)
            .filter(callback::Column::Consumed.eq(false))
            .one(&self.db)
            .await?)
    }
}

/// Makes the CALLBACK rows among `trace_ids` due now when a callback already waits for them,
/// in one UPDATE whose subquery reads the latest committed inbox (a plain SELECT inside a
/// MySQL REPEATABLE READ transaction could miss a callback committed meanwhile).
pub(super) async fn wake_if_called_back<C: ConnectionTrait>(
    db: &C,
    trace_ids: Vec<String>,
    now: i64,
) -> Result<(), DbErr> {
    use sea_orm::QuerySelect;
    use sea_orm::QueryTrait;
    let waiting = callback::Entity::find()
        .select_only()
        .column(callback::Column::TraceId)
        .filter(callback::Column::TraceId.is_in(trace_ids.clone()))
        .filter(callback::Column::Consumed.eq(false))
        .into_query();
    schedule::Entity::update_many()
        .col_expr(schedule::Column::RunAt, Expr::value(now))
        .filter(schedule::Column::TraceId.is_in(trace_ids))
        .filter(schedule::Column::State.eq(StoredState::Callback))
        .filter(schedule::Column::TraceId.in_subquery(waiting))
        .exec(db)
        .await?;
    Ok(())
}
