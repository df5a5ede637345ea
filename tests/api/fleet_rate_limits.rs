//! Rate limits hold for the fleet: three daemons on one database send the account no more than
//! the configured rate per API class, as the emulator's call log sees it.

use std::collections::BTreeMap;

use akguard_emulator::Scenario;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cloud_support::{AKGUARD_KEY, AKGUARD_SECRET, calls};
use crate::remediation::daemon;

const KEYS: usize = 300;
/// Calls per second per class, as configured (the emulator itself enforces nothing).
const LIMITS: [(&str, f64); 3] = [("ram_write", 10.0), ("lookup_events", 2.0), ("other", 40.0)];
/// How long the burst is watched: long enough for every class to queue, well under a minute.
const WATCH: std::time::Duration = std::time::Duration::from_secs(10);

fn key_id(i: usize) -> String {
    format!("LTAI5tFleet{i:013}")
}

/// akguard's own user and `KEYS` users, each with one leaked key used an hour ago.
fn scenario() -> Scenario {
    let mut users = vec![json!({
        "name": "akguard",
        "create_date": "-120d",
        "policies": [{"name": "AliyunRAMFullAccess", "type": "System", "attach_date": "-120d"}],
        "access_keys": [{"id": AKGUARD_KEY, "secret": AKGUARD_SECRET, "create_date": "-120d"}],
    })];
    users.extend((0..KEYS).map(|i| {
        json!({
            "name": format!("svc-{i:04}"),
            "create_date": "-100d",
            "access_keys": [{
                "id": key_id(i),
                "secret": format!("fleetSecret{i:019}"),
                "create_date": "-100d",
                "last_used": "-1h",
                "last_used_service": "Ecs",
                "leaked": true,
            }],
        })
    }));
    let scenario = json!({
        "description": "a burst of leaked keys in use",
        "account": {"uid": "1234567890123456", "name": "acme", "alias": "acme", "access_keys": []},
        "users": users,
        "enforce_rate_limits": false,
    });
    Scenario::from_json(&scenario.to_string()).unwrap()
}

/// Every other leak was detected two hours ago, before the key's last use: triage asks
/// ActionTrail whose use that was, so every class has calls waiting.
fn notification(i: usize) -> String {
    let detected = Utc::now() - chrono::Duration::hours(2 * (i % 2) as i64);
    let body = json!({
        "access_key_id": key_id(i),
        "event_id": format!("fleet-{i}"),
        "detected_at": detected.to_rfc3339(),
    });
    body.to_string()
}

/// The client's API class of a logged call (`Request::new`'s rule).
fn class(call: &Value) -> &'static str {
    let action = call["action"].as_str().unwrap_or_default();
    let read = ["Get", "List", "Describe", "Query", "Lookup"]
        .iter()
        .any(|prefix| action.starts_with(prefix));
    match call["product"].as_str() {
        Some("actiontrail") if action == "LookupEvents" => "lookup_events",
        Some("ims") if action == "SetAccessKeyPolicy" => "access_key_policy",
        Some("ram" | "ims") if !read => "ram_write",
        _ => "other",
    }
}

/// Per class, the most calls in any one-second window `[t, t + 1 s)` that starts at a call,
/// and those calls (time and action).
fn busiest_windows(calls: &[Value]) -> BTreeMap<&'static str, Vec<(DateTime<Utc>, String)>> {
    let mut times: BTreeMap<&'static str, Vec<(DateTime<Utc>, String)>> = BTreeMap::new();
    for call in calls {
        let at = DateTime::parse_from_rfc3339(call["at"].as_str().unwrap()).unwrap();
        let action = call["action"].as_str().unwrap_or_default().to_owned();
        times
            .entry(class(call))
            .or_default()
            .push((at.to_utc(), action));
    }
    times
        .into_iter()
        .map(|(class, mut times)| {
            times.sort();
            let second = chrono::Duration::seconds(1);
            let busiest = (0..times.len())
                .map(|i| &times[i..][..times[i..].partition_point(|t| t.0 < times[i].0 + second)])
                .max_by_key(|window| window.len())
                .unwrap_or_default();
            (class, busiest.to_vec())
        })
        .collect()
}

/// The emulator on a thread and runtime of its own, stopped when this is dropped. On the
/// test's runtime it waited behind the test's own posting of the burst: calls sent 25 ms
/// apart were stamped on arrival within a millisecond of each other once it got a turn, and
/// one second seemed to hold more than the limit.
struct EmulatorApart {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl EmulatorApart {
    fn start(scenario: Scenario) -> (String, Self) {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (url_tx, url_rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let (url, guard) = akguard_emulator::spawn(scenario).await.unwrap();
                url_tx.send(url).unwrap();
                let _ = stopped.await;
                drop(guard);
            });
        });
        let url = url_rx.recv().expect("the emulator started");
        let apart = Self {
            stop: Some(stop),
            thread: Some(thread),
        };
        (url, apart)
    }
}

impl Drop for EmulatorApart {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_daemons_keep_each_api_class_within_its_limit_during_a_burst() {
    let (url, _emulator) = EmulatorApart::start(scenario());
    let limits = [
        ("AKGUARD__REMEDIATION__WORKERS", "16"),
        ("AKGUARD__ALIBABA__RATE_LIMITS__RAM_WRITES", "10"),
        ("AKGUARD__ALIBABA__RATE_LIMITS__LOOKUP_EVENTS", "2"),
        ("AKGUARD__ALIBABA__RATE_LIMITS__OTHER", "40"),
    ];
    let first = daemon(&url, &limits).await;
    let fleet = [first.spawn_another().await, first.spawn_another().await];
    // The burst arrives spread over the three at once.
    let share = |d: usize| (d..KEYS).step_by(3).map(notification).collect();
    let posted = tokio::join!(
        first.post_generic_all(share(0)),
        fleet[0].post_generic_all(share(1)),
        fleet[1].post_generic_all(share(2)),
    );
    for responses in [posted.0, posted.1, posted.2] {
        assert!(responses.iter().all(|r| r.status == 202));
    }
    tokio::time::sleep(WATCH).await;
    let log = calls(&url).await;
    let busiest = busiest_windows(&log);
    for (class, limit) in LIMITS {
        let window = busiest.get(class).cloned().unwrap_or_default();
        let seen = window.len();
        assert!(
            seen as f64 <= limit * 1.05,
            "{seen} {class} calls in one second against a limit of {limit}/s: {window:?}"
        );
        // The fleet did run into the limit, or the check above proves nothing.
        assert!(
            seen as f64 >= limit * 0.8,
            "{class} never neared its limit: {seen} calls in its busiest second"
        );
    }
}
