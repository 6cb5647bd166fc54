//! Finish-callback deliveries: claiming due ones (only the columns delivery needs, never the
//! rows of a receiver with no free slot) and recording each attempt.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::schedule;
use super::entity::{JsonText, NotifyState};
use super::transition::without_lease;
use super::{Store, StoreError, now_ms};
use crate::time::duration_ms;

/// A finish callback to deliver: what the notifier reads of a row.
#[derive(Debug, Clone)]
pub(crate) struct Notification {
    /// The invocation.
    pub(crate) trace_id: String,
    /// Its stored context (where `plugin_callback_info` is).
    pub(crate) context: JsonText,
    /// Attempts so far.
    pub(crate) attempts: i32,
    /// When it finished (the retry window starts then).
    pub(crate) finished_at: Option<i64>,
    /// Where it goes (scheme, host and port), when recorded.
    pub(crate) receiver: Option<String>,
    /// The invoke's W3C trace context, so the delivery continues its trace.
    pub(crate) trace_context: Option<String>,
}

impl Store {
    /// Reads up to `limit` finished rows whose finish callback is due, oldest due first,
    /// leaving out those of the receivers in `busy` (and never reading inputs, storage or
    /// outputs). Nothing is written: the caller picks which to [`Store::claim_notification`].
    pub(crate) async fn due_notifications(
        &self,
        limit: u64,
        busy: &[String],
    ) -> Result<Vec<(Notification, i64)>, StoreError> {
        let now = now_ms();
        let mut select = schedule::Entity::find()
            .select_only()
            .columns([
                schedule::Column::TraceId,
                schedule::Column::Context,
                schedule::Column::NotifyAttempts,
                schedule::Column::FinishedAt,
                schedule::Column::NotifyReceiver,
                schedule::Column::NotifyAt,
                schedule::Column::TraceContext,
            ])
            .filter(schedule::Column::NotifyState.eq(NotifyState::Pending))
            .filter(schedule::Column::NotifyAt.lte(now));
        if !busy.is_empty() {
            select = select.filter(
                Condition::any()
                    .add(schedule::Column::NotifyReceiver.is_null())
                    .add(schedule::Column::NotifyReceiver.is_not_in(busy.to_vec())),
            );
        }
        type Row = (
            String,
            JsonText,
            i32,
            Option<i64>,
            Option<String>,
            i64,
            Option<String>,
        );
        let rows: Vec<Row> = select
            .order_by_asc(schedule::Column::NotifyAt)
            .limit(limit)
            .into_tuple()
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .map(
                |(trace_id, context, attempts, finished_at, receiver, notify_at, trace_context)| {
                    let notification = Notification {
                        trace_id,
                        context,
                        attempts,
                        finished_at,
                        receiver,
                        trace_context,
                    };
                    (notification, notify_at)
                },
            )
            .collect())
    }

    /// Claims one due finish callback read by [`Store::due_notifications`] for `owner`: a
    /// compare-and-set on `notify_at` (as read) that pushes it `lease` ahead, so other
    /// notifiers skip the row meanwhile. False when another notifier took it first.
    pub(crate) async fn claim_notification(
        &self,
        trace_id: &str,
        notify_at: i64,
        owner: &str,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        let until = now_ms() + duration_ms(lease);
        let taken = schedule::Entity::update_many()
            .col_expr(schedule::Column::NotifyAt, Expr::value(until))
            .col_expr(schedule::Column::LeaseOwner, Expr::value(owner.to_string()))
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::NotifyState.eq(NotifyState::Pending))
            .filter(schedule::Column::NotifyAt.eq(notify_at))
            .exec(&self.db)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Records a finish-callback attempt: delivered, retry at `retry_at`, or given up.
    pub(crate) async fn record_notification(
        &self,
        trace_id: &str,
        attempts: i32,
        outcome: NotifyState,
        retry_at: Option<i64>,
    ) -> Result<(), StoreError> {
        // The notifier's lease is `lease_owner` with `notify_at` pushed past it.
        without_lease(schedule::Entity::update_many())
            .col_expr(schedule::Column::NotifyState, Expr::value(outcome))
            .col_expr(schedule::Column::NotifyAttempts, Expr::value(attempts))
            .col_expr(schedule::Column::NotifyAt, Expr::value(retry_at))
            .filter(schedule::Column::TraceId.eq(trace_id))
            .filter(schedule::Column::NotifyState.eq(NotifyState::Pending))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
