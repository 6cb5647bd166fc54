//! `testing::Harness` refuses what the server refuses, and its errors are the documented ones
//! (docs/authoring.md's `HarnessError` table).
#![allow(missing_docs)]

use bk_plugin_core::prelude::*;
use bk_plugin_core::testing::{Harness, HarnessError};
use serde_json::json;

#[inputs]
pub struct Empty {}

#[outputs]
pub struct Done {}

#[bk_plugin(version = "1.0.0", desc = "plain", inputs = Empty, outputs = Done)]
#[derive(Default)]
pub struct Plain;

impl Plugin for Plain {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Done {}))
    }
}

/// Enables the plugin callback but has no `plugin_callback_info` context input: the server
/// refuses to start with it.
#[bk_plugin(
    version = "1.0.0",
    desc = "no callback info",
    enable_plugin_callback = true,
    inputs = Empty,
    outputs = Done
)]
#[derive(Default)]
pub struct NoCallbackInfo;

impl Plugin for NoCallbackInfo {
    async fn execute(&self, _: Self::Inputs, _: &mut Context<Self>) -> Step<Self> {
        Ok(Next::Done(Done {}))
    }
}

#[tokio::test]
async fn invoke_is_refused_when_the_server_would_refuse_the_plugin_at_start() {
    let mut harness = Harness::new(NoCallbackInfo);
    let found = harness.invoke(json!({}), json!({})).await.err();
    let Some(HarnessError::Refused(message)) = found else {
        panic!("expected Refused, got {found:?}");
    };
    assert!(message.contains("plugin_callback_info"), "{message}");
    assert!(
        message.contains("NoCallbackInfo (version 1.0.0)"),
        "{message}"
    );
}

#[tokio::test]
async fn callback_before_invoke_is_not_invoked() {
    let mut harness = Harness::new(Plain);
    let found = harness.callback(json!({})).await.err();
    assert!(matches!(found, Some(HarnessError::NotInvoked)), "{found:?}");
}

#[tokio::test]
async fn set_storage_before_invoke_is_not_invoked_and_after_invoke_is_kept() {
    let mut harness = Harness::new(Plain);
    let found = harness.set_storage("k", json!(1)).err();
    assert!(matches!(found, Some(HarnessError::NotInvoked)), "{found:?}");
    let invoked = harness
        .invoke(json!({}), json!({}))
        .await
        .map(|o| o.state());
    assert_eq!(invoked.ok(), Some(State::Success));
    assert!(harness.set_storage("k", json!(1)).is_ok());
    assert_eq!(harness.storage().get("k"), Some(&json!(1)));
}
