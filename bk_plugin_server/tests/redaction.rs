//! `Debug` output of what carries credentials never shows them: a log line with `{:?}` of an
//! API request must not leak the gateway JWT or the user's credential (the caller's `Debug` is
//! tested beside it, in `src/auth/mod.rs`).
#![allow(missing_docs)]

use bk_plugin_server::ApiRequest;

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJl";

#[test]
fn debug_of_an_api_request_hides_credentials_and_credential_headers() {
    let request = ApiRequest {
        headers: vec![
            ("X-Bkapi-JWT".into(), JWT.into()),
            ("Cookie".into(), "bk_token=cookie-secret".into()),
            ("Bk-Plugin-Tenant".into(), "visible-value".into()),
        ],
        user_credential: Some(("bk_token".into(), "credential-secret".into())),
        ..ApiRequest::default()
    };
    let text = format!("{request:?}");
    for secret in [JWT, "cookie-secret", "credential-secret"] {
        assert!(!text.contains(secret), "{text}");
    }
    assert!(text.contains("visible-value"), "{text}");
}
