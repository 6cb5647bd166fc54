//! On MySQL/MariaDB, widens `bkp_schedule.err` and `bkp_log.line` from TEXT (64 KiB) to
//! LONGTEXT, so that what the runtime stores always fits (an `err` is capped at
//! `MAX_ERR_BYTES`, a log line is not). SQLite and PostgreSQL `TEXT` has no such limit.

use sea_orm_migration::prelude::*;

pub(super) struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261126_000010_wide_text_columns"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        text_columns_as(manager, "LONGTEXT").await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        text_columns_as(manager, "TEXT").await
    }
}

/// On MySQL/MariaDB, gives `bkp_schedule.err` and `bkp_log.line` the type `kind`; elsewhere
/// TEXT has no such limit and nothing changes.
async fn text_columns_as(manager: &SchemaManager<'_>, kind: &str) -> Result<(), DbErr> {
    if manager.get_database_backend() != sea_orm::DatabaseBackend::MySql {
        return Ok(());
    }
    let db = manager.get_connection();
    db.execute_unprepared(&format!("ALTER TABLE bkp_schedule MODIFY err {kind} NULL"))
        .await?;
    db.execute_unprepared(&format!("ALTER TABLE bkp_log MODIFY line {kind} NOT NULL"))
        .await?;
    Ok(())
}
