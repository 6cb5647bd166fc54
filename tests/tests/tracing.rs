//! OpenTelemetry traces against a real OTLP collector made here (gRPC and HTTP/protobuf, real
//! protobuf messages): one invocation is one trace from the caller's span through the web
//! process, the re-run in a separate worker process and the finish callback; the collector sees
//! the configured service name and resource; a collector that never answers costs spans, not
//! requests.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bkp_blackbox_tests::fake_http::{FakeServer, Responder};
use bkp_blackbox_tests::otlp::{OtlpReceiver, ReceivedSpan, silent_collector};
use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb};
use serde_json::{Value, json};

/// The caller's span (BK-SOPS or the gateway), as it would send it.
const CALLER_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test]
async fn an_invocation_is_one_trace_from_the_callers_span_to_the_finish_callback_over_grpc() {
    let collector = OtlpReceiver::grpc().await;
    // BlueKing's names, as the PaaS APM add-on injects them; the service name defaults to
    // <app code>-<module>, as blueapps names it.
    let env = [
        ("OTEL_GRPC_URL", collector.endpoint.clone()),
        ("OTEL_BK_DATA_TOKEN", "Ymtia2JrYmtia2JrYmtiaw==".to_string()),
        ("BKPAAS_APP_MODULE_NAME", "default".to_string()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "team=bk%20plugins,tier=web".to_string(),
        ),
    ];
    let spans = one_invocation(&collector, &env).await;
    for span in &spans {
        assert_eq!(span.resource("service.name"), Some("bkp-fixtures-default"));
        assert_eq!(
            span.resource("bk.data.token"),
            Some("Ymtia2JrYmtia2JrYmtiaw==")
        );
        assert_eq!(span.resource("team"), Some("bk plugins"));
        assert_eq!(span.resource("tier"), Some("web"));
    }
}

#[tokio::test]
async fn an_invocation_is_one_trace_from_the_callers_span_to_the_finish_callback_over_http() {
    let collector = OtlpReceiver::http().await;
    let env = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint.clone()),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_string()),
        ("OTEL_SERVICE_NAME", "fixtures-over-http".to_string()),
        (
            "OTEL_RESOURCE_ATTRIBUTES",
            "service.name=overridden,deployment.environment=test".to_string(),
        ),
    ];
    let spans = one_invocation(&collector, &env).await;
    for span in &spans {
        assert_eq!(span.resource("service.name"), Some("fixtures-over-http"));
        assert_eq!(span.resource("deployment.environment"), Some("test"));
        assert_eq!(span.resource("bk.data.token"), None);
    }
}

/// Invokes 1.7.0 (POLL, then done on the re-run, then the finish callback) on a web process
/// with the caller's `traceparent`, with the re-run in a separate worker process, and checks
/// the one trace the collector receives. Returns that trace's spans.
async fn one_invocation(collector: &OtlpReceiver, env: &[(&str, String)]) -> Vec<ReceivedSpan> {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return Vec::new();
    };
    let receiver_answer: Responder = Arc::new(|_| (200, json!({"result": true}).to_string()));
    let receiver = FakeServer::start(receiver_answer).await;
    let traced = |mut launch: Launch| {
        launch = launch.env("OTEL_BSP_SCHEDULE_DELAY", "100");
        for (key, value) in env {
            launch = launch.env(key, value);
        }
        launch
    };
    let mut web = Plugin::launch(&db, traced(Launch::web_only())).await;
    let mut worker = Plugin::launch(&db, traced(Launch::worker())).await;
    let body = json!({
        "inputs": {},
        "context": {"plugin_callback_info": {"url": format!("{}/done", receiver.base), "data": {"node": 7}}},
    });
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let (status, answer) = web
        .post_with(
            "/bk_plugin/invoke/1.7.0",
            "application/json",
            body.to_string(),
            &[("traceparent", &traceparent), ("tracestate", "sops=node7")],
        )
        .await;
    assert_eq!(
        (status, answer["data"]["state"].clone()),
        (200, json!(2)),
        "{answer}"
    );
    let trace_id = answer["trace_id"].as_str().unwrap_or_default().to_string();

    // The finish callback carries the same trace to its receiver.
    let deadline = Instant::now() + Duration::from_secs(20);
    while receiver.calls().is_empty() {
        assert!(
            Instant::now() < deadline,
            "no finish callback:\n{}\n{}",
            web.log_text(),
            worker.log_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered = &receiver.calls()[0];
    let sent = delivered.header("traceparent").unwrap_or_default();
    assert!(sent.starts_with(&format!("00-{CALLER_TRACE}-")), "{sent}");
    assert_eq!(delivered.header("tracestate"), Some("sops=node7"));

    let ours = |spans: &[ReceivedSpan]| -> Vec<ReceivedSpan> {
        spans
            .iter()
            .filter(|s| s.trace_id == CALLER_TRACE)
            .cloned()
            .collect()
    };
    let spans = collector
        .wait_for(Duration::from_secs(20), |spans| {
            let ours = ours(spans);
            [
                "finish callback",
                "POST 127.0.0.1",
                "step poll",
                "record step",
                "claim",
            ]
            .iter()
            .all(|name| ours.iter().any(|s| s.name == *name))
        })
        .await;
    let spans = ours(&spans);
    let named = |name: &str| -> &ReceivedSpan {
        spans
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no span {name} in {spans:#?}"))
    };

    // The web process: the request continues the caller's span; the first step and the park
    // are its children.
    let request = named("POST /bk_plugin/invoke/{version}");
    assert_eq!(request.parent_span_id, CALLER_SPAN);
    assert_eq!(request.kind, 2, "a server span");
    assert_eq!(
        request.attribute("http.route"),
        Some("/bk_plugin/invoke/{version}")
    );
    assert_eq!(request.attribute("http.response.status_code"), Some("200"));
    let first = named("step first");
    assert_eq!(first.parent_span_id, request.span_id);
    assert_eq!(first.attribute("bk_plugin.version"), Some("1.7.0"));
    assert_eq!(first.attribute("bk_plugin.run_kind"), Some("first"));
    assert_eq!(first.attribute("bk_plugin.invoke_count"), Some("1"));
    assert_eq!(first.attribute("bk_plugin.state"), Some("POLL"));
    assert_eq!(
        first.attribute("bk_plugin.trace_id"),
        Some(trace_id.as_str())
    );
    assert_eq!(named("park").parent_span_id, request.span_id);
    let web_pid = web.pid().to_string();
    for span in [request, first, named("park")] {
        assert_eq!(
            span.resource("process.pid"),
            Some(web_pid.as_str()),
            "{span:?}"
        );
    }

    // The worker process: the claim and the re-run continue the stored request span; the
    // step's record is the re-run's child.
    let rerun = named("step poll");
    assert_eq!(rerun.parent_span_id, request.span_id);
    assert_eq!(rerun.attribute("bk_plugin.invoke_count"), Some("2"));
    assert_eq!(rerun.attribute("bk_plugin.state"), Some("SUCCESS"));
    assert_eq!(named("claim").parent_span_id, request.span_id);
    assert_eq!(named("record step").parent_span_id, rerun.span_id);

    // The finish callback continues the same trace, and its outbound POST is its child, the
    // span whose id the receiver got in `traceparent`.
    let callback = named("finish callback");
    assert_eq!(callback.parent_span_id, request.span_id);
    assert_eq!(
        callback.attribute("bk_plugin.finish_callback.outcome"),
        Some("delivered")
    );
    let post = named("POST 127.0.0.1");
    assert_eq!(post.parent_span_id, callback.span_id);
    assert_eq!(post.kind, 3, "a client span");
    assert_eq!(sent, format!("00-{CALLER_TRACE}-{}-01", post.span_id));
    let worker_pid = worker.pid().to_string();
    for span in [rerun, named("claim"), callback, post] {
        assert_eq!(
            span.resource("process.pid"),
            Some(worker_pid.as_str()),
            "{span:?}"
        );
    }
    assert_ne!(web_pid, worker_pid);
    assert_eq!(
        stored_trace_context(&db, &trace_id).await,
        Some(format!(
            "00-{CALLER_TRACE}-{}-01\nsops=node7",
            request.span_id
        ))
    );

    web.terminate(Duration::from_secs(10));
    worker.terminate(Duration::from_secs(10));
    db.drop_database().await;
    spans
}

#[tokio::test]
async fn json_log_lines_inside_a_span_carry_the_trace_ids_blueapps_names() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let collector = OtlpReceiver::http().await;
    let logs = bkp_blackbox_tests::TempDir::new("bkp-otel-logs");
    let launch = Launch::serve()
        .env("BKPAAS_ENVIRONMENT", "prod")
        .env("BKPAAS_APP_SECRET", "a-long-random-app-secret")
        .env(
            "APIGW_PUBLIC_KEY_FILE",
            &bkp_blackbox_tests::jwt_fixture("gateway.pub"),
        )
        .env("BK_PLUGIN_LOG_DIR", &logs.0.display().to_string())
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &collector.endpoint)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
        .env("OTEL_BSP_SCHEDULE_DELAY", "100")
        .env("OTEL_SERVICE_NAME", "fixtures-logs");
    bkp_blackbox_tests::migrate(&db);
    let mut plugin = Plugin::launch(&db, launch).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let jwt = bkp_blackbox_tests::gateway_jwt("gateway.key", "bkp-fixtures");
    let body = json!({"inputs": {"hello": "x"}, "context": {"executor": "admin"}});
    let (status, answer) = plugin
        .post_with(
            "/bk_plugin/invoke/1.0.0",
            "application/json",
            body.to_string(),
            &[("traceparent", &traceparent), ("X-Bkapi-JWT", &jwt)],
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let trace_id = answer["trace_id"].as_str().unwrap_or_default().to_string();
    let spans = collector
        .wait_for(Duration::from_secs(20), |spans| {
            spans.iter().any(|s| s.name == "step first")
        })
        .await;
    let step = spans
        .iter()
        .find(|s| s.name == "step first")
        .unwrap_or_else(|| panic!("{spans:?}"));
    plugin.terminate(Duration::from_secs(10));
    let lines: Vec<Value> = plugin
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let plugin_line = lines
        .iter()
        .find(|l| l["trace_id"] == json!(trace_id) && l["funcName"] == json!("v1_0_0"))
        .unwrap_or_else(|| panic!("no line of the plugin in {lines:#?}"));
    assert_eq!(plugin_line["otelTraceID"], json!(CALLER_TRACE));
    assert_eq!(plugin_line["otelSpanID"], json!(step.span_id));
    assert_eq!(plugin_line["otelServiceName"], json!("fixtures-logs"));
    let outside = lines
        .iter()
        .find(|l| l["message"] == json!("plugin server listening"))
        .unwrap_or_else(|| panic!("no start-up line in {lines:#?}"));
    assert!(outside.get("otelTraceID").is_none(), "{outside}");
    db.drop_database().await;
}

#[tokio::test]
async fn a_collector_that_never_answers_costs_dropped_spans_not_requests() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let silent = silent_collector().await;
    let launch = Launch::serve()
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", &silent)
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "300")
        .env("OTEL_BSP_SCHEDULE_DELAY", "50")
        .env("OTEL_BSP_MAX_QUEUE_SIZE", "8")
        .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "4");
    let mut plugin = Plugin::launch(&db, launch).await;
    // Every invoke is answered although no export ever completes: the exporter's queue fills
    // (8 spans) within the first few requests and stays full while each export hangs.
    for i in 0..40 {
        let (status, answer) = plugin.invoke("1.6.0", json!({}), json!({})).await;
        assert_eq!(
            (status, answer["data"]["state"].clone()),
            (200, json!(4)),
            "invoke {i}: {answer}"
        );
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let dropped = metric(&plugin, "bk_plugin_otel_spans_dropped_total").await;
        if dropped > 0.0 {
            assert_eq!(
                metric(&plugin, "bk_plugin_otel_spans_exported_total").await,
                0.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "no span counted as dropped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    plugin.terminate(Duration::from_secs(15));
    db.drop_database().await;
}

#[tokio::test]
async fn with_tracing_off_nothing_is_stored_and_no_span_metric_is_exported() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let mut plugin = Plugin::start(&db).await;
    let traceparent = format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01");
    let body = json!({"inputs": {"interval": 3600}, "context": {}});
    let (_, answer) = plugin
        .post_with(
            "/bk_plugin/invoke/1.1.0",
            "application/json",
            body.to_string(),
            &[("traceparent", &traceparent)],
        )
        .await;
    assert_eq!(answer["data"]["state"], json!(2), "{answer}");
    let text = plugin.metrics_text().await;
    assert!(text.contains("bk_plugin_http_requests_total"), "{text}");
    assert!(!text.contains("bk_plugin_otel"), "{text}");
    let trace_id = answer["trace_id"].as_str().unwrap_or_default();
    assert_eq!(stored_trace_context(&db, trace_id).await, None);
    plugin.terminate(Duration::from_secs(10));
    db.drop_database().await;
}

/// The value of an unlabelled metric on `/metrics`.
async fn metric(plugin: &Plugin, name: &str) -> f64 {
    let text = plugin.metrics_text().await;
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {text}"))
}

/// The trace context stored with the invocation `trace_id`.
async fn stored_trace_context(db: &TestDb, trace_id: &str) -> Option<String> {
    use sea_orm::ConnectionTrait;
    let conn = sea_orm::Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.query_one_raw(sea_orm::Statement::from_string(
        conn.get_database_backend(),
        format!("SELECT trace_context FROM bkp_schedule WHERE trace_id = '{trace_id}'"),
    ))
    .await
    .unwrap_or_else(|e| panic!("{e}"))
    .unwrap_or_else(|| panic!("{trace_id} is not stored"))
    .try_get_by_index::<Option<String>>(0)
    .unwrap_or_else(|e| panic!("{e}"))
}
