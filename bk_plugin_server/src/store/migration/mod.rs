//! Schema migrations (sea-orm-migration), applied by `migrate` and, in dev, by `serve`.

use sea_orm_migration::prelude::*;

mod m20261125_000001_create_schedule;
mod m20261125_000002_create_callback;
mod m20261125_000003_create_log;
mod m20261126_000010_wide_text_columns;
mod m20261126_000011_live_indexes;
mod m20261126_000020_create_apigw_context;
mod m20261126_000040_index_schedule_created;

/// Every migration, in order.
pub(crate) struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_schedule::Migration),
            Box::new(m20261125_000002_create_callback::Migration),
            Box::new(m20261125_000003_create_log::Migration),
            Box::new(m20261126_000040_index_schedule_created::Migration),
            Box::new(m20261126_000010_wide_text_columns::Migration),
            Box::new(m20261126_000011_live_indexes::Migration),
            Box::new(m20261126_000020_create_apigw_context::Migration),
        ]
    }

    fn migration_table_name() -> DynIden {
        "bkp_migrations".into_iden()
    }
}

/// A text column large enough for JSON documents on every backend (MySQL's TEXT stops at 64 KiB).
fn json_text(manager: &SchemaManager<'_>, column: impl IntoIden) -> ColumnDef {
    let mut def = ColumnDef::new(column);
    match manager.get_database_backend() {
        sea_orm::DatabaseBackend::MySql => def.custom("LONGTEXT".into_iden()),
        _ => def.text(),
    };
    def.not_null();
    def
}

/// On MySQL/MariaDB, tables hold any Unicode (emoji included) whatever the database default.
fn unicode_table(manager: &SchemaManager<'_>, table: &mut TableCreateStatement) {
    if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
        table.character_set("utf8mb4").collate("utf8mb4_bin");
    }
}
