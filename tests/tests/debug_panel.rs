//! The dev debug panel at `/`, used the way a person uses it, in a real headless Chromium:
//! pick a version, fill its form, run it, watch a polling invocation reach SUCCESS, come back and
//! find the last inputs again. Screenshots land in `<target>/debug/screenshots/`.
#![allow(missing_docs)]

use std::path::PathBuf;

use bkp_blackbox_tests::browser::{Browser, screenshot_dir};
use bkp_blackbox_tests::prefix_proxy::PrefixProxy;
use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb};
use serde_json::{Value, json};

fn outputs(browser: &mut Browser) -> Value {
    let text = browser.text("#outputs");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("outputs are not JSON ({e}): {text}"))
}

fn shot(browser: &mut Browser, name: &str) -> PathBuf {
    let path = screenshot_dir().join(name);
    browser.screenshot(&path);
    println!("screenshot: {}", path.display());
    path
}

/// The whole scenario, in the browser (blocking: it runs on its own thread).
fn use_the_panel(base: &str) {
    let mut browser = Browser::launch();
    browser.open(&format!("{base}/"));
    assert_eq!(
        browser.eval("document.title"),
        json!("bkp-fixtures-debug-panel")
    );
    assert_eq!(
        browser.value("#version"),
        "1.7.0",
        "the newest version is picked first"
    );

    // 1.0.0 has a form.js: its `hello` input is rendered from it, labelled with attrs.name.
    browser.choose("#version", "1.0.0");
    browser.wait_for(
        "document.querySelector('#inputs-form [data-field=\"hello\"]')",
        "the 1.0.0 form",
    );
    assert!(browser.text("#form-source").contains("form.js"));
    assert!(browser.text("#inputs-form").contains("Hello"));
    assert!(browser.text("#context-form").contains("任务执行人"));
    browser.fill("#inputs-form [data-field=\"hello\"]", "hello");
    browser.fill("#context-form [data-field=\"executor\"]", "admin");
    browser.click("#run");
    browser.wait_for(
        "document.querySelector('#state').textContent.includes('SUCCESS')",
        "1.0.0 to succeed",
    );
    assert_eq!(outputs(&mut browser), json!({"world": "hello"}));
    assert_eq!(browser.text("#trace-id").len(), 32);
    assert_eq!(browser.text("#err"), "");
    browser.wait_for(
        "document.querySelector('#logs').textContent.includes('echo plugin executing for admin')",
        "the 1.0.0 logs",
    );
    shot(&mut browser, "debug-panel-1.0.0.png");

    // The raw-JSON toggle shows exactly what the form would send.
    browser.click("#toggle-raw");
    let raw: Value = serde_json::from_str(&browser.value("#inputs-raw")).unwrap_or(Value::Null);
    assert_eq!(raw, json!({"hello": "hello"}));
    browser.click("#toggle-raw");
    assert_eq!(
        browser.value("#inputs-form [data-field=\"hello\"]"),
        "hello"
    );

    // 1.1.0 has no form: its inputs come from the schema, defaults filled in; it polls.
    browser.choose("#version", "1.1.0");
    browser.wait_for(
        "document.querySelector('#inputs-form [data-field=\"polls\"]')",
        "the 1.1.0 schema form",
    );
    assert!(browser.text("#form-source").contains("schema"));
    assert_eq!(browser.value("#inputs-form [data-field=\"interval\"]"), "1");
    browser.fill("#inputs-form [data-field=\"polls\"]", "2");
    browser.click("#run");
    browser.wait_for(
        "document.querySelector('#state').textContent.includes('SUCCESS')",
        "1.1.0 to poll its way to SUCCESS",
    );
    let states = browser.eval("document.querySelector('#timeline').dataset.states");
    assert_eq!(states, json!("POLL,SUCCESS"), "the panel showed POLL first");
    let done = outputs(&mut browser);
    assert_eq!(done["phase"], json!("done"));
    assert_eq!(done["polls_done"], json!(2));
    assert_eq!(done["invoke_count"], json!(3));
    browser.wait_for(
        "document.querySelector('#logs').textContent.includes('poll plugin done')",
        "the 1.1.0 logs of every run",
    );
    assert!(browser.text("#logs").contains("poll plugin first run"));
    shot(&mut browser, "debug-panel-1.1.0.png");

    // 1.7.0 takes plugin_callback_info as JSON, prefilled; bad JSON is refused before running.
    browser.choose("#version", "1.7.0");
    let info = browser.wait_for(
        "document.querySelector('#context-form [data-field=\"plugin_callback_info\"]').value",
        "the 1.7.0 context form",
    );
    let info: Value = serde_json::from_str(info.as_str().unwrap_or_default()).unwrap_or_default();
    assert_eq!(info, json!({"url": "", "data": {}}));
    browser.fill(
        "#context-form [data-field=\"plugin_callback_info\"]",
        "{not json",
    );
    browser.click("#run");
    browser.wait_for(
        "document.querySelector('#context-problem').textContent.includes('not valid JSON')",
        "the JSON problem to be shown",
    );

    // Coming back with ?version=1.0.0 shows the inputs last run with that version.
    browser.open(&format!("{base}/?version=1.0.0"));
    assert_eq!(browser.value("#version"), "1.0.0");
    assert_eq!(
        browser.value("#inputs-form [data-field=\"hello\"]"),
        "hello"
    );
    assert_eq!(
        browser.value("#context-form [data-field=\"executor\"]"),
        "admin"
    );
    let kept = browser.eval("JSON.parse(localStorage.getItem('formData'))['1.0.0']");
    assert_eq!(
        kept,
        json!({"renderData": {"hello": "hello"}, "contextData": {"executor": "admin"}})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_runs_a_form_version_and_follows_a_poll_version_to_success_in_the_panel() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let plugin = Plugin::start(&db).await;
    let base = plugin.base.clone();
    let outcome = tokio::task::spawn_blocking(move || use_the_panel(&base)).await;
    if let Err(e) = outcome {
        panic!("{e}\nplugin log:\n{}", plugin.log_text());
    }
}

/// Every common tag type, rendered by the panel's form renderer from atoms a form.js would
/// register, filled in with the mouse and keyboard; the values sent are what a person chose.
fn fill_every_tag_type(base: &str) {
    let mut browser = Browser::launch();
    browser.open(&format!("{base}/?version=1.0.0"));
    let atoms = json!([
        {"tag_code": "name", "type": "input", "attrs": {"name": "Name", "default": "n"}},
        {"tag_code": "note", "type": "textarea", "attrs": {"name": "Note"}},
        {"tag_code": "count", "type": "int", "attrs": {"name": "Count", "default": 3}},
        {"tag_code": "env", "type": "select", "attrs": {"name": "Env", "default": "test",
            "items": [{"text": "Test", "value": "test"}, {"text": "Prod", "value": "prod"}]}},
        {"tag_code": "task", "type": "select", "attrs": {"name": "Task",
            "remote_url": format!("{base}/bk_plugin/plugin_api/task_list/7/")}},
        {"tag_code": "mode", "type": "radio", "attrs": {"name": "Mode", "default": 1,
            "items": [{"text": "Fast", "value": 1}, {"text": "Safe", "value": 2}]}},
        {"tag_code": "tags", "type": "checkbox", "attrs": {"name": "Tags", "default": ["a"],
            "items": [{"text": "A", "value": "a"}, {"text": "B", "value": "b"}]}},
        {"tag_code": "at", "type": "datetime", "attrs": {"name": "At"}},
        {"tag_code": "table", "type": "datatable", "attrs": {"name": "Table", "default": [{"k": 1}]}},
    ]);
    browser.eval(&format!(
        "panel.inputs = renderAtoms(document.querySelector('#inputs-form'), {atoms}); true"
    ));
    let field = |code: &str| format!("#inputs-form [data-field=\"{code}\"]");
    assert_eq!(
        browser.value(&field("name")),
        "n",
        "attrs.default is the starting value"
    );
    browser.fill(&field("name"), "web");
    browser.fill(&field("note"), "a note");
    browser.fill(&field("count"), "5");
    browser.choose(&field("env"), "1");
    browser.wait_for(
        "document.querySelector('#inputs-form [data-field=\"task\"]').dataset.loaded",
        "the remote options",
    );
    browser.choose(&field("task"), "2");
    browser.click("#inputs-form .choices label:nth-child(2) input[data-field=\"mode\"]");
    browser.click("#inputs-form .choices label:nth-child(2) input[data-field=\"tags\"]");
    browser.eval(&format!(
        "(() => {{ const e = document.querySelector({}); e.value = '2026-11-26T10:30:05'; \
         e.dispatchEvent(new Event('input', {{bubbles: true}})); return true; }})()",
        json!(field("at"))
    ));
    assert!(
        browser
            .text("#inputs-form")
            .contains("datatable: edited as JSON")
    );
    let sent = browser.eval("panel.inputs.get()");
    assert_eq!(
        sent,
        json!({"name": "web", "note": "a note", "count": 5, "env": "prod", "task": 7,
               "mode": 2, "tags": ["a", "b"], "at": "2026-11-26 10:30:05", "table": [{"k": 1}]})
    );
    shot(&mut browser, "debug-panel-tag-types.png");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_common_form_tag_type_is_rendered_and_sends_what_was_chosen() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let plugin = Plugin::start(&db).await;
    let base = plugin.base.clone();
    let outcome = tokio::task::spawn_blocking(move || fill_every_tag_type(&base)).await;
    if let Err(e) = outcome {
        panic!("{e}\nplugin log:\n{}", plugin.log_text());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_panel_is_a_self_contained_page_in_dev() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    let plugin = Plugin::start(&db).await;
    for path in ["/", "/debug/", "/debug"] {
        let response = reqwest::get(format!("{}{path}", plugin.base))
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        assert_eq!(response.status().as_u16(), 200, "{path}");
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        let page = response.text().await.unwrap_or_default();
        assert!(page.contains("id=\"run\""), "{path} is the debug panel");
        // Nothing is loaded from elsewhere: no external scripts, styles or fonts.
        for needle in ["src=\"http", "href=\"http", "@import", "url(http", "//cdn"] {
            assert!(!page.contains(needle), "{path} refers to {needle}");
        }
    }
}

/// The path prefix of the sub-path test, as PaaS names a module's address (`<env>--<code>`).
const PREFIX: &str = "/stag--bkp-fixtures";

/// The panel, the API page and the document, reached only through the prefix (blocking).
fn use_the_pages_through_the_prefix(base: &str) {
    let mut browser = Browser::launch();
    browser.open(&format!("{base}/"));
    assert_eq!(
        browser.value("#version"),
        "1.7.0",
        "meta came through the prefix"
    );
    browser.choose("#version", "1.0.0");
    browser.wait_for(
        "document.querySelector('#inputs-form [data-field=\"hello\"]')",
        "the 1.0.0 form (detail through the prefix)",
    );
    // form.js reaches the plugin's data APIs through the host the panel gives it.
    assert_eq!(
        browser.eval("window.$.context.bk_plugin_api_host['bkp-fixtures']"),
        json!(format!("{base}/"))
    );
    browser.fill("#inputs-form [data-field=\"hello\"]", "prefixed");
    browser.fill("#context-form [data-field=\"executor\"]", "admin");
    browser.click("#run");
    browser.wait_for(
        "document.querySelector('#state').textContent.includes('SUCCESS')",
        "1.0.0 to succeed through the prefix",
    );
    assert_eq!(outputs(&mut browser), json!({"world": "prefixed"}));
    browser.wait_for(
        "document.querySelector('#logs').textContent.includes('echo plugin executing for admin')",
        "the logs through the prefix",
    );
    let links =
        browser.eval("[...document.querySelectorAll('header .links a')].map((a) => a.href)");
    assert_eq!(
        links,
        json!([format!("{base}/swagger/"), format!("{base}/schema/")])
    );
    shot(&mut browser, "debug-panel-sub-path.png");

    // The API page follows its link and reads the document through the prefix too.
    browser.click("header .links a");
    browser.wait_for(
        "document.body.dataset.ready === 'true' && document.querySelector('#operations')",
        "the API page through the prefix",
    );
    assert_eq!(
        browser.eval("location.href"),
        json!(format!("{base}/swagger/"))
    );
    assert!(
        browser
            .text("#operations")
            .contains("/bk_plugin/invoke/1.0.0")
    );
    let document_links =
        browser.eval("[...document.querySelectorAll('header a')].map((a) => a.href)");
    assert_eq!(
        document_links,
        json!([
            format!("{base}/schema/"),
            format!("{base}/schema/?format=yaml")
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_a_path_prefix_the_panel_the_api_page_and_the_document_use_the_prefix() {
    let Some(db) = TestDb::new(Backend::Sqlite).await else {
        return;
    };
    // PaaS says where the module lives; its ingress strips the path before the app sees it.
    let proxy_port = bkp_blackbox_tests::free_port();
    let address = format!("http://127.0.0.1:{proxy_port}{PREFIX}/");
    let plugin = Plugin::launch(
        &db,
        Launch::serve().env(
            "BKPAAS_DEFAULT_PREALLOCATED_URLS",
            &json!({"dev": address, "prod": "http://elsewhere.example.com/prod--x/"}).to_string(),
        ),
    )
    .await;
    let proxy = PrefixProxy::start_on(proxy_port, PREFIX, &plugin.base).await;
    let base = proxy.base.clone();
    let outcome =
        tokio::task::spawn_blocking(move || use_the_pages_through_the_prefix(&base)).await;
    if let Err(e) = outcome {
        panic!(
            "{e}\nrequests outside {PREFIX}: {:?}\nplugin log:\n{}",
            proxy.outside_the_prefix(),
            plugin.log_text()
        );
    }
    // Every URL the pages used carried the prefix (the browser's own guess at a site icon is
    // not one of theirs).
    let outside: Vec<String> = proxy
        .outside_the_prefix()
        .into_iter()
        .filter(|target| target != "/favicon.ico")
        .collect();
    assert_eq!(outside, Vec::<String>::new());

    // The document tells API clients the prefix; the paths stay relative to it.
    let doc: Value = reqwest::get(format!("{}/schema/", proxy.base))
        .await
        .and_then(|r| r.error_for_status())
        .unwrap_or_else(|e| panic!("GET {PREFIX}/schema/: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        doc["servers"],
        json!([{"url": PREFIX, "description": "the path prefix BK PaaS serves this app under"}])
    );
    assert!(doc["paths"]["/bk_plugin/meta/"].is_object());
    // The prefix comes from the configuration, not from the request: reached directly, the
    // process serves the same document.
    let direct: Value = reqwest::get(format!("{}/schema/", plugin.base))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(direct["servers"], doc["servers"]);
}
