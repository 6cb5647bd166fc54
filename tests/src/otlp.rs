//! Local OpenTelemetry collectors for the tracing tests: they receive OTLP over gRPC (HTTP/2,
//! `opentelemetry.proto.collector.trace.v1.TraceService/Export`, length-prefixed messages, the
//! status in trailers) or over HTTP (`POST /v1/traces`, protobuf body), decode the real
//! `ExportTraceServiceRequest` messages with `opentelemetry-proto`, and keep every span with its
//! resource. A third kind accepts connections and never answers, to stand for a hung collector.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

use crate::fake_http::{FakeServer, Responder};

/// One span as the collector received it.
#[derive(Debug, Clone)]
pub struct ReceivedSpan {
    /// The span's name.
    pub name: String,
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// 16 lowercase hex digits.
    pub span_id: String,
    /// The parent's span id, empty for a root span.
    pub parent_span_id: String,
    /// OTLP's span kind (2 server, 3 client, 1 internal).
    pub kind: i32,
    /// OTLP's status code (2 is error).
    pub status_code: i32,
    /// The span's attributes, values as text.
    pub attributes: Vec<(String, String)>,
    /// The resource it was sent with, values as text.
    pub resource: Vec<(String, String)>,
}

impl ReceivedSpan {
    /// The attribute `key`.
    pub fn attribute(&self, key: &str) -> Option<&str> {
        find(&self.attributes, key)
    }

    /// The resource attribute `key`.
    pub fn resource(&self, key: &str) -> Option<&str> {
        find(&self.resource, key)
    }
}

fn find<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// A collector running until the test's runtime ends.
#[derive(Debug, Clone)]
pub struct OtlpReceiver {
    /// What `OTEL_EXPORTER_OTLP_ENDPOINT` should be.
    pub endpoint: String,
    spans: Kept,
    http: Option<FakeServer>,
}

impl OtlpReceiver {
    /// A gRPC collector on a free loopback port.
    pub async fn grpc() -> Self {
        let (listener, port) = crate::bind_loopback().await;
        let spans = Arc::new(Mutex::new(Vec::new()));
        let kept = spans.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve_grpc_connection(socket, kept.clone()));
            }
        });
        Self {
            endpoint: format!("http://127.0.0.1:{port}"),
            spans,
            http: None,
        }
    }

    /// An HTTP collector (`POST /v1/traces`) on a free loopback port.
    pub async fn http() -> Self {
        let responder: Responder = Arc::new(|_| (200, String::new()));
        let server = FakeServer::start(responder).await;
        Self {
            endpoint: server.base.clone(),
            spans: Arc::default(),
            http: Some(server),
        }
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        if let Some(server) = &self.http {
            let mut spans = Vec::new();
            for call in server.calls() {
                assert_eq!(
                    (call.method.as_str(), call.path.as_str()),
                    ("POST", "/v1/traces")
                );
                assert_eq!(call.header("content-type"), Some("application/x-protobuf"));
                spans.extend(decode(&call.body).unwrap_or_else(|e| panic!("{e}")));
            }
            return spans;
        }
        let kept = self.spans.lock().map(|s| s.clone()).unwrap_or_default();
        kept.into_iter()
            .map(|span| span.unwrap_or_else(|problem| panic!("{problem}")))
            .collect()
    }

    /// Waits (at most `timeout`) until `done` holds for the spans received, and returns them.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        done: impl Fn(&[ReceivedSpan]) -> bool,
    ) -> Vec<ReceivedSpan> {
        let deadline = Instant::now() + timeout;
        loop {
            let spans = self.spans();
            if done(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "the collector did not receive the expected spans in {timeout:?}; it has: {:#?}",
                spans
                    .iter()
                    .map(|s| (&s.name, &s.trace_id))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// A collector that accepts connections and never answers, until the test's runtime ends:
/// returns its endpoint.
pub async fn silent_collector() -> String {
    let (listener, port) = crate::bind_loopback().await;
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    format!("http://127.0.0.1:{port}")
}

/// What a gRPC collector received: spans, or what was wrong with a call.
type Kept = Arc<Mutex<Vec<Result<ReceivedSpan, String>>>>;

fn complain(kept: &Kept, problem: String) {
    if let Ok(mut all) = kept.lock() {
        all.push(Err(problem));
    }
}

/// The spans of one `ExportTraceServiceRequest`.
fn decode(body: &[u8]) -> Result<Vec<ReceivedSpan>, String> {
    let request = ExportTraceServiceRequest::decode(body)
        .map_err(|e| format!("not an ExportTraceServiceRequest: {e}"))?;
    let mut spans = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans
            .resource
            .map(|r| texts(&r.attributes))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(ReceivedSpan {
                    name: span.name,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    kind: span.kind,
                    status_code: span.status.map_or(0, |s| s.code),
                    attributes: texts(&span.attributes),
                    resource: resource.clone(),
                });
            }
        }
    }
    Ok(spans)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn texts(attributes: &[KeyValue]) -> Vec<(String, String)> {
    attributes
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}

/// Serves one HTTP/2 connection: each request is one gRPC `Export` call whose message is a
/// 5-byte prefix (compressed flag, big-endian length) and the protobuf.
async fn serve_grpc_connection(socket: tokio::net::TcpStream, kept: Kept) {
    let Ok(mut connection) = h2::server::handshake(socket).await else {
        return;
    };
    while let Some(Ok((request, mut respond))) = connection.accept().await {
        let kept = kept.clone();
        tokio::spawn(async move {
            let path = request.uri().path().to_string();
            if path != "/opentelemetry.proto.collector.trace.v1.TraceService/Export" {
                complain(&kept, format!("a gRPC call of {path}"));
                return;
            }
            let mut body = request.into_body();
            let mut message = Vec::new();
            while let Some(chunk) = body.data().await {
                let Ok(chunk) = chunk else { return };
                let _ = body.flow_control().release_capacity(chunk.len());
                message.extend_from_slice(&chunk);
            }
            if message.len() < 5 || message[0] != 0 {
                complain(
                    &kept,
                    "a gRPC message without its uncompressed 5-byte prefix".into(),
                );
                return;
            }
            match decode(&message[5..]) {
                Ok(spans) => {
                    if let Ok(mut all) = kept.lock() {
                        all.extend(spans.into_iter().map(Ok));
                    }
                }
                Err(e) => complain(&kept, e),
            }
            let head = http::Response::builder()
                .status(200)
                .header("content-type", "application/grpc")
                .body(())
                .unwrap_or_else(|e| panic!("{e}"));
            let Ok(mut stream) = respond.send_response(head, false) else {
                return;
            };
            let answer = ExportTraceServiceResponse::default().encode_to_vec();
            let mut frame = vec![0u8];
            frame.extend_from_slice(&u32::try_from(answer.len()).unwrap_or(0).to_be_bytes());
            frame.extend_from_slice(&answer);
            let _ = stream.send_data(bytes::Bytes::from(frame), false);
            let mut trailers = http::HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
            let _ = stream.send_trailers(trailers);
        });
    }
}
