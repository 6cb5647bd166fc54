//! Creates `bkp_callback`, the inbox of delivered callbacks.

use sea_orm_migration::prelude::*;

use super::{CreateTable, json_text, no_indexes, primary_key, required, required_ms};

/// The migration, named after this file.
pub(super) const MIGRATION: CreateTable = CreateTable::new(module_path!(), table, no_indexes);

fn table(manager: &SchemaManager<'_>) -> TableCreateStatement {
    Table::create()
        .table(BkpCallback::Table)
        .primary_key(&mut primary_key([
            BkpCallback::TraceId,
            BkpCallback::CallbackId,
        ]))
        .col(required(BkpCallback::TraceId, |c| c.string_len(32)))
        .col(required(BkpCallback::CallbackId, |c| c.string_len(32)))
        .col(json_text(manager, BkpCallback::Data))
        .col(required(BkpCallback::Consumed, ColumnDef::boolean).default(false))
        .col(required_ms(BkpCallback::CreatedAt))
        .to_owned()
}

/// The table and its columns.
#[derive(DeriveIden)]
enum BkpCallback {
    Table,
    TraceId,
    CallbackId,
    Data,
    Consumed,
    CreatedAt,
}
