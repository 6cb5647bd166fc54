//! Gateway JWTs, allow_scope and production safety, over HTTP against the fixture binary.
#![allow(missing_docs)]

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, migrate, run_fixture};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};

const GATEWAY: &str = "bkp-fixtures";

fn key_path(name: &str) -> String {
    format!("{}/fixtures/jwt/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(key_path(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn claims(app: &str, exp: u64) -> Value {
    json!({
        "app": {"app_code": app, "verified": true},
        "user": {"username": "admin", "verified": true},
        "iss": "APIGW", "exp": exp, "nbf": now() - 10,
    })
}

fn sign(key: &str, kid: &str, alg: Algorithm, claims: &Value) -> String {
    let mut header = Header::new(alg);
    header.kid = Some(kid.to_string());
    let key = EncodingKey::from_rsa_pem(read(key).as_bytes()).unwrap_or_else(|e| panic!("{e}"));
    encode(&header, claims, &key).unwrap_or_else(|e| panic!("{e}"))
}

fn token(app: &str) -> String {
    sign(
        "gateway.key",
        GATEWAY,
        Algorithm::RS512,
        &claims(app, now() + 600),
    )
}

async fn prod_plugin(db: &TestDb, extra: &[(&str, &str)]) -> Plugin {
    migrate(db);
    let mut launch = Launch::serve()
        .env("BKPAAS_ENVIRONMENT", "prod")
        .env("BKPAAS_APP_SECRET", "a-long-random-app-secret")
        .env(
            "BK_PLUGIN_CALLBACK_HOST",
            "http://gateway.invalid/api/bkp-fixtures",
        )
        .env("APIGW_PUBLIC_KEY_FILE", &key_path("gateway.pub"));
    for (key, value) in extra {
        launch = launch.env(key, value);
    }
    Plugin::launch(db, launch).await
}

/// The plugin's own path for a callback URL issued for the gateway (the test plays the gateway).
fn through_gateway(callback_url: &str) -> String {
    let token = callback_url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default();
    format!("/bk_plugin/callback/{token}/")
}

async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"))
}

/// POSTs a JSON body to `path` as the gateway would, with `jwt` in `X-Bkapi-JWT`.
async fn post_as_gateway(plugin: &Plugin, path: &str, body: String, jwt: &str) -> (u16, Value) {
    let headers = [("X-Bkapi-JWT", jwt)];
    plugin
        .post_with(path, "application/json", body, &headers)
        .await
}

async fn invoke_with(plugin: &Plugin, version: &str, headers: &[(&str, &str)]) -> (u16, Value) {
    let body = json!({"inputs": {}, "context": {}}).to_string();
    plugin
        .post_with(
            &format!("/bk_plugin/invoke/{version}"),
            "application/json",
            body,
            headers,
        )
        .await
}

#[tokio::test]
async fn production_requires_a_valid_gateway_jwt_on_invoke() {
    let db = sqlite().await;
    let plugin = prod_plugin(&db, &[]).await;
    let (status, body) = invoke_with(&plugin, "1.6.0", &[]).await;
    assert_eq!(
        (status, body["result"].clone()),
        (401, json!(false)),
        "{body}"
    );
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("X-Bkapi-JWT")
    );
    let good = token("bk_sops");
    let (status, body) = invoke_with(&plugin, "1.6.0", &[("X-Bkapi-JWT", &good)]).await;
    assert_eq!(
        (status, body["data"]["state"].clone()),
        (200, json!(4)),
        "{body}"
    );
    // meta and detail stay open.
    let (status, _) = plugin.get("/bk_plugin/meta").await;
    assert_eq!(status, 200);
    assert!(
        !plugin.log_text().contains(&good),
        "the JWT never appears in a log line"
    );
}

#[tokio::test]
async fn forged_expired_and_confused_jwts_are_refused() {
    let db = sqlite().await;
    let plugin = prod_plugin(&db, &[]).await;
    let wrong_key = sign(
        "other.key",
        GATEWAY,
        Algorithm::RS512,
        &claims("bk_sops", now() + 600),
    );
    let expired = sign(
        "gateway.key",
        GATEWAY,
        Algorithm::RS512,
        &claims("bk_sops", now() - 3600),
    );
    let wrong_kid = sign(
        "gateway.key",
        "another-gateway",
        Algorithm::RS512,
        &claims("bk_sops", now() + 600),
    );
    let header = |alg: &str| {
        URL_SAFE_NO_PAD.encode(json!({"alg": alg, "typ": "JWT", "kid": GATEWAY}).to_string())
    };
    let payload = URL_SAFE_NO_PAD.encode(claims("bk_sops", now() + 600).to_string());
    let alg_none = format!("{}.{payload}.", header("none"));
    let public_pem = read("gateway.pub");
    let hs256 = {
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some(GATEWAY.into());
        encode(
            &h,
            &claims("bk_sops", now() + 600),
            &EncodingKey::from_secret(public_pem.as_bytes()),
        )
        .unwrap_or_default()
    };
    let mut not_yet_valid_claims = claims("bk_sops", now() + 600);
    not_yet_valid_claims["nbf"] = json!(now() + 120);
    let not_yet_valid = sign(
        "gateway.key",
        GATEWAY,
        Algorithm::RS512,
        &not_yet_valid_claims,
    );
    // A valid token is verified (and cached) first: its tampered twin must not ride on it.
    let good = token("bk_sops");
    let (status, _) = invoke_with(&plugin, "1.6.0", &[("X-Bkapi-JWT", &good)]).await;
    assert_eq!(status, 200);
    let parts: Vec<&str> = good.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims("other_app", now() + 600).to_string()),
        parts[2]
    );
    for (name, jwt) in [
        ("wrong key", wrong_key),
        ("expired", expired),
        ("wrong kid", wrong_kid),
        ("alg none", alg_none),
        ("HS256 with the public key", hs256),
        ("not yet valid", not_yet_valid),
        ("claims of a cached token tampered", tampered),
        ("garbage", "not.a.jwt".to_string()),
    ] {
        // Twice: a refused token must not be remembered as anything.
        for attempt in 0..2 {
            let (status, body) = invoke_with(&plugin, "1.6.0", &[("X-Bkapi-JWT", &jwt)]).await;
            assert_eq!(status, 401, "{name}, attempt {attempt}: {body}");
            assert_eq!(body["result"], json!(false), "{name}");
        }
    }
}

#[tokio::test]
async fn a_token_accepted_many_times_is_refused_once_its_expiry_and_leeway_pass() {
    let db = sqlite().await;
    let plugin = prod_plugin(&db, &[]).await;
    // exp 25 s ago: inside the 30 s leeway for about five more seconds.
    let exp = now() - 25;
    let jwt = sign(
        "gateway.key",
        GATEWAY,
        Algorithm::RS512,
        &claims("bk_sops", exp),
    );
    for _ in 0..5 {
        let (status, body) = invoke_with(&plugin, "1.6.0", &[("X-Bkapi-JWT", &jwt)]).await;
        assert_eq!(status, 200, "{body}");
    }
    while now() <= exp + 30 {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (status, body) = invoke_with(&plugin, "1.6.0", &[("X-Bkapi-JWT", &jwt)]).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("expired"),
        "{body}"
    );
}

#[tokio::test]
async fn callback_and_dispatch_and_data_apis_require_the_jwt_in_production() {
    let db = sqlite().await;
    let plugin = prod_plugin(&db, &[]).await;
    let dispatch =
        json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "username": "u", "data": {}});
    let (status, _) = plugin
        .post("/bk_plugin/plugin_api_dispatch", &dispatch)
        .await;
    assert_eq!(status, 401);
    let (status, _) = plugin.get("/bk_plugin/plugin_api/echo/").await;
    assert_eq!(status, 401);
    let good = token("bk_sops");
    let (_, waiting) = invoke_with(&plugin, "1.2.0", &[("X-Bkapi-JWT", &good)]).await;
    let url = through_gateway(
        waiting["data"]["outputs"]["callback_url"]
            .as_str()
            .unwrap_or_default(),
    );
    let (status, _) = plugin.post(&url, &json!({"x": 1})).await;
    assert_eq!(status, 401, "a callback without the gateway JWT is refused");
    let (status, body) = post_as_gateway(&plugin, &url, "{}".into(), &good).await;
    assert_eq!(
        (status, body["result"].clone()),
        (200, json!(true)),
        "{body}"
    );
    let (status, body) = post_as_gateway(
        &plugin,
        "/bk_plugin/plugin_api_dispatch",
        dispatch.to_string(),
        &good,
    )
    .await;
    assert_eq!(
        (status, body["data"]["username"].clone()),
        (200, json!("u")),
        "{body}"
    );
}

#[tokio::test]
async fn allow_scope_allows_listed_scopes_denies_others_and_ignores_unlisted_apps() {
    let db = sqlite().await;
    let plugin = prod_plugin(&db, &[("BKP_FIXTURE_ALLOW_SCOPE", "bk_sops:project:1,2")]).await;
    let (_, meta) = plugin.get("/bk_plugin/meta").await;
    assert_eq!(
        meta["data"]["allow_scope"],
        json!({"bk_sops": {"type": "project", "value": ["1", "2"]}})
    );
    let sops = token("bk_sops");
    let other = token("bk_other");
    let dispatch =
        json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "username": "u", "data": {}})
            .to_string();
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16);
    let cases: [Case<'_>; 5] = [
        (
            "listed, allowed",
            &sops,
            &[
                ("Bkplugin-Scope-Type", "project"),
                ("Bkplugin-Scope-Value", "2"),
            ],
            200,
        ),
        (
            "listed, wrong value",
            &sops,
            &[
                ("Bkplugin-Scope-Type", "project"),
                ("Bkplugin-Scope-Value", "3"),
            ],
            403,
        ),
        (
            "listed, wrong type",
            &sops,
            &[
                ("Bkplugin-Scope-Type", "biz"),
                ("Bkplugin-Scope-Value", "1"),
            ],
            403,
        ),
        ("listed, no scope headers", &sops, &[], 403),
        ("unlisted app", &other, &[], 200),
    ];
    for (name, jwt, scope, expected) in cases {
        let mut headers = vec![("X-Bkapi-JWT", jwt)];
        headers.extend_from_slice(scope);
        let (status, body) = invoke_with(&plugin, "1.6.0", &headers).await;
        assert_eq!(status, expected, "invoke, {name}: {body}");
        if expected == 403 {
            let trace_id = body["trace_id"].as_str().map(str::len);
            assert_eq!(
                trace_id,
                Some(32),
                "a refused invoke keeps its trace id: {body}"
            );
        }
        let (status, body) = plugin
            .post_with(
                "/bk_plugin/plugin_api_dispatch",
                "application/json",
                dispatch.clone(),
                &headers,
            )
            .await;
        assert_eq!(status, expected, "dispatch, {name}: {body}");
        if expected == 403 {
            assert_eq!(body["result"], json!(false));
        }
    }
}

#[tokio::test]
async fn start_up_refuses_bad_allow_scope_and_production_without_a_gateway_key() {
    let db = sqlite().await;
    let (ok, stderr) = run_fixture(
        &["serve"],
        &[
            ("DATABASE_URL", &db.url),
            ("BKP_FIXTURE_ALLOW_SCOPE", "bk_sops:project:"),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("allow_scope[bk_sops] allows no value"),
        "{stderr}"
    );
    migrate(&db);
    let (ok, stderr) = run_fixture(
        &["serve"],
        &[
            ("DATABASE_URL", &db.url),
            ("BKPAAS_ENVIRONMENT", "prod"),
            ("BKPAAS_APP_ID", "bkp-fixtures"),
            ("BKPAAS_APP_SECRET", "a-long-random-app-secret"),
        ],
    );
    assert!(!ok);
    assert!(stderr.contains("APIGW_PUBLIC_KEY"), "{stderr}");
}

#[tokio::test]
async fn production_refuses_an_unmigrated_database_and_says_what_to_run() {
    let db = sqlite().await;
    let (ok, stderr) = run_fixture(
        &["serve"],
        &[
            ("DATABASE_URL", &db.url),
            ("BKPAAS_ENVIRONMENT", "prod"),
            ("APIGW_PUBLIC_KEY_FILE", &key_path("gateway.pub")),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("not migrated") && stderr.contains("migrate"),
        "{stderr}"
    );
}

#[tokio::test]
async fn production_without_a_secret_refuses_to_start_rather_than_issue_no_callback_tokens() {
    let db = sqlite().await;
    migrate(&db);
    let (ok, stderr) = run_fixture(
        &["serve"],
        &[
            ("DATABASE_URL", &db.url),
            ("BKPAAS_ENVIRONMENT", "prod"),
            ("APIGW_PUBLIC_KEY_FILE", &key_path("gateway.pub")),
        ],
    );
    assert!(!ok);
    assert!(
        stderr.contains("secrets") && stderr.contains("BKPAAS_APP_SECRET"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_waiting_invocation_whose_state_is_too_large_fails_clearly_and_stores_nothing() {
    let db = sqlite().await;
    let plugin = Plugin::launch(&db, Launch::serve().env("BK_PLUGIN_MAX_STATE_BYTES", "40")).await;
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 0}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(5), "{body}");
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("plugin state too large:") && err.contains("BK_PLUGIN_MAX_STATE_BYTES"),
        "{err}"
    );
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let (_, schedule) = plugin.get(&format!("/bk_plugin/schedule/{trace_id}")).await;
    assert_eq!(schedule["result"], json!(false), "nothing was stored");
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_the_log() {
    let db = sqlite().await;
    let plugin = prod_plugin(&db, &[("BK_PLUGIN_LOG_LEVEL", "debug")]).await;
    let good = token("bk_sops");
    let (_, waiting) = invoke_with(&plugin, "1.2.0", &[("X-Bkapi-JWT", &good)]).await;
    let url = through_gateway(
        waiting["data"]["outputs"]["callback_url"]
            .as_str()
            .unwrap_or_default(),
    );
    let callback_token = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let (status, _) = post_as_gateway(&plugin, &url, "{}".into(), &good).await;
    assert_eq!(status, 200);
    let trace_id = waiting["trace_id"].as_str().unwrap_or_default();
    plugin
        .wait_finished(trace_id, std::time::Duration::from_secs(10))
        .await;
    let log = plugin.log_text();
    assert!(log.contains(trace_id), "the log is captured: {log}");
    for secret in [
        good.as_str(),
        callback_token.as_str(),
        "a-long-random-app-secret",
    ] {
        assert!(!log.contains(secret), "a secret leaked into the log");
    }
}
