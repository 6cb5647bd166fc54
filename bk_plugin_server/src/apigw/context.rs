//! `bkp_apigw_context`: the gateway values every process shares through the database, one row
//! per (scope, name): the public key (scope `public_key`, name = gateway) and the state of the
//! last sync (scope `sync_state`, name = gateway).

use sea_orm::sea_query::OnConflict;
use sea_orm::{DbErr, EntityTrait, Set};

use crate::store::{Store, now_ms};

/// The scope of public-key rows.
pub(crate) const PUBLIC_KEY: &str = "public_key";
/// The scope of sync-state rows.
pub(crate) const SYNC_STATE: &str = "sync_state";

/// The `bkp_apigw_context` entity.
pub(crate) mod entity {
    use sea_orm::entity::prelude::*;

    /// One shared gateway value.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_apigw_context")]
    pub(crate) struct Model {
        /// What kind of value (`public_key`, `sync_state`).
        #[sea_orm(primary_key, auto_increment = false)]
        pub scope: String,
        /// Which gateway it belongs to.
        #[sea_orm(primary_key, auto_increment = false)]
        pub name: String,
        /// The value (a PEM key, a JSON document).
        pub value: String,
        /// When it was written (milliseconds since the epoch).
        pub updated_at: i64,
    }

    /// No relations.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub(crate) enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// The value stored under (`scope`, `name`), if any.
pub(crate) async fn get(store: &Store, scope: &str, name: &str) -> Result<Option<String>, DbErr> {
    Ok(
        entity::Entity::find_by_id((scope.to_string(), name.to_string()))
            .one(store.connection())
            .await?
            .map(|row| row.value),
    )
}

/// Stores `value` under (`scope`, `name`), replacing what was there, in one statement.
pub(crate) async fn put(store: &Store, scope: &str, name: &str, value: &str) -> Result<(), DbErr> {
    let row = entity::ActiveModel {
        scope: Set(scope.to_string()),
        name: Set(name.to_string()),
        value: Set(value.to_string()),
        updated_at: Set(now_ms()),
    };
    entity::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([entity::Column::Scope, entity::Column::Name])
                .update_columns([entity::Column::Value, entity::Column::UpdatedAt])
                .to_owned(),
        )
        .exec_without_returning(store.connection())
        .await?;
    Ok(())
}
