//! Creates `bkp_schedule` and the indexes the due-claim, notification and cleanup queries use.

use sea_orm_migration::prelude::*;

use super::{CreateTable, index, json_text, optional_ms, required, required_ms};

/// The migration, named after this file.
pub(super) const MIGRATION: CreateTable = CreateTable::new(module_path!(), table, indexes);

fn indexes() -> Vec<IndexCreateStatement> {
    let notify = [BkpSchedule::NotifyState, BkpSchedule::NotifyAt];
    vec![
        index(
            "idx_bkp_schedule_due",
            BkpSchedule::Table,
            [BkpSchedule::RunAt],
        ),
        index("idx_bkp_schedule_notify", BkpSchedule::Table, notify),
        index(
            "idx_bkp_schedule_finished",
            BkpSchedule::Table,
            [BkpSchedule::FinishedAt],
        ),
    ]
}

fn table(manager: &SchemaManager<'_>) -> TableCreateStatement {
    Table::create()
        .table(BkpSchedule::Table)
        .col(required(BkpSchedule::TraceId, |c| c.string_len(32)).primary_key())
        .col(required(BkpSchedule::PluginVersion, |c| c.string_len(128)))
        .col(required(BkpSchedule::State, ColumnDef::integer))
        .col(required(BkpSchedule::InvokeCount, ColumnDef::integer))
        .col(json_text(manager, BkpSchedule::Inputs))
        .col(json_text(manager, BkpSchedule::Context))
        .col(json_text(manager, BkpSchedule::Storage))
        .col(json_text(manager, BkpSchedule::Outputs))
        .col(ColumnDef::new(BkpSchedule::Err).text().null())
        .col(optional_ms(BkpSchedule::RunAt))
        .col(
            ColumnDef::new(BkpSchedule::LeaseOwner)
                .string_len(64)
                .null(),
        )
        .col(optional_ms(BkpSchedule::LeaseUntil))
        .col(optional_ms(BkpSchedule::CallbackDeadline))
        .col(required(BkpSchedule::NotifyState, ColumnDef::small_integer).default(0))
        .col(required(BkpSchedule::NotifyAttempts, ColumnDef::integer).default(0))
        .col(optional_ms(BkpSchedule::NotifyAt))
        .col(required_ms(BkpSchedule::CreatedAt))
        .col(required_ms(BkpSchedule::UpdatedAt))
        .col(optional_ms(BkpSchedule::FinishedAt))
        .to_owned()
}

/// The table and its columns.
#[derive(DeriveIden)]
enum BkpSchedule {
    Table,
    TraceId,
    PluginVersion,
    State,
    InvokeCount,
    Inputs,
    Context,
    Storage,
    Outputs,
    Err,
    RunAt,
    LeaseOwner,
    LeaseUntil,
    CallbackDeadline,
    NotifyState,
    NotifyAttempts,
    NotifyAt,
    CreatedAt,
    UpdatedAt,
    FinishedAt,
}
