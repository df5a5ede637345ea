//! The fleet-wide rate limit's cost: three stores on one database (three replicas), each with
//! its own `RateLimiter` drawing from the shared schedule, take slots for one class as fast as
//! the limit lets them, with containment, normal and forensics callers mixed.
//!
//! Reports per backend: database round trips per call (a granted take is one statement, a
//! refused one two), the latency a take adds to a call (p50/p99), the rate the fleet achieved
//! against the limit, and the busiest one-second window of slots.
//!
//! - `AKGUARD_BENCH_QUOTA_CALLS` (default 600): calls per backend, spread over the replicas;
//! - `AKGUARD_BENCH_DATABASE_URL` (default `postgres://postgres@127.0.0.1:5432/postgres`): a
//!   server on which a fresh database is created and dropped.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akguard::app::StoreLedger;
use akguard::cloud::ratelimit::{
    ApiClass, FleetSlot, LedgerError, Priority, RateLimiter, SlotLedger,
};
use async_trait::async_trait;
use sqlx::{Connection, Executor, PgConnection};

const RATE: f64 = 50.0;
const REPLICAS: usize = 3;
const CALLERS_PER_REPLICA: usize = 8;

/// Times and counts the round trips of the ledger it wraps.
struct Measured {
    inner: StoreLedger,
    round_trips: AtomicU64,
    granted: AtomicU64,
    take_latency: Mutex<Vec<Duration>>,
}

#[async_trait]
impl SlotLedger for Measured {
    async fn take(
        &self,
        class: ApiClass,
        interval: Duration,
        within: Option<Duration>,
    ) -> Result<FleetSlot, LedgerError> {
        let started = Instant::now();
        let slot = self.inner.take(class, interval, within).await;
        self.take_latency.lock().unwrap().push(started.elapsed());
        let trips = match slot {
            Ok(FleetSlot::Busy { .. }) => 2,
            Ok(FleetSlot::At(_)) => {
                self.granted.fetch_add(1, Ordering::Relaxed);
                1
            }
            Err(_) => 1,
        };
        self.round_trips.fetch_add(trips, Ordering::Relaxed);
        slot
    }
}

struct Report {
    calls: usize,
    round_trips: u64,
    /// Slots granted but given up because the caller woke too late for them.
    rebooked: u64,
    latencies: Vec<Duration>,
    elapsed: Duration,
    busiest_window: usize,
}

async fn run(url: &str, calls: usize) -> Report {
    let mut ledgers = Vec::new();
    let mut limiters = Vec::new();
    for _ in 0..REPLICAS {
        let store = akguard::store::open(url, 4).await.expect("open the store");
        store.migrate().await.expect("migrate");
        let ledger = Arc::new(Measured {
            inner: StoreLedger::new(store, "bench".into()),
            round_trips: AtomicU64::new(0),
            granted: AtomicU64::new(0),
            take_latency: Mutex::new(Vec::new()),
        });
        let limiter = RateLimiter::new(&[(ApiClass::RamWrite, RATE)]).shared(ledger.clone());
        ledgers.push(ledger);
        limiters.push(Arc::new(limiter));
    }
    let per_caller = calls / (REPLICAS * CALLERS_PER_REPLICA);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let mut callers = Vec::new();
    for limiter in &limiters {
        for c in 0..CALLERS_PER_REPLICA {
            let priority = [Priority::Containment, Priority::Normal, Priority::Forensics][c % 3];
            let (limiter, sent) = (limiter.clone(), sent.clone());
            callers.push(tokio::spawn(async move {
                for _ in 0..per_caller {
                    limiter.acquire(ApiClass::RamWrite, priority).await;
                    sent.lock().unwrap().push(Instant::now());
                }
            }));
        }
    }
    for caller in callers {
        caller.await.expect("a caller panicked");
    }
    let elapsed = started.elapsed();
    let mut sent = sent.lock().unwrap().clone();
    sent.sort();
    let busiest_window = (0..sent.len())
        .map(|i| sent[i..].partition_point(|t| *t < sent[i] + Duration::from_secs(1)))
        .max()
        .unwrap_or(0);
    let mut latencies: Vec<Duration> = ledgers
        .iter()
        .flat_map(|l| l.take_latency.lock().unwrap().clone())
        .collect();
    latencies.sort_unstable();
    Report {
        calls: sent.len(),
        round_trips: ledgers
            .iter()
            .map(|l| l.round_trips.load(Ordering::Relaxed))
            .sum(),
        rebooked: ledgers
            .iter()
            .map(|l| l.granted.load(Ordering::Relaxed))
            .sum::<u64>()
            - sent.len() as u64,
        latencies,
        elapsed,
        busiest_window,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

fn print(backend: &str, report: &Report) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "quota {backend:<8} {} calls from {REPLICAS} replicas at {RATE}/s: {:.2} round trips per call ({} slots rebooked); \
         take p50 {:.2} ms, p99 {:.2} ms; achieved {:.1}/s; busiest one-second window {} (limit {RATE})",
        report.calls,
        report.round_trips as f64 / report.calls as f64,
        report.rebooked,
        ms(percentile(&report.latencies, 0.50)),
        ms(percentile(&report.latencies, 0.99)),
        report.calls as f64 / report.elapsed.as_secs_f64(),
        report.busiest_window,
    );
}

#[tokio::main]
async fn main() {
    let calls = match std::env::var("AKGUARD_BENCH_QUOTA_CALLS") {
        Ok(n) => n.parse().expect("AKGUARD_BENCH_QUOTA_CALLS is a count"),
        Err(_) => 600,
    };
    let dir = tempfile::Builder::new()
        .prefix("quota-bench")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .expect("create a temporary directory under target/");
    let sqlite = format!("sqlite://{}", dir.path().join("akguard.db").display());
    print("sqlite", &run(&sqlite, calls).await);

    let admin = std::env::var("AKGUARD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let mut conn = PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL is reachable at AKGUARD_BENCH_DATABASE_URL");
    let name = format!("akguard_quota_bench_{}", std::process::id());
    conn.execute(&*format!("CREATE DATABASE {name}"))
        .await
        .expect("create the bench database");
    let (server, _) = admin.rsplit_once('/').expect("a URL ending in /DATABASE");
    print("postgres", &run(&format!("{server}/{name}"), calls).await);
    conn.execute(&*format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the bench database");
}
