//! Indexes `bkp_schedule.created_at`, so that `schedules` (newest first, `--since`) reads only
//! the rows it shows instead of sorting the whole table.

use sea_orm_migration::prelude::*;

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
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(BkpSchedule::Table)
                    .col(BkpSchedule::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(BkpSchedule::Table)
                    .to_owned(),
            )
            .await
    }
}
