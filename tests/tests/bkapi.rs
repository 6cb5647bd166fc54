//! Calling BlueKing APIs from a plugin, end to end: the fixture binary's 1.8.0 (CMDB's
//! `search_business` through ESB or the API gateway, as the executor) and its `cmdb_biz` data API
//! (as the calling user), against a local upstream that records every call. What reaches the
//! upstream is checked against the wire format of docs/PAAS.md and the Python component client;
//! the app secret appears in no log line, error or answer the runtime writes.
#![allow(missing_docs)]

use std::sync::Arc;

use bkp_blackbox_tests::fake_http::{FakeServer, Recorded, Reply};
use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb};
use serde_json::{Value, json};

const SECRET: &str = "app-secret-5c1d0e77";

/// A CMDB that finds `bk_biz_id` 3 (one business), says "business not found" (`result: false`)
/// for 404, and answers 502 for anything else. ESB puts the request id in the envelope; the
/// gateway adds `X-Bkapi-Request-Id`.
async fn cmdb() -> FakeServer {
    FakeServer::start_replying(Arc::new(|request: &Recorded| {
        let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
        let via_gateway = request.path.starts_with("/api/bk-cmdb/");
        let reply = match body["condition"]["bk_biz_id"].as_i64() {
            Some(3) => Reply::json(
                200,
                &json!({"result": true, "code": 0, "message": "success",
                    "request_id": "esb-req-1",
                    "data": {"count": 1, "info": [{"bk_biz_id": 3, "bk_biz_name": "blueking"}]}}),
            ),
            Some(404) => Reply::json(
                200,
                &json!({"result": false, "code": 1199, "message": "business not found",
                    "request_id": "esb-req-2", "data": null}),
            ),
            _ => Reply::json(
                502,
                &json!({"result": false, "code": 502, "message": "bad gateway"}),
            ),
        };
        if via_gateway {
            reply.header("X-Bkapi-Request-Id", "gw-req-9")
        } else {
            reply
        }
    }))
    .await
}

/// The fixture on SQLite, with the BK API client pointed at `upstream`.
async fn fixture(db: &TestDb, upstream: &FakeServer, extra: &[(&str, &str)]) -> Plugin {
    let mut launch = Launch::serve()
        .env("BKPAAS_APP_SECRET", SECRET)
        .env("BK_COMPONENT_API_URL", &upstream.base)
        .env(
            "BK_API_URL_TMPL",
            &format!("{}/api/{{api_name}}/", upstream.base),
        );
    for (key, value) in extra {
        launch = launch.env(key, value);
    }
    Plugin::launch(db, launch).await
}

/// `bk_plugin_bkapi_calls_total` counted one call of `api` with `status`.
fn assert_counted(metrics: &str, api: &str, status: &str) {
    let counted = metrics.lines().any(|l| {
        l.starts_with("bk_plugin_bkapi_calls_total{")
            && l.contains(&format!("api=\"{api}\""))
            && l.contains(&format!("status=\"{status}\""))
            && l.ends_with(" 1")
    });
    assert!(
        counted,
        "no call of {api} with {status} counted:\n{metrics}"
    );
}

fn json_body(call: &Recorded) -> Value {
    serde_json::from_slice(&call.body).unwrap_or_else(|e| panic!("the body is not JSON: {e}"))
}

#[tokio::test]
async fn esb_calls_carry_the_app_and_the_executor_in_the_body() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let upstream = cmdb().await;
    let plugin = fixture(&db, &upstream, &[]).await;
    let (status, body) = plugin
        .invoke(
            "1.8.0",
            json!({"via": "esb", "bk_biz_id": 3}),
            json!({"executor": "alice"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!({"outputs": {"count": 1, "request_id": "esb-req-1"}, "state": 4, "err": null}),
        "{}",
        plugin.log_text()
    );
    let calls = upstream.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/api/c/compapi/v2/cc/search_business/");
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert_eq!(call.header("x-bkapi-authorization"), None);
    assert_eq!(
        json_body(call),
        json!({"bk_app_code": "bkp-fixtures", "bk_app_secret": SECRET, "bk_username": "alice",
            "condition": {"bk_biz_id": 3}})
    );
    assert_counted(&plugin.metrics_text().await, "cc.search_business", "200");
    let line = plugin
        .log_text()
        .lines()
        .find(|l| l.contains("bk api POST cc.search_business"))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no log line for the call:\n{}", plugin.log_text()));
    assert!(line.contains("200"), "{line}");
    assert!(line.contains("esb-req-1"), "{line}");
    db.drop_database().await;
}

#[tokio::test]
async fn gateway_calls_go_to_the_stage_with_the_authorization_and_tenant_headers() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let upstream = cmdb().await;
    // dev calls the `stag` stage, as the Python reference's 1.8.0 does.
    let plugin = fixture(&db, &upstream, &[("BKPAAS_APP_TENANT_ID", "tenant-x")]).await;
    let (_, body) = plugin
        .invoke(
            "1.8.0",
            json!({"via": "apigw", "bk_biz_id": 3}),
            json!({"executor": "bob"}),
        )
        .await;
    assert_eq!(
        body["data"]["outputs"],
        json!({"count": 1, "request_id": "gw-req-9"}),
        "{body}"
    );
    let calls = upstream.calls();
    assert_eq!(calls.len(), 1);
    let call = &calls[0];
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/api/bk-cmdb/stag/api/v3/biz/search/");
    let authorization: Value = call
        .header("x-bkapi-authorization")
        .and_then(|h| serde_json::from_str(h).ok())
        .unwrap_or_else(|| panic!("no X-Bkapi-Authorization JSON: {:?}", call.headers));
    assert_eq!(
        authorization,
        json!({"bk_app_code": "bkp-fixtures", "bk_app_secret": SECRET, "bk_username": "bob"})
    );
    assert_eq!(call.header("x-bk-tenant-id"), Some("tenant-x"));
    assert_eq!(json_body(call), json!({"condition": {"bk_biz_id": 3}}));
    db.drop_database().await;
}

#[tokio::test]
async fn a_failure_fails_the_invocation_naming_the_api_the_code_and_the_message() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let upstream = cmdb().await;
    let plugin = fixture(&db, &upstream, &[("BK_PLUGIN_BKAPI_STAGE", "prod")]).await;
    let executor = json!({"executor": "alice"});
    let (_, body) = plugin
        .invoke(
            "1.8.0",
            json!({"via": "esb", "bk_biz_id": 404}),
            executor.clone(),
        )
        .await;
    assert_eq!(body["data"]["state"], json!(5), "{body}");
    assert_eq!(
        body["data"]["err"],
        json!(
            "plugin execute failed: cc.search_business failed: code 1199, business not found \
             (HTTP 200, request id esb-req-2)"
        )
    );
    // A 502 on a POST is not tried again (a POST is not known to be safe to repeat).
    let (_, body) = plugin
        .invoke("1.8.0", json!({"via": "apigw", "bk_biz_id": 1}), executor)
        .await;
    assert_eq!(body["data"]["state"], json!(5), "{body}");
    assert_eq!(
        body["data"]["err"],
        json!(
            "plugin execute failed: bk-cmdb POST /api/v3/biz/search/ failed: HTTP 502, code 502, \
             bad gateway (request id gw-req-9)"
        )
    );
    let calls = upstream.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[1].path, "/api/bk-cmdb/prod/api/v3/biz/search/");
    let metrics = plugin.metrics_text().await;
    assert_counted(&metrics, "cc.search_business", "200");
    assert_counted(&metrics, "bk-cmdb", "502");
    db.drop_database().await;
}

#[tokio::test]
async fn a_data_api_calls_as_the_calling_user() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let upstream = cmdb().await;
    let plugin = fixture(&db, &upstream, &[]).await;
    let call = json!({"url": "/bk_plugin/plugin_api/cmdb_biz/3", "method": "GET", "username": "carol",
        "data": {}});
    let (status, body) = plugin.post("/bk_plugin/plugin_api_dispatch", &call).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["count"], json!(1), "{body}");
    let calls = upstream.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].path, "/api/c/compapi/v2/cc/search_business/");
    let sent = json_body(&calls[0]);
    assert_eq!(sent["bk_username"], json!("carol"));
    assert_eq!(sent["bk_app_secret"], json!(SECRET));
    db.drop_database().await;
}

#[tokio::test]
async fn the_app_secret_is_in_no_log_line_or_answer() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    // An upstream that echoes everything it was sent, secret included, in its message and in
    // the gateway's error header.
    let echo = FakeServer::start_replying(Arc::new(|request: &Recorded| {
        let sent = format!(
            "{} {} {:?}",
            request.path,
            String::from_utf8_lossy(&request.body),
            request.headers
        );
        Reply::json(500, &json!({"result": false, "code": 1, "message": sent}))
            .header("X-Bkapi-Error-Code", "1640401")
            .header(
                "X-Bkapi-Error-Message",
                &format!("app secret {SECRET} refused"),
            )
    }))
    .await;
    let plugin = fixture(&db, &echo, &[("BK_PLUGIN_LOG_LEVEL", "debug")]).await;
    let mut answers = Vec::new();
    for via in ["esb", "apigw"] {
        let (_, body) = plugin
            .invoke(
                "1.8.0",
                json!({"via": via, "bk_biz_id": 3}),
                json!({"executor": "alice"}),
            )
            .await;
        assert_eq!(body["data"]["state"], json!(5), "{body}");
        answers.push(body.to_string());
    }
    let call = json!({"url": "/bk_plugin/plugin_api/cmdb_biz/3", "method": "GET", "username": "carol",
        "data": {}});
    let (_, body) = plugin.post("/bk_plugin/plugin_api_dispatch", &call).await;
    answers.push(body.to_string());
    assert_eq!(echo.calls().len(), 3);
    assert!(
        echo.calls().iter().all(|c| {
            String::from_utf8_lossy(&c.body).contains(SECRET)
                || c.header("x-bkapi-authorization")
                    .is_some_and(|h| h.contains(SECRET))
        }),
        "every call carried the secret"
    );
    let log = plugin.log_text();
    assert!(log.contains("bk api POST cc.search_business"), "{log}");
    for text in answers.iter().chain([&log]) {
        assert!(!text.contains(SECRET), "the secret leaked: {text}");
    }
    db.drop_database().await;
}
