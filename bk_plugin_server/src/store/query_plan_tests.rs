//! The worker's and `/metrics`' queries over the whole schedule table use an index on every
//! backend, as the database's own query planner reports (`EXPLAIN`), with many finished rows
//! beside a few live ones: their cost follows the live rows, not the table.

use bkp_blackbox_tests::{Backend, TestDb, on_every_backend};
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, Statement};

use super::entity::schedule;
use super::queue::{claim_settings, claim_statement, hot_queries};
use super::{JsonText, NewWaiting, NotifyState, Store, StoredState, Wait, now_ms};

fn empty() -> JsonText {
    JsonText::of(&serde_json::json!({}))
}

on_every_backend!(
    the_claim_the_next_due_time_and_the_queue_depth_use_an_index,
    the_claim_reads_due_rows_in_order_without_sorting_a_backlog_the_statistics_do_not_know,
);

const FINISHED: usize = 20_000;

fn finished(i: usize) -> schedule::ActiveModel {
    let now = now_ms();
    schedule::ActiveModel {
        trace_id: Set(format!("{i:032x}")),
        plugin_version: Set("1.0.0".into()),
        state: Set(if i.is_multiple_of(2) {
            StoredState::Success
        } else {
            StoredState::Fail
        }),
        invoke_count: Set(3),
        inputs: Set(empty()),
        context: Set(empty()),
        storage: Set(empty()),
        outputs: Set(empty()),
        error: Set(None),
        run_at: Set(None),
        lease_owner: Set(None),
        lease_until: Set(None),
        callback_deadline: Set(None),
        notify_state: Set(NotifyState::None),
        notify_attempts: Set(0),
        notify_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(Some(now)),
        trace_context: Set(None),
        notify_receiver: Set(None),
    }
}

async fn plan(store: &Store, backend: Backend, statement: &Statement) -> Vec<String> {
    let db = store.connection();
    let sql = statement.to_string();
    let explain = match backend {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Backend::Postgres | Backend::Mysql => format!("EXPLAIN {sql}"),
    };
    let rows = db
        .query_all_raw(Statement::from_string(db.get_database_backend(), explain))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows.iter()
        .map(|row| match backend {
            Backend::Sqlite => row.try_get::<String>("", "detail").unwrap_or_default(),
            Backend::Postgres => row.try_get::<String>("", "QUERY PLAN").unwrap_or_default(),
            Backend::Mysql => format!(
                "table={} type={} key={} extra={}",
                row.try_get::<Option<String>>("", "table")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                row.try_get::<Option<String>>("", "type")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                row.try_get::<Option<String>>("", "key")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
                row.try_get::<Option<String>>("", "Extra")
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            ),
        })
        .collect()
}

/// Whether a plan line reads the schedule table without an index (or through a whole index).
fn scans_the_table(backend: Backend, line: &str) -> bool {
    match backend {
        Backend::Sqlite => line.contains("bkp_schedule") && !line.starts_with("SEARCH"),
        Backend::Postgres => line.contains("Seq Scan on bkp_schedule"),
        Backend::Mysql => {
            line.starts_with("table=bkp_schedule")
                && (line.contains("type=ALL")
                    || line.contains("type=index ")
                    || line.contains("key= "))
        }
    }
}

async fn the_claim_the_next_due_time_and_the_queue_depth_use_an_index(db: &TestDb) {
    let store = Store::connect(&db.url, 4)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    for chunk in (0..FINISHED).collect::<Vec<_>>().chunks(1000) {
        schedule::Entity::insert_many(chunk.iter().map(|&i| finished(i)))
            .exec_without_returning(store.connection())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    for i in 0..40 {
        store
            .insert_waiting(NewWaiting {
                trace_id: format!("{:032x}", FINISHED + i),
                version: "1.0.0".into(),
                wait: {
                    let run_at = now_ms() + i64::try_from(i).unwrap_or(0) * 1000 - 20_000;
                    if i.is_multiple_of(2) {
                        Wait::Poll { run_at }
                    } else {
                        Wait::Callback { deadline: run_at }
                    }
                },
                inputs: empty(),
                context: empty(),
                storage: empty(),
                outputs: empty(),
                trace_context: None,
            })
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let analyze = match db.backend() {
        Backend::Sqlite => "ANALYZE",
        Backend::Postgres => "ANALYZE bkp_schedule",
        Backend::Mysql => "ANALYZE TABLE bkp_schedule",
    };
    store
        .connection()
        .execute_unprepared(analyze)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let backend = store.connection().get_database_backend();
    for (name, statement) in hot_queries(backend) {
        let lines = plan(&store, db.backend(), &statement).await;
        assert!(!lines.is_empty(), "{name}: no plan");
        assert!(
            !lines.iter().any(|l| scans_the_table(db.backend(), l)),
            "{name} reads the whole table on {:?}:\n{}\n{}",
            db.backend(),
            statement,
            lines.join("\n")
        );
    }
}

/// Whether a plan line gathers rows to sort them.
fn sorts(backend: Backend, line: &str) -> bool {
    match backend {
        Backend::Sqlite => line.contains("TEMP B-TREE"),
        Backend::Postgres => line.trim_start().starts_with("Sort") || line.contains("-> Sort"),
        Backend::Mysql => line.contains("filesort"),
    }
}

const DUE: usize = 5_000;

/// A backlog arrives after a quiet time: the statistics (taken with no row due) say nothing is
/// due, and 5,000 rows are. The claim must still read the due index in order and stop after
/// the rows it takes: a plan that gathers every due row to sort them costs as much as the
/// backlog is long, on every claim.
async fn the_claim_reads_due_rows_in_order_without_sorting_a_backlog_the_statistics_do_not_know(
    db: &TestDb,
) {
    let store = Store::connect(&db.url, 4)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    for chunk in (0..FINISHED / 4).collect::<Vec<_>>().chunks(1000) {
        schedule::Entity::insert_many(chunk.iter().map(|&i| finished(i)))
            .exec_without_returning(store.connection())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let analyze = match db.backend() {
        Backend::Sqlite => "ANALYZE",
        Backend::Postgres => "ANALYZE bkp_schedule",
        Backend::Mysql => "ANALYZE TABLE bkp_schedule",
    };
    store
        .connection()
        .execute_unprepared(analyze)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let due = |i: usize| {
        let mut row = finished(FINISHED + i);
        row.state = Set(StoredState::Poll);
        row.run_at = Set(Some(now_ms() - 60_000 + i64::try_from(i).unwrap_or(0)));
        row.finished_at = Set(None);
        row
    };
    for chunk in (0..DUE).collect::<Vec<_>>().chunks(1000) {
        schedule::Entity::insert_many(chunk.iter().map(|&i| due(i)))
            .exec_without_returning(store.connection())
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let statement = claim_statement(store.connection().get_database_backend());
    let db_conn = store.connection();
    let sql = statement.to_string();
    let explain = match db.backend() {
        Backend::Sqlite => format!("EXPLAIN QUERY PLAN {sql}"),
        Backend::Postgres | Backend::Mysql => format!("EXPLAIN {sql}"),
    };
    // The claim's own session settings, as it runs them.
    let txn = sea_orm::TransactionTrait::begin(db_conn)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    if let Some(settings) = claim_settings(db_conn.get_database_backend()) {
        txn.execute_unprepared(settings)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let rows = txn
        .query_all_raw(Statement::from_string(
            db_conn.get_database_backend(),
            explain,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = txn.rollback().await;
    let lines: Vec<String> = rows
        .iter()
        .map(|row| match db.backend() {
            Backend::Sqlite => row.try_get::<String>("", "detail").unwrap_or_default(),
            Backend::Postgres => row.try_get::<String>("", "QUERY PLAN").unwrap_or_default(),
            Backend::Mysql => row
                .try_get::<Option<String>>("", "Extra")
                .ok()
                .flatten()
                .unwrap_or_default(),
        })
        .collect();
    assert!(!lines.is_empty(), "no plan");
    assert!(
        !lines.iter().any(|l| sorts(db.backend(), l)),
        "the claim sorts the due rows on {:?}:\n{sql}\n{}",
        db.backend(),
        lines.join("\n")
    );
}
