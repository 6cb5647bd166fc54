//! A local HTTP (or HTTPS) server that records every request and answers as the test says:
//! the stand-in for the API gateway manager, for finish-callback receivers and for the BlueKing
//! APIs (ESB, API gateways) plugins call.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// One request the server received.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target (path and query).
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Recorded {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }
}

/// Decides the answer to a request: status and JSON body text.
pub type Responder = Arc<dyn Fn(&Recorded) -> (u16, String) + Send + Sync>;

/// A full answer: status, extra headers, the JSON body text, and how long to wait before
/// sending it (an upstream that takes its time).
#[derive(Debug, Clone, Default)]
pub struct Reply {
    /// The HTTP status.
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// The body (sent as `application/json`).
    pub body: String,
    /// How long to wait before answering.
    pub delay: Duration,
}

impl Reply {
    /// `status` with this JSON body.
    pub fn json(status: u16, body: &Value) -> Self {
        Self {
            status,
            body: body.to_string(),
            ..Self::default()
        }
    }

    /// The same answer with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The same answer, sent after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Decides the full answer to a request.
pub type Replier = Arc<dyn Fn(&Recorded) -> Reply + Send + Sync>;

/// A running fake server; it stops when the test's runtime ends.
#[derive(Clone)]
pub struct FakeServer {
    /// `http://127.0.0.1:<port>` or `https://...`.
    pub base: String,
    calls: Arc<Mutex<Vec<Recorded>>>,
}

impl std::fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeServer")
            .field("base", &self.base)
            .finish()
    }
}

impl FakeServer {
    /// A plain-HTTP server on a free loopback port; one request per connection.
    pub async fn start(responder: Responder) -> Self {
        Self::serve(reply_with(responder), None, false).await
    }

    /// A plain-HTTP server on a free loopback port answering with full [`Reply`]s, keeping
    /// connections open between requests (as a real upstream does, so a load test does not run
    /// out of ports).
    pub async fn start_replying(replier: Replier) -> Self {
        Self::serve(replier, None, true).await
    }

    /// A plain-HTTP server that answers every request `307 Temporary Redirect` to the same
    /// path and query on `target` (a base URL such as another server's [`FakeServer::base`]).
    pub async fn start_redirecting(target: &str) -> Self {
        let target = target.trim_end_matches('/').to_string();
        Self::serve(
            Arc::new(move |request: &Recorded| {
                Reply::json(307, &Value::Null)
                    .header("location", &format!("{target}{}", request.path))
            }),
            None,
            false,
        )
        .await
    }

    /// An HTTPS server presenting the PEM certificate chain and key given.
    pub async fn start_tls(cert_pem: &str, key_pem: &str, responder: Responder) -> Self {
        use tokio_rustls::rustls::pki_types::pem::PemObject;
        use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                .collect::<Result<_, _>>()
                .unwrap_or_else(|e| panic!("certificate PEM: {e}"));
        let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes())
            .unwrap_or_else(|e| panic!("key PEM: {e}"));
        let config = tokio_rustls::rustls::ServerConfig::builder()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap_or_else(|e| panic!("TLS config: {e}"));
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        Self::serve(reply_with(responder), Some(acceptor), false).await
    }

    async fn serve(
        responder: Replier,
        tls: Option<tokio_rustls::TlsAcceptor>,
        keep_alive: bool,
    ) -> Self {
        let (listener, port) = crate::bind_loopback().await;
        let scheme = if tls.is_some() { "https" } else { "http" };
        let calls = Arc::new(Mutex::new(Vec::new()));
        let recorded = calls.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let responder = responder.clone();
                let recorded = recorded.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        // A failed handshake (the client refused our certificate) records nothing.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(socket).await {
                                handle(stream, responder, recorded, keep_alive).await;
                            }
                        }
                        None => handle(socket, responder, recorded, keep_alive).await,
                    }
                });
            }
        });
        Self {
            base: format!("{scheme}://127.0.0.1:{port}"),
            calls,
        }
    }

    /// Every request so far, in arrival order.
    pub fn calls(&self) -> Vec<Recorded> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }
}

fn reply_with(responder: Responder) -> Replier {
    Arc::new(move |request| {
        let (status, body) = responder(request);
        Reply {
            status,
            body,
            ..Reply::default()
        }
    })
}

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    responder: Replier,
    recorded: Arc<Mutex<Vec<Recorded>>>,
    keep_alive: bool,
) {
    let mut buffer = Vec::new();
    loop {
        let Some(request) = read_request(&mut stream, &mut buffer).await else {
            return;
        };
        let close = !keep_alive
            || request
                .header("connection")
                .is_some_and(|c| c.eq_ignore_ascii_case("close"));
        let reply = responder(&request);
        if let Ok(mut calls) = recorded.lock() {
            calls.push(request);
        }
        if !reply.delay.is_zero() {
            tokio::time::sleep(reply.delay).await;
        }
        let mut response = format!(
            "HTTP/1.1 {} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str(if close {
            "connection: close\r\n\r\n"
        } else {
            "connection: keep-alive\r\n\r\n"
        });
        response.push_str(&reply.body);
        if stream.write_all(response.as_bytes()).await.is_err() || close {
            let _ = stream.shutdown().await;
            return;
        }
    }
}

/// Reads one request from `stream`; `buffer` carries bytes already read past the previous one.
async fn read_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buffer: &mut Vec<u8>,
) -> Option<Recorded> {
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    buffer.drain(..header_end);
    while buffer.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
    let body: Vec<u8> = buffer.drain(..length.min(buffer.len())).collect();
    Some(Recorded {
        method,
        path,
        headers,
        body,
    })
}
