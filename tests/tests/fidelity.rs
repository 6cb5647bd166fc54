//! What real callers (BK-SOPS, bk-plugin-client-go) notice, checked against the Python runtime's
//! behaviour: the callback-info schema, dispatch's required user, logs readable right after an
//! invoke, and forms registered under the app code.
#![allow(missing_docs)]

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, on_every_backend};
use serde_json::{Value, json};

async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"))
}

#[tokio::test]
async fn plugin_callback_info_requires_both_url_and_data_as_python_does() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let (status, detail) = plugin.get("/bk_plugin/detail/1.7.0").await;
    assert_eq!(status, 200, "{detail}");
    let info = &detail["data"]["context_inputs"]["definitions"]["PluginCallbackInfo"];
    assert_eq!(info["required"], json!(["url", "data"]), "{info}");

    let (status, body) = plugin
        .invoke(
            "1.7.0",
            json!({}),
            json!({"plugin_callback_info": {"url": "http://127.0.0.1:9/cb"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["state"], json!(5), "{body}");
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("context validation error:")
            && err.contains("data")
            && err.contains("field required"),
        "{err}"
    );
}

#[tokio::test]
async fn dispatch_without_a_username_is_a_400_envelope_with_a_trace_id() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let bodies = [
        json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "data": {}}),
        json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "username": null}),
        json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "username": "  "}),
    ];
    for call in bodies {
        let (status, body) = plugin.post("/bk_plugin/plugin_api_dispatch", &call).await;
        assert_eq!(status, 400, "{call}: {body}");
        assert_eq!(body["result"], json!(false), "{body}");
        assert_eq!(body["data"], Value::Null, "{body}");
        let message = body["message"].as_str().unwrap_or_default();
        assert!(message.contains("`username`"), "{message}");
        assert_eq!(body["trace_id"].as_str().map(str::len), Some(32), "{body}");
    }
    let named = json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "username": "u"});
    let (status, body) = plugin.post("/bk_plugin/plugin_api_dispatch", &named).await;
    assert_eq!(status, 200, "{body}");
}

on_every_backend!(logs_read_right_after_a_synchronous_invoke_hold_every_line_it_wrote,);

async fn logs_read_right_after_a_synchronous_invoke_hold_every_line_it_wrote(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    for round in 0..10 {
        let (_, echo) = plugin
            .invoke(
                "1.0.0",
                json!({"hello": round}),
                json!({"executor": format!("user-{round}")}),
            )
            .await;
        assert_eq!(echo["data"]["state"], json!(4), "{echo}");
        let trace_id = echo["trace_id"].as_str().unwrap_or_default();
        // No waiting: the read is sent as soon as the answer is in.
        let (status, logs) = plugin.get(&format!("/bk_plugin/logs/{trace_id}")).await;
        assert_eq!(status, 200, "{logs}");
        let text = logs["data"]["log"].as_str().unwrap_or_default();
        assert!(
            text.contains(&format!("echo plugin executing for user-{round}")),
            "round {round}: {text:?}"
        );
    }
}

#[tokio::test]
async fn the_fixture_form_registers_the_app_code_wherever_it_is_deployed() {
    let db = sqlite().await;
    for code in ["bkp-fixtures", "another-app-code"] {
        let plugin = Plugin::launch(&db, Launch::serve().env("BKPAAS_APP_ID", code)).await;
        let (_, meta) = plugin.get("/bk_plugin/meta").await;
        assert_eq!(meta["data"]["code"], json!(code));
        let (_, detail) = plugin.get("/bk_plugin/detail/1.0.0").await;
        let form = detail["data"]["forms"]["renderform"]
            .as_str()
            .unwrap_or_default();
        assert!(form.contains(&format!("$.atoms[\"{code}\"]")), "{form}");
        assert!(!form.contains("__BK_PLUGIN_CODE__"), "{form}");
        assert!(
            !plugin.log_text().contains("registers $.atoms"),
            "{}",
            plugin.log_text()
        );
    }
}

#[tokio::test]
async fn invoke_reports_every_input_problem_in_pydantic_v1_text() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let (_, body) = plugin
        .invoke("1.0.0", json!({"extra": 1}), json!({"executor": "admin"}))
        .await;
    assert_eq!(
        body["data"]["err"],
        json!(
            "inputs validation error: 1 validation error for EchoInputs\nhello\n  field required (type=value_error.missing)"
        ),
        "{body}"
    );
    let (_, body) = plugin
        .invoke(
            "1.5.0",
            json!({"action": null, "options": {"value": "x"}, "tags": ["a", {}], "flag": "perhaps"}),
            json!({}),
        )
        .await;
    assert_eq!(
        body["data"]["err"],
        json!(
            "inputs validation error: 5 validation errors for NestedInputs\n\
             action\n  none is not an allowed value (type=type_error.none.not_allowed)\n\
             options -> name\n  field required (type=value_error.missing)\n\
             options -> value\n  value is not a valid integer (type=type_error.integer)\n\
             tags -> 1\n  str type expected (type=type_error.str)\n\
             flag\n  value could not be parsed to a boolean (type=type_error.bool)"
        ),
        "{body}"
    );
}
