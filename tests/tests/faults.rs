//! The scheduler under faults, over real processes: results the database cannot or will not
//! store, finish-callback receivers that fail, hang or redirect, database outages, steps that
//! block their thread, rolling deploys with mixed binaries.
#![allow(missing_docs)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use bkp_blackbox_tests::{Backend, Launch, Plugin, TestDb, migrate, on_every_backend};
use sea_orm::{ConnectionTrait, Database};
use serde_json::json;

on_every_backend!(
    an_err_longer_than_64_kib_is_recorded_once_and_capped,
    a_result_the_database_refuses_fails_the_invocation_instead_of_running_it_again,
    a_callback_for_an_invocation_that_was_never_stored_is_refused,
    a_database_outage_fails_invokes_quickly_and_stores_none_of_them,
    a_step_that_blocks_its_thread_longer_than_the_lease_runs_once,
    a_worker_that_does_not_have_a_version_leaves_it_for_one_that_does,
    an_invocation_no_worker_has_fails_after_the_grace_period_with_its_finish_callback,
    a_worker_whose_clock_is_20_s_ahead_does_not_take_a_live_lease,
);

fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|line| line.contains(needle)).count()
}

async fn an_err_longer_than_64_kib_is_recorded_once_and_capped(db: &TestDb) {
    let plugin = Plugin::launch(
        db,
        Launch::serve()
            .binary("bkp-faults")
            .env("BK_PLUGIN_LEASE_SECONDS", "3"),
    )
    .await;
    let (_, body) = plugin
        .invoke("1.0.0", json!({"err_bytes": 100_000}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(20))
        .await;
    assert_eq!(done["state"], json!(5));
    let err = done["err"].as_str().unwrap_or_default();
    assert!(err.starts_with("plugin schedule failed: eeee"), "{err:.80}");
    assert!(
        err.ends_with("[err truncated: 100024 bytes in all]"),
        "{}",
        &err[err.len().saturating_sub(80)..]
    );
    assert!(err.len() <= 32 * 1024 + 64, "err is capped: {}", err.len());
    assert_eq!(done["invoke_count"], json!(2));
    assert_eq!(count(&plugin.log_text(), "fault step ran"), 1, "ran once");
}

/// Makes the database refuse any row whose outputs say `"done"` (1.1.0's last step).
async fn refuse_done_outputs(db: &TestDb) {
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let sql = match db.backend() {
        Backend::Sqlite => {
            "CREATE TRIGGER bkp_refuse_done BEFORE UPDATE ON bkp_schedule \
             WHEN NEW.outputs LIKE '%\"done\"%' BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        }
        Backend::Postgres | Backend::Mysql => {
            "ALTER TABLE bkp_schedule ADD CONSTRAINT bkp_refuse_done CHECK (outputs NOT LIKE '%\"done\"%')"
        }
    };
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

async fn a_result_the_database_refuses_fails_the_invocation_instead_of_running_it_again(
    db: &TestDb,
) {
    migrate(db);
    refuse_done_outputs(db).await;
    let plugin = Plugin::launch(db, Launch::serve().env("BK_PLUGIN_LEASE_SECONDS", "2")).await;
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 0, "polls": 1}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = plugin
        .wait_finished(trace_id, Duration::from_secs(15))
        .await;
    assert_eq!(done["state"], json!(5), "{done}");
    let err = done["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with(
            "plugin schedule raise unexpected error: the step's result could not be stored: "
        ),
        "{err}"
    );
    assert_eq!(
        done["outputs"],
        json!({"phase": "waiting"}),
        "the stored outputs are kept"
    );
    // Wait past a lease: the step is never run again.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(count(&plugin.log_text(), "poll plugin done"), 1);
}

async fn scalar(db: &TestDb, sql: &str) -> i64 {
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let value = conn
        .query_one_raw(sea_orm::Statement::from_string(
            conn.get_database_backend(),
            sql,
        ))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .and_then(|row| row.try_get_by_index::<i64>(0).ok())
        .unwrap_or(-1);
    let _ = conn.close().await;
    value
}

async fn execute(db: &TestDb, sql: &str) {
    let conn = Database::connect(&db.url)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    conn.execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = conn.close().await;
}

async fn a_callback_for_an_invocation_that_was_never_stored_is_refused(db: &TestDb) {
    let plugin = Plugin::launch(
        db,
        Launch::serve().env("BK_PLUGIN_EARLY_CALLBACK_SECONDS", "1"),
    )
    .await;
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    assert_eq!(body["data"]["state"], json!(3), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let url = body["data"]["outputs"]["callback_url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    // As if the invocation had never been stored (its first run ended without waiting).
    execute(
        db,
        &format!("DELETE FROM bkp_schedule WHERE trace_id = '{trace_id}'"),
    )
    .await;
    // Past the early-arrival window of its token.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, answer) = plugin.post(&url, &json!({"late": true})).await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(
        answer["message"],
        json!(format!(
            "callback fail, can not find schedule for trace_id {trace_id}"
        ))
    );
    assert_eq!(scalar(db, "SELECT COUNT(*) FROM bkp_callback").await, 0);
}

/// How the test receiver answers one finish callback.
#[derive(Debug, Clone)]
enum Answer {
    /// This status with `{}`.
    Status(u16),
    /// Reads the request and never answers.
    Hang,
    /// 307 to this URL.
    Redirect(String),
    /// 200 with a body that never ends.
    Endless,
    /// 200 after this many milliseconds.
    Slow(u64),
}

/// A loopback finish-callback receiver: answers the n-th request with `script[n]` (the last
/// one repeats); counts requests and the most it served at once.
#[derive(Debug, Clone)]
struct Receiver {
    url: String,
    requests: Arc<AtomicUsize>,
    most_at_once: Arc<AtomicUsize>,
}

impl Receiver {
    async fn start(path: &str, script: Vec<Answer>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let address = listener
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let receiver = Self {
            url: format!("http://{address}{path}"),
            requests: Arc::default(),
            most_at_once: Arc::default(),
        };
        let (requests, most) = (receiver.requests.clone(), receiver.most_at_once.clone());
        let now = Arc::new(AtomicUsize::new(0));
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let n = requests.fetch_add(1, Ordering::SeqCst);
                let answer = script[n.min(script.len() - 1)].clone();
                let (now, most) = (now.clone(), most.clone());
                tokio::spawn(async move {
                    let at_once = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(at_once, Ordering::SeqCst);
                    serve(socket, answer).await;
                    now.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        receiver
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn serve(mut socket: tokio::net::TcpStream, answer: Answer) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match socket.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
        let text = String::from_utf8_lossy(&buffer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                })
                .unwrap_or(0);
            if body.len() >= length {
                break;
            }
        }
    }
    let reply = |status: u16| {
        format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{{}}"
        )
    };
    match answer {
        Answer::Status(status) => {
            let _ = socket.write_all(reply(status).as_bytes()).await;
        }
        Answer::Hang => tokio::time::sleep(Duration::from_secs(120)).await,
        Answer::Redirect(to) => {
            let text = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
            let _ = socket.write_all(text.as_bytes()).await;
        }
        Answer::Endless => {
            let head =
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n[";
            if socket.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let filler = "0,".repeat(8192);
            while socket.write_all(filler.as_bytes()).await.is_ok() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
        Answer::Slow(ms) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            let _ = socket.write_all(reply(200).as_bytes()).await;
        }
    }
}

/// Invokes 1.7.0 (POLL, then SUCCESS on its re-run) with a finish callback to `url`.
async fn finishing(plugin: &Plugin, url: &str) -> String {
    let context = json!({"plugin_callback_info": {"url": url, "data": {"task": 1}}});
    let (_, body) = plugin.invoke("1.7.0", json!({}), context).await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    body["trace_id"].as_str().unwrap_or_default().to_string()
}

async fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn sqlite() -> TestDb {
    TestDb::new(Backend::Sqlite)
        .await
        .unwrap_or_else(|| panic!("SQLite is always available"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_callback_outlasts_a_receiver_that_fails_three_times() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let receiver = Receiver::start(
        "/finished",
        vec![
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(503),
            Answer::Status(200),
        ],
    )
    .await;
    finishing(&plugin, &receiver.url).await;
    // Attempts at 0, 2, 6 and 14 s: the old default gave up after the third.
    wait_for(
        &format!("not delivered:\n{}", plugin.log_text()),
        Duration::from_secs(30),
        || plugin.log_text().contains("finish callback delivered"),
    )
    .await;
    assert_eq!(receiver.requests(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_finish_callback_given_up_is_an_error_log_line_and_a_metric() {
    let db = sqlite().await;
    let plugin = Plugin::launch(
        &db,
        Launch::serve().env("BK_PLUGIN_FINISH_CALLBACK_RETRY_SECONDS", "3"),
    )
    .await;
    let receiver = Receiver::start("/finished", vec![Answer::Status(500)]).await;
    finishing(&plugin, &receiver.url).await;
    wait_for(
        &format!("never given up:\n{}", plugin.log_text()),
        Duration::from_secs(20),
        || plugin.log_text().contains("given up"),
    )
    .await;
    let log = plugin.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("given up"))
        .unwrap_or_default();
    assert!(line.contains("ERROR"), "{line}");
    // Attempts at 0 and (if still within the 3 s window) 2 s; none after the give-up.
    let attempts = receiver.requests();
    assert!((1..=2).contains(&attempts), "{attempts}");
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.requests(), attempts, "tried again after giving up");
    let metrics = reqwest::get(format!("{}/metrics", plugin.base))
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    let given_up = metrics
        .lines()
        .find(|l| l.starts_with("bk_plugin_finish_callback_total") && l.contains("gave_up"))
        .unwrap_or_default();
    assert!(given_up.ends_with(" 1"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_that_never_answer_delay_no_other_receiver_and_their_urls_stay_out_of_the_log() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let mut hung = Vec::new();
    for _ in 0..6 {
        let receiver = Receiver::start("/callback/SECRET-TOKEN-42/", vec![Answer::Hang]).await;
        let trace_id = finishing(&plugin, &receiver.url).await;
        plugin
            .wait_finished(&trace_id, Duration::from_secs(10))
            .await;
        hung.push(receiver);
    }
    let healthy = Receiver::start("/finished", vec![Answer::Status(200)]).await;
    let trace_id = finishing(&plugin, &healthy.url).await;
    plugin
        .wait_finished(&trace_id, Duration::from_secs(10))
        .await;
    // Six deliveries that take their whole 10 s timeout are in flight; one after another they
    // held the healthy one back for a minute.
    wait_for(
        "the healthy receiver waited for the hung ones",
        Duration::from_secs(5),
        || healthy.requests() == 1,
    )
    .await;
    // The hung attempts time out and are logged, without the token in their URL.
    wait_for("no timeouts logged", Duration::from_secs(20), || {
        plugin.log_text().matches("will try again").count() >= 6
    })
    .await;
    assert!(
        !plugin.log_text().contains("SECRET-TOKEN-42"),
        "{}",
        plugin.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_to_one_receiver_run_concurrently_but_at_most_four_at_once() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let receiver = Receiver::start("/finished", vec![Answer::Slow(1500)]).await;
    for _ in 0..10 {
        finishing(&plugin, &receiver.url).await;
    }
    wait_for("not all delivered", Duration::from_secs(30), || {
        plugin
            .log_text()
            .matches("finish callback delivered")
            .count()
            == 10
    })
    .await;
    assert_eq!(receiver.most_at_once.load(Ordering::SeqCst), 4);
    assert_eq!(receiver.requests(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_answer_is_read_only_up_to_the_cap() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let receiver = Receiver::start("/finished", vec![Answer::Endless]).await;
    finishing(&plugin, &receiver.url).await;
    wait_for(
        &format!("not delivered:\n{}", plugin.log_text()),
        Duration::from_secs(8),
        || plugin.log_text().contains("finish callback delivered"),
    )
    .await;
    assert_eq!(receiver.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed_and_counts_as_a_failed_attempt() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let internal = Receiver::start("/internal", vec![Answer::Status(200)]).await;
    let receiver = Receiver::start(
        "/finished",
        vec![Answer::Redirect(internal.url.clone()), Answer::Status(200)],
    )
    .await;
    finishing(&plugin, &receiver.url).await;
    wait_for(
        &format!("not delivered:\n{}", plugin.log_text()),
        Duration::from_secs(15),
        || plugin.log_text().contains("finish callback delivered"),
    )
    .await;
    assert_eq!(receiver.requests(), 2, "the 307 was a failed attempt");
    assert_eq!(internal.requests(), 0, "the redirect was not followed");
    assert!(plugin.log_text().contains("answered HTTP 307"));
}

/// A loopback TCP proxy in front of the test database: it forwards, or — black-holed — reads
/// and drops every byte in both directions and connects nothing new, the way a dead network
/// path behaves. Restoring it closes every held connection, so clients reconnect.
#[derive(Debug, Clone)]
struct Proxy {
    port: u16,
    holed: Arc<std::sync::atomic::AtomicBool>,
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let proxy = Self {
            port,
            holed: Arc::default(),
            generation,
        };
        let me = proxy.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (me, upstream) = (me.clone(), upstream.clone());
                tokio::spawn(async move { me.relay(client, &upstream).await });
            }
        });
        proxy
    }

    async fn relay(&self, client: tokio::net::TcpStream, upstream: &str) {
        let mut cut = self.generation.subscribe();
        if self.holed.load(Ordering::SeqCst) {
            let _ = cut.changed().await;
            return;
        }
        let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
            return;
        };
        let (client_read, client_write) = client.into_split();
        let (server_read, server_write) = server.into_split();
        let up = self.pipe(client_read, server_write);
        let down = self.pipe(server_read, client_write);
        tokio::select! {
            _ = async { tokio::join!(up, down) } => {}
            _ = cut.changed() => {}
        }
    }

    async fn pipe(
        &self,
        mut from: tokio::net::tcp::OwnedReadHalf,
        mut to: tokio::net::tcp::OwnedWriteHalf,
    ) {
        let mut buffer = vec![0u8; 16 * 1024];
        loop {
            let n = match from.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if self.holed.load(Ordering::SeqCst) {
                continue;
            }
            if to.write_all(&buffer[..n]).await.is_err() {
                return;
            }
        }
    }

    fn black_hole(&self) {
        self.holed.store(true, Ordering::SeqCst);
    }

    fn restore(&self) {
        self.holed.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }
}

/// `url` with its host and port replaced by the proxy's; also returns the original host:port.
fn through(url: &str, port: u16) -> (String, String) {
    let start = url
        .find('@')
        .map_or_else(|| url.find("://").map_or(0, |i| i + 3), |i| i + 1);
    let end = url[start..].find('/').map_or(url.len(), |i| start + i);
    let upstream = url[start..end].to_string();
    (
        format!("{}127.0.0.1:{port}{}", &url[..start], &url[end..]),
        upstream,
    )
}

async fn a_database_outage_fails_invokes_quickly_and_stores_none_of_them(db: &TestDb) {
    if db.backend() == Backend::Sqlite {
        bkp_blackbox_tests::report_skip(
            "on SQLite: there is no network path to the database to break",
        );
        return;
    }
    migrate(db);
    let (_, upstream) = through(&db.url, 0);
    let proxy = Proxy::start(upstream).await;
    let (url, _) = through(&db.url, proxy.port);
    let plugin = Plugin::launch(
        db,
        Launch::serve()
            .env("DATABASE_URL", &url)
            .env("BK_PLUGIN_INVOKE_DB_TIMEOUT_SECONDS", "2"),
    )
    .await;
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 600}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "stored before the outage");
    proxy.black_hole();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answers = Vec::new();
    for _ in 0..5 {
        let (client, base) = (client.clone(), plugin.base.clone());
        answers.push(tokio::spawn(async move {
            let body = json!({"inputs": {"interval": 600}, "context": {}});
            client
                .post(format!("{base}/bk_plugin/invoke/1.1.0"))
                .json(&body)
                .send()
                .await
                .map_err(|e| e.to_string())?
                .json::<serde_json::Value>()
                .await
                .map_err(|e| e.to_string())
        }));
    }
    // A caller that leaves before any answer.
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let gone = impatient
        .post(format!("{}/bk_plugin/invoke/1.1.0", plugin.base))
        .json(&json!({"inputs": {"interval": 600}, "context": {}}))
        .send()
        .await;
    assert!(gone.is_err(), "the impatient caller left");
    for answer in answers {
        let body = answer
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .unwrap_or_else(|e| panic!("the invoke hung through the outage: {e}"));
        assert_eq!(body["data"]["state"], json!(5), "{body}");
        let err = body["data"]["err"].as_str().unwrap_or_default();
        assert!(err.starts_with("schedule create error: "), "{err}");
    }
    proxy.restore();
    // A write stuck on a black-holed connection is abandoned after 2 × the invoke timeout + 10 s
    // (14 s here) and what it may have committed is then deleted: wait past that, not a guess.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let stored = scalar(db, "SELECT COUNT(*) FROM bkp_schedule").await;
        if stored == 1 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only the invocation answered POLL may stay stored, found {stored}\n{}",
            plugin.log_text()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let (_, body) = plugin
        .invoke("1.1.0", json!({"interval": 600}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "stored after the outage");
}

fn gauge(metrics: &str, line_start: &str) -> Option<i64> {
    metrics
        .lines()
        .find(|l| l.starts_with(line_start))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_depth_gauge_is_read_from_the_database_at_most_every_five_seconds() {
    let db = sqlite().await;
    let plugin = Plugin::start(&db).await;
    let waiting = "bk_plugin_queue_depth{kind=\"waiting_callback\"}";
    let read = Instant::now();
    let before = plugin.metrics_text().await;
    assert_eq!(gauge(&before, waiting), Some(0), "{before}");
    let (_, body) = plugin.invoke("1.2.0", json!({}), json!({})).await;
    assert_eq!(body["data"]["state"], json!(3));
    // Scrapes within 5 s of that read get nothing new from the database ...
    for _ in 0..5 {
        let metrics = plugin.metrics_text().await;
        if read.elapsed() < Duration::from_millis(4900) {
            assert_eq!(gauge(&metrics, waiting), Some(0));
        }
    }
    // ... and the next read, a few seconds later, sees the waiting invocation.
    let deadline = Instant::now() + Duration::from_secs(15);
    while gauge(&plugin.metrics_text().await, waiting) != Some(1) {
        assert!(Instant::now() < deadline, "the gauge was never refreshed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn a_step_that_blocks_its_thread_longer_than_the_lease_runs_once(db: &TestDb) {
    let faults = |launch: Launch| {
        launch
            .binary("bkp-faults")
            .env("TOKIO_WORKER_THREADS", "1")
            .env("BK_PLUGIN_LEASE_SECONDS", "3")
    };
    let web = Plugin::launch(db, faults(Launch::web_only())).await;
    let first = Plugin::launch(db, faults(Launch::worker())).await;
    let second = Plugin::launch(db, faults(Launch::worker())).await;
    let (_, body) = web
        .invoke("2.0.0", json!({"block_ms": 8000}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    let done = web.wait_finished(trace_id, Duration::from_secs(40)).await;
    assert_eq!(done["state"], json!(4), "{done}");
    // Past another lease: nobody started it again.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let runs = count(&first.log_text(), "blocking step started")
        + count(&second.log_text(), "blocking step started");
    assert_eq!(runs, 1, "{}\n{}", first.log_text(), second.log_text());
}

async fn a_worker_that_does_not_have_a_version_leaves_it_for_one_that_does(db: &TestDb) {
    let web = Plugin::launch(db, Launch::web_only()).await;
    let (_, body) = web
        .invoke("1.1.0", json!({"interval": 0, "polls": 1}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    // A worker of another build (it has 1.0.0 and 2.0.0 only), as during a rolling deploy.
    let other = Plugin::launch(db, Launch::worker().binary("bkp-faults")).await;
    wait_for(
        "the other worker did not start",
        Duration::from_secs(30),
        || other.log_text().contains("worker started"),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, schedule) = web.get(&format!("/bk_plugin/schedule/{trace_id}")).await;
    assert_eq!(
        schedule["data"]["state"],
        json!(2),
        "left waiting: {schedule}"
    );
    assert_eq!(schedule["data"]["invoke_count"], json!(1));
    let _new = Plugin::launch(db, Launch::worker()).await;
    let done = web.wait_finished(trace_id, Duration::from_secs(20)).await;
    assert_eq!(done["state"], json!(4), "{done}");
}

async fn an_invocation_no_worker_has_fails_after_the_grace_period_with_its_finish_callback(
    db: &TestDb,
) {
    let web = Plugin::launch(db, Launch::web_only()).await;
    let receiver = Receiver::start("/finished", vec![Answer::Status(200)]).await;
    let trace_id = finishing(&web, &receiver.url).await;
    let _other = Plugin::launch(
        db,
        Launch::worker()
            .binary("bkp-faults")
            .env("BK_PLUGIN_UNKNOWN_VERSION_GRACE_SECONDS", "2"),
    )
    .await;
    let done = web.wait_finished(&trace_id, Duration::from_secs(20)).await;
    assert_eq!(done["state"], json!(5), "{done}");
    let err = done["err"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("plugin version 1.7.0 is not registered in this binary: no worker that has it took the invocation within 2 seconds"),
        "{err}"
    );
    wait_for("no finish callback", Duration::from_secs(10), || {
        receiver.requests() == 1
    })
    .await;
}

const FAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

async fn a_worker_whose_clock_is_20_s_ahead_does_not_take_a_live_lease(db: &TestDb) {
    if db.backend() == Backend::Sqlite {
        bkp_blackbox_tests::report_skip("on SQLite: its processes share one host, hence one clock");
        return;
    }
    if !std::path::Path::new(FAKETIME).exists() {
        bkp_blackbox_tests::report_skip(&format!(
            "{FAKETIME} is missing (apt-get install faketime)"
        ));
        return;
    }
    let faults = |launch: Launch| {
        launch
            .binary("bkp-faults")
            .env("BK_PLUGIN_LEASE_SECONDS", "3")
    };
    let web = Plugin::launch(db, faults(Launch::web_only())).await;
    let on_time = Plugin::launch(db, faults(Launch::worker())).await;
    let (_, body) = web
        .invoke("2.0.0", json!({"block_ms": 8000}), json!({}))
        .await;
    assert_eq!(body["data"]["state"], json!(2), "{body}");
    let trace_id = body["trace_id"].as_str().unwrap_or_default();
    wait_for("the step did not start", Duration::from_secs(20), || {
        on_time.log_text().contains("blocking step started")
    })
    .await;
    // This worker's clock is 20 s ahead: by it, the running step's lease ran out long ago.
    let ahead = Plugin::launch(
        db,
        faults(Launch::worker())
            .env("LD_PRELOAD", FAKETIME)
            .env("FAKETIME", "+20s")
            .env("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    )
    .await;
    let done = web.wait_finished(trace_id, Duration::from_secs(40)).await;
    assert_eq!(done["state"], json!(4), "{done}");
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(
        ahead.log_text().contains("worker started"),
        "{}",
        ahead.log_text()
    );
    let runs = count(&on_time.log_text(), "blocking step started")
        + count(&ahead.log_text(), "blocking step started");
    assert_eq!(runs, 1, "{}", ahead.log_text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_holds_no_more_stored_invocations_than_its_memory_budget() {
    let db = sqlite().await;
    let limits = |launch: Launch| {
        launch
            .binary("bkp-faults")
            .env("BK_PLUGIN_MAX_BODY_BYTES", "1048576")
            .env("BK_PLUGIN_MAX_STATE_BYTES", "1048576")
    };
    let web = Plugin::launch(&db, limits(Launch::web_only())).await;
    let pad = "x".repeat(700_000);
    for _ in 0..6 {
        let (_, body) = web
            .invoke("2.0.0", json!({"block_ms": 1500, "pad": pad}), json!({}))
            .await;
        assert_eq!(body["data"]["state"], json!(2), "{body}");
    }
    // 3 MiB: room for one row as large as the limits allow (2 MiB), or for two of these.
    let worker = Plugin::launch(
        &db,
        limits(Launch::worker())
            .env("BK_PLUGIN_WORKER_MEMORY_MB", "3")
            .env("TOKIO_WORKER_THREADS", "8"),
    )
    .await;
    wait_for("not all ran", Duration::from_secs(60), || {
        count(&worker.log_text(), "blocking step ended") == 6
    })
    .await;
    let (mut now, mut most) = (0i32, 0i32);
    for line in worker.log_text().lines() {
        if line.contains("blocking step started") {
            now += 1;
            most = most.max(now);
        } else if line.contains("blocking step ended") {
            now -= 1;
        }
    }
    assert_eq!(most, 2, "{}", worker.log_text());
}
