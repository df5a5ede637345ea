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
//! - `AKGUARD_BENCH_BARE_INSERTS` (default 2000): inserts in the bare loop;
//! - `AKGUARD_BENCH_OBSERVE` (default `off,on`; also `metrics`, `notifications`): the runs,
//!   each on a fresh database, with on-call notifications (a Slack channel to a local
//!   stand-in) and `/metrics` (scraped every second) off or on.

#[path = "support/mod.rs"]
mod support;

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection};

use support::{Daemon, Observe, Observed, Observer, env_count, percentile, post_signed};

const WARMUP_REQUESTS: usize = 100;
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds each phase, so a stuck daemon or disk ends the run instead of hanging it.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// Failures are counted in full, but only the first few are kept to explain them.
const FAILURE_SAMPLES: usize = 5;

fn main() {
    let requests = env_count("AKGUARD_BENCH_REQUESTS", 5000);
    let concurrency = env_count("AKGUARD_BENCH_CONCURRENCY", 32);
    let bare_inserts = env_count("AKGUARD_BENCH_BARE_INSERTS", 2000);

    // Under target/, so the daemon's database and the bare one share a disk (not a tmpfs).
    let dir = support::target_tempdir("bench-");
    let runtime = tokio::runtime::Runtime::new().expect("start a tokio runtime");

    let runs: Vec<(Observe, LoadReport, Observed)> = Observe::from_env()
        .into_iter()
        .map(|mode| {
            let (load, observed) = daemon_load(&runtime, mode, requests, concurrency);
            (mode, load, observed)
        })
        .collect();

    let bare = runtime.block_on(within_phase_timeout(
        "bare inserts",
        bare_insert_rate(&dir.path().join("bare.db"), bare_inserts),
    ));

    print_summary(&runs, concurrency, bare_inserts, bare);
    for (mode, load, _) in &runs {
        assert!(
            load.failures == 0,
            "{}: {} of {requests} notifications were not accepted; first: {:?}",
            mode.label(),
            load.failures,
            load.failure_samples
        );
    }
}

/// One daemon, on a fresh database, in `mode`: warm-up, then the measured notifications.
fn daemon_load(
    runtime: &tokio::runtime::Runtime,
    mode: Observe,
    requests: usize,
    concurrency: usize,
) -> (LoadReport, Observed) {
    let dir = support::target_tempdir("bench-");
    let mut observer = runtime.block_on(Observer::start(mode));
    let config = format!("{}{}", support::base_config(dir.path()), observer.config());
    let daemon = Daemon::start(dir.path(), &config, &[], |_| false);
    let url = format!("http://{}/v1/notifications/generic", daemon.addr);
    let client = support::http_client(concurrency);
    let measured = WARMUP_REQUESTS..WARMUP_REQUESTS + requests;
    let load = runtime.block_on(within_phase_timeout("daemon load", async {
        observer.scrape(&daemon.addr);
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
    // The daemon logs little at this level, so a failed stop shows all of it.
    let status = daemon.stop(SHUTDOWN_TIMEOUT, usize::MAX);
    assert!(
        status.success(),
        "daemon exited with {status} after SIGTERM"
    );
    (load, observer.finish())
}

async fn within_phase_timeout<T>(phase: &str, work: impl Future<Output = T>) -> T {
    tokio::time::timeout(PHASE_TIMEOUT, work)
        .await
        .unwrap_or_else(|_| panic!("{phase} did not finish within {PHASE_TIMEOUT:?}"))
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
    let (status, text) = post_signed(client, url, body)
        .await
        .map_err(|e| format!("request {i}: {e}"))?;
    if status == reqwest::StatusCode::ACCEPTED {
        Ok(())
    } else {
        Err(format!("request {i}: HTTP {status}: {text}"))
    }
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

fn print_summary(
    runs: &[(Observe, LoadReport, Observed)],
    concurrency: usize,
    bare_inserts: usize,
    bare_rate: f64,
) {
    println!("akguard intake benchmark");
    let mut rates = Vec::new();
    for (mode, load, observed) in runs {
        let mut latencies = load.latencies.clone();
        latencies.sort_unstable();
        let accepted_rate = latencies.len() as f64 / load.wall.as_secs_f64();
        let requests = latencies.len() + load.failures;
        println!("  daemon, {}:", mode.label());
        println!(
            "           {requests} notifications, concurrency {concurrency}: {accepted_rate:.1} accepted/s, \
             p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            millis(percentile(&latencies, 0.50)),
            millis(percentile(&latencies, 0.99)),
            millis(latencies.last().copied().unwrap_or_default()),
        );
        if *mode != Observe::Off {
            println!(
                "           meanwhile: {} notifications delivered, {} scrapes of /metrics",
                observed.delivered, observed.scrapes
            );
        }
        if load.failures > 0 {
            println!("  FAILED:  {} of {requests} not accepted", load.failures);
        }
        println!(
            "           daemon / bare = {:.2}",
            accepted_rate / bare_rate
        );
        rates.push(accepted_rate);
    }
    if let (Some(Observe::Off), Some(off)) = (runs.first().map(|r| r.0), rates.first()) {
        for ((mode, ..), rate) in runs.iter().zip(&rates).skip(1) {
            println!(
                "  {} / off: {:.3} of the accepted rate (goal: at least 0.95)",
                mode.label(),
                rate / off
            );
        }
    }
    println!(
        "  bare:    {bare_inserts} single-row durable SQLite inserts: {bare_rate:.1} inserts/s"
    );
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
