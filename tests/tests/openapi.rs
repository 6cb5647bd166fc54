//! `GET /schema/`, the `openapi` command and the API page: the document is valid OpenAPI 3.1 by
//! the `openapi-spec-validator` from PyPI (installed into `<target>/bkp-tools/venv` on first use;
//! `$BKP_OPENAPI_VALIDATOR` names another copy), describes every route with each version's own
//! models, and reads the same in JSON and YAML.
#![allow(missing_docs)]

use std::path::PathBuf;
use std::process::Command;

use bkp_blackbox_tests::browser::{Browser, screenshot_dir};
use bkp_blackbox_tests::{Backend, Launch, Plugin, TempDir, TestDb, fixture_binary, migrate};
use serde_json::{Value, json};

/// The validator's executable, installing it (pip, into a venv in the target dir) when missing.
fn validator() -> PathBuf {
    if let Ok(path) = std::env::var("BKP_OPENAPI_VALIDATOR")
        && !path.is_empty()
    {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_default();
    let venv = target.join("bkp-tools").join("venv");
    let bin = venv.join("bin").join("openapi-spec-validator");
    if bin.is_file() {
        return bin;
    }
    // Several test processes may get here at once: the first to take the lock installs.
    let lock = target.join("bkp-tools").join("install.lock");
    std::fs::create_dir_all(target.join("bkp-tools")).unwrap_or_else(|e| panic!("{e}"));
    let script = format!(
        "set -e; exec 9>'{lock}'; flock 9; [ -x '{bin}' ] && exit 0; python3 -m venv '{venv}'; \
         '{venv}/bin/pip' install --quiet --disable-pip-version-check 'openapi-spec-validator==0.9.*'",
        lock = lock.display(),
        bin = bin.display(),
        venv = venv.display()
    );
    let status = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .status()
        .unwrap_or_else(|e| panic!("cannot run bash to install openapi-spec-validator: {e}"));
    assert!(
        status.success() && bin.is_file(),
        "installing openapi-spec-validator from PyPI failed (needs python3 with venv); set BKP_OPENAPI_VALIDATOR to an installed one"
    );
    bin
}

/// Runs the validator on `text` (JSON or YAML); panics with its report when it is not valid.
fn assert_valid_openapi(text: &str, file_name: &str) {
    let dir = TempDir::new("bkp-openapi");
    let file = dir.0.join(file_name);
    std::fs::write(&file, text).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(validator())
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run the validator: {e}"));
    let report = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "{file_name} is not valid OpenAPI:\n{report}"
    );
    assert!(report.contains("OK"), "{report}");
}

/// Reads YAML back through Python's yaml (installed with the validator) as JSON.
fn yaml_as_json(yaml: &str) -> Value {
    let python = validator().with_file_name("python");
    let dir = TempDir::new("bkp-yaml");
    let file = dir.0.join("doc.yaml");
    std::fs::write(&file, yaml).unwrap_or_else(|e| panic!("{e}"));
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1], encoding='utf-8'))))",
        ])
        .arg(&file)
        .output()
        .unwrap_or_else(|e| panic!("python: {e}"));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}"))
}

async fn get_text(plugin: &Plugin, path: &str) -> (u16, String, String) {
    let response = reqwest::get(format!("{}{path}", plugin.base))
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"));
    let status = response.status().as_u16();
    let kind = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, kind, response.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_schema_is_valid_openapi_with_every_route_and_each_versions_models() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let plugin = Plugin::start(&db).await;
    let (status, kind, text) = get_text(&plugin, "/schema/").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/json"), "{kind}");
    assert_valid_openapi(&text, "schema.json");
    let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(doc["openapi"], json!("3.1.0"));
    assert_eq!(doc["info"]["title"], json!("bkp-fixtures"));

    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (path, method) in [
        ("/bk_plugin/meta/", "get"),
        ("/bk_plugin/detail/{version}", "get"),
        ("/bk_plugin/schedule/{trace_id}", "get"),
        ("/bk_plugin/callback/{token}/", "post"),
        ("/bk_plugin/logs/{trace_id}", "get"),
        ("/bk_plugin/plugin_api_dispatch/", "post"),
        ("/bk_plugin/plugin_api/task_list/{biz_id}", "get"),
        ("/bk_plugin/plugin_api/task_list/{biz_id}", "post"),
        ("/bk_plugin/plugin_api/echo", "get"),
        ("/bk_plugin/plugin_api/echo", "post"),
        ("/metrics", "get"),
    ] {
        assert!(
            paths[path][method].is_object(),
            "{method} {path} is missing"
        );
    }
    let (_, meta) = plugin.get("/bk_plugin/meta").await;
    for version in meta["data"]["versions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        let version = version.as_str().unwrap_or_default();
        let invoke = &paths[&format!("/bk_plugin/invoke/{version}")]["post"];
        assert_eq!(
            invoke["requestBody"]["content"]["application/json"]["schema"]["$ref"],
            json!(format!("#/components/schemas/InvokeRequest_{version}")),
            "{version}"
        );
    }
    let biz = &paths["/bk_plugin/plugin_api/task_list/{biz_id}"]["get"]["parameters"][0];
    assert_eq!(biz["name"], json!("biz_id"));
    assert_eq!(biz["schema"]["pattern"], json!("^(?:\\d+)$"));

    // Each version's models are components: 1.0.0's inputs are `hello`, not a free object.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["Inputs_1.0.0"]["properties"]["hello"]["type"],
        json!("string")
    );
    assert_eq!(schemas["Inputs_1.0.0"]["required"], json!(["hello"]));
    assert_eq!(
        schemas["ContextInputs_1.0.0"]["properties"]["executor"]["title"],
        json!("任务执行人")
    );
    assert_eq!(
        schemas["InvokeRequest_1.0.0"]["properties"]["inputs"]["$ref"],
        json!("#/components/schemas/Inputs_1.0.0")
    );
    assert_eq!(
        schemas["InvokeResult_1.0.0"]["properties"]["data"]["properties"]["outputs"]["anyOf"][0]["$ref"],
        json!("#/components/schemas/Outputs_1.0.0")
    );
    // A nested model is hoisted next to its version's inputs, and referenced there.
    assert_eq!(
        schemas["Inputs_1.5.0"]["properties"]["options"]["$ref"],
        json!("#/components/schemas/Inputs_1.5.0_Options")
    );
    assert_eq!(schemas["Inputs_1.5.0_Options"]["required"], json!(["name"]));
    assert!(
        !text.contains("#/definitions/"),
        "a draft-07 reference was left"
    );

    // YAML says the same, and is valid too.
    let (status, kind, yaml) = get_text(&plugin, "/schema/?format=yaml").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("application/yaml"), "{kind}");
    assert_valid_openapi(&yaml, "schema.yaml");
    assert_eq!(yaml_as_json(&yaml), doc);

    let (status, body) = plugin.get("/schema/?format=xml").await;
    assert_eq!(status, 400);
    assert_eq!(body["result"], json!(false));
    assert!(body["message"].as_str().unwrap_or_default().contains("xml"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_command_prints_the_document_the_server_serves() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let plugin = Plugin::start(&db).await;
    let (_, served) = plugin.get("/schema/").await;
    let dir = TempDir::new("bkp-openapi-cli");
    let run = |args: &[&str]| {
        let output = Command::new(fixture_binary())
            .args(args)
            .current_dir(&dir.0)
            .env("BKPAAS_APP_ID", "bkp-fixtures")
            .env("BKPAAS_ENVIRONMENT", "dev")
            .output()
            .unwrap_or_else(|e| panic!("openapi: {e}"));
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let printed: Value = serde_json::from_str(&run(&["openapi"])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(printed, served);
    assert_eq!(yaml_as_json(&run(&["openapi", "--yaml"])), served);
    assert!(
        !dir.0.join("bk_plugin.db").exists(),
        "printing the document touched no database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_reads_the_api_page_rendered_from_the_document() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let plugin = Plugin::start(&db).await;
    let base = plugin.base.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut browser = Browser::launch();
        browser.open(&format!("{base}/swagger/"));
        assert_eq!(
            browser.eval("document.title"),
            json!("bkp-fixtures API reference")
        );
        let operations = browser.text("#operations");
        assert!(
            operations.contains("/bk_plugin/invoke/1.0.0"),
            "{operations}"
        );
        assert!(operations.contains("/bk_plugin/plugin_api/task_list/{biz_id}"));
        // Following the request body's link opens the version's inputs with their fields.
        browser.click("#op-invoke_1\\.0\\.0 summary");
        browser.click("#op-invoke_1\\.0\\.0 a[href='#schema-InvokeRequest_1.0.0']");
        browser.wait_for(
            "document.querySelector('#schema-InvokeRequest_1\\\\.0\\\\.0').open",
            "the request schema to open",
        );
        browser.click("#schema-InvokeRequest_1\\.0\\.0 a[href='#schema-Inputs_1.0.0']");
        browser.wait_for(
            "document.querySelector('#schema-Inputs_1\\\\.0\\\\.0').open",
            "the inputs schema to open",
        );
        let inputs = browser.text("#schema-Inputs_1\\.0\\.0");
        assert!(
            inputs.contains("hello") && inputs.contains("The text to echo."),
            "{inputs}"
        );
        let path = screenshot_dir().join("api-page.png");
        browser.screenshot(&path);
        println!("screenshot: {}", path.display());
    })
    .await;
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_dev_the_root_is_the_api_page_and_the_panel_is_off() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    migrate(&db);
    let key = format!("{}/fixtures/jwt/gateway.pub", env!("CARGO_MANIFEST_DIR"));
    let prod = |swagger: &str| {
        Launch::serve()
            .env("BKPAAS_ENVIRONMENT", "prod")
            .env("BKPAAS_APP_SECRET", "a-long-random-app-secret")
            .env("APIGW_PUBLIC_KEY_FILE", &key)
            .env("BK_PLUGIN_SWAGGER", swagger)
    };
    let plugin = Plugin::launch(&db, prod("1")).await;
    let (status, kind, page) = get_text(&plugin, "/").await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/html"), "{kind}");
    assert!(page.contains("id=\"operations\""), "/ is the API page");
    let (status, body) = plugin.get("/debug/").await;
    assert_eq!(status, 404);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("dev only")
    );
    let (status, _, text) = get_text(&plugin, "/schema/").await;
    assert_eq!(status, 200);
    assert!(text.contains("\"openapi\":\"3.1.0\""));
    drop(plugin);

    let plugin = Plugin::launch(&db, prod("0")).await;
    for path in ["/", "/swagger/"] {
        let (status, body) = plugin.get(path).await;
        assert_eq!(status, 404, "{path}");
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .contains("BK_PLUGIN_SWAGGER=0")
        );
    }
    let (status, _, _) = get_text(&plugin, "/schema/").await;
    assert_eq!(status, 200, "the document stays available");
}
