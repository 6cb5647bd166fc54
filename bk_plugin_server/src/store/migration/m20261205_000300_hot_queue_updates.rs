//! Keeps the updates that move a waiting row between workers off indexed columns, and gives
//! finish callbacks their receiver as a column:
//!
//! - drops `idx_bkp_schedule_live_lease (state, lease_owner)`, so that parking, claiming,
//!   heartbeats and releases — which change only `lease_owner`, `lease_until` and `updated_at`
//!   — touch no index: on PostgreSQL they are HOT updates (no new index entries, no dead index
//!   entries at the head of the due index), on MySQL no secondary index is rewritten. The
//!   running count of `/metrics` reads the live rows through `idx_bkp_schedule_live_due`
//!   instead, at most once every 5 s;
//! - on PostgreSQL, leaves a fifth of every new table page free (`fillfactor = 80`), so that
//!   those updates find room for the new row version on the same page (the condition of a HOT
//!   update);
//! - adds `notify_receiver` (scheme, host and port of the finish-callback URL): the notifier's
//!   claim leaves the rows of a receiver that has no free delivery slot in the database,
//!   untouched, instead of claiming and deferring each of them.

use sea_orm_migration::prelude::*;

use super::{create_index, drop_index};

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000300_hot_queue_updates"
    }
}

#[derive(DeriveIden)]
enum BkpSchedule {
    Table,
    State,
    LeaseOwner,
    NotifyReceiver,
}

const LIVE_LEASE: &str = "idx_bkp_schedule_live_lease";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_index("bkp_schedule", LIVE_LEASE).await? {
            drop_index(manager, LIVE_LEASE, BkpSchedule::Table).await?;
        }
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE bkp_schedule SET (fillfactor = 80)")
                .await?;
        }
        if !manager
            .has_column("bkp_schedule", "notify_receiver")
            .await?
        {
            manager
                .alter_table(
                    Table::alter()
                        .table(BkpSchedule::Table)
                        .add_column(
                            ColumnDef::new(BkpSchedule::NotifyReceiver)
                                .string_len(255)
                                .null(),
                        )
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BkpSchedule::Table)
                    .drop_column(BkpSchedule::NotifyReceiver)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == sea_orm::DatabaseBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("ALTER TABLE bkp_schedule RESET (fillfactor)")
                .await?;
        }
        create_index(
            manager,
            LIVE_LEASE,
            BkpSchedule::Table,
            [BkpSchedule::State, BkpSchedule::LeaseOwner],
        )
        .await
    }
}
