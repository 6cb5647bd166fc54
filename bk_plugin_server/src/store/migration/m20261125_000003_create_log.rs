//! Creates `bkp_log`: log lines captured per trace id for `GET /bk_plugin/logs/{trace_id}`.

use sea_orm_migration::prelude::*;

use super::{CreateTable, index, required, required_ms};

/// The migration, named after this file.
pub(super) const MIGRATION: CreateTable = CreateTable::new(module_path!(), table, indexes);

fn indexes() -> Vec<IndexCreateStatement> {
    let trace = [BkpLog::TraceId, BkpLog::CreatedAt];
    vec![
        index("idx_bkp_log_trace", BkpLog::Table, trace),
        index("idx_bkp_log_created", BkpLog::Table, [BkpLog::CreatedAt]),
    ]
}

fn table(_manager: &SchemaManager<'_>) -> TableCreateStatement {
    Table::create()
        .table(BkpLog::Table)
        .col(
            ColumnDef::new(BkpLog::Id)
                .big_integer()
                .not_null()
                .auto_increment()
                .primary_key(),
        )
        .col(required(BkpLog::TraceId, |c| c.string_len(32)))
        .col(required_ms(BkpLog::CreatedAt))
        .col(required(BkpLog::Line, ColumnDef::text))
        .to_owned()
}

/// The table and its columns.
#[derive(DeriveIden)]
enum BkpLog {
    Table,
    Id,
    TraceId,
    CreatedAt,
    Line,
}
