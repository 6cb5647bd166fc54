//! Indexes that keep the worker's and `/metrics`' queries on the live rows (POLL and CALLBACK)
//! however many finished rows the table holds: `(state, run_at)` for the claim, the next due
//! time and the due / waiting counts, `(state, lease_owner)` for the running count.

use sea_orm_migration::prelude::*;

use super::{create_index, drop_index};

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000011_live_indexes"
    }
}

#[derive(DeriveIden)]
enum BkpSchedule {
    Table,
    State,
    RunAt,
    LeaseOwner,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, second) in [
            ("idx_bkp_schedule_live_due", BkpSchedule::RunAt),
            ("idx_bkp_schedule_live_lease", BkpSchedule::LeaseOwner),
        ] {
            create_index(
                manager,
                name,
                BkpSchedule::Table,
                [BkpSchedule::State, second],
            )
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_bkp_schedule_live_due", "idx_bkp_schedule_live_lease"] {
            drop_index(manager, name, BkpSchedule::Table).await?;
        }
        Ok(())
    }
}
