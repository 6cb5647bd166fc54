//! What a BlueKing API answered, and reading it: the `{result, code, message, data, request_id}`
//! envelope of ESB and of most gateway APIs, decoded into the type the plugin asks for.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::error::{BkApiError, BkApiErrorKind};

/// The HTTP answer to a call, before the envelope is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BkApiResponse {
    /// The HTTP status.
    pub status: u16,
    /// The `X-Bkapi-Request-Id` header, when there was one.
    pub request_id: Option<String>,
    /// The gateway's own error (`X-Bkapi-Error-Code`, `X-Bkapi-Error-Message`), when it
    /// refused the call itself.
    pub gateway_error: Option<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A successful answer: the envelope's `data` as `T`, and the rest of the envelope.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer<T> {
    /// The envelope's `data`, as the type asked for.
    pub data: T,
    /// The envelope's `code` as text (`0`), when it has one.
    pub code: Option<String>,
    /// The envelope's `message`.
    pub message: String,
    /// The HTTP status.
    pub status: u16,
    /// The request id (`X-Bkapi-Request-Id`, else the envelope's `request_id`).
    pub request_id: Option<String>,
}

impl BkApiResponse {
    /// A 200 answer with this JSON body.
    pub fn json(body: &Value) -> Self {
        Self {
            status: 200,
            request_id: None,
            gateway_error: None,
            body: body.to_string().into_bytes(),
        }
    }

    /// Reads the envelope: `data` as `T` when the status is 2xx and `result` is true (or, with
    /// no `result`, `code` is 0); otherwise the error, naming the call as `api`.
    pub fn decode<T: DeserializeOwned>(self, api: String) -> Result<Answer<T>, BkApiError> {
        let success = (200..300).contains(&self.status);
        let fail = |kind, message: String| {
            BkApiError::named(api.clone(), kind, message).with_status(self.status)
        };
        if let Some((code, message)) = &self.gateway_error {
            let kind = if success {
                BkApiErrorKind::Failed
            } else {
                BkApiErrorKind::Status
            };
            return Err(fail(kind, message.clone())
                .with_code(Some(code.clone()))
                .with_request_id(self.request_id.clone()));
        }
        let parsed: Result<Value, _> = if self.body.iter().all(u8::is_ascii_whitespace) {
            Ok(Value::Null)
        } else {
            serde_json::from_slice(&self.body)
        };
        let envelope = match parsed {
            Ok(Value::Object(envelope)) => Some(envelope),
            Ok(_) => None,
            Err(_) if !success => None,
            Err(e) => {
                let message = format!("the answer is not JSON ({e}): {}", self.snippet());
                return Err(
                    fail(BkApiErrorKind::Decode, message).with_request_id(self.request_id.clone())
                );
            }
        };
        let request_id = self.request_id.clone().or_else(|| {
            envelope
                .as_ref()
                .and_then(|e| e.get("request_id"))
                .and_then(text)
        });
        let code = envelope.as_ref().and_then(|e| e.get("code")).and_then(text);
        let message = envelope
            .as_ref()
            .and_then(|e| e.get("message"))
            .and_then(text)
            .unwrap_or_default();
        if !success {
            let message = if message.is_empty() {
                self.snippet()
            } else {
                message
            };
            return Err(fail(BkApiErrorKind::Status, message)
                .with_code(code)
                .with_request_id(request_id));
        }
        let Some(mut envelope) = envelope else {
            let message = format!("the answer is not a JSON object: {}", self.snippet());
            return Err(fail(BkApiErrorKind::Decode, message).with_request_id(request_id));
        };
        if !envelope_succeeded(&envelope) {
            return Err(fail(BkApiErrorKind::Failed, message)
                .with_code(code)
                .with_request_id(request_id));
        }
        let data = envelope.remove("data").unwrap_or(Value::Null);
        match serde_path_to_error::deserialize(data) {
            Ok(data) => Ok(Answer {
                data,
                code,
                message,
                status: self.status,
                request_id,
            }),
            Err(e) => {
                let path = e.path().to_string();
                let at = if path == "." {
                    String::new()
                } else {
                    format!("at {path}: ")
                };
                let message = format!("data does not fit the type asked for: {at}{}", e.inner());
                Err(fail(BkApiErrorKind::Decode, message).with_request_id(request_id))
            }
        }
    }

    /// The start of the body, for messages.
    fn snippet(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((cut, _)) => format!("{}...", &text[..cut]),
            None if text.is_empty() => "(empty body)".to_string(),
            None => text.to_string(),
        }
    }
}

/// `result` when the envelope has one; else whether `code` is 0; an envelope with neither is
/// no envelope.
fn envelope_succeeded(envelope: &Map<String, Value>) -> bool {
    match (envelope.get("result"), envelope.get("code")) {
        (Some(Value::Bool(result)), _) => *result,
        (Some(result), _) => !(result.is_null() || result == &Value::from(0)),
        (None, Some(code)) => text(code).is_some_and(|c| c.trim() == "0"),
        (None, None) => false,
    }
}

/// A string as is, a number as its digits; anything else is none.
fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[derive(Debug, serde::Deserialize, PartialEq)]
    struct Count {
        count: u64,
    }

    fn answer(status: u16, body: &str) -> BkApiResponse {
        BkApiResponse {
            status,
            request_id: None,
            gateway_error: None,
            body: body.as_bytes().to_vec(),
        }
    }

    fn decode(response: BkApiResponse) -> Result<Answer<Count>, String> {
        response
            .decode::<Count>("cc.search_business".into())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn result_true_gives_the_data_and_the_request_id_of_the_body() {
        let body = json!({"result": true, "code": 0, "message": "success", "data": {"count": 2}, "request_id": "r1"});
        let answer = decode(BkApiResponse::json(&body));
        assert_eq!(
            answer,
            Ok(Answer {
                data: Count { count: 2 },
                code: Some("0".into()),
                message: "success".into(),
                status: 200,
                request_id: Some("r1".into()),
            })
        );
    }

    #[test]
    fn result_false_is_a_failure_with_code_message_and_request_id() {
        let mut response = answer(
            200,
            r#"{"result": false, "code": 1199, "message": "no biz", "data": null}"#,
        );
        response.request_id = Some("from-header".into());
        let error = response
            .decode::<Count>("cc.search_business".into())
            .err()
            .unwrap_or_else(|| unreachable!("result false must fail"));
        assert_eq!(error.kind(), BkApiErrorKind::Failed);
        assert_eq!(
            (
                error.code(),
                error.message(),
                error.status(),
                error.request_id()
            ),
            (Some("1199"), "no biz", Some(200), Some("from-header"))
        );
    }

    #[test]
    fn a_code_without_result_decides_and_neither_is_a_failure() {
        assert!(decode(answer(200, r#"{"code": 0, "data": {"count": 1}}"#)).is_ok());
        assert_eq!(
            decode(answer(200, r#"{"code": "1306", "message": "denied"}"#)),
            Err("cc.search_business failed: code 1306, denied (HTTP 200)".into())
        );
        assert!(decode(answer(200, r#"{"count": 1}"#)).is_err());
    }

    #[test]
    fn a_non_2xx_status_keeps_the_envelope_or_the_body_text() {
        assert_eq!(
            decode(answer(
                500,
                r#"{"result": false, "code": 9, "message": "db down", "request_id": "x"}"#
            )),
            Err("cc.search_business failed: HTTP 500, code 9, db down (request id x)".into())
        );
        assert_eq!(
            decode(answer(502, "<html>bad gateway</html>")),
            Err("cc.search_business failed: HTTP 502, <html>bad gateway</html>".into())
        );
    }

    #[test]
    fn the_gateways_own_error_headers_win() {
        let response = BkApiResponse {
            status: 403,
            request_id: Some("gw-1".into()),
            gateway_error: Some(("1640301".into(), "app has no permission".into())),
            body: b"{}".to_vec(),
        };
        assert_eq!(
            decode(response),
            Err("cc.search_business failed: HTTP 403, code 1640301, app has no permission (request id gw-1)".into())
        );
    }

    #[test]
    fn data_of_another_shape_and_bodies_that_are_not_json_are_decode_errors() {
        assert_eq!(
            decode(answer(200, r#"{"result": true, "data": {"count": "two"}}"#)),
            Err("cc.search_business failed: data does not fit the type asked for: at count: invalid type: string \"two\", expected u64 (HTTP 200)".into())
        );
        let not_json = decode(answer(200, "oops"));
        assert!(
            not_json
                .as_ref()
                .is_err_and(|e| e.contains("the answer is not JSON") && e.contains("oops")),
            "{not_json:?}"
        );
    }
}
