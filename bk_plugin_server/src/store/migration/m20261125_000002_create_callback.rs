//! Creates `bkp_callback`, the inbox of delivered callbacks.

use sea_orm_migration::prelude::*;

use super::{json_text, unicode_table};

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000002_create_callback"
    }
}

#[derive(DeriveIden)]
enum BkpCallback {
    Table,
    TraceId,
    CallbackId,
    Data,
    Consumed,
    CreatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(BkpCallback::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(BkpCallback::TraceId)
                    .string_len(32)
                    .not_null(),
            )
            .col(
                ColumnDef::new(BkpCallback::CallbackId)
                    .string_len(32)
                    .not_null(),
            )
            .col(json_text(manager, BkpCallback::Data))
            .col(
                ColumnDef::new(BkpCallback::Consumed)
                    .boolean()
                    .not_null()
                    .default(false),
            )
            .col(
                ColumnDef::new(BkpCallback::CreatedAt)
                    .big_integer()
                    .not_null(),
            )
            .primary_key(
                Index::create()
                    .col(BkpCallback::TraceId)
                    .col(BkpCallback::CallbackId),
            )
            .to_owned();
        unicode_table(manager, &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BkpCallback::Table).to_owned())
            .await
    }
}
