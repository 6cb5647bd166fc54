//! Finish-callback deliveries: claiming due ones and recording each attempt.

use std::time::Duration;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

use super::entity::NotifyState;
use super::entity::schedule;
use super::transition::without_lease;
use super::{Store, StoreError, now_ms};
use crate::time::duration_ms;

impl Store {
    /// Claims finished rows whose finish callback is due.
    pub(crate) async fn claim_notifications(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<schedule::Model>, StoreError> {
        let now = now_ms();
        let candidates: Vec<schedule::Model> = schedule::Entity::find()
            .filter(schedule::Column::NotifyState.eq(NotifyState::Pending))
            .filter(schedule::Column::NotifyAt.lte(now))
            .order_by_asc(schedule::Column::NotifyAt)
            .limit(limit)
            .all(&self.db)
            .await?;
        let mut claimed = Vec::new();
        for mut row in candidates {
            // Push notify_at past the lease: another notifier skips it until then.
            let until = now + duration_ms(lease);
            let taken = schedule::Entity::update_many()
                .col_expr(schedule::Column::NotifyAt, Expr::value(until))
                .col_expr(schedule::Column::LeaseOwner, Expr::value(owner.to_string()))
                .filter(schedule::Column::TraceId.eq(row.trace_id.clone()))
                .filter(schedule::Column::NotifyState.eq(NotifyState::Pending))
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
