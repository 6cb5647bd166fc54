//! The author's data APIs over HTTP and through `plugin_api_dispatch`, against the fixture
//! binary's `task_list/{biz_id}` and `echo/` handlers.
#![allow(missing_docs)]

use bkp_blackbox_tests::{Plugin, TestDb, on_every_backend};
use serde_json::json;

on_every_backend!(
    plugin_api_handlers_answer_over_http,
    dispatch_calls_the_handler_in_process_as_the_user,
    dispatch_rejects_bad_urls_methods_and_unknown_routes,
);

async fn plugin_api_handlers_answer_over_http(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (status, body) = plugin.get("/bk_plugin/plugin_api/task_list/42").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!([{"text": "task 1", "value": 1}, {"text": "task 2", "value": 2}, {"text": "biz", "value": 42}])
    );
    let (status, body) = plugin
        .post("/bk_plugin/plugin_api/task_list/7/", &json!({"k": "v"}))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"biz_id": 7, "echo": {"k": "v"}, "username": null})
    );
    let (status, _) = plugin
        .get("/bk_plugin/plugin_api/task_list/notanumber")
        .await;
    assert_eq!(status, 404);
    let (status, body) = plugin.get("/bk_plugin/plugin_api/echo/?q=1").await;
    assert_eq!(status, 200);
    assert_eq!(
        body,
        json!({"method": "GET", "query": {"q": "1"}, "data": null, "username": null})
    );
}

async fn dispatch_calls_the_handler_in_process_as_the_user(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let call = json!({"url": "/bk_plugin/plugin_api/task_list/9", "method": "POST", "username": "alice",
        "data": {"a": 1}, "dumped_data": "{\"b\": 2}"});
    let (status, body) = plugin.post("/bk_plugin/plugin_api_dispatch", &call).await;
    assert_eq!(status, 200);
    assert_eq!(body["result"], json!(true));
    assert_eq!(body["message"], json!("success"));
    assert_eq!(body["trace_id"].as_str().map(str::len), Some(32));
    assert_eq!(
        body["data"],
        json!({"biz_id": 9, "echo": {"a": 1, "b": 2}, "username": "alice"})
    );
    let get = json!({"url": "/bk_plugin/plugin_api/echo/?x=1", "method": "GET", "username": "bob", "data": {"y": 2}});
    let (_, body) = plugin.post("/bk_plugin/plugin_api_dispatch", &get).await;
    assert_eq!(
        body["data"],
        json!({"method": "GET", "query": {"x": "1", "y": "2"}, "data": null, "username": "bob"})
    );
}

async fn dispatch_rejects_bad_urls_methods_and_unknown_routes(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let bad_url = json!({"url": "/bk_plugin/meta", "method": "GET", "username": "u", "data": {}});
    let (status, body) = plugin
        .post("/bk_plugin/plugin_api_dispatch", &bad_url)
        .await;
    assert_eq!((status, body["result"].clone()), (400, json!(false)));
    let bad_method = json!({"url": "/bk_plugin/plugin_api/echo/", "method": "DELETE", "username": "u", "data": {}});
    let (status, _) = plugin
        .post("/bk_plugin/plugin_api_dispatch", &bad_method)
        .await;
    assert_eq!(status, 400);
    let missing = json!({"url": "/bk_plugin/plugin_api/nothing/", "method": "GET", "username": "u", "data": {}});
    let (status, body) = plugin
        .post("/bk_plugin/plugin_api_dispatch", &missing)
        .await;
    assert_eq!((status, body["result"].clone()), (404, json!(false)));
    assert_eq!(body["trace_id"].as_str().map(str::len), Some(32));
}
