//! The tables: `bkp_schedule` (one row per waiting or finished invocation) and
//! `bkp_callback` (the inbox of callbacks delivered to invocations).
//!
//! Times are milliseconds since the Unix epoch in UTC (`BIGINT`): portable across SQLite,
//! MySQL and PostgreSQL, cheap to compare and index. JSON travels as text.

/// `bkp_schedule`.
pub mod schedule {
    use sea_orm::entity::prelude::*;

    /// One invocation that went through the scheduler.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_schedule")]
    pub struct Model {
        /// The invocation's trace id.
        #[sea_orm(primary_key, auto_increment = false)]
        pub trace_id: String,
        /// The plugin version it runs.
        pub plugin_version: String,
        /// The protocol state (2 POLL, 3 CALLBACK, 4 SUCCESS, 5 FAIL).
        pub state: i32,
        /// How many times `execute` has run.
        pub invoke_count: i32,
        /// The invoke's `inputs` (JSON).
        pub inputs: String,
        /// The invoke's `context` (JSON).
        pub context: String,
        /// The plugin's storage (JSON object).
        pub storage: String,
        /// The outputs so far (JSON object).
        pub outputs: String,
        /// The `err` of a failed invocation.
        #[sea_orm(column_name = "err")]
        pub error: Option<String>,
        /// When the worker should pick the row up: a POLL's due time, a delivered callback's
        /// arrival, or a CALLBACK's timeout. Null once terminal.
        pub run_at: Option<i64>,
        /// The worker holding the row while it runs a step.
        pub lease_owner: Option<String>,
        /// When that lease runs out unless renewed.
        pub lease_until: Option<i64>,
        /// When a CALLBACK invocation gives up waiting.
        pub callback_deadline: Option<i64>,
        /// Finish-callback delivery: 0 none, 1 pending, 2 delivered, 3 given up.
        pub notify_state: i16,
        /// Finish-callback attempts so far.
        pub notify_attempts: i32,
        /// When the next finish-callback attempt is due.
        pub notify_at: Option<i64>,
        /// When the invocation was created.
        pub created_at: i64,
        /// When the row last changed.
        pub updated_at: i64,
        /// When the invocation reached SUCCESS or FAIL.
        pub finished_at: Option<i64>,
    }

    /// No relations are navigated through the ORM.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `bkp_callback`.
pub mod callback {
    use sea_orm::entity::prelude::*;

    /// One callback delivered to an invocation; the (trace id, callback id) pair is unique, so a
    /// duplicate delivery is recognised by the database.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_callback")]
    pub struct Model {
        /// The invocation.
        #[sea_orm(primary_key, auto_increment = false)]
        pub trace_id: String,
        /// The callback id from `prepare_callback`.
        #[sea_orm(primary_key, auto_increment = false)]
        pub callback_id: String,
        /// The posted JSON body.
        pub data: String,
        /// Whether a step has consumed it.
        pub consumed: bool,
        /// When it arrived.
        pub created_at: i64,
    }

    /// No relations are navigated through the ORM.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// `bkp_log`.
pub mod log {
    use sea_orm::entity::prelude::*;

    /// One captured log line of a trace.
    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "bkp_log")]
    pub struct Model {
        /// Insertion order.
        #[sea_orm(primary_key)]
        pub id: i64,
        /// The trace the line belongs to.
        pub trace_id: String,
        /// When it was emitted (ms since the epoch).
        pub created_at: i64,
        /// The formatted line.
        pub line: String,
    }

    /// No relations are navigated through the ORM.
    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}
