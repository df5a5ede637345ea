//! Intake throughput: how many authenticated generic notifications per second the daemon
//! accepts durably, against a bare loop of durable single-row SQLite inserts on the same disk.
//!
//! The daemon answers only after the row is committed (WAL, `synchronous=FULL`) and batches
//! concurrent requests into one commit, so with enough requests in flight it should beat one
//! fsync per row. The bare loop is that one-fsync-per-row floor.
//!
//! Run with `cargo bench --bench intake`. Tunables (environment):
//! - `AKGUARD_BENCH_REQUESTS` (default 5000): measured notifications;
//! - `AKGUARD_BENCH_CONCURRENCY` (default 32): requests in flight;
//! - `AKGUARD_BENCH_BARE_INSERTS` (default 2000): inserts in the bare loop.

use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::path::Path;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

const SECRET: &str = "bench-hmac-secret-0123456789";
const WARMUP_REQUESTS: usize = 100;
const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds each phase, so a stuck daemon or disk ends the run instead of hanging it.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// Failures are counted in full, but only the first few are kept to explain them.
const FAILURE_SAMPLES: usize = 5;

fn main() {
    let requests = env_count("AKGUARD_BENCH_REQUESTS", 5000);
    let concurrency = env_count("AKGUARD_BENCH_CONCURRENCY", 32);
    let bare_inserts = env_count("AKGUARD_BENCH_BARE_INSERTS", 2000);

    // Under target/, so the daemon's database and the bare one share a disk (not a tmpfs).
    let dir = tempfile::Builder::new()
        .prefix("bench-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a temporary directory under target/");
    let runtime = tokio::runtime::Runtime::new().expect("start a tokio runtime");

    let daemon = Daemon::start(dir.path());
    let url = format!("http://{}/v1/notifications/generic", daemon.addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("build the HTTP client");
    let measured = WARMUP_REQUESTS..WARMUP_REQUESTS + requests;
    let load = runtime.block_on(within_phase_timeout("daemon load", async {
        // Warm-up opens the pooled connections and the database pages; not measured.
        let warmup = fire(&client, &url, 0..WARMUP_REQUESTS, concurrency).await;
        assert!(
            warmup.failures == 0,
            "{} of {WARMUP_REQUESTS} warm-up requests failed; first: {:?}",
            warmup.failures,
            warmup.failure_samples
        );
        fire(&client, &url, measured, concurrency).await
    }));
    let status = daemon.stop();
    assert!(
        status.success(),
        "daemon exited with {status} after SIGTERM"
    );

    let bare = runtime.block_on(within_phase_timeout(
        "bare inserts",
        bare_insert_rate(&dir.path().join("bare.db"), bare_inserts),
    ));

    print_summary(&load, concurrency, bare_inserts, bare);
    assert!(
        load.failures == 0,
        "{} of {requests} notifications were not accepted; first: {:?}",
        load.failures,
        load.failure_samples
    );
}

/// Reads a positive count from the environment, or the default when unset.
fn env_count(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => match value.trim().parse() {
            Ok(n) if n > 0 => n,
            _ => panic!("{name} must be a positive integer, got `{value}`"),
        },
    }
}

async fn within_phase_timeout<T>(phase: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(PHASE_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| panic!("{phase} did not finish within {PHASE_TIMEOUT:?}"))
}

/// A running `akguard serve` whose stderr is drained by a thread into `log`.
struct Daemon {
    child: Child,
    addr: String,
    log: Arc<Mutex<String>>,
    drain: Option<JoinHandle<()>>,
}

impl Daemon {
    /// Writes a config into `dir`, starts the daemon on a free port and waits until it listens.
    fn start(dir: &Path) -> Self {
        let config = dir.join("akguard.toml");
        std::fs::write(&config, config_toml(dir)).expect("write the daemon config");
        let mut command = Command::new(env!("CARGO_BIN_EXE_akguard"));
        command
            .arg("serve")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        // The caller's log filter or setting overrides would hide or reshape the "listening" line.
        command.env_remove("RUST_LOG");
        for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("AKGUARD__")) {
            command.env_remove(key);
        }
        let mut child = command.spawn().expect("start the akguard binary");

        let log = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("stderr is piped");
        let drain = thread::spawn({
            let log = Arc::clone(&log);
            move || drain_stderr(stderr, &log, &addr_tx)
        });
        let mut daemon = Self {
            child,
            addr: String::new(),
            log,
            drain: Some(drain),
        };
        // A daemon that exits early closes stderr, which ends the wait before the timeout.
        match addr_rx.recv_timeout(STARTUP_TIMEOUT) {
            Ok(addr) => daemon.addr = addr,
            Err(_) => panic!(
                "the daemon did not log \"listening\" within {STARTUP_TIMEOUT:?}; stderr so far:\n{}",
                daemon.log.lock().unwrap()
            ),
        }
        daemon
    }

    /// Sends SIGTERM and waits, bounded, for the graceful shutdown.
    fn stop(mut self) -> ExitStatus {
        let pid = self.child.id().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(
            sent.is_ok_and(|s| s.success()),
            "could not send SIGTERM to the daemon"
        );
        let deadline = Instant::now() + SHUTDOWN_TIMEOUT;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("poll the daemon") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the daemon did not stop within {SHUTDOWN_TIMEOUT:?} of SIGTERM; stderr:\n{}",
                self.log.lock().unwrap()
            );
            thread::sleep(Duration::from_millis(20));
        };
        if let Some(drain) = self.drain.take() {
            let _ = drain.join();
        }
        status
    }
}

impl Drop for Daemon {
    /// A panic mid-run must not leave the daemon running.
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn config_toml(dir: &Path) -> String {
    format!(
        r#"[server]
listen = "127.0.0.1:0"
[database]
url = "sqlite://{db}"
[log]
format = "json"
level = "warn,akguard::app=info"
[intake.sources.generic]
auth = "hmac"
secret = "{SECRET}"
"#,
        db = dir.join("akguard.db").display()
    )
}

/// Keeps reading until EOF so the pipe never fills; reports the address once it is logged.
fn drain_stderr(stderr: ChildStderr, log: &Mutex<String>, addr_tx: &mpsc::Sender<String>) {
    for line in BufReader::new(stderr).lines() {
        let Ok(line) = line else { break };
        if let Some(addr) = listening_addr(&line) {
            let _ = addr_tx.send(addr);
        }
        let mut log = log.lock().unwrap();
        log.push_str(&line);
        log.push('\n');
    }
}

fn listening_addr(line: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(line).ok()?;
    if event["message"] != "listening" {
        return None;
    }
    event["addr"].as_str().map(str::to_owned)
}

/// What one batch of requests produced.
#[derive(Default)]
struct LoadReport {
    wall: Duration,
    latencies: Vec<Duration>,
    failures: usize,
    failure_samples: Vec<String>,
}

/// Sends one notification per index in `keys`, `concurrency` at a time.
async fn fire(
    client: &reqwest::Client,
    url: &str,
    keys: Range<usize>,
    concurrency: usize,
) -> LoadReport {
    let end = keys.end;
    let next = Arc::new(AtomicUsize::new(keys.start));
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, url, next) = (client.clone(), url.to_owned(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut report = LoadReport::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break report;
                    }
                    let sent = Instant::now();
                    match notify(&client, &url, i).await {
                        Ok(()) => report.latencies.push(sent.elapsed()),
                        Err(why) => {
                            report.failures += 1;
                            if report.failure_samples.len() < FAILURE_SAMPLES {
                                report.failure_samples.push(why);
                            }
                        }
                    }
                }
            })
        })
        .collect();
    let mut total = LoadReport::default();
    for worker in workers {
        let report = worker.await.expect("a load worker panicked");
        total.latencies.extend(report.latencies);
        total.failures += report.failures;
        total.failure_samples.extend(report.failure_samples);
    }
    total.wall = started.elapsed();
    total.failure_samples.truncate(FAILURE_SAMPLES);
    total
}

/// Posts one signed notification for a distinct key; anything but a 202 is a failure.
async fn notify(client: &reqwest::Client, url: &str, i: usize) -> Result<(), String> {
    let body = serde_json::to_vec(&serde_json::json!({
        "access_key_id": format!("LTAI5tBench{i:012}"),
        "event_id": format!("bench-{i}"),
    }))
    .expect("serialize a notification");
    // Signed at send time, so a long run never drifts outside the daemon's HMAC window.
    let timestamp = chrono::Utc::now().timestamp().to_string();
    let response = client
        .post(url)
        .header("content-type", "application/json")
        .header("x-akguard-timestamp", &timestamp)
        .header("x-akguard-signature", sign(&timestamp, &body))
        .body(body)
        .send()
        .await
        .map_err(|e| format!("request {i}: {e}"))?;
    let status = response.status();
    // Reading the whole body lets the connection go back to the pool.
    let text = response
        .text()
        .await
        .map_err(|e| format!("request {i}: {e}"))?;
    if status == reqwest::StatusCode::ACCEPTED {
        Ok(())
    } else {
        Err(format!("request {i}: HTTP {status}: {text}"))
    }
}

fn sign(timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("HMAC takes any key");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Durable single-row inserts per second: one connection, each INSERT its own transaction.
async fn bare_insert_rate(db: &Path, inserts: usize) -> f64 {
    let mut conn = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .connect()
        .await
        .expect("open the bare SQLite database");
    sqlx::query(
        "CREATE TABLE notifications (
            id INTEGER PRIMARY KEY,
            access_key_id TEXT NOT NULL,
            received_at INTEGER NOT NULL,
            body TEXT NOT NULL
        )",
    )
    .execute(&mut conn)
    .await
    .expect("create the bare table");
    let started = Instant::now();
    for i in 0..inserts {
        let key = format!("LTAI5tBench{i:012}");
        let body = serde_json::json!({ "access_key_id": key, "event_id": format!("bench-{i}") });
        sqlx::query(
            "INSERT INTO notifications (access_key_id, received_at, body) VALUES (?, ?, ?)",
        )
        .bind(&key)
        .bind(chrono::Utc::now().timestamp())
        .bind(body.to_string())
        .execute(&mut conn)
        .await
        .expect("insert a bare row");
    }
    let rate = inserts as f64 / started.elapsed().as_secs_f64();
    conn.close().await.expect("close the bare SQLite database");
    rate
}

fn print_summary(load: &LoadReport, concurrency: usize, bare_inserts: usize, bare_rate: f64) {
    let mut latencies = load.latencies.clone();
    latencies.sort_unstable();
    let accepted_rate = latencies.len() as f64 / load.wall.as_secs_f64();
    let requests = latencies.len() + load.failures;
    println!("akguard intake benchmark");
    println!(
        "  daemon:  {requests} notifications, concurrency {concurrency}: {accepted_rate:.1} accepted/s, \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
        millis(latencies.last().copied().unwrap_or_default()),
    );
    if load.failures > 0 {
        println!("  FAILED:  {} of {requests} not accepted", load.failures);
    }
    println!(
        "  bare:    {bare_inserts} single-row durable SQLite inserts: {bare_rate:.1} inserts/s"
    );
    println!(
        "  ratio:   daemon / bare = {:.2}",
        accepted_rate / bare_rate
    );
}

/// Nearest-rank percentile of sorted latencies.
fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
