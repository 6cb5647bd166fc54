//! The inspection commands `schedule`, `schedules` and `logs`, run as the real fixture binary
//! against invocations a running plugin stored, on every database backend.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bkp_blackbox_tests::{
    Backend, Plugin, Ran, TempDir, TestDb, fixture_binary, on_every_backend, run_fixture_on,
};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_every_backend!(
    schedules_lists_stored_invocations_newest_first_and_filters_them,
    schedule_shows_one_invocation_with_outputs_storage_and_finish_callback,
    logs_prints_the_captured_lines_of_a_trace,
);

fn json_of(ran: &Ran) -> Value {
    assert!(ran.success, "failed: {}\n{}", ran.stderr, ran.stdout);
    serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}\n{}", ran.stdout, ran.stderr))
}

fn trace_ids(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| r["trace_id"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

async fn invoke(plugin: &Plugin, version: &str, inputs: Value, context: Value) -> String {
    let (_, body) = plugin.invoke(version, inputs, context).await;
    assert_eq!(body["result"], json!(true), "{body}");
    body["trace_id"].as_str().unwrap_or_default().to_string()
}

async fn schedules_lists_stored_invocations_newest_first_and_filters_them(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let polled = invoke(&plugin, "1.1.0", json!({"interval": 0}), json!({})).await;
    plugin.wait_finished(&polled, Duration::from_secs(20)).await;
    let failed = invoke(
        &plugin,
        "1.1.0",
        json!({"interval": 0, "fail_on_poll": true}),
        json!({}),
    )
    .await;
    plugin.wait_finished(&failed, Duration::from_secs(20)).await;
    let waiting = invoke(&plugin, "1.2.0", json!({}), json!({})).await;

    let table = run_fixture_on(db, &["schedules"]);
    assert!(table.success, "{}", table.stderr);
    let lines: Vec<&str> = table.stdout.lines().collect();
    assert!(lines[0].starts_with("TRACE_ID"), "{}", table.stdout);
    for header in ["VERSION", "STATE", "CREATED", "FINISHED", "ERR"] {
        assert!(lines[0].contains(header), "{}", lines[0]);
    }
    // Newest first: the callback invocation was created last.
    assert!(lines[1].starts_with(&waiting), "{}", table.stdout);
    assert!(lines[1].contains("CALLBACK"), "{}", lines[1]);
    assert!(lines[2].starts_with(&failed), "{}", table.stdout);
    assert!(lines[2].contains("FAIL"), "{}", lines[2]);
    assert!(lines[2].contains("poll failed on purpose"), "{}", lines[2]);
    assert!(lines[3].starts_with(&polled), "{}", table.stdout);
    assert!(lines[3].contains("SUCCESS"), "{}", lines[3]);
    assert!(
        lines[4].starts_with("3 invocations (times in UTC)"),
        "{}",
        table.stdout
    );

    let all = json_of(&run_fixture_on(db, &["schedules", "--json"]));
    assert_eq!(
        trace_ids(&all),
        [waiting.as_str(), failed.as_str(), polled.as_str()]
    );
    assert_eq!(all[1]["state"], json!(5));
    assert_eq!(all[1]["state_name"], json!("FAIL"));
    assert_eq!(all[1]["version"], json!("1.1.0"));
    assert_eq!(all[1]["invoke_count"], json!(2));
    assert!(all[1]["finished_at"].as_str().is_some(), "{all}");
    assert_eq!(all[0]["finished_at"], Value::Null);

    let waiting_only = json_of(&run_fixture_on(
        db,
        &["schedules", "--state", "waiting", "--json"],
    ));
    assert_eq!(trace_ids(&waiting_only), [waiting.as_str()]);
    let by_version = json_of(&run_fixture_on(
        db,
        &[
            "schedules",
            "--version",
            "1.1.0",
            "--state",
            "success,FAIL",
            "--json",
        ],
    ));
    assert_eq!(trace_ids(&by_version), [failed.as_str(), polled.as_str()]);
    let limited = json_of(&run_fixture_on(
        db,
        &["schedules", "--limit", "1", "--json"],
    ));
    assert_eq!(trace_ids(&limited), [waiting.as_str()]);
    let limited_table = run_fixture_on(db, &["schedules", "--limit", "1"]);
    assert!(
        limited_table.stdout.contains("raise --limit for more"),
        "{}",
        limited_table.stdout
    );
    let recent = json_of(&run_fixture_on(
        db,
        &["schedules", "--since", "1h", "--json"],
    ));
    assert_eq!(trace_ids(&recent).len(), 3);
    let future = run_fixture_on(db, &["schedules", "--since", "2999-01-01"]);
    assert!(future.success, "{}", future.stderr);
    assert_eq!(future.stdout, "no stored invocations match\n");

    let bad_state = run_fixture_on(db, &["schedules", "--state", "done"]);
    assert!(!bad_state.success);
    assert!(
        bad_state.stderr.contains("\"done\" is not a state"),
        "{}",
        bad_state.stderr
    );
    let bad_since = run_fixture_on(db, &["schedules", "--since", "yesterday"]);
    assert!(!bad_since.success);
    assert!(
        bad_since.stderr.contains("is not a time"),
        "{}",
        bad_since.stderr
    );
}

/// A loopback receiver that answers every request with 200 and counts them.
async fn finish_receiver() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let address = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = [0u8; 8192];
            let _ = socket.read(&mut buffer).await;
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let _ = socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}")
                .await;
        }
    });
    (format!("http://{address}/finished"), count)
}

async fn schedule_shows_one_invocation_with_outputs_storage_and_finish_callback(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let polled = invoke(&plugin, "1.1.0", json!({"interval": 0}), json!({})).await;
    plugin.wait_finished(&polled, Duration::from_secs(20)).await;

    let shown = json_of(&run_fixture_on(db, &["schedule", &polled, "--json"]));
    assert_eq!(shown["trace_id"], json!(polled));
    assert_eq!(shown["version"], json!("1.1.0"));
    assert_eq!(
        (shown["state"].clone(), shown["state_name"].clone()),
        (json!(4), json!("SUCCESS"))
    );
    assert_eq!(shown["invoke_count"], json!(2));
    assert_eq!(shown["err"], Value::Null);
    assert_eq!(shown["outputs"]["phase"], json!("done"));
    assert_eq!(
        shown["storage"]["marker"],
        json!(format!("stored-{polled}"))
    );
    assert_eq!(shown["storage"]["n"], json!(1));
    assert_eq!(shown["inputs"], json!({"interval": 0}));
    assert_eq!(shown["finish_callback"]["status"], json!("none"));
    let created = shown["created_at"].as_str().unwrap_or_default();
    let finished = shown["finished_at"].as_str().unwrap_or_default();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    assert!(finished >= created, "{finished} < {created}");

    let text = run_fixture_on(db, &["schedule", &polled]);
    assert!(text.success, "{}", text.stderr);
    assert!(
        text.stdout.starts_with("(times in UTC)\n"),
        "{}",
        text.stdout
    );
    for expected in [
        format!("trace_id           {polled}"),
        "version            1.1.0".to_string(),
        "state              SUCCESS (4)".to_string(),
        "finish_callback    none (not requested)".to_string(),
        "outputs:\n  {\n    \"phase\": \"done\",".to_string(),
        format!("storage:\n  {{\n    \"marker\": \"stored-{polled}\""),
    ] {
        assert!(
            text.stdout.contains(&expected),
            "{expected:?} missing:\n{}",
            text.stdout
        );
    }
    assert!(
        text.stdout
            .contains(&format!("created_at         {}", &created[..10])),
        "{}",
        text.stdout
    );

    // A finish callback shows as delivered once the receiver took it.
    let (url, count) = finish_receiver().await;
    let context = json!({"plugin_callback_info": {"url": url, "data": {"task": 7}}});
    let notified = invoke(&plugin, "1.7.0", json!({}), context).await;
    plugin
        .wait_finished(&notified, Duration::from_secs(20))
        .await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let shown = loop {
        let shown = json_of(&run_fixture_on(db, &["schedule", &notified, "--json"]));
        if shown["finish_callback"]["status"] == json!("delivered") {
            break shown;
        }
        assert!(
            Instant::now() < deadline,
            "never delivered: {shown}\n{}",
            plugin.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(shown["finish_callback"]["attempts"], json!(1));
    assert_eq!(count.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(
        shown["context"]["plugin_callback_info"]["data"],
        json!({"task": 7})
    );
    let text = run_fixture_on(db, &["schedule", &notified]);
    assert!(
        text.stdout
            .contains("finish_callback    delivered after 1 attempt\n"),
        "{}",
        text.stdout
    );

    // A callback invocation lists the callback it received.
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    let waiting = body["trace_id"].as_str().unwrap_or_default().to_string();
    let callback_url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let before = json_of(&run_fixture_on(db, &["schedule", &waiting, "--json"]));
    assert_eq!(before["state_name"], json!("CALLBACK"));
    assert!(before["callback_deadline"].as_str().is_some(), "{before}");
    assert_eq!(before["callbacks"], json!([]));
    let (status, _) = plugin.post(&callback_url, &json!({"ok": 1})).await;
    assert_eq!(status, 200);
    plugin
        .wait_finished(&waiting, Duration::from_secs(20))
        .await;
    let after = json_of(&run_fixture_on(db, &["schedule", &waiting, "--json"]));
    assert_eq!(after["callbacks"][0]["data"], json!({"ok": 1}), "{after}");
    assert_eq!(
        after["callbacks"][0]["callback_id"],
        before["storage"]["callback_id"]
    );

    let missing = run_fixture_on(db, &["schedule", "0123456789abcdef0123456789abcdef"]);
    assert!(!missing.success);
    assert!(
        missing
            .stderr
            .contains("no stored invocation with trace_id 0123456789abcdef0123456789abcdef"),
        "{}",
        missing.stderr
    );
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
}

async fn logs_prints_the_captured_lines_of_a_trace(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let polled = invoke(&plugin, "1.1.0", json!({"interval": 0}), json!({})).await;
    plugin.wait_finished(&polled, Duration::from_secs(20)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    let ran = loop {
        let ran = run_fixture_on(db, &["logs", &polled]);
        assert!(ran.success, "{}", ran.stderr);
        if ran.stdout.contains("poll plugin done") {
            break ran;
        }
        assert!(Instant::now() < deadline, "never captured: {}", ran.stdout);
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let first = lines
        .iter()
        .position(|l| l.contains("poll plugin first run"));
    let done = lines.iter().position(|l| l.contains("poll plugin done"));
    assert!(
        matches!((first, done), (Some(a), Some(b)) if a < b),
        "lines out of order:\n{}",
        ran.stdout
    );
    let doc = json_of(&run_fixture_on(db, &["logs", &polled, "--json"]));
    assert_eq!(doc["trace_id"], json!(polled));
    let json_lines: Vec<&str> = doc["lines"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert_eq!(json_lines[..lines.len()], lines[..], "{doc}");

    let none = run_fixture_on(db, &["logs", "0123456789abcdef0123456789abcdef"]);
    assert!(none.success);
    assert!(none.stdout.is_empty(), "{}", none.stdout);
    assert!(
        none.stderr.contains("no captured log lines"),
        "{}",
        none.stderr
    );
}

#[test]
fn inspecting_a_missing_sqlite_file_fails_without_creating_it() {
    let dir = TempDir::new("bkp-inspect");
    let file = dir.0.join("absent.db");
    let output = std::process::Command::new(fixture_binary())
        .args(["schedules"])
        .current_dir(&dir.0)
        .env("BKPAAS_ENVIRONMENT", "dev")
        .env(
            "DATABASE_URL",
            format!("sqlite://{}?mode=rwc", file.display()),
        )
        .output()
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("no SQLite database at"), "{stderr}");
    assert!(!file.exists());
}

#[tokio::test]
async fn inspecting_a_database_the_plugin_never_used_says_so() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    std::fs::write(
        db.url
            .trim_start_matches("sqlite://")
            .trim_end_matches("?mode=rwc"),
        b"",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let ran = run_fixture_on(&db, &["schedules"]);
    assert!(!ran.success);
    assert!(
        ran.stderr.contains("has no plugin tables"),
        "{}",
        ran.stderr
    );
}
