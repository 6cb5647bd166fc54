//! Deploying to BlueKing PaaS unattended, against the real fixture binary: environments that
//! fail closed, databases as PaaS provides them, the gateway public key (fetched, stored, found,
//! rotated), callback URLs through the gateway, `sync-apigw` against a fake gateway manager that
//! records every call, TLS for finish callbacks, and `check`.
#![allow(missing_docs)]

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bkp_blackbox_tests::fake_http::{FakeServer, Recorded, Responder};
use bkp_blackbox_tests::{Backend, Launch, Plugin, TempDir, TestDb, migrate, on_every_backend};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

const GATEWAY: &str = "bp-fixtures";
const PREFIX: &str = "/api/bk-apigateway/prod/api/v1/apis/bp-fixtures/";

fn jwt_file(name: &str) -> String {
    bkp_blackbox_tests::jwt_fixture(name)
}

fn read_jwt_file(name: &str) -> String {
    std::fs::read_to_string(jwt_file(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// A gateway JWT for `GATEWAY` signed with the private key in `key_file`.
fn jwt(key_file: &str) -> String {
    bkp_blackbox_tests::gateway_jwt(key_file, GATEWAY)
}

/// A fake gateway manager: `GET public_key/` answers the current `key`; a POST whose path ends
/// with `fail` answers HTTP 400 with a gateway error; everything else succeeds.
fn manager(key: Arc<Mutex<String>>, fail: Option<&'static str>) -> Responder {
    Arc::new(move |request: &Recorded| {
        if request.method == "GET" && request.path.ends_with("/public_key/") {
            let pem = key.lock().map(|k| k.clone()).unwrap_or_default();
            let body = json!({"code": 0, "result": true, "message": "OK", "data": {"public_key": pem, "issuer": "APIGW"}});
            return (200, body.to_string());
        }
        if let Some(fail) = fail
            && request.path.ends_with(fail)
        {
            let body = json!({"code": 40002, "result": false, "message": "resource version 1.0.0 already exists", "data": null});
            return (400, body.to_string());
        }
        (
            200,
            json!({"code": 0, "result": true, "message": "OK", "data": {}}).to_string(),
        )
    })
}

async fn fake_manager(
    key_file: &str,
    fail: Option<&'static str>,
) -> (FakeServer, Arc<Mutex<String>>) {
    let key = Arc::new(Mutex::new(read_jwt_file(key_file)));
    (FakeServer::start(manager(key.clone(), fail)).await, key)
}

/// The environment PaaS gives a prod module, with the gateway manager at `manager`.
fn paas_env(db: &TestDb, manager: &FakeServer) -> Vec<(String, String)> {
    [
        ("BKPAAS_ENVIRONMENT", "prod"),
        ("BKPAAS_APP_ID", "bkp-fixtures"),
        ("BKPAAS_APP_SECRET", "a-long-random-app-secret"),
        ("BKPAAS_BK_PLUGIN_APIGW_NAME", GATEWAY),
        ("BK_API_URL_TMPL", &format!("{}/api/{{api_name}}", manager.base)),
        (
            "BKPAAS_DEFAULT_PREALLOCATED_URLS",
            r#"{"stag": "http://stag-dot-bkp-fixtures.apps.example.com/", "prod": "http://bkp-fixtures.apps.example.com/"}"#,
        ),
        ("DATABASE_URL", &db.url),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Runs the fixture binary to completion: (success, stdout, stderr).
fn run(args: &[&str], env: &[(String, String)]) -> (bool, String, String) {
    bkp_blackbox_tests::run_fixture_output(args, env)
}

fn with(env: &[(String, String)], extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut env = env.to_vec();
    for (k, v) in extra {
        env.retain(|(key, _)| key != k);
        env.push((k.to_string(), v.to_string()));
    }
    env
}

fn launch(env: &[(String, String)]) -> Launch {
    env.iter()
        .filter(|(k, _)| k != "DATABASE_URL")
        .fold(Launch::serve(), |launch, (k, v)| launch.env(k, v))
}

async fn invoke_with_jwt(plugin: &Plugin, version: &str, jwt: &str, inputs: Value) -> (u16, Value) {
    let body = json!({"inputs": inputs, "context": {}}).to_string();
    plugin
        .post_with(
            &format!("/bk_plugin/invoke/{version}"),
            "application/json",
            body,
            &[("X-Bkapi-JWT", jwt)],
        )
        .await
}

async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"))
}

// ---- environments and databases ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_environment_name_refuses_to_start_and_names_the_variable() {
    let db = sqlite().await;
    for wrong in ["online", "production-eu"] {
        let env = vec![
            ("DATABASE_URL".to_string(), db.url.clone()),
            ("BKPAAS_ENVIRONMENT".to_string(), wrong.to_string()),
        ];
        let (ok, _, stderr) = run(&["serve"], &env);
        assert!(!ok, "{wrong} must not start");
        assert!(
            stderr.contains("BKPAAS_ENVIRONMENT") && stderr.contains(wrong),
            "{stderr}"
        );
    }
}

/// A non-loopback address of this machine, if it has one.
fn outside_address() -> Option<std::net::IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("10.255.255.255:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_environment_set_the_server_listens_on_loopback_only() {
    let db = sqlite().await;
    // Empty values count as unset; the harness's own defaults are overridden this way.
    let plugin = Plugin::launch(
        &db,
        Launch::serve()
            .env("BKPAAS_ENVIRONMENT", "")
            .env("BK_PLUGIN_BIND", ""),
    )
    .await;
    let port = plugin
        .base
        .rsplit(':')
        .next()
        .unwrap_or_default()
        .to_string();
    let log = plugin.log_text();
    assert!(log.contains(&format!("127.0.0.1:{port}")), "{log}");
    if let Some(ip) = outside_address() {
        let reached = std::net::TcpStream::connect_timeout(
            &std::net::SocketAddr::new(ip, port.parse().unwrap_or(0)),
            Duration::from_secs(2),
        );
        assert!(reached.is_err(), "reachable on {ip}:{port}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_dev_without_a_database_the_server_refuses_instead_of_using_sqlite() {
    for environment in ["stag", "prod"] {
        let env = vec![
            ("BKPAAS_ENVIRONMENT".to_string(), environment.to_string()),
            ("BKPAAS_APP_SECRET".to_string(), "s".to_string()),
        ];
        let (ok, _, stderr) = run(&["serve"], &env);
        assert!(!ok);
        assert!(
            stderr.contains("no database") && stderr.contains("MYSQL_HOST"),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stag_with_require_exempt_accepts_calls_without_a_jwt_and_stag_without_it_does_not() {
    let db = sqlite().await;
    migrate(&db);
    let base = Launch::serve()
        .env("BKPAAS_ENVIRONMENT", "stag")
        .env("BKPAAS_APP_SECRET", "a-long-random-app-secret")
        .env("BK_PLUGIN_CALLBACK_HOST", "http://gateway.invalid/api/x");
    let plugin = Plugin::launch(&db, base.clone().env("BK_APIGW_REQUIRE_EXEMPT", "true")).await;
    let (status, body) = plugin.invoke("1.6.0", json!({}), json!({})).await;
    assert_eq!(
        (status, body["data"]["state"].clone()),
        (200, json!(4)),
        "{body}"
    );
    drop(plugin);
    let plugin = Plugin::launch(
        &db,
        base.env("APIGW_PUBLIC_KEY_FILE", &jwt_file("gateway.pub")),
    )
    .await;
    let (status, _) = plugin.invoke("1.6.0", json!({}), json!({})).await;
    assert_eq!(status, 401);
}

/// (host, port, user, password, database) of a MySQL URL.
fn mysql_parts(url: &str) -> (String, String, String, String, String) {
    let rest = url.trim_start_matches("mysql://");
    let (userinfo, rest) = rest.split_once('@').unwrap_or(("root", rest));
    let (user, password) = userinfo.split_once(':').unwrap_or((userinfo, ""));
    let (hostport, name) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = hostport.split_once(':').unwrap_or((hostport, "3306"));
    let name = name.split('?').next().unwrap_or_default();
    (
        host.into(),
        port.into(),
        user.into(),
        password.into(),
        name.into(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mysql_addon_variables_and_their_gcs_legacy_names_reach_the_database() {
    let Some(db) = TestDb::new(Backend::Mysql).await else {
        return;
    };
    let (host, port, user, password, name) = mysql_parts(&db.url);
    for prefix in ["MYSQL", "GCS_MYSQL"] {
        let env: Vec<(String, String)> = [
            ("HOST", &host),
            ("PORT", &port),
            ("USER", &user),
            ("PASSWORD", &password),
            ("NAME", &name),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{prefix}_{k}"), v.clone()))
        .chain([("BKPAAS_ENVIRONMENT".to_string(), "prod".to_string())])
        .collect();
        let (ok, stdout, stderr) = run(&["migrate"], &env);
        assert!(ok, "{prefix}: {stderr}");
        assert!(stdout.contains("up to date"), "{stdout}");
    }
    let admin = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let tables = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            "SELECT table_name FROM information_schema.tables WHERE table_name = 'bkp_apigw_context' AND table_schema = DATABASE()",
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(tables.len(), 1, "migrated through the add-on variables");
    let _ = admin.close().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_url_that_asks_for_tls_gets_an_encrypted_connection() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let tls_url = format!("{}{separator}sslmode=require", db.url);
    let env = vec![
        ("DATABASE_URL".to_string(), tls_url.clone()),
        ("BKPAAS_ENVIRONMENT".to_string(), "dev".to_string()),
    ];
    let (ok, _, stderr) = run(&["migrate"], &env);
    if !ok {
        // A server without TLS: the refusal must say so (not "built without TLS support").
        assert!(!stderr.contains("without TLS support"), "{stderr}");
        assert!(
            stderr.to_lowercase().contains("tls") || stderr.contains("SSL"),
            "{stderr}"
        );
        db.drop_database().await;
        return;
    }
    let plugin = Plugin::launch(&db, Launch::serve().env("DATABASE_URL", &tls_url)).await;
    let name = db
        .url
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_string();
    let admin = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let rows = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.datname = '{name}' AND a.pid <> pg_backend_pid()"),
        ))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let encrypted: Vec<bool> = rows
        .iter()
        .filter_map(|r| r.try_get::<bool>("", "ssl").ok())
        .collect();
    assert!(
        !encrypted.is_empty() && encrypted.iter().all(|ssl| *ssl),
        "the plugin's connections use TLS: {encrypted:?}"
    );
    drop(plugin);
    let _ = admin.close().await;
    db.drop_database().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mysql_url_that_asks_for_tls_is_refused_clearly_by_a_server_without_it() {
    let Some(db) = TestDb::new(Backend::Mysql).await else {
        return;
    };
    let separator = if db.url.contains('?') { '&' } else { '?' };
    let env = vec![
        (
            "DATABASE_URL".to_string(),
            format!("{}{separator}ssl-mode=required", db.url),
        ),
        ("BKPAAS_ENVIRONMENT".to_string(), "dev".to_string()),
    ];
    let (ok, _, stderr) = run(&["migrate"], &env);
    if !ok {
        assert!(
            stderr.contains("TLS") && !stderr.contains("without TLS support"),
            "{stderr}"
        );
    }
    db.drop_database().await;
}

// ---- the gateway public key ----

on_every_backend!(
    fetched_public_key_is_stored_and_used_by_a_production_serve_without_key_variables,
    sync_apigw_makes_the_gateway_calls_in_order_then_skips_an_unchanged_definition,
);

async fn fetched_public_key_is_stored_and_used_by_a_production_serve_without_key_variables(
    db: &TestDb,
) {
    migrate(db);
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let env = paas_env(db, &gateway);
    let (ok, stdout, stderr) = run(&["fetch-apigw-public-key"], &env);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("stored the public key of gateway bp-fixtures"),
        "{stdout}"
    );
    let fetches = gateway.calls();
    assert_eq!(fetches.len(), 1);
    assert_eq!(fetches[0].path, format!("{PREFIX}public_key/"));
    let auth: Value =
        serde_json::from_str(fetches[0].header("x-bkapi-authorization").unwrap_or(""))
            .unwrap_or(Value::Null);
    assert_eq!(
        auth,
        json!({"bk_app_code": "bkp-fixtures", "bk_app_secret": "a-long-random-app-secret"})
    );
    // serve: no APIGW_PUBLIC_KEY(_FILE), and a gateway that would no longer answer.
    let env = with(
        &env,
        &[("BK_API_URL_TMPL", "http://127.0.0.1:9/api/{api_name}")],
    );
    let plugin = Plugin::launch(db, launch(&env)).await;
    let (status, body) = invoke_with_jwt(&plugin, "1.6.0", &jwt("gateway.key"), json!({})).await;
    assert_eq!(
        (status, body["data"]["state"].clone()),
        (200, json!(4)),
        "{body}"
    );
    let (status, body) = invoke_with_jwt(&plugin, "1.6.0", "garbage.not.jwt", json!({})).await;
    assert_eq!(
        (status, body["result"].clone()),
        (401, json!(false)),
        "{body}"
    );
    let (status, _) = invoke_with_jwt(&plugin, "1.6.0", &jwt("other.key"), json!({})).await;
    assert_eq!(status, 401, "a JWT signed with another key is refused");
    assert!(
        plugin.log_text().contains("the database"),
        "{}",
        plugin.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_key_in_the_database_is_used_without_a_restart() {
    let db = sqlite().await;
    migrate(&db);
    let (gateway, key) = fake_manager("gateway.pub", None).await;
    let env = paas_env(&db, &gateway);
    assert!(run(&["fetch-apigw-public-key"], &env).0);
    let plugin = Plugin::launch(
        &db,
        launch(&env).env("BK_PLUGIN_PUBLIC_KEY_REFRESH_SECONDS", "1"),
    )
    .await;
    let old = jwt("gateway.key");
    let new = jwt("other.key");
    assert_eq!(
        invoke_with_jwt(&plugin, "1.6.0", &old, json!({})).await.0,
        200
    );
    assert_eq!(
        invoke_with_jwt(&plugin, "1.6.0", &new, json!({})).await.0,
        401
    );
    // The gateway rotates its key; the pre-release hook of the next deploy stores the new one.
    *key.lock().unwrap_or_else(|e| e.into_inner()) = read_jwt_file("other.pub");
    let (ok, _, stderr) = run(&["fetch-apigw-public-key"], &env);
    assert!(ok, "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while invoke_with_jwt(&plugin, "1.6.0", &new, json!({})).await.0 != 200 {
        assert!(
            Instant::now() < deadline,
            "the new key was never picked up:\n{}",
            plugin.log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        invoke_with_jwt(&plugin, "1.6.0", &old, json!({})).await.0,
        401,
        "the old key is no longer accepted"
    );
    assert!(plugin.log_text().contains("public key changed"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_serve_with_no_stored_key_fetches_it_once_from_the_gateway() {
    let db = sqlite().await;
    migrate(&db);
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let env = paas_env(&db, &gateway);
    let plugin = Plugin::launch(&db, launch(&env)).await;
    let (status, body) = invoke_with_jwt(&plugin, "1.6.0", &jwt("gateway.key"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let calls = gateway.calls();
    assert_eq!(calls.len(), 1, "one fetch: {calls:?}");
    assert_eq!(calls[0].path, format!("{PREFIX}public_key/"));
    drop(plugin);
    // Stored: the next start needs no gateway.
    let env = with(
        &env,
        &[("BK_API_URL_TMPL", "http://127.0.0.1:9/api/{api_name}")],
    );
    let plugin = Plugin::launch(&db, launch(&env)).await;
    assert_eq!(
        invoke_with_jwt(&plugin, "1.6.0", &jwt("gateway.key"), json!({}))
            .await
            .0,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_production_serve_whose_key_cannot_be_fetched_refuses_with_the_gateways_message() {
    let db = sqlite().await;
    migrate(&db);
    let refusing = FakeServer::start(Arc::new(|_: &Recorded| {
        (403, json!({"code": 1640301, "result": false, "message": "app bkp-fixtures has no permission"}).to_string())
    }))
    .await;
    let env = paas_env(&db, &refusing);
    let (ok, _, stderr) = run(&["serve"], &env);
    assert!(!ok);
    assert!(
        stderr.contains("app bkp-fixtures has no permission"),
        "{stderr}"
    );
}

// ---- callback URLs ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_production_callback_urls_go_through_the_gateway_named_by_bk_api_url_tmpl() {
    let db = sqlite().await;
    migrate(&db);
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let env = paas_env(&db, &gateway);
    let plugin = Plugin::launch(&db, launch(&env)).await;
    let (status, body) = invoke_with_jwt(&plugin, "1.2.0", &jwt("gateway.key"), json!({})).await;
    assert_eq!(status, 200, "{body}");
    let url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default();
    let expected = format!("{}/api/bp-fixtures/prod/callback/", gateway.base);
    assert!(
        url.starts_with(&expected) && url.ends_with('/'),
        "{url} vs {expected}"
    );
    let token = &url[expected.len()..url.len() - 1];
    assert!(!token.is_empty() && !token.contains('/'), "{url}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_dev_without_a_callback_host_a_callback_invocation_fails_clearly() {
    let db = sqlite().await;
    migrate(&db);
    let plugin = Plugin::launch(
        &db,
        Launch::serve()
            .env("BKPAAS_ENVIRONMENT", "prod")
            .env("BKPAAS_APP_SECRET", "a-long-random-app-secret")
            .env("BKPAAS_BK_PLUGIN_APIGW_NAME", GATEWAY)
            .env("APIGW_PUBLIC_KEY_FILE", &jwt_file("gateway.pub")),
    )
    .await;
    assert!(
        plugin.log_text().contains("callback host"),
        "warned at start"
    );
    let (_, body) = invoke_with_jwt(&plugin, "1.2.0", &jwt("gateway.key"), json!({})).await;
    assert_eq!(body["data"]["state"], json!(5), "{body}");
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(err.contains("BK_API_URL_TMPL"), "{err}");
}

// ---- sync-apigw ----

fn resource_flags(resources: &Value, path: &str) -> (String, Value, Value, Value, Value) {
    let methods = resources["paths"][path]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let (method, operation) = methods
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {path}"));
    let resource = &operation["x-bk-apigateway-resource"];
    let auth = &resource["authConfig"];
    (
        format!(
            "{method} {}",
            resource["backend"]["path"].as_str().unwrap_or_default()
        ),
        auth["userVerifiedRequired"].clone(),
        auth["appVerifiedRequired"].clone(),
        auth["resourcePermissionRequired"].clone(),
        resource["matchSubpath"].clone(),
    )
}

async fn sync_apigw_makes_the_gateway_calls_in_order_then_skips_an_unchanged_definition(
    db: &TestDb,
) {
    migrate(db);
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let env = with(
        &paas_env(db, &gateway),
        &[
            ("BK_APIGW_GRANTED_APPS", "bk_itsm, bk_monitor"),
            ("BKPAAS_APP_TENANT_ID", "tenant-a"),
            ("BK_APIGW_MAINTAINERS", "alice,bob"),
        ],
    );
    let (ok, stdout, stderr) = run(&["sync-apigw"], &env);
    assert!(ok, "{stderr}");
    let calls = gateway.calls();
    let sequence: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.path.trim_start_matches(PREFIX)))
        .collect();
    assert_eq!(
        sequence,
        [
            "POST sync/",
            "POST stages/sync/",
            "POST resources/sync/",
            "POST permissions/grant/",
            "POST permissions/grant/",
            "POST permissions/grant/",
            "POST resource_versions/",
            "POST resource_versions/release/",
        ],
        "{:?}",
        calls.iter().map(|c| &c.path).collect::<Vec<_>>()
    );
    for call in &calls {
        assert!(call.path.starts_with(PREFIX), "{}", call.path);
        assert_eq!(call.header("x-bk-tenant-id"), Some("tenant-a"));
        let auth: Value = serde_json::from_str(call.header("x-bkapi-authorization").unwrap_or(""))
            .unwrap_or(Value::Null);
        assert_eq!(auth["bk_app_code"], json!("bkp-fixtures"));
    }
    let basic = calls[0].json();
    assert_eq!(basic["maintainers"], json!(["alice", "bob"]));
    assert_eq!(basic["is_public"], json!(true));
    let stage = calls[1].json();
    assert_eq!(stage["name"], json!("prod"));
    assert_eq!(
        stage["backends"][0]["config"]["hosts"],
        json!([{"host": "http://bkp-fixtures.apps.example.com", "weight": 100}])
    );
    let sync = calls[2].json();
    assert_eq!(sync["delete"], json!(true));
    let resources: Value =
        serde_json::from_str(sync["content"].as_str().unwrap_or_default()).unwrap_or(Value::Null);
    let paths = resources["paths"].as_object().map(|p| p.len()).unwrap_or(0);
    assert_eq!(paths, 7, "{resources}");
    let t = json!(true);
    let f = json!(false);
    let unset = Value::Null;
    let expected = [
        (
            "/callback/{token}/",
            "post /bk_plugin/callback/{token}/",
            &f,
            &t,
            &t,
            &f,
        ),
        (
            "/invoke/{version}/",
            "post /bk_plugin/invoke/{version}",
            &f,
            &t,
            &t,
            &f,
        ),
        (
            "/bk_plugin/schedule/{id}",
            "get /bk_plugin/schedule/{id}",
            &f,
            &t,
            &f,
            &f,
        ),
        (
            "/bk_plugin/plugin_api/",
            "x-bk-apigateway-method-any /bk_plugin/plugin_api/",
            &t,
            &f,
            &unset,
            &t,
        ),
        (
            "/bk_plugin/openapi/",
            "x-bk-apigateway-method-any /bk_plugin/openapi/",
            &f,
            &t,
            &unset,
            &t,
        ),
        (
            "/bk_plugin/private/",
            "x-bk-apigateway-method-any /bk_plugin/private/",
            &t,
            &t,
            &f,
            &t,
        ),
        (
            "/plugin_api_dispatch",
            "post /bk_plugin/plugin_api_dispatch/",
            &f,
            &t,
            &t,
            &f,
        ),
    ];
    for (path, backend, user, app, perm, subpath) in expected {
        assert_eq!(
            resource_flags(&resources, path),
            (
                backend.to_string(),
                user.clone(),
                app.clone(),
                perm.clone(),
                subpath.clone()
            ),
            "{path}"
        );
    }
    let grants: Vec<Value> = calls[3..6].iter().map(Recorded::json).collect();
    assert_eq!(
        grants,
        [
            json!({"target_app_code": "bkp-fixtures", "grant_dimension": "gateway"}),
            json!({"target_app_code": "bk_itsm", "grant_dimension": "gateway"}),
            json!({"target_app_code": "bk_monitor", "grant_dimension": "gateway"}),
        ]
    );
    let version = calls[6].json()["version"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (base, stamp) = version.split_once('+').unwrap_or_default();
    assert_eq!(base, "1.0.0");
    assert!(
        stamp.len() == 14 && stamp.bytes().all(|b| b.is_ascii_digit()),
        "{version}"
    );
    let release = calls[7].json();
    assert_eq!(release["version"], json!(version));
    assert_eq!(release["stage_names"], json!(["prod"]));
    assert!(stdout.contains("released"), "{stdout}");

    // Nothing changed: nothing is sent.
    let (ok, stdout, stderr) = run(&["sync-apigw"], &env);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("up to date"), "{stdout}");
    assert_eq!(gateway.calls().len(), 8, "a second run sends nothing");
    // --force sends everything again; a change (another granted app) does too.
    assert!(run(&["sync-apigw", "--force"], &env).0);
    assert_eq!(gateway.calls().len(), 16);
    let changed = with(&env, &[("BK_APIGW_GRANTED_APPS", "bk_itsm")]);
    assert!(run(&["sync-apigw"], &changed).0);
    assert_eq!(gateway.calls().len(), 16 + 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_apigw_dry_run_prints_what_it_would_send_and_sends_nothing() {
    let db = sqlite().await;
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let env = paas_env(&db, &gateway);
    let (ok, stdout, stderr) = run(&["sync-apigw", "--dry-run"], &env);
    assert!(ok, "{stderr}");
    assert!(
        gateway.calls().is_empty(),
        "dry run sent {:?}",
        gateway.calls()
    );
    let json_end = stdout.rfind('}').map(|i| i + 1).unwrap_or(0);
    let plan: Value =
        serde_json::from_str(&stdout[..json_end]).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(plan["gateway"], json!(GATEWAY));
    // basic info, stage, resources, one grant (the app itself), version, release.
    assert_eq!(plan["calls"].as_array().map(Vec::len), Some(6));
    let content = plan["calls"][2]["body"]["content"]
        .as_str()
        .unwrap_or_default();
    assert!(content.contains("/plugin_api_dispatch"), "{content}");
    assert!(stdout.contains("nothing was sent"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_gateway_call_exits_non_zero_with_the_gateways_message_and_is_retried_next_time() {
    let db = sqlite().await;
    migrate(&db);
    let (failing, _) = fake_manager("gateway.pub", Some("/resource_versions/")).await;
    let env = paas_env(&db, &failing);
    let (ok, _, stderr) = run(&["sync-apigw"], &env);
    assert!(!ok);
    assert!(
        stderr.contains("resource version 1.0.0 already exists") && stderr.contains("40002"),
        "{stderr}"
    );
    let sent = failing.calls().len();
    assert_eq!(sent, 5, "stopped at the failed call");
    // The hook runs again: the failed sync is not taken for a done one.
    let (working, _) = fake_manager("gateway.pub", None).await;
    let env = paas_env(&db, &working);
    let (ok, _, stderr) = run(&["sync-apigw"], &env);
    assert!(ok, "{stderr}");
    assert_eq!(working.calls().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_apigw_without_the_paas_addresses_says_which_variable_is_missing() {
    let db = sqlite().await;
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let env: Vec<_> = paas_env(&db, &gateway)
        .into_iter()
        .filter(|(k, _)| k != "BKPAAS_DEFAULT_PREALLOCATED_URLS")
        .collect();
    let (ok, _, stderr) = run(&["sync-apigw"], &env);
    assert!(!ok);
    assert!(
        stderr.contains("BKPAAS_DEFAULT_PREALLOCATED_URLS"),
        "{stderr}"
    );
}

// ---- outbound TLS ----

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI: (cert PEM, key PEM).
fn self_signed(dir: &TempDir) -> (String, String) {
    let cert = dir.0.join("cert.pem");
    let key = dir.0.join("key.pem");
    let status = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
        ])
        .args([
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap_or_else(|e| panic!("openssl: {e}"));
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{e}"));
    (read(&cert), read(&key))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finish_callbacks_reach_a_self_signed_https_receiver_only_when_verification_is_off() {
    let dir = TempDir::new("bkp-tls");
    let (cert, key) = self_signed(&dir);
    let ok: Responder = Arc::new(|_: &Recorded| (200, json!({"result": true}).to_string()));
    let receiver = FakeServer::start_tls(&cert, &key, ok).await;
    let url = format!("{}/taskflow/api/v4/nodes/callback/xyz/", receiver.base);
    let context = json!({"plugin_callback_info": {"url": url, "data": {"node": "n1"}}});
    for verify in ["true", "false"] {
        let db = sqlite().await;
        let plugin = Plugin::launch(
            &db,
            Launch::serve()
                .env("BK_PLUGIN_CALLBACK_TLS_VERIFY", verify)
                .env("BK_PLUGIN_FINISH_CALLBACK_TRIES", "1"),
        )
        .await;
        let before = receiver.calls().len();
        let (_, body) = plugin
            .invoke("1.7.0", json!({"fail": true}), context.clone())
            .await;
        let trace_id = body["trace_id"].as_str().unwrap_or_default().to_string();
        plugin
            .wait_finished(&trace_id, Duration::from_secs(10))
            .await;
        let deadline = Instant::now() + Duration::from_secs(15);
        if verify == "false" {
            while receiver.calls().len() == before {
                assert!(
                    Instant::now() < deadline,
                    "not delivered:\n{}",
                    plugin.log_text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let delivered = receiver.calls();
            assert_eq!(delivered[before].json(), json!({"node": "n1"}));
        } else {
            while !plugin.log_text().contains("finish callback failed") {
                assert!(
                    Instant::now() < deadline,
                    "no failure reported:\n{}",
                    plugin.log_text()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            let log = plugin.log_text();
            assert!(
                log.to_lowercase().contains("certificate"),
                "the reason is reported: {log}"
            );
            assert_eq!(receiver.calls().len(), before, "nothing was delivered");
        }
    }
}

// ---- the gateway manager's client ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_manager_client_follows_no_redirect_so_the_app_secret_goes_nowhere_else() {
    let db = sqlite().await;
    migrate(&db);
    // Following the redirect would reach a working manager, with the app secret.
    let (elsewhere, _) = fake_manager("gateway.pub", None).await;
    let redirecting = FakeServer::start_redirecting(&elsewhere.base).await;
    let env = paas_env(&db, &redirecting);
    let (ok, _, stderr) = run(&["fetch-apigw-public-key"], &env);
    assert!(!ok, "a redirect is not a key: {stderr}");
    assert_eq!(redirecting.calls().len(), 1, "{stderr}");
    let followed: Vec<String> = elsewhere.calls().into_iter().map(|c| c.path).collect();
    assert!(
        followed.is_empty(),
        "the redirect was followed: {followed:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn turning_callback_tls_verification_off_leaves_it_on_for_the_gateway_manager() {
    let dir = TempDir::new("bkp-tls-manager");
    let (cert, key) = self_signed(&dir);
    let pem = Arc::new(Mutex::new(read_jwt_file("gateway.pub")));
    let gateway = FakeServer::start_tls(&cert, &key, manager(pem, None)).await;
    let db = sqlite().await;
    migrate(&db);
    let env = with(
        &paas_env(&db, &gateway),
        &[("BK_PLUGIN_CALLBACK_TLS_VERIFY", "false")],
    );
    let (ok, _, stderr) = run(&["fetch-apigw-public-key"], &env);
    assert!(!ok, "{stderr}");
    assert!(stderr.to_lowercase().contains("certificate"), "{stderr}");
    assert!(
        gateway.calls().is_empty(),
        "a key was asked for over an unverified connection"
    );
    let (_, stdout, _) = run(&["check"], &env);
    assert!(
        stdout
            .contains("WARN    outbound TLS: certificates NOT verified: finish-callback receivers"),
        "{stdout}"
    );
    // Its own switch turns it off.
    let env = with(&env, &[("BK_PLUGIN_APIGW_TLS_VERIFY", "false")]);
    let (ok_fetch, _, stderr) = run(&["fetch-apigw-public-key"], &env);
    assert!(ok_fetch, "{stderr}");
    assert_eq!(gateway.calls().len(), 1);
}

// ---- check ----

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_reports_each_item_and_exits_non_zero_on_a_blocker() {
    let db = sqlite().await;
    migrate(&db);
    let (gateway, _) = fake_manager("gateway.pub", None).await;
    let complete = paas_env(&db, &gateway);
    // No secret, no gateway address, no key: three blockers, each named.
    let broken: Vec<_> = complete
        .iter()
        .filter(|(k, _)| k != "BKPAAS_APP_SECRET" && k != "BK_API_URL_TMPL")
        .cloned()
        .collect();
    let (ok, stdout, _) = run(
        &["check"],
        &with(&broken, &[("BKPAAS_ENVIRONMENT", "online")]),
    );
    assert!(!ok);
    assert!(
        stdout.contains("MISSING configuration: BKPAAS_ENVIRONMENT="),
        "{stdout}"
    );
    let (ok, stdout, _) = run(&["check"], &broken);
    assert!(!ok, "{stdout}");
    assert!(stdout.contains("OK      environment: prod"), "{stdout}");
    assert!(
        stdout.contains("OK      database: reachable and migrated"),
        "{stdout}"
    );
    assert!(stdout.contains("MISSING secrets"), "{stdout}");
    assert!(stdout.contains("MISSING public key"), "{stdout}");
    assert!(stdout.contains("WARN    callback host"), "{stdout}");
    // Complete, with the key fetched by the pre-release hook.
    assert!(run(&["fetch-apigw-public-key"], &complete).0);
    let (ok, stdout, stderr) = run(&["check"], &complete);
    assert!(ok, "{stdout}{stderr}");
    assert!(
        stdout.contains("OK      public key: from the database"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!(
            "OK      callback host: {}/api/bp-fixtures/prod/callback/<token>/",
            gateway.base
        )),
        "{stdout}"
    );
    assert!(!stdout.contains("MISSING"), "{stdout}");
    // An unmigrated database is a blocker outside dev.
    let fresh = sqlite().await;
    let (ok, stdout, _) = run(
        &["check"],
        &with(&complete, &[("DATABASE_URL", &fresh.url)]),
    );
    assert!(!ok);
    assert!(stdout.contains("MISSING database"), "{stdout}");
}
