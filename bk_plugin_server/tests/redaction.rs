//! `Debug` output of what carries credentials never shows them: a log line with `{:?}` of a
//! caller or an API request must not leak the gateway JWT or the user's credential.
#![allow(missing_docs)]

use bk_plugin_server::ApiRequest;
use bk_plugin_server::auth::Caller;

const JWT: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzZWNyZXQiOnRydWV9.c2lnbmF0dXJl";

#[test]
fn debug_of_a_caller_hides_its_jwt() {
    let caller = Caller {
        app_code: Some("bk_sops".into()),
        username: Some("admin".into()),
        jwt: Some(JWT.into()),
    };
    let text = format!("{caller:?}");
    assert!(!text.contains(JWT), "{text}");
    assert!(
        text.contains("bk_sops") && text.contains("<hidden>"),
        "{text}"
    );
}

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
