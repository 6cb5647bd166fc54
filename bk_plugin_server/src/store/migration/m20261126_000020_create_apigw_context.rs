//! Creates `bkp_apigw_context`: small values about the API gateway that every process of the
//! plugin shares through the database: the gateway's public key (written by
//! `fetch-apigw-public-key`, read by `serve`) and the state of the last `sync-apigw`.

use sea_orm_migration::prelude::*;

use super::{CreateTable, json_text, no_indexes, primary_key, required, required_ms};

/// The table and its columns.
#[derive(DeriveIden)]
enum BkpApigwContext {
    Table,
    Scope,
    Name,
    Value,
    UpdatedAt,
}

/// The migration, named after this file.
pub(super) const MIGRATION: CreateTable = CreateTable::new(module_path!(), table, no_indexes);

fn table(manager: &SchemaManager<'_>) -> TableCreateStatement {
    Table::create()
        .table(BkpApigwContext::Table)
        .col(required(BkpApigwContext::Scope, |c| c.string_len(32)))
        .col(required(BkpApigwContext::Name, |c| c.string_len(128)))
        .col(json_text(manager, BkpApigwContext::Value))
        .col(required_ms(BkpApigwContext::UpdatedAt))
        .primary_key(&mut primary_key([
            BkpApigwContext::Scope,
            BkpApigwContext::Name,
        ]))
        .to_owned()
}
