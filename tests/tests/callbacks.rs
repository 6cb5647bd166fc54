//! Callbacks from third-party systems over HTTP: resuming with the posted data, refusing forged
//! tokens, accepting a duplicate once.
#![allow(missing_docs)]

use std::time::Duration;

use bkp_blackbox_tests::{Plugin, TestDb, on_every_backend};
use serde_json::{Value, json};

on_every_backend!(
    callback_flow_resumes_with_the_posted_data,
    callback_tokens_that_are_forged_or_garbage_are_refused,
    duplicate_callback_is_accepted_once_and_runs_the_step_once,
);

async fn callback_flow_resumes_with_the_posted_data(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    assert_eq!(body["data"]["state"], json!(3));
    let trace_id = body["trace_id"].as_str().unwrap_or_default().to_string();
    let url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        url.starts_with(&format!("{}/bk_plugin/callback/", plugin.base)),
        "{url}"
    );
    let (status, answer) = plugin.post(&url, &json!({"status": "ok", "n": 1})).await;
    assert_eq!((status, answer["result"].clone()), (200, json!(true)));
    assert_eq!(answer["message"], json!("callback success"));
    let done = plugin
        .wait_finished(&trace_id, Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], json!(4), "{done}");
    assert_eq!(
        done["outputs"]["callback_data"],
        json!({"status": "ok", "n": 1})
    );
    assert_eq!(done["outputs"]["callback_id_match"], json!(true));
    // A finished invocation takes no new callback.
    let (status, answer) = plugin.post(&url, &json!({"again": true})).await;
    assert_eq!(
        (status, answer["result"].clone()),
        (200, json!(true)),
        "a duplicate is still a success"
    );
    // A callback for an invocation that waits to poll, not for a callback, is refused.
    let (_, polling) = plugin
        .invoke("1.1.0", json!({"interval": 100}), json!({}))
        .await;
    assert_eq!(polling["data"]["state"], json!(2));
}

async fn callback_tokens_that_are_forged_or_garbage_are_refused(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    let url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let token = url
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut tampered: Vec<u8> = token.clone().into_bytes();
    tampered[10] = if tampered[10] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap_or_default();
    for bad in ["garbage", "AAAA", tampered.as_str()] {
        let (status, answer) = plugin
            .post(&format!("/bk_plugin/callback/{bad}/"), &json!({}))
            .await;
        assert_eq!(status, 400, "{bad}");
        assert_eq!(answer["result"], json!(false));
        assert!(
            answer["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("invalid token"),
            "{answer}"
        );
    }
    let (status, answer) = plugin
        .post_raw(&url, "application/json", "{oops".into())
        .await;
    assert_eq!(status, 400);
    assert_eq!(answer["message"], json!("invalid request body: send JSON"));
}

async fn duplicate_callback_is_accepted_once_and_runs_the_step_once(db: &TestDb) {
    let plugin = Plugin::start(db).await;
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    let trace_id = body["trace_id"].as_str().unwrap_or_default().to_string();
    let url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let posts: Vec<_> = (0..5)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move {
                let response = reqwest::Client::new()
                    .post(&url)
                    .json(&json!({"i": i}))
                    .send()
                    .await;
                match response {
                    Ok(r) => (
                        r.status().as_u16(),
                        r.json::<Value>().await.unwrap_or_default(),
                    ),
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    for post in posts {
        let (status, answer) = post.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (status, answer["result"].clone()),
            (200, json!(true)),
            "{answer}"
        );
    }
    let done = plugin
        .wait_finished(&trace_id, Duration::from_secs(10))
        .await;
    assert_eq!(done["state"], json!(4));
    assert_eq!(
        done["invoke_count"],
        json!(2),
        "the callback step ran exactly once: {done}"
    );
}
