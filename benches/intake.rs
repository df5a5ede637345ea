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
//! - `AKGUARD_BENCH_REPEAT` (default 3): repetitions of the whole sequence (every daemon run
//!   and both bare loops), each printed, then min/median/max over them of each figure;
//! - `AKGUARD_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`): the
//!   PostgreSQL server of the last run (notifications and metrics off), in a fresh database
//!   created for it and dropped after, against a bare loop of single-row durable inserts over
//!   as many connections as the daemon's pool;
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

use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{ConnectOptions, Connection, Executor, PgConnection};

use support::{Daemon, Observe, Observed, Observer, env_count, percentile, post_signed};

const WARMUP_REQUESTS: usize = 100;
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);
/// Bounds each phase, so a stuck daemon or disk ends the run instead of hanging it.
const PHASE_TIMEOUT: Duration = Duration::from_secs(600);
/// Failures are counted in full, but only the first few are kept to explain them.
const FAILURE_SAMPLES: usize = 5;
/// The daemon's pool size (`database.max_connections`), given to the bare PostgreSQL loop too.
const CONNECTIONS: usize = 4;
const DEFAULT_POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn main() {
    let requests = env_count("AKGUARD_BENCH_REQUESTS", 5000);
    let concurrency = env_count("AKGUARD_BENCH_CONCURRENCY", 32);
    let bare_inserts = env_count("AKGUARD_BENCH_BARE_INSERTS", 2000);

    let repeat = env_count("AKGUARD_BENCH_REPEAT", 3);
    let admin =
        std::env::var("AKGUARD_BENCH_DATABASE_URL").unwrap_or_else(|_| DEFAULT_POSTGRES.to_owned());
    let runtime = tokio::runtime::Runtime::new().expect("start a tokio runtime");
    let modes = Observe::from_env();
    let mut repetitions = Vec::with_capacity(repeat);
    for n in 1..=repeat {
        println!("repetition {n} of {repeat}");
        repetitions.push(repetition(
            &runtime,
            &admin,
            &modes,
            requests,
            concurrency,
            bare_inserts,
        ));
    }
    print_spread(&modes, &repetitions);
}

/// One repetition's figures: accepted/s and p99 (ms) of each daemon run, and the bare rates.
struct Repetition {
    sqlite: Vec<(f64, f64)>,
    bare: f64,
    postgres: (f64, f64),
    postgres_bare: f64,
}

/// Every daemon run on SQLite, the bare SQLite loop, then the same on PostgreSQL.
fn repetition(
    runtime: &tokio::runtime::Runtime,
    admin: &str,
    modes: &[Observe],
    requests: usize,
    concurrency: usize,
    bare_inserts: usize,
) -> Repetition {
    // Under target/, so the daemon's database and the bare one share a disk (not a tmpfs).
    let dir = support::target_tempdir("bench-");
    let runs: Vec<(Observe, LoadReport, Observed)> = modes
        .iter()
        .map(|&mode| {
            let (load, observed) = daemon_load(runtime, mode, None, requests, concurrency);
            (mode, load, observed)
        })
        .collect();

    let bare = runtime.block_on(within_phase_timeout(
        "bare inserts",
        bare_insert_rate(&dir.path().join("bare.db"), bare_inserts),
    ));

    print_summary(&runs, concurrency, bare_inserts, bare);

    let (url, name) = runtime.block_on(create_postgres_database(admin));
    let (pg_load, _) = daemon_load(runtime, Observe::Off, Some(&url), requests, concurrency);
    let pg_bare = runtime.block_on(within_phase_timeout(
        "bare PostgreSQL inserts",
        bare_postgres_rate(&url, bare_inserts),
    ));
    runtime.block_on(drop_postgres_database(admin, &name));
    print_postgres(&pg_load, concurrency, bare_inserts, pg_bare);
    assert!(
        pg_load.failures == 0,
        "PostgreSQL: {} of {requests} notifications were not accepted; first: {:?}",
        pg_load.failures,
        pg_load.failure_samples
    );
    for (mode, load, _) in &runs {
        assert!(
            load.failures == 0,
            "{}: {} of {requests} notifications were not accepted; first: {:?}",
            mode.label(),
            load.failures,
            load.failure_samples
        );
    }
    Repetition {
        sqlite: runs.iter().map(|(_, load, _)| rate_and_p99(load)).collect(),
        bare,
        postgres: rate_and_p99(&pg_load),
        postgres_bare: pg_bare,
    }
}

/// Accepted notifications per second and p99 latency in milliseconds.
fn rate_and_p99(load: &LoadReport) -> (f64, f64) {
    let mut latencies = load.latencies.clone();
    latencies.sort_unstable();
    (
        latencies.len() as f64 / load.wall.as_secs_f64(),
        millis(percentile(&latencies, 0.99)),
    )
}

/// Min/median/max over the repetitions of each figure, with the goals beside them.
fn print_spread(modes: &[Observe], repetitions: &[Repetition]) {
    println!(
        "over {} repetitions (min / median / max):",
        repetitions.len()
    );
    for (i, mode) in modes.iter().enumerate() {
        let of = |f: &dyn Fn(&Repetition) -> f64| spread(repetitions.iter().map(f));
        println!("  SQLite, {}:", mode.label());
        println!("           accepted/s {}", of(&|r| r.sqlite[i].0));
        println!(
            "           p99 ms     {} (goal: under 25)",
            of(&|r| r.sqlite[i].1)
        );
        println!(
            "           daemon / bare {} (goal: at least 1.0)",
            of(&|r| r.sqlite[i].0 / r.bare)
        );
        if i > 0 && modes[0] == Observe::Off {
            println!(
                "           {} / off {} (goal: at least 0.95)",
                mode.label(),
                of(&|r| r.sqlite[i].0 / r.sqlite[0].0)
            );
        }
    }
    let of = |f: &dyn Fn(&Repetition) -> f64| spread(repetitions.iter().map(f));
    println!("  SQLite bare inserts/s {}", of(&|r| r.bare));
    println!("  PostgreSQL, off:");
    println!("           accepted/s {}", of(&|r| r.postgres.0));
    println!(
        "           p99 ms     {} (goal: under 50)",
        of(&|r| r.postgres.1)
    );
    println!(
        "           daemon / bare {} (goal: at least 1.0)",
        of(&|r| r.postgres.0 / r.postgres_bare)
    );
    println!("  PostgreSQL bare inserts/s {}", of(&|r| r.postgres_bare));
}

/// `min / median / max` of `values`.
fn spread(values: impl Iterator<Item = f64>) -> String {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    let median = match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    };
    let (min, max) = (values.first(), values.last());
    format!(
        "{:.2} / {median:.2} / {:.2}",
        min.copied().unwrap_or(f64::NAN),
        max.copied().unwrap_or(f64::NAN)
    )
}

/// One daemon, on a fresh database, in `mode`: warm-up, then the measured notifications.
fn daemon_load(
    runtime: &tokio::runtime::Runtime,
    mode: Observe,
    database_url: Option<&str>,
    requests: usize,
    concurrency: usize,
) -> (LoadReport, Observed) {
    let dir = support::target_tempdir("bench-");
    let mut observer = runtime.block_on(Observer::start(mode));
    let database_url = database_url
        .map(str::to_owned)
        .unwrap_or_else(|| support::sqlite_url(dir.path()));
    // `[database]` comes just before `[log]` in the base config.
    let base = support::base_config(&database_url)
        .replace("[log]", &format!("max_connections = {CONNECTIONS}\n[log]"));
    let config = format!("{base}{}", observer.config());
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

/// Durable single-row PostgreSQL inserts per second, `CONNECTIONS` connections inserting at
/// once, each INSERT its own transaction.
async fn bare_postgres_rate(url: &str, inserts: usize) -> f64 {
    let pool = PgPoolOptions::new()
        .max_connections(CONNECTIONS as u32)
        .connect(url)
        .await
        .expect("connect to the bare PostgreSQL database");
    pool.execute(
        "CREATE TABLE bare_notifications (
            id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            access_key_id TEXT NOT NULL,
            received_at BIGINT NOT NULL,
            body TEXT NOT NULL
        )",
    )
    .await
    .expect("create the bare table");
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let loops: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let (pool, next) = (pool.clone(), Arc::clone(&next));
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= inserts {
                        break;
                    }
                    let key = format!("LTAI5tBench{i:012}");
                    let body = serde_json::json!({ "access_key_id": key, "event_id": format!("bench-{i}") });
                    sqlx::query(
                        "INSERT INTO bare_notifications (access_key_id, received_at, body) \
                         VALUES ($1, $2, $3)",
                    )
                    .bind(&key)
                    .bind(chrono::Utc::now().timestamp())
                    .bind(body.to_string())
                    .execute(&pool)
                    .await
                    .expect("insert a bare row");
                }
            })
        })
        .collect();
    for bare in loops {
        bare.await.expect("a bare insert loop panicked");
    }
    let rate = inserts as f64 / started.elapsed().as_secs_f64();
    pool.close().await;
    rate
}

/// Creates a fresh `akguard_bench_<random>` database through `admin`: its URL and name.
async fn create_postgres_database(admin: &str) -> (String, String) {
    let mut conn = PgConnection::connect(admin).await.unwrap_or_else(|e| {
        panic!(
            "PostgreSQL is not reachable at {admin} ({e}): start it, or set \
             AKGUARD_BENCH_DATABASE_URL to a server whose role may CREATE DATABASE"
        )
    });
    let name = format!("akguard_bench_{}", std::process::id());
    conn.execute(&*format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop a leftover bench database");
    conn.execute(&*format!("CREATE DATABASE {name}"))
        .await
        .expect("create the bench database");
    let (server, _) = admin.rsplit_once('/').expect("a URL ending in /DATABASE");
    (format!("{server}/{name}"), name)
}

async fn drop_postgres_database(admin: &str, name: &str) {
    let mut conn = PgConnection::connect(admin)
        .await
        .expect("reconnect to PostgreSQL");
    conn.execute(&*format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the bench database");
}

fn print_postgres(load: &LoadReport, concurrency: usize, bare_inserts: usize, bare_rate: f64) {
    let mut latencies = load.latencies.clone();
    latencies.sort_unstable();
    let accepted_rate = latencies.len() as f64 / load.wall.as_secs_f64();
    println!("  PostgreSQL, off:");
    println!(
        "           {} notifications, concurrency {concurrency}: {accepted_rate:.1} accepted/s, \
         p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        latencies.len() + load.failures,
        millis(percentile(&latencies, 0.50)),
        millis(percentile(&latencies, 0.99)),
        millis(latencies.last().copied().unwrap_or_default()),
    );
    println!(
        "  bare:    {bare_inserts} single-row durable PostgreSQL inserts, {CONNECTIONS} \
         connections: {bare_rate:.1} inserts/s"
    );
    println!(
        "           daemon / bare = {:.2}",
        accepted_rate / bare_rate
    );
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
