//! Three replicas on one PostgreSQL database against the in-process emulator (50 ms per
//! call), RAM writes limited to 20 per second for the whole fleet.
//!
//! 1. Burst: `AKGUARD_BENCH_BURST` leaked keys in use (default 500) reported at once, spread
//!    over the three replicas; containment is one `AttachPolicyToUser` per key, so it needs
//!    `keys / 20` seconds (the floor, 25 s). Goal: the last `contained_at` at most 1.05 × the
//!    floor after the first report is sent, and no one-second window in which the emulator
//!    saw more than 20 RAM writes.
//! 2. Failover: the same burst; a third of the floor into it, the replica holding the most
//!    leases is killed with SIGKILL. Reports the extra time to the last containment over the
//!    burst's (goal: at most the lease, 5 s here, + 1 s).
//!
//! Each phase runs `AKGUARD_BENCH_RUNS` times (default 3); min, median and max are printed.
//! A missed goal prints FAIL; only a run that cannot finish fails the bench.
//!
//! `cargo bench --bench fleet`; `AKGUARD_BENCH_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`) names the server on which each run creates
//! and drops a database of its own.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use akguard::intake::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign_webhook};
use akguard_emulator::{self as emulator, Scenario};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sqlx::{Connection, Executor, PgConnection};

const REPLICAS: usize = 3;
const RAM_WRITES_PER_SECOND: usize = 20;
const LATENCY_MS: u64 = 50;
const WORKERS: usize = 32;
const LEASE: Duration = Duration::from_secs(5);
const GOAL_FACTOR: f64 = 1.05;
const SECRET: &str = "bench-hmac-secret-0123456789";
const API_TOKEN: &str = "bench-viewer-token-0123456789";
const AKGUARD_KEY_ID: &str = "LTAI5tAKGUARDEMULATOR001";
const AKGUARD_KEY_SECRET: &str = "akguardEmulatorSecretDoNotUse0";
const WAIT: Duration = Duration::from_secs(180);

fn key_id(i: usize) -> String {
    format!("LTAI5tFleet{i:013}")
}

/// akguard's own user and `users` users, each with one leaked key used an hour ago and no
/// console access.
fn scenario(users: usize) -> Scenario {
    let mut list = vec![json!({
        "name": "akguard",
        "create_date": "-120d",
        "policies": [{"name": "AliyunRAMFullAccess", "type": "System", "attach_date": "-120d"}],
        "access_keys": [{"id": AKGUARD_KEY_ID, "secret": AKGUARD_KEY_SECRET, "create_date": "-120d"}],
    })];
    list.extend((0..users).map(|i| {
        json!({
            "name": format!("svc-{i:04}"),
            "create_date": "-100d",
            "access_keys": [{"id": key_id(i), "secret": format!("fleetSecret{i:019}"),
                "create_date": "-100d", "last_used": "-1h", "last_used_service": "Ecs",
                "leaked": true}],
        })
    }));
    let scenario = json!({
        "description": "akguard fleet benchmark",
        "account": {"uid": "1234567890123456", "name": "acme", "alias": "acme", "access_keys": []},
        "users": list,
        "faults": {"latency_ms": LATENCY_MS},
        "enforce_rate_limits": false,
    });
    Scenario::from_json(&scenario.to_string()).expect("a valid scenario")
}

fn config(dir: &std::path::Path, database_url: &str, emulator_url: &str) -> String {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"bench\"\nsha256 = \"{}\"\nrole = \"viewer\"\n",
            hex::encode(Sha256::digest(API_TOKEN.as_bytes()))
        ),
    )
    .expect("write the token file");
    format!(
        r#"[server]
listen = "127.0.0.1:0"
[database]
url = "{database_url}"
[log]
format = "json"
level = "warn,akguard::app=info"
[intake.sources.generic]
auth = "hmac"
[intake.security_center]
enabled = false
[api]
tokens_file = "{tokens}"
[alibaba]
endpoint = "{emulator_url}"
access_key_id = "{AKGUARD_KEY_ID}"
[alibaba.rate_limits]
lookup_events = 2.0
ram_writes = {RAM_WRITES_PER_SECOND}.0
other = 0.0
[remediation]
workers = {WORKERS}
lease = "{lease}s"
[audit]
settle_delay = "1h"
"#,
        tokens = tokens.display(),
        lease = LEASE.as_secs(),
    )
}

/// One `akguard serve`; killed with SIGKILL when dropped.
struct Replica {
    child: Child,
    base: String,
    id: String,
}

impl Replica {
    async fn start(config: &std::path::Path, client: &reqwest::Client) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_akguard"))
            .arg("serve")
            .arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .env("AKGUARD__INTAKE__SOURCES__GENERIC__SECRET", SECRET)
            .env("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_KEY_SECRET)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the akguard binary");
        let stderr = child.stderr.take().expect("stderr is piped");
        let (tx, rx) = mpsc::channel();
        // Drained to the end so the pipe never fills.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str::<Value>(&line)
                    && event["message"] == "listening"
                {
                    let _ = tx.send(event["addr"].as_str().unwrap_or_default().to_owned());
                }
            }
        });
        let addr = tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(30)))
            .await
            .expect("the wait for the listener")
            .expect("the replica listens within 30 s");
        let base = format!("http://{addr}");
        let status: Value = get(client, &format!("{base}/v1/status")).await;
        let id = status["replica"].as_str().expect("a replica id").to_owned();
        Self { child, base, id }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn get(client: &reqwest::Client, url: &str) -> Value {
    let response = client
        .get(url)
        .bearer_auth(API_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(
        response.status().is_success(),
        "GET {url}: {}",
        response.status()
    );
    response.json().await.expect("a JSON answer")
}

async fn report(client: &reqwest::Client, base: &str, key: &str) -> i64 {
    let body = json!({"access_key_id": key, "event_id": format!("fleet-{key}"),
        "detected_at": Utc::now().to_rfc3339()})
    .to_string();
    let timestamp = Utc::now().timestamp().to_string();
    let response = client
        .post(format!("{base}/v1/notifications/generic"))
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, &timestamp)
        .header(
            SIGNATURE_HEADER,
            sign_webhook(SECRET, &timestamp, body.as_bytes()),
        )
        .body(body)
        .send()
        .await
        .expect("the report reaches the replica");
    assert_eq!(response.status(), 202, "report of {key}");
    let answer: Value = response.json().await.expect("a JSON answer");
    answer["incident_id"].as_i64().expect("an incident id")
}

/// Every incident, through the pages of the status API of replica `base`.
async fn incidents(client: &reqwest::Client, base: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = get(client, &format!("{base}/v1/incidents?limit=200{cursor}")).await;
        all.extend(page["incidents"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = format!("&cursor={next}"),
            None => return all,
        }
    }
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v.as_str()?)
        .ok()
        .map(|t| t.to_utc())
}

/// The latest `contained_at` once all `count` incidents have one (bounded).
async fn last_containment(client: &reqwest::Client, base: &str, count: usize) -> DateTime<Utc> {
    let deadline = Instant::now() + WAIT;
    loop {
        let list = incidents(client, base).await;
        let contained: Vec<DateTime<Utc>> = list
            .iter()
            .filter_map(|i| time(&i["contained_at"]))
            .collect();
        if contained.len() >= count {
            return contained.into_iter().max().expect("contained incidents");
        }
        assert!(
            Instant::now() < deadline,
            "{} of {count} contained after {WAIT:?}",
            contained.len()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// When the emulator saw each RAM write, in order.
fn ram_writes(calls: &[Value]) -> Vec<DateTime<Utc>> {
    let mut times: Vec<DateTime<Utc>> = calls
        .iter()
        .filter(|c| {
            let action = c["action"].as_str().unwrap_or_default();
            let read = ["Get", "List", "Describe", "Query", "Lookup"]
                .iter()
                .any(|p| action.starts_with(p));
            matches!(c["product"].as_str(), Some("ram" | "ims")) && !read
        })
        .filter_map(|c| time(&c["at"]))
        .collect();
    times.sort();
    times
}

/// The most of `times` (sorted) in any one-second window.
fn busiest_window(times: &[DateTime<Utc>]) -> usize {
    let second = chrono::Duration::seconds(1);
    (0..times.len())
        .map(|i| times[i..].partition_point(|t| *t < times[i] + second))
        .max()
        .unwrap_or(0)
}

struct Run {
    /// From the first report sent to the last containment.
    last: Duration,
    busiest: usize,
    /// RAM writes during the burst, and from the first report to the first and last of them.
    writes: usize,
    first_write: Duration,
    last_write: Duration,
}

/// One burst on a fresh database; with `kill`, the replica holding the most leases is
/// killed a third of the floor in.
async fn burst(admin: &str, keys: usize, kill: bool) -> Run {
    let mut conn = PgConnection::connect(admin)
        .await
        .expect("PostgreSQL is reachable at AKGUARD_BENCH_DATABASE_URL");
    let name = format!("akguard_fleet_bench_{}", std::process::id());
    conn.execute(&*format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .expect("drop a leftover bench database");
    conn.execute(&*format!("CREATE DATABASE {name}"))
        .await
        .expect("create the bench database");
    let (server, _) = admin.rsplit_once('/').expect("a URL ending in /DATABASE");
    let database_url = format!("{server}/{name}");

    // One user more than reported: its key is contained first, alone, creating the policy.
    let (emulator_url, emulator) = emulator::spawn(scenario(keys + 1))
        .await
        .expect("start the emulator");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let path = dir.path().join("akguard.toml");
    std::fs::write(&path, config(dir.path(), &database_url, &emulator_url))
        .expect("write the config");
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .pool_max_idle_per_host(64)
        .build()
        .expect("an HTTP client");
    let mut fleet = Vec::new();
    for _ in 0..REPLICAS {
        fleet.push(Replica::start(&path, &client).await);
    }
    report(&client, &fleet[0].base, &key_id(keys)).await;
    last_containment(&client, &fleet[0].base, 1).await;
    let calls_before = calls(&client, &emulator_url).await.len();

    let first_sent = Utc::now();
    let mut posts = Vec::new();
    for i in 0..keys {
        let (client, base) = (client.clone(), fleet[i % REPLICAS].base.clone());
        posts.push(tokio::spawn(async move {
            report(&client, &base, &key_id(i)).await
        }));
    }
    for post in posts {
        post.await.expect("a report task");
    }
    if kill {
        let floor = keys as f64 / RAM_WRITES_PER_SECOND as f64;
        let at = first_sent + chrono::Duration::milliseconds((floor * 1000.0 / 3.0) as i64);
        tokio::time::sleep((at - Utc::now()).to_std().unwrap_or_default()).await;
        let victim = most_leases(&client, &fleet).await;
        drop(fleet.remove(victim));
    }
    let last = last_containment(&client, &fleet[0].base, keys + 1).await;
    let log = calls(&client, &emulator_url).await;
    drop(fleet);
    drop(emulator);
    conn.execute(&*format!("DROP DATABASE {name} WITH (FORCE)"))
        .await
        .expect("drop the bench database");
    let writes = ram_writes(&log[calls_before..]);
    let mut per_target: HashMap<String, usize> = HashMap::new();
    for call in &log[calls_before..] {
        let action = call["action"].as_str().unwrap_or_default();
        if action.starts_with("Attach") || action.starts_with("Update") {
            let key = format!("{action} {} {}", call["params"]["UserName"], call["status"]);
            *per_target.entry(key).or_default() += 1;
        }
    }
    let repeated: Vec<_> = per_target
        .iter()
        .filter(|(k, n)| **n > 1 || !k.ends_with(" 200"))
        .collect();
    if !repeated.is_empty() {
        println!("fleet     writes repeated or refused: {repeated:?}");
    }
    let since = |t: Option<&DateTime<Utc>>| {
        t.and_then(|t| (*t - first_sent).to_std().ok())
            .unwrap_or_default()
    };
    Run {
        last: (last - first_sent).to_std().unwrap_or_default(),
        busiest: busiest_window(&writes),
        writes: writes.len(),
        first_write: since(writes.first()),
        last_write: since(writes.last()),
    }
}

/// The index of the replica whose workers hold the most unexpired leases now.
async fn most_leases(client: &reqwest::Client, fleet: &[Replica]) -> usize {
    let now = Utc::now();
    let mut held: HashMap<String, usize> = HashMap::new();
    for incident in incidents(client, &fleet[0].base).await {
        if let (Some(owner), Some(until)) = (
            incident["lease_owner"].as_str(),
            time(&incident["lease_expires_at"]),
        ) && until > now
        {
            // A worker's owner name is `{replica}-{n}`.
            let replica = owner.rsplit_once('-').map_or(owner, |(r, _)| r);
            *held.entry(replica.to_owned()).or_default() += 1;
        }
    }
    let victim = (0..fleet.len())
        .max_by_key(|i| held.get(&fleet[*i].id).copied().unwrap_or(0))
        .expect("replicas");
    println!(
        "fleet     killed replica {} holding {} of {} leases",
        fleet[victim].id,
        held.get(&fleet[victim].id).copied().unwrap_or(0),
        held.values().sum::<usize>()
    );
    victim
}

async fn calls(client: &reqwest::Client, emulator_url: &str) -> Vec<Value> {
    let log = get(client, &format!("{emulator_url}/_emulator/calls")).await;
    log["calls"].as_array().cloned().unwrap_or_default()
}

/// min / median / max of `values`, in seconds.
fn spread(mut values: Vec<f64>) -> String {
    values.sort_by(f64::total_cmp);
    format!(
        "min {:.2} s, median {:.2} s, max {:.2} s",
        values[0],
        values[values.len() / 2],
        values[values.len() - 1]
    )
}

#[tokio::main]
async fn main() {
    let count = |name: &str, default: usize| match std::env::var(name) {
        Ok(v) => v.parse().unwrap_or_else(|_| panic!("{name} is a count")),
        Err(_) => default,
    };
    let keys = count("AKGUARD_BENCH_BURST", 500);
    let runs = count("AKGUARD_BENCH_RUNS", 3).max(1);
    let admin = std::env::var("AKGUARD_BENCH_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let floor = keys as f64 / RAM_WRITES_PER_SECOND as f64;
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };

    let mut plain = Vec::new();
    let mut failed_over = Vec::new();
    for run in 1..=runs {
        let calm = burst(&admin, keys, false).await;
        let chaos = burst(&admin, keys, true).await;
        for (what, r) in [("burst", &calm), ("with a kill", &chaos)] {
            println!(
                "fleet run {run} {what}: last containment {:.2} s; {} RAM writes from {:.2} s to {:.2} s, busiest second {}",
                r.last.as_secs_f64(),
                r.writes,
                r.first_write.as_secs_f64(),
                r.last_write.as_secs_f64(),
                r.busiest
            );
        }
        plain.push(calm);
        failed_over.push(chaos);
    }
    let worst_plain = plain
        .iter()
        .map(|r| r.last.as_secs_f64())
        .fold(0.0, f64::max);
    let over = plain
        .iter()
        .chain(&failed_over)
        .map(|r| r.busiest.saturating_sub(RAM_WRITES_PER_SECOND))
        .max()
        .unwrap_or(0);
    println!(
        "fleet burst    {REPLICAS} replicas, {keys} keys, RAM writes {RAM_WRITES_PER_SECOND}/s: last containment {} \
         (floor {floor:.1} s, goal <= {:.2} s) {}",
        spread(plain.iter().map(|r| r.last.as_secs_f64()).collect()),
        GOAL_FACTOR * floor,
        verdict(worst_plain <= GOAL_FACTOR * floor)
    );
    println!(
        "fleet limit    busiest one-second window over all runs: {} RAM writes above the limit {}",
        over,
        verdict(over == 0)
    );
    let extra: Vec<f64> = plain
        .iter()
        .zip(&failed_over)
        .map(|(p, f)| f.last.as_secs_f64() - p.last.as_secs_f64())
        .collect();
    let worst_extra = extra.iter().copied().fold(f64::MIN, f64::max);
    let goal = LEASE.as_secs_f64() + 1.0;
    println!(
        "fleet failover the replica with the most leases killed at floor/3: extra time to the last containment {} \
         (goal <= lease {} s + 1 s) {}",
        spread(extra),
        LEASE.as_secs(),
        verdict(worst_extra <= goal)
    );
}
