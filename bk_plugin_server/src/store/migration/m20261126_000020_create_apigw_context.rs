//! Creates `bkp_apigw_context`: small values about the API gateway that every process of the
//! plugin shares through the database: the gateway's public key (written by
//! `fetch-apigw-public-key`, read by `serve`) and the state of the last `sync-apigw`.

use sea_orm_migration::prelude::*;

use super::{json_text, unicode_table};

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000020_create_apigw_context"
    }
}

#[derive(DeriveIden)]
enum BkpApigwContext {
    Table,
    Scope,
    Name,
    Value,
    UpdatedAt,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(BkpApigwContext::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(BkpApigwContext::Scope)
                    .string_len(32)
                    .not_null(),
            )
            .col(
                ColumnDef::new(BkpApigwContext::Name)
                    .string_len(128)
                    .not_null(),
            )
            .col(json_text(manager, BkpApigwContext::Value))
            .col(
                ColumnDef::new(BkpApigwContext::UpdatedAt)
                    .big_integer()
                    .not_null(),
            )
            .primary_key(
                Index::create()
                    .col(BkpApigwContext::Scope)
                    .col(BkpApigwContext::Name),
            )
            .to_owned();
        unicode_table(manager, &mut table);
        manager.create_table(table).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BkpApigwContext::Table).to_owned())
            .await
    }
}
