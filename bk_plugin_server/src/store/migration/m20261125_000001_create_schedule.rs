//! Creates `bkp_schedule` and the indexes the due-claim, notification and cleanup queries use.

use sea_orm_migration::prelude::*;

use super::{json_text, unicode_table};

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261125_000001_create_schedule"
    }
}

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

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = Table::create()
            .table(BkpSchedule::Table)
            .if_not_exists()
            .col(
                ColumnDef::new(BkpSchedule::TraceId)
                    .string_len(32)
                    .not_null()
                    .primary_key(),
            )
            .col(
                ColumnDef::new(BkpSchedule::PluginVersion)
                    .string_len(128)
                    .not_null(),
            )
            .col(ColumnDef::new(BkpSchedule::State).integer().not_null())
            .col(
                ColumnDef::new(BkpSchedule::InvokeCount)
                    .integer()
                    .not_null(),
            )
            .col(json_text(manager, BkpSchedule::Inputs))
            .col(json_text(manager, BkpSchedule::Context))
            .col(json_text(manager, BkpSchedule::Storage))
            .col(json_text(manager, BkpSchedule::Outputs))
            .col(ColumnDef::new(BkpSchedule::Err).text().null())
            .col(ColumnDef::new(BkpSchedule::RunAt).big_integer().null())
            .col(
                ColumnDef::new(BkpSchedule::LeaseOwner)
                    .string_len(64)
                    .null(),
            )
            .col(ColumnDef::new(BkpSchedule::LeaseUntil).big_integer().null())
            .col(
                ColumnDef::new(BkpSchedule::CallbackDeadline)
                    .big_integer()
                    .null(),
            )
            .col(
                ColumnDef::new(BkpSchedule::NotifyState)
                    .small_integer()
                    .not_null()
                    .default(0),
            )
            .col(
                ColumnDef::new(BkpSchedule::NotifyAttempts)
                    .integer()
                    .not_null()
                    .default(0),
            )
            .col(ColumnDef::new(BkpSchedule::NotifyAt).big_integer().null())
            .col(
                ColumnDef::new(BkpSchedule::CreatedAt)
                    .big_integer()
                    .not_null(),
            )
            .col(
                ColumnDef::new(BkpSchedule::UpdatedAt)
                    .big_integer()
                    .not_null(),
            )
            .col(ColumnDef::new(BkpSchedule::FinishedAt).big_integer().null())
            .to_owned();
        unicode_table(manager, &mut table);
        manager.create_table(table).await?;
        for (name, columns) in [
            ("idx_bkp_schedule_due", vec![BkpSchedule::RunAt]),
            (
                "idx_bkp_schedule_notify",
                vec![BkpSchedule::NotifyState, BkpSchedule::NotifyAt],
            ),
            ("idx_bkp_schedule_finished", vec![BkpSchedule::FinishedAt]),
        ] {
            let mut index = Index::create();
            index.name(name).table(BkpSchedule::Table).if_not_exists();
            for column in columns {
                index.col(column);
            }
            manager.create_index(index.to_owned()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(BkpSchedule::Table).to_owned())
            .await
    }
}
