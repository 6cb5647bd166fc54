//! The durable scheduler over real processes: many workers on one database, crashes, dropped
//! connections, finish callbacks.
#![allow(missing_docs)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, on_every_backend};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_every_backend!(
    poll_chains_run_every_round_and_fail_on_purpose_with_err,
    two_worker_processes_finish_every_invocation_exactly_once,
    a_worker_killed_mid_work_loses_nothing,
    finish_callback_is_posted_when_a_scheduled_invocation_ends,
    dropped_database_connections_lose_nothing_and_fail_nothing,
    a_callback_that_never_comes_times_out_with_a_clear_err,
    sigterm_stops_a_worker_cleanly_with_status_zero,
    a_waiting_invocation_of_a_version_no_longer_in_the_binary_fails_clearly,
);

async fn a_waiting_invocation_of_a_version_no_longer_in_the_binary_fails_clearly(db: &TestDb) {
    let web = Plugin::launch(db, Launch::web_only()).await;
    let ids = invoke_polls(&web, 1, json!({"interval": 0})).await;
    // As if the binary that stored it had a version this one no longer has.
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sql = format!(
        "UPDATE bkp_schedule SET plugin_version = '0.9.0' WHERE trace_id = '{}'",
        ids[0]
    );
    conn.execute_unprepared(&sql)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let _worker = Plugin::launch(
        db,
        Launch::worker().env("BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS", "1"),
    )
    .await;
    let done = web.wait_finished(&ids[0], Duration::from_secs(15)).await;
    assert_eq!(done["state"], json!(5));
    let err = done["err"].as_str().unwrap_or_default();
    assert!(
        err.contains("plugin version 0.9.0 is not registered"),
        "{err}"
    );
}

async fn a_callback_that_never_comes_times_out_with_a_clear_err(db: &TestDb) {
    let plugin = Plugin::launch(
        db,
        Launch::serve().env("BK_PLUGIN_CALLBACK_TIMEOUT_SECONDS", "1"),
    )
    .await;
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    assert_eq!(body["data"]["state"], json!(3));
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(15))
        .await;
    assert_eq!(done["state"], json!(5));
    assert_eq!(
        done["err"],
        json!("callback timeout: no callback arrived within 1 seconds")
    );
}

async fn sigterm_stops_a_worker_cleanly_with_status_zero(db: &TestDb) {
    let web = Plugin::launch(db, Launch::web_only()).await;
    let ids = invoke_polls(&web, 50, json!({"interval": 0, "polls": 2})).await;
    let mut worker = Plugin::launch(db, Launch::worker()).await;
    // SIGTERM once the worker is up (its signal handler installed) and working.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !worker.log_text().contains("worker started") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let status = worker.terminate(Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        worker.log_text()
    );
    let _next = Plugin::launch(db, Launch::worker()).await;
    for done in wait_all(&web, &ids, Duration::from_secs(60)).await {
        assert_eq!(done["state"], json!(4), "{done}");
    }
    let mut server = web;
    let status = server.terminate(Duration::from_secs(30));
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(0),
        "{}",
        server.log_text()
    );
}

/// Invokes `count` poll invocations of 1.1.0 concurrently; returns their trace ids.
async fn invoke_polls(plugin: &Plugin, count: usize, inputs: Value) -> Vec<String> {
    let base = plugin.base.clone();
    let mut tasks = Vec::new();
    for chunk in 0..count.div_ceil(50) {
        let base = base.clone();
        let inputs = inputs.clone();
        let n = 50.min(count - chunk * 50);
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut ids = Vec::new();
            for _ in 0..n {
                let body = json!({"inputs": inputs, "context": {}});
                let response = client
                    .post(format!("{base}/bk_plugin/invoke/1.1.0"))
                    .json(&body)
                    .send()
                    .await;
                let answer: Value = match response {
                    Ok(r) => r.json().await.unwrap_or_default(),
                    Err(e) => panic!("invoke: {e}"),
                };
                assert_eq!(answer["data"]["state"], json!(2), "{answer}");
                ids.push(answer["trace_id"].as_str().unwrap_or_default().to_string());
            }
            ids
        }));
    }
    let mut ids = Vec::new();
    for task in tasks {
        ids.extend(task.await.unwrap_or_else(|e| panic!("{e}")));
    }
    ids
}

async fn wait_all(plugin: &Plugin, ids: &[String], timeout: Duration) -> Vec<Value> {
    let mut done = Vec::new();
    for id in ids {
        done.push(plugin.wait_finished(id, timeout).await);
    }
    done
}

fn done_lines(logs: &[String]) -> Vec<String> {
    logs.iter()
        .flat_map(|log| log.lines().map(str::to_string).collect::<Vec<_>>())
        .filter(|line| line.contains("poll plugin done"))
        .collect()
}

async fn poll_chains_run_every_round_and_fail_on_purpose_with_err(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let ids = invoke_polls(&plugin, 20, json!({"interval": 0, "polls": 3})).await;
    for done in wait_all(&plugin, &ids, Duration::from_secs(30)).await {
        assert_eq!(done["state"], json!(4), "{done}");
        assert_eq!(done["outputs"]["polls_done"], json!(3));
        assert_eq!(done["invoke_count"], json!(4));
    }
    let failing = invoke_polls(
        &plugin,
        1,
        json!({"interval": 0, "polls": 2, "fail_on_poll": true}),
    )
    .await;
    let done = plugin
        .wait_finished(&failing[0], Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], json!(5));
    assert_eq!(
        done["err"],
        json!("plugin schedule failed: poll failed on purpose")
    );
    assert_eq!(
        done["outputs"],
        json!({"phase": "waiting"}),
        "outputs of the failed run are kept"
    );
}

async fn two_worker_processes_finish_every_invocation_exactly_once(db: &TestDb) {
    let web = Plugin::launch(db, Launch::web_only()).await;
    let first = Plugin::launch(db, Launch::worker()).await;
    let second = Plugin::launch(db, Launch::worker()).await;
    // Both workers are up and polling before the work arrives, so both get a share.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ![&first, &second]
        .iter()
        .all(|w| w.log_text().contains("worker started"))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the workers did not start"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ids = invoke_polls(&web, 2000, json!({"interval": 0, "polls": 1})).await;
    let finished = wait_all(&web, &ids, Duration::from_secs(180)).await;
    assert!(
        finished
            .iter()
            .all(|d| d["state"] == json!(4) && d["invoke_count"] == json!(2))
    );
    let logs = [first.log_text(), second.log_text()];
    let lines = done_lines(&logs);
    let unique: HashSet<&String> = lines.iter().collect();
    assert_eq!(lines.len(), 2000, "every final step ran exactly once");
    assert_eq!(unique.len(), 2000);
    let worked = logs
        .iter()
        .filter(|log| log.contains("poll plugin done"))
        .count();
    assert_eq!(worked, 2, "both workers took a share");
}

async fn a_worker_killed_mid_work_loses_nothing(db: &TestDb) {
    let web = Plugin::launch(db, Launch::web_only()).await;
    let ids = invoke_polls(&web, 600, json!({"interval": 0, "polls": 20})).await;
    let short_lease = || Launch::worker().env("BK_PLUGIN_LEASE_SECONDS", "2");
    let mut doomed = Plugin::launch(db, short_lease()).await;
    // Kill -9 it as soon as it is working, with rows leased.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !doomed.log_text().contains("step recorded") && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    doomed.kill();
    assert!(
        doomed.log_text().contains("step recorded"),
        "the killed worker had started working"
    );
    // Rows a dead worker leased stay leased until the lease expires; then another worker
    // takes them back.
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let future = i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0),
    )
    .unwrap_or(0)
        + 1500;
    conn.execute_unprepared(&format!(
        "UPDATE bkp_schedule SET lease_owner = 'dead-worker', lease_until = {future} WHERE state IN (2, 3) AND trace_id IN ('{}')",
        ids[..10].join("','")
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let waiting = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            "SELECT COUNT(*) FROM bkp_schedule WHERE state IN (2, 3)",
        ))
        .await
        .ok()
        .flatten()
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(0);
    assert!(waiting > 0, "the kill came before the work was done");
    let _rescuer = Plugin::launch(db, short_lease()).await;
    let finished = wait_all(&web, &ids, Duration::from_secs(120)).await;
    for done in &finished {
        assert_eq!(done["state"], json!(4), "{done}");
        assert_eq!(done["outputs"]["polls_done"], json!(20), "{done}");
    }
}

/// A loopback HTTP server that records request bodies and answers with `answers` in turn
/// (the last one repeats).
async fn receiver(answers: Vec<&'static str>) -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/finished",
        listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default()
    );
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        let mut served = 0usize;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            while let Ok(n) = socket.read(&mut chunk).await {
                if n == 0 {
                    break;
                }
                buffer.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&buffer).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() >= length {
                        if let Ok(mut seen) = record.lock() {
                            seen.push(serde_json::from_str(body).unwrap_or(Value::Null));
                        }
                        break;
                    }
                }
            }
            let answer = answers[served.min(answers.len() - 1)];
            served += 1;
            let response = format!(
                "{answer}\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    });
    (url, seen)
}

async fn finish_callback_is_posted_when_a_scheduled_invocation_ends(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (url, seen) = receiver(vec![
        "HTTP/1.1 500 Internal Server Error",
        "HTTP/1.1 200 OK",
    ])
    .await;
    let context = json!({"plugin_callback_info": {"url": url, "data": {"task": 42}}});
    let (_, body) = plugin.invoke("1.7.0", json!({"fail": true}), context).await;
    assert_eq!(body["data"]["state"], json!(2));
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], json!(5));
    assert_eq!(
        done["err"],
        json!("plugin schedule failed: finish-callback plugin failed on purpose")
    );
    // The first attempt gets a 500, the retry (after ~2 s) a 200.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let bodies = seen.lock().map(|s| s.clone()).unwrap_or_default();
        if bodies.len() >= 2 {
            assert_eq!(bodies[0], json!({"task": 42}));
            assert_eq!(bodies[1], json!({"task": 42}));
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "finish callback not retried: {bodies:?}\n{}",
            plugin.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        seen.lock().map(|s| s.len()).unwrap_or(0),
        2,
        "no delivery after a success"
    );
    let (_, after) = plugin.get(&format!("/bk_plugin/schedule/{trace_id}")).await;
    assert_eq!(
        after["data"]["state"],
        json!(5),
        "the notification never changes the state"
    );
}

async fn dropped_database_connections_lose_nothing_and_fail_nothing(db: &TestDb) {
    let kill_sql = match db.backend() {
        Backend::Sqlite => {
            bkp_blackbox_tests::report_skip("on SQLite: there is no server connection to drop");
            return;
        }
        Backend::Postgres => {
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()".to_string()
        }
        Backend::Mysql => String::new(),
    };
    let web = Plugin::launch(db, Launch::web_only()).await;
    let ids = invoke_polls(&web, 300, json!({"interval": 0, "polls": 5})).await;
    let _worker = Plugin::launch(db, Launch::worker()).await;
    let admin = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(150)).await;
        if db.backend() == Backend::Mysql {
            let rows = admin
                .query_all_raw(sea_orm::Statement::from_string(
                    sea_orm::DatabaseBackend::MySql,
                    "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND ID <> CONNECTION_ID()",
                ))
                .await
                .unwrap_or_default();
            for row in rows {
                if let Ok(id) = row.try_get_by_index::<u64>(0) {
                    let _ = admin.execute_unprepared(&format!("KILL {id}")).await;
                }
            }
        } else {
            let _ = admin.execute_unprepared(&kill_sql).await;
        }
    }
    let finished = wait_all(&web, &ids, Duration::from_secs(120)).await;
    for done in &finished {
        assert_eq!(done["state"], json!(4), "{done}");
        assert_eq!(done["outputs"]["polls_done"], json!(5), "{done}");
    }
}
