//! Trace-tagged logs, the per-trace logs API and Prometheus metrics, over HTTP.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, migrate, on_every_backend};
use serde_json::{Value, json};

on_every_backend!(logs_api_returns_every_line_of_a_trace_in_order_across_reruns,);

async fn wait_for_log(plugin: &Plugin, trace_id: &str, needle: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = plugin.get(&format!("/bk_plugin/logs/{trace_id}")).await;
        assert_eq!(status, 200, "{body}");
        let text = body["data"]["log"].as_str().unwrap_or_default().to_string();
        if text.contains(needle) {
            return text.lines().map(str::to_string).collect();
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} never captured for {trace_id}: {text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn logs_api_returns_every_line_of_a_trace_in_order_across_reruns(db: &TestDb) {
    let plugin = Plugin::launch(
        db,
        Launch::serve().env("BKPAAS_APP_SECRET", "observability-app-secret"),
    )
    .await;
    let (_, echo) = plugin
        .invoke("1.0.0", json!({"hello": "x"}), json!({"executor": "admin"}))
        .await;
    let echo_trace = echo["trace_id"].as_str().unwrap_or_default();
    let lines = wait_for_log(&plugin, echo_trace, "echo plugin executing for admin").await;
    assert_eq!(lines.len(), 1, "{lines:?}");

    let (_, poll) = plugin
        .invoke("1.1.0", json!({"interval": 0, "polls": 2}), json!({}))
        .await;
    let trace_id = poll["trace_id"].as_str().unwrap_or_default().to_string();
    plugin
        .wait_finished(&trace_id, Duration::from_secs(10))
        .await;
    let lines = wait_for_log(&plugin, &trace_id, "poll plugin done").await;
    let position = |needle: &str| lines.iter().position(|l| l.contains(needle));
    let first = position("poll plugin first run");
    let done = position("poll plugin done");
    assert!(
        first.is_some() && done.is_some() && first < done,
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .all(|l| !l.contains("observability-app-secret"))
    );
    let (_, other) = plugin
        .get("/bk_plugin/logs/0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(other["data"]["log"], json!(""));
}

fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && !l.starts_with('#'))
        .filter(|l| {
            let selector = l.split_whitespace().next().unwrap_or_default();
            selector.split('{').next() == Some(name)
                && labels
                    .iter()
                    .all(|(k, v)| selector.contains(&format!("{k}=\"{v}\"")))
        })
        .filter_map(|l| {
            l.split_whitespace()
                .last()
                .and_then(|v| v.parse::<f64>().ok())
        })
        .sum()
}

#[tokio::test]
async fn metrics_count_failures_time_steps_and_requests() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("sqlite"));
    let plugin = Plugin::start(&db).await;
    let before = plugin.metrics_text().await;
    for _ in 0..2 {
        plugin.invoke("1.3.0", json!({}), json!({})).await;
    }
    plugin.invoke("1.4.0", json!({}), json!({})).await;
    plugin.invoke("1.6.0", json!({}), json!({})).await;
    let (_, failing) = plugin
        .invoke(
            "1.1.0",
            json!({"interval": 0, "fail_on_poll": true}),
            json!({}),
        )
        .await;
    let trace_id = failing["trace_id"].as_str().unwrap_or_default();
    plugin
        .wait_finished(trace_id, Duration::from_secs(10))
        .await;
    let after = plugin.metrics_text().await;
    let delta = |name: &str, labels: &[(&str, &str)]| {
        metric(&after, name, labels) - metric(&before, name, labels)
    };
    assert_eq!(
        delta("bk_plugin_execute_failed_count", &[("version", "1.3.0")]),
        2.0
    );
    assert_eq!(
        delta("bk_plugin_execute_exception_count", &[("version", "1.4.0")]),
        1.0
    );
    assert_eq!(
        delta("bk_plugin_schedule_failed_count", &[("version", "1.1.0")]),
        1.0
    );
    assert_eq!(
        delta("bk_plugin_execute_time_count", &[("version", "1.6.0")]),
        1.0
    );
    assert_eq!(
        delta("bk_plugin_schedule_time_count", &[("version", "1.1.0")]),
        1.0
    );
    assert!(
        after.contains("bk_plugin_execute_running_processes"),
        "{after}"
    );
    assert!(after.contains("hostname=\""));
    let invokes = delta(
        "bk_plugin_http_requests_total",
        &[
            ("route", "/bk_plugin/invoke/{version}"),
            ("method", "POST"),
            ("status", "200"),
        ],
    );
    assert_eq!(invokes, 5.0, "{after}");
    assert!(
        after.contains("bk_plugin_queue_depth{kind=\"due\"}"),
        "{after}"
    );
}

#[tokio::test]
async fn production_logs_are_json_lines_with_the_trace_id_and_the_logs_api_is_off() {
    let db = TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("sqlite"));
    migrate(&db);
    let key = format!("{}/fixtures/jwt/gateway.pub", env!("CARGO_MANIFEST_DIR"));
    let launch = Launch::serve()
        .env("BKPAAS_ENVIRONMENT", "prod")
        .env("BKPAAS_APP_SECRET", "s3cret-value")
        .env("APIGW_PUBLIC_KEY_FILE", &key);
    let plugin = Plugin::launch(&db, launch).await;
    let (status, _) = plugin
        .get("/bk_plugin/logs/0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(status, 404, "the logs API is dev-only unless enabled");
    // The JWT is required in prod; the poll invocation's worker lines still show up in the log.
    let jwt = {
        use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
        let pem = std::fs::read_to_string(format!(
            "{}/fixtures/jwt/gateway.key",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap_or_default();
        let mut header = Header::new(Algorithm::RS512);
        header.kid = Some("bkp-fixtures".into());
        let exp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
            + 600;
        let claims = json!({"app": {"app_code": "bk_sops", "verified": true}, "exp": exp});
        encode(
            &header,
            &claims,
            &EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap_or_else(|e| panic!("{e}")),
        )
        .unwrap_or_default()
    };
    let body = json!({"inputs": {"interval": 0}, "context": {}}).to_string();
    let (_, answer) = plugin
        .post_with(
            "/bk_plugin/invoke/1.1.0",
            "application/json",
            body,
            &[("X-Bkapi-JWT", &jwt)],
        )
        .await;
    let trace_id = answer["trace_id"].as_str().unwrap_or_default().to_string();
    plugin
        .wait_finished(&trace_id, Duration::from_secs(10))
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let log = plugin.log_text();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    for line in &lines {
        for key in ["asctime", "levelname", "funcName", "message", "trace_id"] {
            assert!(line.get(key).is_some(), "{key} missing: {line}");
        }
    }
    let ours: Vec<&Value> = lines
        .iter()
        .filter(|l| l["trace_id"] == json!(trace_id))
        .collect();
    let messages: Vec<&str> = ours.iter().filter_map(|l| l["message"].as_str()).collect();
    assert!(
        messages.contains(&"poll plugin first run") && messages.contains(&"poll plugin done"),
        "{messages:?}"
    );
    assert!(!log.contains("s3cret-value") && !log.contains(&jwt));
}
