//! A local HTTP (or HTTPS) server that records every request and answers as the test says:
//! the stand-in for the API gateway manager and for finish-callback receivers.

use std::sync::{Arc, Mutex};

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
    /// A plain-HTTP server on a free loopback port.
    pub async fn start(responder: Responder) -> Self {
        Self::serve(responder, None).await
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
        Self::serve(responder, Some(acceptor)).await
    }

    async fn serve(responder: Responder, tls: Option<tokio_rustls::TlsAcceptor>) -> Self {
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
                                handle(stream, responder, recorded).await;
                            }
                        }
                        None => handle(socket, responder, recorded).await,
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

async fn handle<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    responder: Responder,
    recorded: Arc<Mutex<Vec<Recorded>>>,
) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    let header_end = loop {
        if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
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
    let mut body = buffer[header_end..].to_vec();
    while body.len() < length {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => body.extend_from_slice(&chunk[..n]),
        }
    }
    let request = Recorded {
        method,
        path,
        headers,
        body,
    };
    let (status, answer) = responder(&request);
    if let Ok(mut calls) = recorded.lock() {
        calls.push(request);
    }
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
        answer.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}
