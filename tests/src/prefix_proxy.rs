//! A small HTTP reverse proxy on loopback that does what BK PaaS's ingress does for an app
//! served under a path prefix: a request for `<prefix>/rest` reaches the app as `/rest`, with
//! `X-Script-Name: <prefix>/`; a request outside the prefix never reaches the app (404) and is
//! recorded, so a test can say which URL a page got wrong.
//!
//! One request per connection: the proxy asks the app for `Connection: close` and relays the
//! answer until the app closes, which the client then sees too.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy; it stops when the test's runtime ends.
#[derive(Debug, Clone)]
pub struct PrefixProxy {
    /// `http://127.0.0.1:<port><prefix>`: the app's address as a browser sees it.
    pub base: String,
    outside: Arc<Mutex<Vec<String>>>,
}

impl PrefixProxy {
    /// Proxies `http://127.0.0.1:<port><prefix>/...` to `upstream` (`http://127.0.0.1:<port>`)
    /// with `prefix` (`/a/b`) stripped. The port is the caller's (see `free_port`), so that the
    /// app can be told its address before the proxy starts.
    pub async fn start_on(port: u16, prefix: &str, upstream: &str) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("proxy bind {port}: {e}"));
        let upstream = upstream
            .strip_prefix("http://")
            .unwrap_or(upstream)
            .to_string();
        let outside = Arc::new(Mutex::new(Vec::new()));
        let proxy = Self {
            base: format!("http://127.0.0.1:{port}{prefix}"),
            outside: outside.clone(),
        };
        let prefix = prefix.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (prefix, upstream, outside) =
                    (prefix.clone(), upstream.clone(), outside.clone());
                tokio::spawn(async move {
                    let _ = relay(client, &prefix, &upstream, &outside).await;
                });
            }
        });
        proxy
    }

    /// The request targets that were outside the prefix (answered 404, never forwarded).
    pub fn outside_the_prefix(&self) -> Vec<String> {
        self.outside.lock().map(|o| o.clone()).unwrap_or_default()
    }
}

/// The request target with `prefix` stripped, or `None` when it is outside the prefix.
fn strip(target: &str, prefix: &str) -> Option<String> {
    let rest = target.strip_prefix(prefix)?;
    match rest.chars().next() {
        None => Some("/".into()),
        Some('/') => Some(rest.into()),
        Some('?') => Some(format!("/{rest}")),
        Some(_) => None,
    }
}

async fn relay(
    mut client: TcpStream,
    prefix: &str,
    upstream: &str,
    outside: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    // The request head, up to the blank line; what follows it (a body) is relayed as it is.
    let mut buffered = Vec::new();
    let head_end = loop {
        let mut chunk = [0u8; 4096];
        let n = client.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buffered.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffered.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
    };
    let head = String::from_utf8_lossy(&buffered[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.splitn(3, ' ');
    let (method, target, version) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or("HTTP/1.1"),
    );
    let Some(inner) = strip(target, prefix) else {
        if let Ok(mut seen) = outside.lock() {
            seen.push(target.to_string());
        }
        let body = format!("{target} is outside {prefix}");
        let answer = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        return client.write_all(answer.as_bytes()).await;
    };
    let mut rewritten = format!("{method} {inner} {version}\r\n");
    for line in lines.filter(|l| {
        let name = l.split(':').next().unwrap_or_default().trim();
        !name.eq_ignore_ascii_case("connection") && !name.eq_ignore_ascii_case("x-script-name")
    }) {
        rewritten.push_str(line);
        rewritten.push_str("\r\n");
    }
    rewritten.push_str(&format!(
        "X-Script-Name: {prefix}/\r\nConnection: close\r\n\r\n"
    ));
    let mut app = TcpStream::connect(upstream).await?;
    app.write_all(rewritten.as_bytes()).await?;
    app.write_all(&buffered[head_end + 4..]).await?;
    let (mut client_read, mut client_write) = client.split();
    let (mut app_read, mut app_write) = app.split();
    // The answer ends when the app closes; the rest of a request body goes on meanwhile.
    tokio::select! {
        answer = tokio::io::copy(&mut app_read, &mut client_write) => { answer?; }
        _ = tokio::io::copy(&mut client_read, &mut app_write) => {
            tokio::io::copy(&mut app_read, &mut client_write).await?;
        }
    }
    client_write.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::strip;

    #[test]
    fn only_targets_under_the_prefix_are_forwarded_without_it() {
        assert_eq!(strip("/p/x/y?z=1", "/p").as_deref(), Some("/x/y?z=1"));
        assert_eq!(strip("/p", "/p").as_deref(), Some("/"));
        assert_eq!(strip("/p?v=1", "/p").as_deref(), Some("/?v=1"));
        assert_eq!(strip("/px/y", "/p"), None);
        assert_eq!(strip("/bk_plugin/meta/", "/p"), None);
    }
}
