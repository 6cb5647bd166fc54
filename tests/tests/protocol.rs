//! Every route and every error case of the protocol, over real HTTP against the fixture binary.
#![allow(missing_docs)]

use std::time::Duration;

use bkp_blackbox_tests::{Plugin, TestDb, on_every_backend};
use serde_json::{Value, json};

on_every_backend!(
    meta_lists_versions_newest_first_with_code_and_language,
    detail_publishes_trimmed_pydantic_schemas_and_the_form,
    unknown_version_is_404_with_the_envelope_on_detail_and_invoke,
    sync_echo_succeeds_and_coerces_nothing_it_does_not_need_to,
    invalid_inputs_fail_with_the_field_named,
    invalid_context_fails_with_context_prefix,
    string_inputs_are_coerced_like_pydantic_for_bk_sops,
    plugin_error_and_panic_fail_and_the_server_keeps_serving,
    bad_bodies_are_400_with_the_envelope_and_a_trace_id,
    both_slash_forms_work_on_every_route,
    unknown_routes_and_wrong_methods_answer_with_the_envelope,
    oversized_bodies_are_413_with_the_envelope,
    invoke_errors_after_the_trace_id_is_given_carry_it_413_and_415_included,
    poll_invocation_is_stored_before_the_answer_and_finishes,
    schedule_of_an_unknown_trace_says_can_not_find,
);

async fn meta_lists_versions_newest_first_with_code_and_language(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin.get("/bk_plugin/meta").await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!(true));
    let data = &body["data"];
    assert_eq!(data["code"], json!("bkp-fixtures"));
    assert_eq!(
        data["description"],
        json!("acceptance fixture plugin for the bk-plugin protocol")
    );
    assert_eq!(data["language"], json!("rust"));
    assert_eq!(
        data["versions"],
        json!([
            "1.8.0", "1.7.0", "1.6.0", "1.5.0", "1.4.0", "1.3.0", "1.2.0", "1.1.0", "1.0.0"
        ])
    );
    assert!(data["framework_version"].is_string() && data["runtime_version"].is_string());
    assert_eq!(data["allow_scope"], json!({}));
}

async fn detail_publishes_trimmed_pydantic_schemas_and_the_form(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin.get("/bk_plugin/detail/1.0.0").await;
    assert_eq!(status, 200);
    let data = &body["data"];
    assert_eq!(data["desc"], json!("sync echo"));
    assert_eq!(data["version"], json!("1.0.0"));
    assert_eq!(data["enable_plugin_callback"], json!(false));
    for model in ["inputs", "context_inputs", "outputs"] {
        let keys: Vec<&String> = data[model]
            .as_object()
            .map(|m| m.keys().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["type", "properties", "required", "definitions"],
            "{model}"
        );
    }
    assert_eq!(
        data["context_inputs"]["properties"]["executor"]["title"],
        json!("任务执行人")
    );
    assert_eq!(data["inputs"]["required"], json!(["hello"]));
    let form = data["forms"]["renderform"].as_str().unwrap_or_default();
    assert!(form.contains("hello"), "{form}");

    let (_, nested) = plugin.get("/bk_plugin/detail/1.5.0").await;
    let inputs = &nested["data"]["inputs"];
    assert_eq!(
        inputs["properties"]["options"],
        json!({"$ref": "#/definitions/Options"})
    );
    assert_eq!(
        inputs["definitions"]["Options"]["required"],
        json!(["name"])
    );
    assert_eq!(inputs["properties"]["count"]["default"], json!(3));
    assert_eq!(nested["data"]["forms"]["renderform"], Value::Null);
    let (_, empty) = plugin.get("/bk_plugin/detail/1.6.0").await;
    assert_eq!(
        empty["data"]["inputs"],
        json!({"type": "object", "properties": {}, "required": [], "definitions": {}})
    );
    let (_, callback) = plugin.get("/bk_plugin/detail/1.7.0").await;
    assert_eq!(callback["data"]["enable_plugin_callback"], json!(true));
}

async fn unknown_version_is_404_with_the_envelope_on_detail_and_invoke(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin.get("/bk_plugin/detail/9.9.9").await;
    assert_eq!(status, 404);
    assert_eq!(body["result"], json!(false));
    assert_eq!(body["data"], Value::Null);
    let (status, body) = plugin.invoke("9.9.9", json!({}), json!({})).await;
    assert_eq!(status, 404);
    assert_eq!(body["result"], json!(false));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("9.9.9")
    );
}

async fn sync_echo_succeeds_and_coerces_nothing_it_does_not_need_to(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin
        .invoke(
            "1.0.0",
            json!({"hello": "hi", "extra": 1}),
            json!({"executor": "admin"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!(true));
    assert_eq!(body["message"], json!("success"));
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    assert_eq!(trace_id.len(), 32);
    assert!(
        trace_id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    );
    assert_eq!(
        body["data"],
        json!({"outputs": {"world": "hi"}, "state": 4, "err": null})
    );
}

async fn invalid_inputs_fail_with_the_field_named(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin
        .invoke("1.0.0", json!({}), json!({"executor": "admin"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!(true));
    assert_eq!(body["data"]["state"], json!(5));
    assert_eq!(body["data"]["outputs"], Value::Null);
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("inputs validation error:") && err.contains("hello"),
        "{err}"
    );

    let (_, body) = plugin
        .invoke(
            "1.5.0",
            json!({"action": "a", "options": {"name": "n", "value": "x"}}),
            json!({}),
        )
        .await;
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(
        err.contains("options -> value\n  value is not a valid integer"),
        "{err}"
    );
}

async fn invalid_context_fails_with_context_prefix(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin
        .invoke("1.0.0", json!({"hello": "x"}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(5));
    let err = body["data"]["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("context validation error:") && err.contains("executor"),
        "{err}"
    );
}

async fn string_inputs_are_coerced_like_pydantic_for_bk_sops(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin
        .invoke(
            "1.5.0",
            json!({"action": 12, "options": {"name": "n", "value": "5"}, "tags": ["a"], "count": "7", "flag": "false"}),
            json!({"biz_id": "3"}),
        )
        .await;
    assert_eq!(body["data"]["state"], json!(4), "{body}");
    assert_eq!(
        body["data"]["outputs"],
        json!({"action": "12", "options": {"name": "n", "value": 5}, "tags": ["a"], "count": 7, "flag": false, "biz_id": 3})
    );
    let (_, defaults) = plugin
        .invoke(
            "1.5.0",
            json!({"action": "a", "options": {"name": "n"}}),
            json!({}),
        )
        .await;
    assert_eq!(
        defaults["data"]["outputs"],
        json!({"action": "a", "options": {"name": "n", "value": 1}, "tags": [], "count": 3, "flag": true, "biz_id": 0})
    );
}

async fn plugin_error_and_panic_fail_and_the_server_keeps_serving(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin.invoke("1.3.0", json!({}), json!({})).await;
    assert_eq!(
        body["data"],
        json!({"outputs": null, "state": 5, "err": "plugin execute failed: boom"})
    );
    for _ in 0..3 {
        let (status, body) = plugin.invoke("1.4.0", json!({}), json!({})).await;
        assert_eq!(status, 200);
        assert_eq!(
            body["data"],
            json!({"outputs": null, "state": 5, "err": "plugin execute raise unexpected error: kaboom"})
        );
    }
    let (status, _) = plugin.get("/bk_plugin/meta").await;
    assert_eq!(status, 200);
}

async fn bad_bodies_are_400_with_the_envelope_and_a_trace_id(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let cases = [
        (
            "application/json",
            "{not json".to_string(),
            "not valid JSON",
        ),
        ("application/json", "".to_string(), "empty"),
        ("application/json", "[1]".to_string(), "JSON object"),
        (
            "application/json",
            json!({"inputs": {}}).to_string(),
            "`context` is required",
        ),
        (
            "application/json",
            json!({"context": {}}).to_string(),
            "`inputs` is required",
        ),
        (
            "application/json",
            json!({"inputs": [], "context": {}}).to_string(),
            "`inputs` must be a JSON object",
        ),
        (
            "application/json",
            json!({"inputs": {}, "context": "x"}).to_string(),
            "`context` must be a JSON object",
        ),
    ];
    for (content_type, body, expected) in cases {
        let (status, answer) = plugin
            .post_raw("/bk_plugin/invoke/1.0.0", content_type, body.clone())
            .await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(answer["result"], json!(false));
        assert_eq!(answer["data"], Value::Null);
        assert_eq!(
            answer["trace_id"].as_str().map(str::len),
            Some(32),
            "{answer}"
        );
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let (status, answer) = plugin
        .post_raw("/bk_plugin/invoke/1.0.0", "text/xml", "<a/>".into())
        .await;
    assert_eq!(status, 415);
    assert_eq!(answer["result"], json!(false));
    // A JSON body under curl's default form content type is still taken.
    let body = json!({"inputs": {}, "context": {}}).to_string();
    let (status, answer) = plugin
        .post_raw(
            "/bk_plugin/invoke/1.6.0",
            "application/x-www-form-urlencoded",
            body,
        )
        .await;
    assert_eq!((status, answer["data"]["state"].clone()), (200, json!(4)));
    // Nesting deeper than the JSON parser's limit is a clear 400, not a crash.
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let (status, answer) = plugin
        .post_raw("/bk_plugin/invoke/1.6.0", "application/json", deep)
        .await;
    assert_eq!(status, 400);
    assert!(
        answer["message"]
            .as_str()
            .unwrap_or_default()
            .contains("recursion"),
        "{answer}"
    );
}

async fn both_slash_forms_work_on_every_route(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    for path in [
        "/bk_plugin/meta",
        "/bk_plugin/meta/",
        "/bk_plugin/detail/1.0.0",
        "/bk_plugin/detail/1.0.0/",
    ] {
        let (status, _) = plugin.get(path).await;
        assert_eq!(status, 200, "{path}");
    }
    for path in ["/bk_plugin/invoke/1.6.0", "/bk_plugin/invoke/1.6.0/"] {
        let (status, body) = plugin
            .post(path, &json!({"inputs": {}, "context": {}}))
            .await;
        assert_eq!(
            (status, body["data"]["state"].clone()),
            (200, json!(4)),
            "{path}"
        );
    }
    let (_, waiting) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    let trace_id = waiting["trace_id"].as_str().unwrap_or_default();
    for path in [
        format!("/bk_plugin/schedule/{trace_id}"),
        format!("/bk_plugin/schedule/{trace_id}/"),
    ] {
        let (status, body) = plugin.get(&path).await;
        assert_eq!(
            (status, body["result"].clone()),
            (200, json!(true)),
            "{path}"
        );
    }
    let dispatch =
        json!({"url": "/bk_plugin/plugin_api/echo/", "method": "GET", "username": "u", "data": {}});
    for path in [
        "/bk_plugin/plugin_api_dispatch",
        "/bk_plugin/plugin_api_dispatch/",
    ] {
        let (status, _) = plugin.post(path, &dispatch).await;
        assert_eq!(status, 200, "{path}");
    }
    for path in ["/bk_plugin/plugin_api/echo", "/bk_plugin/plugin_api/echo/"] {
        let (status, _) = plugin.get(path).await;
        assert_eq!(status, 200, "{path}");
    }
}

async fn unknown_routes_and_wrong_methods_answer_with_the_envelope(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin.get("/nowhere").await;
    assert_eq!((status, body["result"].clone()), (404, json!(false)));
    let (status, body) = plugin.get("/bk_plugin/invoke/1.0.0").await;
    assert_eq!((status, body["result"].clone()), (405, json!(false)));
    let (status, body) = plugin.post("/bk_plugin/meta", &json!({})).await;
    assert_eq!((status, body["result"].clone()), (405, json!(false)));
    let (status, body) = plugin.get("/bk_plugin/plugin_api/nothing/here").await;
    assert_eq!((status, body["result"].clone()), (404, json!(false)));
}

async fn oversized_bodies_are_413_with_the_envelope(db: &TestDb) {
    let launch = bkp_blackbox_tests::Launch::serve().env("BK_PLUGIN_MAX_BODY_BYTES", "1024");
    let plugin = Plugin::launch(db, launch).await;
    let big =
        json!({"inputs": {"hello": "x".repeat(4096)}, "context": {"executor": "a"}}).to_string();
    let (status, body) = plugin
        .post_raw("/bk_plugin/invoke/1.0.0", "application/json", big)
        .await;
    assert_eq!(status, 413);
    assert_eq!(body["result"], json!(false));
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("1024")
    );
}

async fn invoke_errors_after_the_trace_id_is_given_carry_it_413_and_415_included(db: &TestDb) {
    let launch = bkp_blackbox_tests::Launch::serve().env("BK_PLUGIN_MAX_BODY_BYTES", "1024");
    let plugin = Plugin::launch(db, launch).await;
    let big =
        json!({"inputs": {"hello": "x".repeat(4096)}, "context": {"executor": "a"}}).to_string();
    let answers = [
        plugin
            .post_raw("/bk_plugin/invoke/1.0.0", "application/json", big)
            .await,
        plugin
            .post_raw("/bk_plugin/invoke/1.0.0", "text/xml", "<a/>".into())
            .await,
        plugin
            .post_raw("/bk_plugin/plugin_api_dispatch", "text/xml", "<a/>".into())
            .await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(statuses, [413, 415, 415]);
    for (_, body) in &answers {
        assert_eq!(body["result"], json!(false), "{body}");
        let trace_id = body["trace_id"].as_str().unwrap_or_default();
        assert_eq!(trace_id.len(), 32, "{body}");
        assert!(trace_id.bytes().all(|b| b.is_ascii_hexdigit()), "{body}");
    }
}

async fn poll_invocation_is_stored_before_the_answer_and_finishes(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 1, "polls": 2}), json!({}))
        .await;
    assert_eq!(
        body["data"],
        json!({"outputs": {"phase": "waiting"}, "state": 2, "err": null})
    );
    let trace_id = body["trace_id"].as_str().unwrap_or_default().to_string();
    let (status, schedule) = plugin.get(&format!("/bk_plugin/schedule/{trace_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(schedule["result"], json!(true));
    assert_eq!(schedule["data"]["state"], json!(2));
    assert_eq!(schedule["data"]["plugin_version"], json!("1.1.0"));
    assert_eq!(schedule["data"]["err"], json!(""));
    assert_eq!(schedule["data"]["finish_at"], json!(""));
    let created = schedule["data"]["created_at"].as_str().unwrap_or_default();
    assert_eq!(created.len(), 19, "{created}");
    let done = plugin
        .wait_finished(&trace_id, Duration::from_secs(20))
        .await;
    assert_eq!(done["state"], json!(4), "{done}");
    assert_eq!(
        done["outputs"],
        json!({"phase": "done", "polls_done": 2, "invoke_count": 3, "marker": format!("stored-{trace_id}")})
    );
    assert_eq!(done["finish_at"].as_str().map(str::len), Some(19));
    assert_eq!(done["err"], json!(""));
}

async fn schedule_of_an_unknown_trace_says_can_not_find(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin
        .get("/bk_plugin/schedule/0123456789abcdef0123456789abcdef")
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!(false));
    assert_eq!(body["data"], Value::Null);
    assert_eq!(
        body["message"],
        json!("can not find schedule for trace_id 0123456789abcdef0123456789abcdef")
    );
}
