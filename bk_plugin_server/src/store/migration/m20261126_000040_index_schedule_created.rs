//! Indexes `bkp_schedule.created_at`, so that `schedules` (newest first, `--since`) reads only
//! the rows it shows instead of sorting the whole table.

use sea_orm_migration::prelude::*;

use super::{create_index, drop_index};

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000040_index_schedule_created"
    }
}

#[derive(DeriveIden)]
enum BkpSchedule {
    Table,
    CreatedAt,
}

const INDEX: &str = "idx_bkp_schedule_created";

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_index(manager, INDEX, BkpSchedule::Table, [BkpSchedule::CreatedAt]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_index(manager, INDEX, BkpSchedule::Table).await
    }
}
