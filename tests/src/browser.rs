//! A real headless Chromium driven over the Chrome DevTools Protocol (a websocket, JSON
//! messages): enough to open a page, click and type as a person does (mouse and keyboard
//! events at the element's position), read the page, and take screenshots.
//!
//! The browser is Debian's `chromium` (or `$BKP_CHROMIUM`); `.ci/run` installs it when missing.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

use crate::TempDir;

/// How long any wait in the browser may take before the test fails with the page's text.
const DEADLINE: Duration = Duration::from_secs(30);

/// One headless Chromium with one page, killed on drop.
pub struct Browser {
    child: Child,
    socket: WebSocket<MaybeTlsStream<TcpStream>>,
    next_id: u64,
    _profile: TempDir,
}

impl std::fmt::Debug for Browser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Browser")
            .field("pid", &self.child.id())
            .finish()
    }
}

/// The Chromium binary: `$BKP_CHROMIUM`, else the first of chromium, chromium-browser,
/// google-chrome on `PATH`.
pub fn chromium_binary() -> PathBuf {
    if let Ok(path) = std::env::var("BKP_CHROMIUM")
        && !path.is_empty()
    {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "no Chromium found: install Debian's `chromium` (apt-get install -y chromium; .ci/run does this) or set BKP_CHROMIUM"
    )
}

impl Browser {
    /// Starts a headless Chromium with an empty profile and attaches to its page.
    pub fn launch() -> Self {
        let profile = TempDir::new("bkp-chromium");
        let log = std::fs::File::create(profile.0.join("chromium.log"))
            .unwrap_or_else(|e| panic!("chromium log: {e}"));
        let child = Command::new(chromium_binary())
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,1000",
            ])
            .arg(format!("--user-data-dir={}", profile.0.display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start chromium: {e}"));
        let port = wait_for_port(&profile.0);
        let page_url = page_websocket(port);
        let page_url = page_url.replace("ws://localhost:", "ws://127.0.0.1:");
        let (socket, _) = tungstenite::connect(page_url.as_str())
            .unwrap_or_else(|e| panic!("cannot attach to {page_url}: {e}"));
        if let MaybeTlsStream::Plain(stream) = socket.get_ref() {
            // A page that stops answering fails the test instead of hanging it.
            let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
        }
        let mut browser = Self {
            child,
            socket,
            next_id: 0,
            _profile: profile,
        };
        browser.call("Page.enable", json!({}));
        browser
    }

    /// Sends one DevTools command and waits for its answer (events in between are skipped).
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let message = json!({"id": id, "method": method, "params": params}).to_string();
        self.socket
            .send(Message::text(message))
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        loop {
            let message = self
                .socket
                .read()
                .unwrap_or_else(|e| panic!("{method}: {e}"));
            let Message::Text(text) = message else {
                continue;
            };
            let answer: Value = serde_json::from_str(text.as_str()).unwrap_or(Value::Null);
            if answer["id"] != json!(id) {
                continue;
            }
            if let Some(error) = answer.get("error") {
                panic!("{method} failed: {error}");
            }
            return answer["result"].clone();
        }
    }

    /// Opens `url` and waits until the page sets `document.body.dataset.ready`.
    pub fn open(&mut self, url: &str) {
        self.call("Page.navigate", json!({"url": url}));
        self.wait_for(
            "document.readyState === 'complete' && document.body && document.body.dataset.ready === 'true'",
            &format!("{url} to be ready"),
        );
    }

    /// Evaluates a JavaScript expression in the page (promises awaited) and returns its value.
    pub fn eval(&mut self, expression: &str) -> Value {
        let result = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true, "awaitPromise": true}),
        );
        if let Some(details) = result.get("exceptionDetails") {
            panic!("{expression} threw: {details}");
        }
        result["result"]["value"].clone()
    }

    /// Waits until `expression` is truthy; fails with the page's text after the deadline.
    pub fn wait_for(&mut self, expression: &str, what: &str) -> Value {
        let deadline = Instant::now() + DEADLINE;
        let probe = format!(
            "(() => {{ try {{ return ({expression}); }} catch (e) {{ return false; }} }})()"
        );
        loop {
            let value = self.eval(&probe);
            let truthy = match &value {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return value;
            }
            if Instant::now() > deadline {
                let text = self.eval("document.body ? document.body.innerText : ''");
                panic!(
                    "waited {}s for {what}; the page shows:\n{}",
                    DEADLINE.as_secs(),
                    text.as_str().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The text of the first element matching `selector` ("" when there is none).
    pub fn text(&mut self, selector: &str) -> String {
        let expression = format!(
            "(document.querySelector({}) || {{}}).textContent || ''",
            json!(selector)
        );
        self.eval(&expression)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The `value` of the form control matching `selector`.
    pub fn value(&mut self, selector: &str) -> String {
        let expression = format!("document.querySelector({}).value", json!(selector));
        self.eval(&expression)
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Clicks the centre of the element matching `selector` with real mouse events.
    pub fn click(&mut self, selector: &str) {
        let expression = format!(
            "(() => {{ const e = document.querySelector({}); if (!e) return null; \
             e.scrollIntoView({{block: 'center'}}); const r = e.getBoundingClientRect(); \
             return [r.x + r.width / 2, r.y + r.height / 2]; }})()",
            json!(selector)
        );
        let point = self.eval(&expression);
        let (Some(x), Some(y)) = (point[0].as_f64(), point[1].as_f64()) else {
            panic!("nothing on the page matches {selector}");
        };
        for kind in ["mouseMoved", "mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
            );
        }
    }

    /// Clicks into the field matching `selector`, selects what it holds and types `text`
    /// over it (keyboard input events, as a person typing).
    pub fn fill(&mut self, selector: &str, text: &str) {
        self.click(selector);
        self.eval(&format!(
            "document.querySelector({}).select()",
            json!(selector)
        ));
        self.call("Input.insertText", json!({"text": text}));
    }

    /// Chooses `value` in the `<select>` matching `selector` (headless Chromium draws no
    /// drop-down popup to click in, so this sets it and fires `change` as a choice does).
    pub fn choose(&mut self, selector: &str, value: &str) {
        let expression = format!(
            "(() => {{ const s = document.querySelector({}); s.focus(); s.value = {}; \
             s.dispatchEvent(new Event('input', {{bubbles: true}})); \
             s.dispatchEvent(new Event('change', {{bubbles: true}})); return s.value; }})()",
            json!(selector),
            json!(value)
        );
        let chosen = self.eval(&expression);
        assert_eq!(chosen, json!(value), "{selector} has no option {value}");
    }

    /// Writes a PNG of the whole page to `path`.
    pub fn screenshot(&mut self, path: &Path) {
        let shot = self.call(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        );
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().unwrap_or_default())
            .unwrap_or_else(|e| panic!("screenshot is not base64: {e}"));
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        }
        std::fs::write(path, bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where screenshots go: `<target>/<profile>/screenshots/` (next to the test binaries).
pub fn screenshot_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let deps = exe.parent().map(PathBuf::from).unwrap_or_default();
    let profile = deps.parent().map(PathBuf::from).unwrap_or(deps);
    profile.join("screenshots")
}

/// Chromium writes its DevTools port into `DevToolsActivePort` in the profile once it listens.
fn wait_for_port(profile: &Path) -> u16 {
    let file = profile.join("DevToolsActivePort");
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(text) = std::fs::read_to_string(&file)
            && let Some(port) = text.lines().next().and_then(|l| l.trim().parse().ok())
        {
            return port;
        }
        if Instant::now() > deadline {
            let log = std::fs::read_to_string(profile.join("chromium.log")).unwrap_or_default();
            panic!("chromium did not open its DevTools port:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The websocket URL of the browser's page target, from `GET /json/list`.
fn page_websocket(port: u16) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(url) = http_get(port, "/json/list")
            .and_then(|body| serde_json::from_str::<Value>(&body).ok())
            .and_then(|list| {
                list.as_array()?
                    .iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str().map(str::to_string))
            })
        {
            return url;
        }
        assert!(Instant::now() < deadline, "chromium shows no page target");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A plain HTTP/1.1 GET on loopback; the body, or `None` when it fails. (Chromium keeps the
/// connection open, so the body is read up to its Content-Length.)
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        response.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&response);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().to_string())
                })
                .and_then(|v| v.parse::<usize>().ok());
            if length.is_some_and(|length| body.len() >= length) {
                return Some(body.to_string());
            }
        }
    }
    let text = String::from_utf8_lossy(&response).to_string();
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
}
