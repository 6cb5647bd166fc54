//! Schema migrations (sea-orm-migration), applied by `migrate` and, in dev, by `serve`.

use sea_orm_migration::prelude::*;

mod m20261125_000001_create_schedule;
mod m20261125_000002_create_callback;
mod m20261125_000003_create_log;
mod m20261126_000010_wide_text_columns;
mod m20261126_000011_live_indexes;
mod m20261126_000020_create_apigw_context;
mod m20261126_000040_index_schedule_created;
mod m20261205_000200_add_schedule_trace_context;
mod m20261205_000300_hot_queue_updates;

/// Every migration, in order.
pub(crate) struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261125_000001_create_schedule::MIGRATION),
            Box::new(m20261125_000002_create_callback::MIGRATION),
            Box::new(m20261125_000003_create_log::MIGRATION),
            Box::new(m20261126_000040_index_schedule_created::Migration),
            Box::new(m20261126_000010_wide_text_columns::Migration),
            Box::new(m20261126_000011_live_indexes::Migration),
            Box::new(m20261126_000020_create_apigw_context::MIGRATION),
            Box::new(m20261205_000200_add_schedule_trace_context::Migration),
            Box::new(m20261205_000300_hot_queue_updates::Migration),
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

/// A `NOT NULL` column of type `kind` (`ColumnDef::string_len` and the like).
fn required(
    column: impl IntoIden,
    kind: impl FnOnce(&mut ColumnDef) -> &mut ColumnDef,
) -> ColumnDef {
    let mut def = ColumnDef::new(column);
    kind(&mut def).not_null();
    def
}

/// A `NOT NULL` time in milliseconds since the epoch (`BIGINT`).
fn required_ms(column: impl IntoIden) -> ColumnDef {
    required(column, ColumnDef::big_integer)
}

/// A nullable time in milliseconds since the epoch (`BIGINT`).
fn optional_ms(column: impl IntoIden) -> ColumnDef {
    let mut def = ColumnDef::new(column);
    def.big_integer().null();
    def
}

/// A migration that creates one table (if missing) and its indexes, and drops the table when
/// reverted. On MySQL/MariaDB the table holds any Unicode (emoji included) whatever the
/// database default.
struct CreateTable {
    module: &'static str,
    table: fn(&SchemaManager<'_>) -> TableCreateStatement,
    indexes: fn() -> Vec<IndexCreateStatement>,
}

impl CreateTable {
    /// The migration defined in `module` (its `module_path!()`, whose last segment is the
    /// migration's name) creating `table` and `indexes`.
    const fn new(
        module: &'static str,
        table: fn(&SchemaManager<'_>) -> TableCreateStatement,
        indexes: fn() -> Vec<IndexCreateStatement>,
    ) -> Self {
        Self {
            module,
            table,
            indexes,
        }
    }
}

impl MigrationName for CreateTable {
    fn name(&self) -> &str {
        self.module.rsplit("::").next().unwrap_or(self.module)
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateTable {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut table = (self.table)(manager);
        if manager.get_database_backend() == sea_orm::DatabaseBackend::MySql {
            table.character_set("utf8mb4").collate("utf8mb4_bin");
        }
        manager
            .create_table(table.if_not_exists().to_owned())
            .await?;
        for index in (self.indexes)() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let table = (self.table)(manager);
        let Some(name) = table.get_table_name() else {
            return Ok(());
        };
        manager
            .drop_table(Table::drop().table(name.clone()).to_owned())
            .await
    }
}

/// A primary key over `columns`.
fn primary_key<C: IntoIden>(columns: impl IntoIterator<Item = C>) -> IndexCreateStatement {
    let mut key = Index::create();
    for column in columns {
        key.col(column);
    }
    key
}

/// For a table created without secondary indexes.
fn no_indexes() -> Vec<IndexCreateStatement> {
    Vec::new()
}

/// The index `name` on `table` over `columns`, created if missing.
fn index<C: IntoIden>(
    name: &str,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> IndexCreateStatement {
    let mut index = Index::create();
    index.name(name).table(table).if_not_exists();
    for column in columns {
        index.col(column);
    }
    index
}

/// Creates the index `name` on `table` over `columns` (if missing).
async fn create_index<C: IntoIden>(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    columns: impl IntoIterator<Item = C>,
) -> Result<(), DbErr> {
    manager.create_index(index(name, table, columns)).await
}

/// Drops the index `name` of `table`.
async fn drop_index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
) -> Result<(), DbErr> {
    manager
        .drop_index(Index::drop().name(name).table(table).to_owned())
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migration_names_are_the_ones_databases_have_recorded() {
        let names: Vec<String> = Migrator::migrations()
            .iter()
            .map(|m| m.name().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "m20261125_000001_create_schedule",
                "m20261125_000002_create_callback",
                "m20261125_000003_create_log",
                "m20261126_000040_index_schedule_created",
                "m20261126_000010_wide_text_columns",
                "m20261126_000011_live_indexes",
                "m20261126_000020_create_apigw_context",
                "m20261205_000200_add_schedule_trace_context",
                "m20261205_000300_hot_queue_updates",
            ]
        );
    }
}
