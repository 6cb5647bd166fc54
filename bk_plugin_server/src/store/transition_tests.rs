//! The schedule store's guarded transitions, on SQLite and (when their URLs are set)
//! PostgreSQL and MariaDB, each test on its own database.

use std::collections::HashSet;
use std::time::Duration;

use bk_plugin_core::State;
use bkp_blackbox_tests::{TestDb, on_every_backend};

use super::{
    CallbackAcceptance, JsonText, NewWaiting, NotifyState, Store, StoredState, Transition, Wait,
    now_ms,
};

on_every_backend!(
    a_callback_during_a_running_poll_step_is_kept_and_runs_right_after,
    two_claimers_never_get_the_same_row,
    a_stale_worker_cannot_overwrite_the_progress_of_the_worker_that_took_over,
    a_duplicate_callback_is_recognised_and_a_finished_invocation_takes_none,
    cleanup_deletes_old_finished_rows_but_keeps_pending_notifications,
);

async fn store(db: &TestDb) -> Store {
    let store = Store::connect(&db.url, 4)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    store.migrate().await.unwrap_or_else(|e| panic!("{e}"));
    store
}

fn trace(i: usize) -> String {
    format!("{i:032x}")
}

fn text(json: &str) -> JsonText {
    JsonText::of(&serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}")))
}

fn waiting(i: usize, state: State, run_at: i64) -> NewWaiting {
    let wait = match state {
        State::Callback => Wait::Callback { deadline: run_at },
        _ => Wait::Poll { run_at },
    };
    NewWaiting {
        trace_id: trace(i),
        version: "1.0.0".into(),
        wait,
        inputs: text("{}"),
        context: text("{}"),
        storage: text("{}"),
        outputs: text("{}"),
        trace_context: None,
    }
}

/// A step's end after two runs, storing `{"n": 1}`: SUCCESS or FAIL, or CALLBACK until
/// `deadline`.
fn to(state: State, deadline: Option<i64>) -> Transition {
    let (storage, outputs) = (text("{\"n\": 1}"), text("{}"));
    match (state, deadline) {
        (State::Callback, Some(deadline)) => {
            Transition::wait(Wait::Callback { deadline }, 2, storage, outputs)
        }
        (State::Success, _) => Transition::succeed(2, storage, outputs, None),
        _ => Transition::fail(String::new(), 2, Some((storage, outputs)), None),
    }
}

/// Delivers callback `callback` with `data` to invocation `i`.
async fn call_back(
    store: &Store,
    i: usize,
    callback: usize,
    data: JsonText,
) -> Option<CallbackAcceptance> {
    store
        .accept_callback(&trace(i), &trace(callback), data)
        .await
        .ok()
}

/// Invocation `i` as stored.
async fn stored(store: &Store, i: usize) -> Option<super::entity::schedule::Model> {
    store.get(&trace(i)).await.ok().flatten()
}

const LEASE: Duration = Duration::from_secs(30);

async fn a_callback_during_a_running_poll_step_is_kept_and_runs_right_after(db: &TestDb) {
    let store = store(db).await;
    store
        .insert_waiting(waiting(1, State::Poll, now_ms()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let claimed = store.claim_due("a", LEASE, 10).await.unwrap_or_default();
    assert_eq!(claimed.len(), 1);
    // The step is running (leased, POLL) when the callback arrives: it is kept, not refused.
    let accepted = call_back(&store, 1, 99, text("{\"ok\": 1}")).await;
    assert_eq!(
        accepted,
        Some(CallbackAcceptance::Accepted { runnable: false })
    );
    // The step then asks to wait for a callback: the one that already came makes it due now.
    let far = now_ms() + 3_600_000;
    let recorded = store
        .finish_step(
            &trace(1),
            "a",
            StoredState::Poll,
            to(State::Callback, Some(far)),
        )
        .await;
    assert_eq!(recorded.ok(), Some(true));
    let row = stored(&store, 1).await.unwrap_or_else(|| panic!("row"));
    assert!(
        row.run_at.unwrap_or(i64::MAX) <= now_ms(),
        "runnable at once"
    );
    let again = store.claim_due("b", LEASE, 10).await.unwrap_or_default();
    assert_eq!(again.len(), 1);
    let inbox = store.oldest_callback(&trace(1)).await.ok().flatten();
    assert_eq!(inbox.map(|c| c.callback_id), Some(trace(99)));
}

async fn two_claimers_never_get_the_same_row(db: &TestDb) {
    let store = store(db).await;
    let rows: Vec<_> = (0..100)
        .map(|i| waiting(i, State::Poll, now_ms() - 1))
        .collect();
    store
        .insert_answered(rows)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (a, b) = tokio::join!(
        store.claim_due("a", LEASE, 60),
        store.claim_due("b", LEASE, 60)
    );
    let (a, b) = (a.unwrap_or_default(), b.unwrap_or_default());
    let ids_a: HashSet<_> = a.iter().map(|r| r.trace_id.clone()).collect();
    let ids_b: HashSet<_> = b.iter().map(|r| r.trace_id.clone()).collect();
    assert!(ids_a.is_disjoint(&ids_b), "a row was claimed twice");
    assert!(a.iter().all(|r| r.lease_owner.as_deref() == Some("a")));
    let rest = store.claim_due("c", LEASE, 100).await.unwrap_or_default();
    assert_eq!(
        ids_a.len() + ids_b.len() + rest.len(),
        100,
        "every due row is claimed exactly once"
    );
}

async fn a_stale_worker_cannot_overwrite_the_progress_of_the_worker_that_took_over(db: &TestDb) {
    let store = store(db).await;
    store
        .insert_waiting(waiting(2, State::Poll, now_ms() - 1))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stale = store
        .claim_due("stale", Duration::from_millis(1), 1)
        .await
        .unwrap_or_default();
    assert_eq!(stale.len(), 1);
    tokio::time::sleep(Duration::from_millis(20)).await;
    let fresh = store.claim_due("fresh", LEASE, 1).await.unwrap_or_default();
    assert_eq!(fresh.len(), 1, "an expired lease is taken back");
    let fresh_done = store
        .finish_step(
            &trace(2),
            "fresh",
            StoredState::Poll,
            to(State::Success, None),
        )
        .await;
    assert_eq!(fresh_done.ok(), Some(true));
    let stale_done = store
        .finish_step(&trace(2), "stale", StoredState::Poll, to(State::Fail, None))
        .await;
    assert_eq!(
        stale_done.ok(),
        Some(false),
        "the stale worker's write is refused"
    );
    let row = stored(&store, 2).await.unwrap_or_else(|| panic!("row"));
    assert_eq!(row.state, StoredState::Success);
    assert!(row.finished_at.is_some() && row.lease_owner.is_none());
}

async fn a_duplicate_callback_is_recognised_and_a_finished_invocation_takes_none(db: &TestDb) {
    let store = store(db).await;
    let row = waiting(3, State::Callback, now_ms() + 60_000);
    store
        .insert_waiting(row)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let first = call_back(&store, 3, 7, text("{}")).await;
    assert_eq!(first, Some(CallbackAcceptance::Accepted { runnable: true }));
    let second = call_back(&store, 3, 7, text("{}")).await;
    assert_eq!(second, Some(CallbackAcceptance::Duplicate));
    // A callback that beats the invoke's answer (the row is not stored yet) is kept, and the
    // waiting row is due at once when it is stored.
    let early = call_back(&store, 404, 7, text("{\"early\": 1}")).await;
    assert_eq!(
        early,
        Some(CallbackAcceptance::Accepted { runnable: false })
    );
    let row = waiting(404, State::Callback, now_ms() + 3_600_000);
    store
        .insert_answered(vec![row])
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let due = stored(&store, 404).await.and_then(|r| r.run_at);
    assert!(
        due.unwrap_or(i64::MAX) <= now_ms(),
        "the early callback made it due"
    );
    let orphans = store
        .delete_orphan_callbacks_before(now_ms() + 1_000)
        .await
        .unwrap_or(9);
    assert_eq!(
        orphans, 0,
        "callbacks of stored invocations are not orphans"
    );
    let claimed = store.claim_due("w", LEASE, 10).await.unwrap_or_default();
    assert_eq!(claimed.len(), 2, "both callbacks made their rows due");
    let done = to(State::Success, None).consuming(Some(trace(7)));
    let recorded = store
        .finish_step(&trace(3), "w", StoredState::Callback, done)
        .await;
    assert_eq!(recorded.ok(), Some(true));
    let late = call_back(&store, 3, 8, text("{}")).await;
    assert_eq!(late, Some(CallbackAcceptance::NotWaiting(State::Success)));
    assert!(
        store
            .oldest_callback(&trace(3))
            .await
            .ok()
            .flatten()
            .is_none(),
        "consumed"
    );
}

async fn cleanup_deletes_old_finished_rows_but_keeps_pending_notifications(db: &TestDb) {
    let store = store(db).await;
    for i in 10..14 {
        let row = waiting(i, State::Poll, now_ms() - 1);
        store
            .insert_waiting(row)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    store.claim_due("w", LEASE, 10).await.unwrap_or_default();
    for i in 10..14 {
        let (storage, outputs) = (text("{}"), text("{}"));
        let finished = Transition::succeed(2, storage, outputs, (i == 13).then(String::new));
        let recorded = store
            .finish_step(&trace(i), "w", StoredState::Poll, finished)
            .await;
        assert_eq!(recorded.ok(), Some(true));
    }
    let deleted = store
        .delete_finished_before(now_ms() + 1_000, 2)
        .await
        .unwrap_or(0);
    assert_eq!(deleted, 2, "one batch of 2");
    let deleted = store
        .delete_finished_before(now_ms() + 1_000, 100)
        .await
        .unwrap_or(0);
    assert_eq!(deleted, 1, "the row with a pending finish callback stays");
    let kept = stored(&store, 13).await.map(|r| r.notify_state);
    assert_eq!(kept, Some(NotifyState::Pending));
    assert_eq!(
        store
            .delete_finished_before(now_ms() - 60_000, 100)
            .await
            .unwrap_or(9),
        0
    );
}
