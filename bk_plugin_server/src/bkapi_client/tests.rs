//! The BK API client against a real loopback upstream that records every call: retries only
//! where safe, timeouts, redirects, request ids, metrics, and the app secret kept out of every
//! error text, `Debug` output and panic message.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bk_plugin_core::bkapi::{BkApi, BkApiErrorKind, BkUser};
use bkp_blackbox_tests::fake_http::{FakeServer, Recorded, Reply};
use serde_json::{Value, json};

use super::BkApiClient;
use super::wire::Settings;
use crate::metrics::Metrics;

const SECRET: &str = "app-secret-7f3a9c";

fn client(upstream: &str, metrics: &Metrics) -> BkApi {
    let settings = Settings {
        app_code: "bkp".into(),
        app_secret: Some(SECRET.into()),
        component_api_url: Some(upstream.to_string()),
        api_url_tmpl: Some(format!("{upstream}/api/{{api_name}}/")),
        stage: "prod".into(),
        tenant_id: None,
        timeout: Duration::from_secs(10),
        retries: 2,
        backoff: Duration::from_millis(1),
    };
    let transport = BkApiClient::with_settings(settings, true, metrics.clone())
        .unwrap_or_else(|e| panic!("client: {e}"));
    BkApi::new(Arc::new(transport), BkUser::named("admin"))
}

/// An upstream answering 503 to its first `failures` calls, then a success.
async fn flaky(failures: usize) -> FakeServer {
    let seen = AtomicUsize::new(0);
    FakeServer::start_replying(Arc::new(move |_: &Recorded| {
        if seen.fetch_add(1, Ordering::SeqCst) < failures {
            Reply::json(
                503,
                &json!({"result": false, "code": 503, "message": "busy"}),
            )
        } else {
            Reply::json(
                200,
                &json!({"result": true, "code": 0, "data": {"ok": true}}),
            )
            .header("X-Bkapi-Request-Id", "req-42")
        }
    }))
    .await
}

#[tokio::test]
async fn a_get_is_tried_again_after_a_5xx_and_keeps_the_request_id_of_the_answer() {
    let upstream = flaky(2).await;
    let metrics = Metrics::new("test-host".into());
    let api = client(&upstream.base, &metrics);
    let answer = api
        .gateway("bk-job")
        .get("/api/v3/get_job_instance_status/")
        .query("job_instance_id", 7)
        .send_answer::<Value>()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.data, json!({"ok": true}));
    assert_eq!(answer.request_id.as_deref(), Some("req-42"));
    let calls = upstream.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0].path,
        "/api/bk-job/prod/api/v3/get_job_instance_status/?job_instance_id=7"
    );
    let counted = metrics
        .bkapi_calls
        .with_label_values(&["bk-job", "200"])
        .get();
    assert_eq!(counted, 1, "one call, whatever its attempts");
}

#[tokio::test]
async fn a_post_is_never_tried_again() {
    let upstream = flaky(1).await;
    let metrics = Metrics::new("test-host".into());
    let api = client(&upstream.base, &metrics);
    let error = api
        .esb("cc")
        .post("create_set")
        .json(&json!({"bk_biz_id": 1}))
        .send::<Value>()
        .await
        .err()
        .unwrap_or_else(|| panic!("a 503 must fail"));
    assert_eq!(error.kind(), BkApiErrorKind::Status);
    assert_eq!(error.status(), Some(503));
    assert_eq!(
        error.to_string(),
        "cc.create_set failed: HTTP 503, code 503, busy"
    );
    assert_eq!(upstream.calls().len(), 1);
    let counted = metrics
        .bkapi_calls
        .with_label_values(&["cc.create_set", "503"])
        .get();
    assert_eq!(counted, 1);
}

#[tokio::test]
async fn an_attempt_past_its_timeout_fails_as_timed_out_and_is_not_repeated() {
    let upstream = FakeServer::start_replying(Arc::new(|_: &Recorded| {
        Reply::json(200, &json!({"result": true})).after(Duration::from_secs(30))
    }))
    .await;
    let api = client(&upstream.base, &Metrics::new("h".into()));
    let error = api
        .gateway("bk-cmdb")
        .get("/api/v3/biz/")
        .timeout(Duration::from_millis(200))
        .send::<Value>()
        .await
        .err()
        .unwrap_or_else(|| panic!("must time out"));
    assert_eq!(error.kind(), BkApiErrorKind::Timeout);
    assert_eq!(
        error.to_string(),
        "bk-cmdb GET /api/v3/biz/ failed: no answer within 200ms"
    );
    assert_eq!(upstream.calls().len(), 1);
}

#[tokio::test]
async fn a_redirect_within_the_origin_is_followed_and_one_to_another_host_is_refused() {
    let elsewhere = FakeServer::start_replying(Arc::new(|_: &Recorded| {
        Reply::json(200, &json!({"result": true, "data": "stolen"}))
    }))
    .await;
    let target = format!("{}/steal/", elsewhere.base);
    let upstream = FakeServer::start_replying(Arc::new(move |request: &Recorded| {
        if request.path.starts_with("/moved/") {
            Reply::json(200, &json!({"result": true, "data": "here"}))
        } else if request.path.contains("away") {
            Reply::json(302, &json!({})).header("Location", &target)
        } else {
            Reply::json(302, &json!({})).header("Location", "/moved/")
        }
    }))
    .await;
    let api = client(&upstream.base, &Metrics::new("h".into()));
    let moved: Result<String, _> = api.gateway("sys").get("/near/").send().await;
    assert_eq!(moved.ok().as_deref(), Some("here"));
    let away = api.gateway("sys").get("/away/").send::<String>().await;
    let error = away.err().unwrap_or_else(|| panic!("must be refused"));
    assert_eq!(error.kind(), BkApiErrorKind::Connect);
    assert!(error.message().contains("another host"), "{error}");
    assert!(elsewhere.calls().is_empty(), "the other host was reached");
}

#[tokio::test]
async fn the_app_secret_is_in_no_error_text_debug_output_or_panic_message() {
    // An upstream that echoes what it was sent, secret included, in its message.
    let echo = FakeServer::start_replying(Arc::new(|request: &Recorded| {
        let sent = format!(
            "{} {}",
            request.path,
            String::from_utf8_lossy(&request.body)
        );
        Reply::json(500, &json!({"result": false, "code": 1, "message": sent}))
            .header("X-Bkapi-Error-Code", "1640401")
            .header("X-Bkapi-Error-Message", &format!("bad secret {SECRET}"))
    }))
    .await;
    let closed = format!("http://127.0.0.1:{}", bkp_blackbox_tests::free_port());
    let metrics = Metrics::new("h".into());
    let mut errors = Vec::new();
    for base in [&echo.base, &closed] {
        let api = client(base, &metrics);
        // An ESB GET carries the secret in its query, so in the URL of a transport error.
        for call in [
            api.esb("cc").get("search_business").query("q", 1),
            api.esb("cc").post("search_business").json(&json!({})),
            api.gateway("bk-cmdb").post("/api/v3/biz/search/"),
        ] {
            let error = call
                .send::<Value>()
                .await
                .err()
                .unwrap_or_else(|| panic!("must fail"));
            errors.push(error);
        }
    }
    assert!(
        echo.calls().iter().any(|c| c.path.contains(SECRET)),
        "the secret was sent"
    );
    for error in errors {
        let panicked = std::panic::catch_unwind(|| {
            let result: Result<(), _> = std::hint::black_box(Err(error.clone()));
            #[allow(clippy::unwrap_used)]
            result.unwrap();
        });
        let payload = panicked
            .err()
            .unwrap_or_else(|| panic!("unwrap must panic"));
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_default();
        assert!(message.contains("BkApiError {"), "{message}");
        for text in [error.to_string(), format!("{error:?}"), message] {
            assert!(!text.contains(SECRET), "the secret leaked: {text}");
        }
    }
    let shown = format!("{:?}", client(&echo.base, &metrics));
    assert!(!shown.contains(SECRET), "{shown}");
}
