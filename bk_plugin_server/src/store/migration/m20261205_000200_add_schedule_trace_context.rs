//! Adds `bkp_schedule.trace_context`: the W3C trace context of the invoke that stored a waiting
//! invocation, so that its re-runs and its finish callback continue the same OpenTelemetry
//! trace in whichever process runs them. Nullable (rows stored with tracing off have none), so
//! the change is additive: a binary that does not know the column keeps working.

use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261205_000200_add_schedule_trace_context"
    }
}

#[derive(DeriveIden)]
enum BkpSchedule {
    Table,
    TraceContext,
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.has_column("bkp_schedule", "trace_context").await? {
            return Ok(());
        }
        manager
            .alter_table(
                Table::alter()
                    .table(BkpSchedule::Table)
                    .add_column(ColumnDef::new(BkpSchedule::TraceContext).text().null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(BkpSchedule::Table)
                    .drop_column(BkpSchedule::TraceContext)
                    .to_owned(),
            )
            .await
    }
}
