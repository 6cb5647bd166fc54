//! Creates `bkp_log`: log lines captured per trace id for `GET /bk_plugin/logs/{trace_id}`.

use sea_orm_migration::prelude::*;

use super::unicode_table;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000003_create_log"
    }
}

#[derive(DeriveIden)]
enum BkpLog {
    Table,
    Id,
    TraceId,
    CreatedAt,
    Line,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(BkpLog::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(BkpLog::Id)
                    .big_integer()
                    .not_null()
                    .auto_increment()
                    .primary_key(),
            )
            .col(ColumnDef::new(BkpLog::TraceId).string_len(32).not_null())
            .col(ColumnDef::new(BkpLog::CreatedAt).big_integer().not_null())
            .col(ColumnDef::new(BkpLog::Line).text().not_null())
            .to_owned();
        unicode_table(manager, &mut table);
        manager.create_table(table).await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_bkp_log_trace")
                    .table(BkpLog::Table)
                    .col(BkpLog::TraceId)
                    .col(BkpLog::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_bkp_log_created")
                    .table(BkpLog::Table)
                    .col(BkpLog::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BkpLog::Table).to_owned())
            .await
    }
}
