//! Remediation speed: the real daemon against the in-process Alibaba Cloud emulator, with
//! 50 ms added to every call.
//!
//! 1. Latency (the speed issue's P1): leaks of distinct in-use RAM keys reported at a steady
//!    rate; time to containment (the incident's `created_at` to its `contained_at`) p50, p99
//!    and max. Goal: p99 <= 1.25 x 3 round trips x 50 ms = 190 ms. From the emulator's call
//!    log it prints the containment path of one in-use incident and of one unused key
//!    (disabled, reported alone before the phase), each call with its start offset, the
//!    sequential round trips, and akguard's own time between calls (goal: p99 < 5 ms per gap);
//!    and a bare HTTP client's round trip to the emulator, which shows the emulator adds
//!    nothing to the configured latency.
//! 2. Burst: many distinct leaked keys at once with RAM writes limited to 20 per second, so
//!    containment alone needs `keys / 20` seconds (the floor). Goal: the last `contained_at`
//!    at most 1.15 × the floor after the first report is sent, while the MFA, audit and
//!    billing steps of the contained incidents wait or run behind containment.
//!
//! 3. Faults (the speed issue's P5): many distinct leaked keys at once while the emulator
//!    throttles 30 % of calls, fails 10 % with a server error and adds 100 ms to each. Goals:
//!    every incident settled (no step left to run) within 60 s of the first report, and time
//!    to containment p99 <= 5 s. Run once, with notifications and metrics off. It prints
//!    when every incident was past each stage, and from the emulator's call log when the MFA
//!    sweep's, the audit's and billing's calls ran.
//!
//! A missed goal prints FAIL and the numbers; only a phase that cannot finish fails the run.
//!
//! Run with `cargo bench --bench remediation`. Tunables (environment):
//! - `AKGUARD_BENCH_INCIDENTS` (default 200): incidents measured in the latency phase;
//! - `AKGUARD_BENCH_RATE` (default 10): their reports per second;
//! - `AKGUARD_BENCH_BURST` (default 500): keys reported at once in the burst phase;
//! - `AKGUARD_BENCH_FAULTS` (default 120, `off` to skip): keys reported at once in the faults
//!   phase;
//! - `AKGUARD_BENCH_OBSERVE` (default `off,on`; also `metrics`, `notifications`): both phases
//!   per mode, with on-call notifications (a Slack channel to a local stand-in) and
//!   `/metrics` (scraped every second) off or on;
//! - `AKGUARD_BENCH_FENCE` (default `off`): `on` configures the network fence for every
//!   benchmark user (`audit.known_cidrs = ["10.0.0.0/8"]`), so containment also sets the
//!   leaked key's network access policy and reads it back before and after.

#[path = "containment/mod.rs"]
mod containment;
#[path = "support/mod.rs"]
mod support;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use akguard_emulator::{EmulatorGuard, Scenario};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use support::{Daemon, Observe, Observed, Observer, env_count, percentile, post_signed};

/// A viewer token for the status API; the daemon holds only its SHA-256.
const API_TOKEN: &str = "bench-viewer-token-0123456789";
const AKGUARD_KEY_ID: &str = "LTAI5tAKGUARDEMULATOR001";
const AKGUARD_KEY_SECRET: &str = "akguardEmulatorSecretDoNotUse0";
/// Added by the emulator to every call.
const LATENCY_MS: u64 = 50;
/// `alibaba.rate_limits.ram_writes`: the RAM write quota the burst runs into; the network
/// fence's own API (`access_key_policy`) has a quota of its own, the same here.
const RAM_WRITES_PER_SECOND: f64 = 20.0;
const LATENCY_WORKERS: usize = 32;
const BURST_WORKERS: usize = 64;
/// Burst notifications in flight at once.
const BURST_CONCURRENCY: usize = 64;
/// Users whose keys are never reported.
const SPARE_USERS: usize = 4;
/// The burst goal (P3), as a multiple of the rate-limit floor.
const BURST_GOAL_FACTOR: f64 = 1.05;
/// P5's faults: the share of calls throttled, the share failed with a 5xx, the latency.
const FAULT_THROTTLE: f64 = 0.3;
const FAULT_ERRORS: f64 = 0.1;
const FAULT_LATENCY_MS: u64 = 100;
/// P5: every incident settled within this long after the first report.
const FAULTS_SETTLE_GOAL: Duration = Duration::from_secs(60);
/// P5: time to containment p99 under the faults at most this.
const FAULTS_TTC_GOAL_MS: i64 = 5_000;
const FAULTS_WAIT: Duration = Duration::from_secs(300);
/// P1: time to containment p99 at most 1.25 x 3 round trips x 50 ms.
const LATENCY_GOAL_MS: i64 = 190;
/// P1: akguard's own time between two calls on the containment path, p99 below this.
const GAP_GOAL_US: i64 = 5_000;
/// Bare round trips to the emulator, to show it adds nothing to the configured latency.
const BARE_CALLS: usize = 100;
/// A RAM user whose key was never used: triage has it disabled.
const UNUSED_USER: &str = "svc-unused";
const UNUSED_KEY: &str = "LTAI5tBenchUnused0000001";
/// Another, reported with its user's name, as a report that knows the user does.
const NAMED_USER: &str = "svc-unused-named";
const NAMED_KEY: &str = "LTAI5tBenchUnused0000002";
/// Calls of the steps after containment, counted during the burst.
const AUDIT_CALLS: &[&str] = &["LookupEvents"];
const BILLING_CALLS: &[&str] = &["QueryBillOverview", "QueryAccountBalance"];
const MFA_CALLS: &[&str] = &[
    "ListUsers",
    "GetLoginProfile",
    "GetUserMFAInfo",
    "UpdateLoginProfile",
];

/// The daemon waits up to its grace period (10 s) for the server, the workers and the writer.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(60);
const WARMUP_TIMEOUT: Duration = Duration::from_secs(60);
const LATENCY_WAIT: Duration = Duration::from_secs(180);
const BURST_WAIT: Duration = Duration::from_secs(120);
const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Lines of the daemon's log shown when a phase fails.
const LOG_TAIL_LINES: usize = 40;

fn main() {
    let incidents = env_count("AKGUARD_BENCH_INCIDENTS", 200);
    let rate = env_rate("AKGUARD_BENCH_RATE", 10.0);
    let burst = env_count("AKGUARD_BENCH_BURST", 500);

    let runtime = tokio::runtime::Runtime::new().expect("start a tokio runtime");
    let mut runs = Vec::new();
    for mode in Observe::from_env() {
        let latency = runtime.block_on(latency_phase(incidents, rate, mode));
        let burst = runtime.block_on(burst_phase(burst, mode));
        print_summary(mode, &latency, &burst);
        for (phase, status) in [
            ("latency", latency.daemon_exit),
            ("burst", burst.daemon_exit),
        ] {
            assert!(
                status.success(),
                "{phase} phase: the daemon exited with {status} after SIGTERM"
            );
        }
        runs.push((mode, latency, burst));
    }
    if let Some(((Observe::Off, latency_off, burst_off), others)) = runs.split_first() {
        for (mode, latency, burst) in others {
            print_comparison(*mode, latency_off, latency, burst_off, burst);
        }
    }
    // `off` skips the phase.
    let faulty = match std::env::var("AKGUARD_BENCH_FAULTS").as_deref() {
        Ok("off") => 0,
        _ => env_count("AKGUARD_BENCH_FAULTS", 120),
    };
    if faulty > 0 {
        let report = runtime.block_on(faults_phase(faulty));
        print_faults(&report);
        assert!(
            report.daemon_exit.success(),
            "faults phase: the daemon exited with {} after SIGTERM",
            report.daemon_exit
        );
    }
}

/// Reads a positive rate from the environment, or the default when unset.
fn env_rate(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Err(_) => default,
        Ok(value) => match value.trim().parse::<f64>() {
            Ok(r) if r.is_finite() && r > 0.0 => r,
            _ => panic!("{name} must be a positive number, got `{value}`"),
        },
    }
}

fn key_id(i: usize) -> String {
    // LTAI5t + 18 alphanumerics, like a real AccessKey ID.
    format!("LTAI5tBench{i:013}")
}

fn user_name(i: usize) -> String {
    format!("svc-{i:04}")
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

struct LatencyReport {
    incidents: usize,
    rate: f64,
    warmup: WarmUp,
    /// Time to containment of every measured incident, sorted.
    ttc_ms: Vec<i64>,
    /// One measured incident (the middle one reported).
    in_use: Sample,
    /// akguard's own time between calls on every measured containment path, sorted.
    gaps_us: Vec<i64>,
    /// The same gaps by the round trips they separate and the call they delayed, each sorted.
    gaps_by_pair: BTreeMap<String, Vec<i64>>,
    /// From the report's `created_at` to its first call, sorted.
    lead_in_us: Vec<i64>,
    /// How many measured incidents took how many sequential round trips.
    round_trips: BTreeMap<usize, usize>,
    /// A bare client's round trips to the emulator, sorted.
    bare_ms: Vec<f64>,
    daemon_exit: ExitStatus,
    observed: Observed,
}

/// One incident's containment path.
struct Sample {
    created_at: DateTime<Utc>,
    ttc_ms: i64,
    path: Vec<containment::Call>,
}

struct BurstReport {
    keys: usize,
    /// The first report sent to the last `contained_at`.
    last_containment: Duration,
    /// Measured incidents per state when all were first seen contained.
    states: BTreeMap<String, usize>,
    audit_calls: usize,
    billing_calls: usize,
    mfa_calls: usize,
    /// Successful policy attachments (the rate-limited containment writes) meanwhile, and
    /// when the first and the last reached the emulator, from the first report.
    attaches: usize,
    first_attach: Duration,
    last_attach: Duration,
    daemon_exit: ExitStatus,
    observed: Observed,
}

/// What the warm-up incidents, each handled alone, showed.
struct WarmUp {
    /// The first in-use key: its containment also creates the Deny policy.
    first_ttc_ms: i64,
    /// The unused key.
    unused: Sample,
    /// The unused key reported with its user's name.
    named: Sample,
}

async fn latency_phase(incidents: usize, rate: f64, mode: Observe) -> LatencyReport {
    let rig = Rig::start(
        1 + incidents + SPARE_USERS,
        LATENCY_WORKERS,
        mode,
        clean(),
        RAM_WRITES_PER_SECOND,
    )
    .await;
    let warmup = rig.warm_up().await;

    let url = rig.notify_url();
    let started = tokio::time::Instant::now();
    let mut sent = Vec::with_capacity(incidents);
    for n in 0..incidents {
        tokio::time::sleep_until(started + Duration::from_secs_f64(n as f64 / rate)).await;
        let (client, url) = (rig.client.clone(), url.clone());
        // Its own task, so a slow answer does not delay the next report.
        sent.push(tokio::spawn(async move {
            notify(&client, &url, &key_id(n + 1)).await
        }));
    }
    let mut ids = Vec::with_capacity(incidents);
    for report in sent {
        match report.await.expect("a report task panicked") {
            Ok(id) => ids.push(id),
            Err(why) => rig.fail(&format!("latency phase: a report failed: {why}")),
        }
    }
    let contained = rig
        .wait_contained("latency phase", &ids, LATENCY_WAIT)
        .await;
    let log = rig.emulator_calls().await;
    let samples: Vec<Sample> = contained
        .iter()
        .enumerate()
        .map(|(n, incident)| sample(&log, incident, &key_id(n + 1), &user_name(n + 1)))
        .collect();
    let mut ttc_ms: Vec<i64> = samples.iter().map(|s| s.ttc_ms).collect();
    ttc_ms.sort_unstable();
    let mut gaps_us = Vec::new();
    let mut gaps_by_pair: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut lead_in_us = Vec::new();
    let mut round_trips = BTreeMap::new();
    for s in &samples {
        let rounds = containment::rounds(&s.path);
        for (pair, gap) in rounds.pairs.into_iter().zip(&rounds.gaps_us) {
            gaps_by_pair.entry(pair).or_default().push(*gap);
        }
        gaps_us.extend(rounds.gaps_us);
        *round_trips.entry(rounds.count).or_insert(0) += 1;
        if let Some(first) = s.path.first() {
            lead_in_us.push(
                (first.at - s.created_at)
                    .num_microseconds()
                    .unwrap_or_default(),
            );
        }
    }
    gaps_us.sort_unstable();
    for gaps in gaps_by_pair.values_mut() {
        gaps.sort_unstable();
    }
    lead_in_us.sort_unstable();
    let bare_ms = containment::bare_round_trips(&rig.emulator_url, BARE_CALLS).await;
    let (daemon_exit, observed) = rig.stop();
    let mut samples = samples;
    let in_use = samples.swap_remove(samples.len() / 2);
    LatencyReport {
        incidents,
        rate,
        warmup,
        ttc_ms,
        in_use,
        gaps_us,
        gaps_by_pair,
        lead_in_us,
        round_trips,
        bare_ms,
        daemon_exit,
        observed,
    }
}

async fn burst_phase(keys: usize, mode: Observe) -> BurstReport {
    let rig = Rig::start(
        1 + keys + SPARE_USERS,
        BURST_WORKERS,
        mode,
        clean(),
        RAM_WRITES_PER_SECOND,
    )
    .await;
    // Creates the policy, so the burst measures attaching it, as in the steady state.
    rig.warm_up().await;

    let first_sent = Utc::now();
    let (ids, failures) = fire(&rig.client, &rig.notify_url(), 1..keys + 1).await;
    if !failures.is_empty() {
        rig.fail(&format!(
            "burst phase: {} of {keys} reports failed; first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        ));
    }
    let contained = rig.wait_contained("burst phase", &ids, BURST_WAIT).await;
    let last_contained = contained
        .iter()
        .map(|incident| timestamp(&incident["contained_at"]).expect("contained_at is set"))
        .max()
        .expect("the burst has incidents");
    let mut states = BTreeMap::new();
    for incident in &contained {
        let state = incident["state"].as_str().unwrap_or("?").to_owned();
        *states.entry(state).or_insert(0) += 1;
    }
    // Every call the emulator received between the first report and the last containment.
    let calls = rig.emulator_calls().await;
    let meanwhile: Vec<(DateTime<Utc>, &str, &Value)> = calls
        .iter()
        .filter_map(|call| Some((timestamp(&call["at"])?, call["action"].as_str()?, call)))
        .filter(|(at, _, _)| first_sent <= *at && *at <= last_contained)
        .collect();
    let count = |names: &[&str]| {
        meanwhile
            .iter()
            .filter(|(_, action, _)| names.contains(action))
            .count()
    };
    let (audit_calls, billing_calls, mfa_calls) =
        (count(AUDIT_CALLS), count(BILLING_CALLS), count(MFA_CALLS));
    let attach_times: Vec<DateTime<Utc>> = meanwhile
        .iter()
        .filter(|(_, action, call)| *action == "AttachPolicyToUser" && call["status"] == 200)
        .map(|(at, _, _)| *at)
        .collect();
    let since_first = |at: Option<&DateTime<Utc>>| {
        at.and_then(|at| (*at - first_sent).to_std().ok())
            .unwrap_or_default()
    };
    let (daemon_exit, observed) = rig.stop();
    BurstReport {
        keys,
        last_containment: (last_contained - first_sent).to_std().unwrap_or_default(),
        states,
        audit_calls,
        billing_calls,
        mfa_calls,
        attaches: attach_times.len(),
        first_attach: since_first(attach_times.iter().min()),
        last_attach: since_first(attach_times.iter().max()),
        daemon_exit,
        observed,
    }
}

struct FaultsReport {
    keys: usize,
    /// The first report sent to the moment every incident was seen settled.
    settled_after: Duration,
    /// Time to containment of every contained incident, sorted.
    ttc_ms: Vec<i64>,
    /// Incidents per state once all had settled.
    states: BTreeMap<String, usize>,
    /// Calls the emulator answered with throttling or a server error meanwhile, and all calls.
    faulted: usize,
    calls: usize,
    /// When every incident was first seen past each stage, from the first report.
    milestones: Vec<(&'static str, Duration)>,
    /// The steps after containment, each from its first call to its last answer.
    spans: Vec<StepSpan>,
    daemon_exit: ExitStatus,
}

/// The calls of one step after containment during the faults phase, from the first call of
/// the step's first action.
struct StepSpan {
    step: &'static str,
    calls: usize,
    faulted: usize,
    /// The first call's arrival and the last answer, from the first report.
    first: Duration,
    last: Duration,
}

/// No faults, 50 ms per call.
fn clean() -> Value {
    json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": LATENCY_MS, "fail_next": []})
}

async fn faults_phase(keys: usize) -> FaultsReport {
    // The emulator's throttling stands for the quotas here, so akguard's own limit on RAM
    // writes is lifted (at 20/s, 120 attachments alone would take 6 s); ActionTrail's
    // documented 2 LookupEvents a second stays.
    let rig = Rig::start(
        1 + keys + SPARE_USERS,
        BURST_WORKERS,
        Observe::Off,
        clean(),
        0.0,
    )
    .await;
    // The Deny policy exists before the faults start, as in the steady state.
    rig.warm_up().await;
    rig.set_faults(
        json!({"throttle_rate": FAULT_THROTTLE, "error_rate": FAULT_ERRORS,
        "latency_ms": FAULT_LATENCY_MS, "fail_next": []}),
    )
    .await;
    let first_sent = Utc::now();
    let started = Instant::now();
    let (ids, failures) = fire(&rig.client, &rig.notify_url(), 1..keys + 1).await;
    if !failures.is_empty() {
        rig.fail(&format!(
            "faults phase: {} of {keys} reports failed; first: {:?}",
            failures.len(),
            &failures[..failures.len().min(5)]
        ));
    }
    let (settled, milestones) = rig.wait_settled(&ids, FAULTS_WAIT, started).await;
    let settled_after = started.elapsed();
    let mut ttc_ms: Vec<i64> = settled
        .iter()
        .filter_map(|i| i["time_to_containment_ms"].as_i64())
        .collect();
    ttc_ms.sort_unstable();
    let mut states = BTreeMap::new();
    for incident in &settled {
        let state = incident["state"].as_str().unwrap_or("?").to_owned();
        *states.entry(state).or_insert(0) += 1;
    }
    let log = rig.emulator_calls().await;
    let meanwhile: Vec<&Value> = log
        .iter()
        .filter(|call| timestamp(&call["at"]).is_some_and(|at| at >= first_sent))
        .collect();
    let faulted = meanwhile
        .iter()
        .filter(|call| call["status"].as_u64().is_some_and(|s| s != 200))
        .count();
    let calls = meanwhile.len();
    let spans = [
        // From `ListUsers`, which only the sweep calls: containment reads login profiles too.
        ("MFA sweep", MFA_CALLS),
        ("audit", AUDIT_CALLS),
        ("billing", BILLING_CALLS),
    ]
    .into_iter()
    .filter_map(|(step, actions)| step_span(step, actions, &meanwhile, first_sent))
    .collect();
    let (daemon_exit, _) = rig.stop();
    FaultsReport {
        keys,
        settled_after,
        ttc_ms,
        states,
        faulted,
        calls,
        milestones,
        spans,
        daemon_exit,
    }
}

/// When a step's calls (`actions`) ran, from `first_sent`, counting from the first call of
/// `actions[0]`; `None` if it made none.
fn step_span(
    step: &'static str,
    actions: &[&str],
    calls: &[&Value],
    first_sent: DateTime<Utc>,
) -> Option<StepSpan> {
    let since = |field: &Value| timestamp(field).and_then(|at| (at - first_sent).to_std().ok());
    let first = calls
        .iter()
        .filter(|c| c["action"] == actions[0])
        .filter_map(|c| since(&c["at"]))
        .min()?;
    let ours: Vec<&Value> = calls
        .iter()
        .copied()
        .filter(|c| c["action"].as_str().is_some_and(|a| actions.contains(&a)))
        .filter(|c| since(&c["at"]).is_some_and(|at| at >= first))
        .collect();
    let last = ours
        .iter()
        .filter_map(|c| since(&c["answered_at"]).or_else(|| since(&c["at"])))
        .max()?;
    Some(StepSpan {
        step,
        calls: ours.len(),
        faulted: ours
            .iter()
            .filter(|c| c["status"].as_u64().is_some_and(|s| s != 200))
            .count(),
        first,
        last,
    })
}

// ---------------------------------------------------------------------------------------
// The emulator and the daemon together
// ---------------------------------------------------------------------------------------

/// An emulator with 50 ms per call and a daemon acting against it, in a fresh directory.
struct Rig {
    daemon: Daemon,
    emulator_url: String,
    emulator: EmulatorGuard,
    client: reqwest::Client,
    dir: tempfile::TempDir,
    observer: Observer,
}

impl Rig {
    async fn start(
        users: usize,
        workers: usize,
        mode: Observe,
        faults: Value,
        ram_writes: f64,
    ) -> Self {
        let scenario = Scenario::from_json(&scenario_json(users)).expect("a valid scenario");
        let (emulator_url, emulator) = akguard_emulator::spawn(scenario)
            .await
            .expect("start the emulator");
        let client = support::http_client(BURST_CONCURRENCY);
        put_faults(&client, &emulator_url, &faults).await;

        let dir = support::target_tempdir("bench-remediation-");
        let mut observer = Observer::start(mode).await;
        let config = format!(
            "{}{}",
            config_toml(dir.path(), &emulator_url, workers, ram_writes),
            observer.config()
        );
        // Cloud credentials or the crash hook would change which identity the daemon acts as
        // or make it stop mid-run.
        let hidden =
            |key: &str| key == akguard::worker::CRASH_HOOK_VAR || key.starts_with("ALIBABA_CLOUD_");
        // Start-up blocks on the daemon's stderr; the emulator keeps serving on other threads.
        let daemon = tokio::task::block_in_place(|| {
            Daemon::start(
                dir.path(),
                &config,
                &[("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_KEY_SECRET)],
                hidden,
            )
        });
        observer.scrape(&daemon.addr);
        Self {
            daemon,
            emulator_url,
            emulator,
            client,
            dir,
            observer,
        }
    }

    async fn set_faults(&self, faults: Value) {
        put_faults(&self.client, &self.emulator_url, &faults).await;
    }

    /// Polls until every incident in `ids` has settled: no step left to run (waiting for a
    /// person, resolved, or stopped). The incidents then, in the order of `ids`, and when
    /// every one was first seen past each of `STAGES` (since `started`).
    async fn wait_settled(
        &self,
        ids: &[i64],
        timeout: Duration,
        started: Instant,
    ) -> (Vec<Value>, Vec<(&'static str, Duration)>) {
        let deadline = Instant::now() + timeout;
        let mut milestones: Vec<(&'static str, Duration)> = Vec::new();
        loop {
            let last_poll = match self.incidents().await {
                Ok(list) => {
                    let mut by_id: HashMap<i64, Value> = list
                        .into_iter()
                        .filter_map(|i| Some((i["id"].as_i64()?, i)))
                        .collect();
                    for (stage, before) in STAGES {
                        let past = |i: &Value| {
                            let state = i["state"].as_str().unwrap_or_default();
                            !before.contains(&state)
                                && (*stage != "contained" || !i["contained_at"].is_null())
                        };
                        if !milestones.iter().any(|(s, _)| s == stage)
                            && ids.iter().all(|id| by_id.get(id).is_some_and(past))
                        {
                            milestones.push((stage, started.elapsed()));
                        }
                    }
                    let pending = ids
                        .iter()
                        .filter(|id| !by_id.get(id).is_some_and(settled))
                        .count();
                    if pending == 0 {
                        let incidents = ids
                            .iter()
                            .map(|id| by_id.remove(id).expect("seen above"))
                            .collect();
                        return (incidents, milestones);
                    }
                    format!("{pending} of {} not settled yet", ids.len())
                }
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "not every incident settled within {timeout:?}; last poll: {last_poll}"
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    fn notify_url(&self) -> String {
        format!("http://{}/v1/notifications/generic", self.daemon.addr)
    }

    /// Stops the daemon, then the emulator, whose calls its last steps may still make.
    fn stop(self) -> (ExitStatus, Observed) {
        let Self {
            daemon,
            emulator,
            dir,
            observer,
            ..
        } = self;
        let status = tokio::task::block_in_place(|| daemon.stop(SHUTDOWN_TIMEOUT, LOG_TAIL_LINES));
        drop(emulator);
        drop(dir);
        (status, observer.finish())
    }

    /// Panics with the message and the end of the daemon's log.
    fn fail(&self, message: &str) -> ! {
        panic!(
            "{message}\nlast lines of the daemon's log:\n{}",
            self.daemon.log_tail(LOG_TAIL_LINES)
        )
    }

    /// Reports in-use key 0 alone (its containment creates the Deny policy), then each unused
    /// key alone, waiting for each to be contained.
    async fn warm_up(&self) -> WarmUp {
        let first = self.contain_alone(&key_id(0), None).await;
        let unused = self.contain_alone(UNUSED_KEY, None).await;
        let named = self.contain_alone(NAMED_KEY, Some(NAMED_USER)).await;
        let log = self.emulator_calls().await;
        WarmUp {
            first_ttc_ms: ttc(&first),
            unused: sample(&log, &unused, UNUSED_KEY, UNUSED_USER),
            named: sample(&log, &named, NAMED_KEY, NAMED_USER),
        }
    }

    async fn contain_alone(&self, key: &str, user: Option<&str>) -> Value {
        let id = match notify_as(&self.client, &self.notify_url(), key, user).await {
            Ok(id) => id,
            Err(why) => self.fail(&format!("warm-up: the report of {key} failed: {why}")),
        };
        self.wait_contained("warm-up", &[id], WARMUP_TIMEOUT)
            .await
            .pop()
            .expect("one incident")
    }

    /// `GET /_emulator/calls`: every call so far, oldest first.
    async fn emulator_calls(&self) -> Vec<Value> {
        let url = format!("{}/_emulator/calls", self.emulator_url);
        let body: Value = match self.client.get(&url).send().await {
            Ok(response) if response.status().is_success() => response
                .json()
                .await
                .expect("the emulator's call log is JSON"),
            Ok(response) => panic!("the emulator's call log: HTTP {}", response.status()),
            Err(err) => panic!("the emulator's call log: {err}"),
        };
        match body["calls"].as_array() {
            Some(calls) => calls.clone(),
            None => panic!("the emulator's call log has no `calls`: {body}"),
        }
    }

    /// Every incident, through the status API's pages.
    async fn incidents(&self) -> Result<Vec<Value>, String> {
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut url = format!("http://{}/v1/incidents?limit=200", self.daemon.addr);
            if let Some(cursor) = &cursor {
                url.push_str("&cursor=");
                url.push_str(cursor);
            }
            let response = self
                .client
                .get(&url)
                .bearer_auth(API_TOKEN)
                .send()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            let status = response.status();
            let text = response
                .text()
                .await
                .map_err(|e| format!("GET {url}: {e}"))?;
            if !status.is_success() {
                return Err(format!("GET {url}: HTTP {status}: {text}"));
            }
            let mut page: Value =
                serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))?;
            if let Some(incidents) = page["incidents"].as_array_mut() {
                all.append(incidents);
            }
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(all),
            }
        }
    }

    /// Polls until every incident in `ids` has a time to containment; the incidents then,
    /// in the order of `ids`. A halted incident or the timeout ends the run.
    async fn wait_contained(&self, phase: &str, ids: &[i64], timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last_poll = match self.incidents().await {
                Ok(list) => {
                    let mut by_id: HashMap<i64, Value> = list
                        .into_iter()
                        .filter_map(|i| Some((i["id"].as_i64()?, i)))
                        .collect();
                    let mut pending = 0;
                    for id in ids {
                        match by_id.get(id) {
                            Some(i) if !i["time_to_containment_ms"].is_null() => {}
                            Some(i)
                                if matches!(
                                    i["state"].as_str(),
                                    Some("needs_attention" | "cancelled")
                                ) =>
                            {
                                self.fail(&format!(
                                    "{phase}: incident {id} stopped without containment: state {}, reason {}, last error {}",
                                    i["state"], i["reason"], i["last_error"]
                                ));
                            }
                            _ => pending += 1,
                        }
                    }
                    if pending == 0 {
                        return ids
                            .iter()
                            .map(|id| by_id.remove(id).expect("seen above"))
                            .collect();
                    }
                    format!("{pending} of {} not contained yet", ids.len())
                }
                Err(why) => why,
            };
            if Instant::now() >= deadline {
                self.fail(&format!(
                    "{phase}: not every incident was contained within {timeout:?}; last poll: {last_poll}"
                ));
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}

async fn put_faults(client: &reqwest::Client, emulator_url: &str, faults: &Value) {
    let response = client
        .put(format!("{emulator_url}/_emulator/faults"))
        .json(faults)
        .send()
        .await
        .expect("reach the emulator's control API");
    assert!(
        response.status().is_success(),
        "the emulator refused the fault settings: HTTP {}",
        response.status()
    );
}

/// The stages the faults phase times, each with the states an incident is in before it.
const STAGES: &[(&str, &[&str])] = &[
    ("contained", &["new", "revoke", "disable_key"]),
    (
        "past the MFA step",
        &["new", "revoke", "disable_key", "enforce_mfa"],
    ),
    (
        "past the audit step",
        &["new", "revoke", "disable_key", "enforce_mfa", "audit"],
    ),
];

/// No step of the incident is left to run: it waits for a person, or is over.
fn settled(incident: &Value) -> bool {
    matches!(
        incident["state"].as_str(),
        Some("awaiting_operator" | "needs_attention" | "resolved" | "cancelled")
    )
}

/// The account: akguard's own user, then `users` RAM users with one leaked key each, all
/// recently used (so triage takes the in-use path and containment attaches the Deny policy)
/// and none with console access (so the MFA step changes nothing), and one user whose key
/// was never used (so containment disables it).
fn scenario_json(users: usize) -> String {
    let policy = |name: &str| json!({"name": name, "type": "System", "attach_date": "-120d"});
    let mut list = vec![json!({
        "name": "akguard",
        "id": "276500000000000001",
        "display_name": "akguard responder",
        "create_date": "-120d",
        "policies": [
            policy("AliyunRAMFullAccess"),
            policy("AliyunActionTrailFullAccess"),
            policy("AliyunBSSReadOnlyAccess"),
        ],
        "access_keys": [{
            "id": AKGUARD_KEY_ID,
            "secret": AKGUARD_KEY_SECRET,
            "create_date": "-120d",
        }],
    })];
    list.extend((0..users).map(|i| {
        json!({
            "name": user_name(i),
            "display_name": format!("bench workload {i}"),
            "create_date": "-100d",
            "access_keys": [{
                "id": key_id(i),
                "secret": format!("benchSecret{i:019}"),
                "create_date": "-100d",
                "last_used": "-1h",
                "last_used_service": "Ecs",
                "leaked": true,
            }],
        })
    }));
    for (user, key) in [(UNUSED_USER, UNUSED_KEY), (NAMED_USER, NAMED_KEY)] {
        list.push(json!({
            "name": user,
            "display_name": "bench workload that never ran",
            "create_date": "-100d",
            "access_keys": [{
                "id": key,
                "secret": format!("benchSecret{key}"),
                "create_date": "-100d",
                "leaked": true,
            }],
        }));
    }
    let bill = |code: &str, name: &str, amount: f64| {
        json!({
            "ProductCode": code,
            "ProductName": name,
            "ProductType": "",
            "SubscriptionType": "PayAsYouGo",
            "Item": "PayAsYouGoBill",
            "Currency": "CNY",
            "PretaxGrossAmount": amount,
            "PretaxAmount": amount,
            "PaymentAmount": amount,
            "OutstandingAmount": 0.0,
            "DeductedByCoupons": 0.0,
            "BizType": "",
            "OwnerID": "1234567890123456",
        })
    };
    json!({
        "description": "akguard remediation benchmark: many leaked RAM keys in use",
        "account": {
            "uid": "1234567890123456",
            "name": "acme-bench",
            "alias": "acme",
            "access_keys": [],
        },
        "users": list,
        "events": (0..users).map(workload_call).collect::<Vec<_>>(),
        "billing": {
            "account_name": "acme-bench",
            "balance": {
                "available_amount": "18250.40",
                "available_cash_amount": "18250.40",
                "credit_amount": "0.00",
                "mybank_credit_amount": "0.00",
                "quota_limit": "0.00",
                "currency": "CNY",
            },
            "overview": {
                "current": [
                    bill("oss", "Object Storage Service", 36.2),
                    bill("ecs", "Elastic Compute Service", 405.1),
                ],
                "current-1": [
                    bill("oss", "Object Storage Service", 35.4),
                    bill("ecs", "Elastic Compute Service", 410.9),
                ],
            },
        },
        "enforce_rate_limits": false,
    })
    .to_string()
}

/// The ActionTrail event of user `i`'s workload calling ECS with its key an hour ago, as its
/// `last_used` says: the audit attributes one event to each key, among every key's.
fn workload_call(i: usize) -> Value {
    json!({
        "eventId": format!("bench-workload-{i}"),
        "eventVersion": 1,
        "eventTime": "-1h",
        "eventType": "ApiCall",
        "eventCategory": "Management",
        "eventRW": "Read",
        "eventName": "DescribeInstances",
        "eventSource": "ecs.aliyuncs.com",
        "serviceName": "Ecs",
        "acsRegion": "cn-hangzhou",
        "isGlobal": false,
        "sourceIpAddress": format!("10.0.{}.{}", i / 250, 1 + i % 250),
        "userIdentity": {
            "type": "ram-user",
            "accountId": "1234567890123456",
            "accessKeyId": key_id(i),
            "userName": user_name(i),
        },
        "requestParameters": {"RegionId": "cn-hangzhou"},
    })
}

fn config_toml(dir: &Path, emulator_url: &str, workers: usize, ram_writes: f64) -> String {
    let tokens = dir.join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[token]]\nname = \"bench\"\nsha256 = \"{}\"\nrole = \"viewer\"\n",
            hex::encode(Sha256::digest(API_TOKEN.as_bytes()))
        ),
    )
    .expect("write the API token file");
    format!(
        r#"{base}[intake.security_center]
enabled = false
[api]
tokens_file = "{tokens}"
[alibaba]
endpoint = "{emulator_url}"
access_key_id = "{AKGUARD_KEY_ID}"
[alibaba.rate_limits]
lookup_events = 2.0
ram_writes = {ram_writes:.1}
access_key_policy = {ram_writes:.1}
other = 0.0
[remediation]
workers = {workers}
[audit]
settle_delay = "1h"
{fence}"#,
        base = support::base_config(&support::sqlite_url(dir)),
        tokens = tokens.display(),
        fence = if fence_on() {
            "known_cidrs = [\"10.0.0.0/8\"]\n"
        } else {
            ""
        },
    )
}

/// `AKGUARD_BENCH_FENCE`: whether containment fences each key to its networks too.
fn fence_on() -> bool {
    match std::env::var("AKGUARD_BENCH_FENCE").as_deref() {
        Err(_) | Ok("off") => false,
        Ok("on") => true,
        Ok(other) => panic!("AKGUARD_BENCH_FENCE is `on` or `off`, got `{other}`"),
    }
}

// ---------------------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------------------

/// Sends one notification per key index, `BURST_CONCURRENCY` at a time: the incident ids in
/// index order, and the failures.
async fn fire(
    client: &reqwest::Client,
    url: &str,
    keys: std::ops::Range<usize>,
) -> (Vec<i64>, Vec<String>) {
    let (start, end) = (keys.start, keys.end);
    let next = Arc::new(AtomicUsize::new(start));
    let workers: Vec<_> = (0..BURST_CONCURRENCY)
        .map(|_| {
            let (client, url, next) = (client.clone(), url.to_owned(), Arc::clone(&next));
            tokio::spawn(async move {
                let mut done = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= end {
                        break done;
                    }
                    done.push((i, notify(&client, &url, &key_id(i)).await));
                }
            })
        })
        .collect();
    let mut results = Vec::with_capacity(end - start);
    for worker in workers {
        results.extend(worker.await.expect("a report task panicked"));
    }
    results.sort_by_key(|(i, _)| *i);
    let mut ids = Vec::with_capacity(results.len());
    let mut failures = Vec::new();
    for (_, result) in results {
        match result {
            Ok(id) => ids.push(id),
            Err(why) => failures.push(why),
        }
    }
    (ids, failures)
}

/// Posts one signed leak notification; anything but a 202 naming a new incident fails.
async fn notify(client: &reqwest::Client, url: &str, key: &str) -> Result<i64, String> {
    notify_as(client, url, key, None).await
}

/// `notify`, naming the key's user when `user` is given.
async fn notify_as(
    client: &reqwest::Client,
    url: &str,
    key: &str,
    user: Option<&str>,
) -> Result<i64, String> {
    let mut report = json!({
        "access_key_id": key,
        "event_id": format!("bench-{key}"),
        "detected_at": Utc::now().to_rfc3339(),
    });
    if let Some(user) = user {
        report["user_name"] = user.into();
    }
    let body = serde_json::to_vec(&report).expect("serialize a notification");
    let (status, text) = post_signed(client, url, body)
        .await
        .map_err(|e| format!("{key}: {e}"))?;
    if status != reqwest::StatusCode::ACCEPTED {
        return Err(format!("{key}: HTTP {status}: {text}"));
    }
    let answer: Value = serde_json::from_str(&text).map_err(|e| format!("{key}: {e}: {text}"))?;
    if answer["outcome"] != "created" {
        return Err(format!("{key}: no new incident: {text}"));
    }
    answer["incident_id"]
        .as_i64()
        .ok_or_else(|| format!("{key}: no incident_id: {text}"))
}

/// An incident's time to containment.
fn ttc(incident: &Value) -> i64 {
    incident["time_to_containment_ms"]
        .as_i64()
        .expect("a contained incident has a time to containment")
}

/// A contained incident's containment path, from the emulator's call log.
fn sample(log: &[Value], incident: &Value, key: &str, user: &str) -> Sample {
    let created_at = timestamp(&incident["created_at"]).expect("created_at is set");
    let contained_at = timestamp(&incident["contained_at"]).expect("contained_at is set");
    Sample {
        created_at,
        ttc_ms: ttc(incident),
        path: containment::path(log, key, user, created_at, contained_at),
    }
}

/// An RFC 3339 time (with or without a fraction) from a JSON string.
fn timestamp(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

// ---------------------------------------------------------------------------------------
// Summary
// ---------------------------------------------------------------------------------------

fn print_summary(mode: Observe, latency: &LatencyReport, burst: &BurstReport) {
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };

    let p50 = percentile(&latency.ttc_ms, 0.50);
    let p99 = percentile(&latency.ttc_ms, 0.99);
    let max = latency.ttc_ms.last().copied().unwrap_or_default();

    let floor = burst.keys as f64 / RAM_WRITES_PER_SECOND;
    let goal_secs = BURST_GOAL_FACTOR * floor;
    let last = burst.last_containment.as_secs_f64();
    let states: Vec<String> = burst
        .states
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    let past_containment: usize = burst
        .states
        .iter()
        .filter(|(state, _)| !matches!(state.as_str(), "new" | "revoke"))
        .map(|(_, n)| n)
        .sum();

    println!(
        "akguard remediation benchmark (emulator latency {LATENCY_MS} ms), {}, network fence {}",
        mode.label(),
        if fence_on() { "on" } else { "off" }
    );
    println!(
        "  latency: {} incidents at {}/s, {LATENCY_WORKERS} workers: time to containment \
         p50 {p50} ms, p99 {p99} ms, max {max} ms",
        latency.incidents, latency.rate
    );
    println!(
        "           goal p99 <= {LATENCY_GOAL_MS} ms (1.25 x 3 round trips x {LATENCY_MS} ms): {}",
        verdict(p99 <= LATENCY_GOAL_MS)
    );
    let trips: Vec<String> = latency
        .round_trips
        .iter()
        .map(|(trips, n)| format!("{n} in {trips}"))
        .collect();
    println!(
        "           sequential round trips per incident: {}",
        trips.join(", ")
    );
    let gap_p99 = percentile(&latency.gaps_us, 0.99);
    let us = |v: i64| v as f64 / 1000.0;
    println!(
        "           akguard's own time between calls: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms \
         over {} gaps; goal p99 < {:.0} ms: {}",
        us(percentile(&latency.gaps_us, 0.50)),
        us(gap_p99),
        us(latency.gaps_us.last().copied().unwrap_or_default()),
        latency.gaps_us.len(),
        us(GAP_GOAL_US),
        verdict(gap_p99 < GAP_GOAL_US)
    );
    for (pair, gaps) in &latency.gaps_by_pair {
        println!(
            "             {pair}: p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms over {} gaps",
            us(percentile(gaps, 0.50)),
            us(percentile(gaps, 0.99)),
            us(gaps.last().copied().unwrap_or_default()),
            gaps.len()
        );
    }
    println!(
        "           report to first call: p50 {:.2} ms, p99 {:.2} ms",
        us(percentile(&latency.lead_in_us, 0.50)),
        us(percentile(&latency.lead_in_us, 0.99)),
    );
    let bare_p50 = percentile(&latency.bare_ms, 0.50);
    let bare_p99 = percentile(&latency.bare_ms, 0.99);
    println!(
        "           a bare client's round trip to the emulator: p50 {bare_p50:.2} ms, p99 \
         {bare_p99:.2} ms ({LATENCY_MS} ms configured; overhead p99 {:.2} ms)",
        bare_p99 - LATENCY_MS as f64
    );
    let in_use = &latency.in_use;
    containment::print(
        "in-use key (Deny policy)",
        in_use.created_at,
        in_use.ttc_ms,
        &in_use.path,
    );
    let unused = &latency.warmup.unused;
    containment::print(
        "unused key (disabled, reported alone)",
        unused.created_at,
        unused.ttc_ms,
        &unused.path,
    );
    let named = &latency.warmup.named;
    containment::print(
        "unused key reported with its user's name (disabled, reported alone)",
        named.created_at,
        named.ttc_ms,
        &named.path,
    );
    println!(
        "           (the first in-use key, which also created the Deny policy: {} ms)",
        latency.warmup.first_ttc_ms
    );
    println!(
        "  burst:   {} keys at once, RAM writes {RAM_WRITES_PER_SECOND}/s, {BURST_WORKERS} workers: \
         last containment after {last:.2} s",
        burst.keys
    );
    println!(
        "           floor {floor:.2} s; goal <= {goal_secs:.2} s: {} (audit/billing calls seen meanwhile: {})",
        verdict(last <= goal_secs),
        burst.audit_calls + burst.billing_calls
    );
    println!(
        "           calls meanwhile: LookupEvents {}, billing {}, MFA step {}",
        burst.audit_calls, burst.billing_calls, burst.mfa_calls
    );
    let spacing_ms = (burst.last_attach - burst.first_attach).as_secs_f64() * 1000.0
        / burst.attaches.saturating_sub(1).max(1) as f64;
    println!(
        "           policy attachments: {}, first after {:.2} s, last after {:.2} s \
         (mean spacing {spacing_ms:.1} ms; 1/rate = {:.1} ms)",
        burst.attaches,
        burst.first_attach.as_secs_f64(),
        burst.last_attach.as_secs_f64(),
        1000.0 / RAM_WRITES_PER_SECOND
    );
    println!(
        "           when all were contained: {past_containment} of {} past containment ({})",
        burst.keys,
        states.join(", ")
    );
    if mode != Observe::Off {
        println!(
            "  meanwhile: {} + {} notifications delivered, {} + {} scrapes of /metrics",
            latency.observed.delivered,
            burst.observed.delivered,
            latency.observed.scrapes,
            burst.observed.scrapes
        );
    }
}

fn print_faults(report: &FaultsReport) {
    let verdict = |pass: bool| if pass { "PASS" } else { "FAIL" };
    let p50 = percentile(&report.ttc_ms, 0.50);
    let p99 = percentile(&report.ttc_ms, 0.99);
    let max = report.ttc_ms.last().copied().unwrap_or_default();
    let settled = report.settled_after.as_secs_f64();
    let states: Vec<String> = report
        .states
        .iter()
        .map(|(state, n)| format!("{state} {n}"))
        .collect();
    println!(
        "  faults:  {} keys at once, {:.0} % throttled, {:.0} % server errors, {FAULT_LATENCY_MS} ms \
         per call, {BURST_WORKERS} workers",
        report.keys,
        FAULT_THROTTLE * 100.0,
        FAULT_ERRORS * 100.0
    );
    println!(
        "           all settled after {settled:.2} s; goal <= {} s: {} ({})",
        FAULTS_SETTLE_GOAL.as_secs(),
        verdict(report.settled_after <= FAULTS_SETTLE_GOAL),
        states.join(", ")
    );
    println!(
        "           time to containment p50 {p50} ms, p99 {p99} ms, max {max} ms over {} \
         contained; goal p99 <= {FAULTS_TTC_GOAL_MS} ms: {}",
        report.ttc_ms.len(),
        verdict(report.ttc_ms.len() == report.keys && p99 <= FAULTS_TTC_GOAL_MS)
    );
    let stages: Vec<String> = report
        .milestones
        .iter()
        .map(|(stage, at)| format!("{stage} {:.2} s", at.as_secs_f64()))
        .collect();
    println!("           all incidents: {}", stages.join(", "));
    println!(
        "           calls meanwhile: {}, of which {} answered with an error",
        report.calls, report.faulted
    );
    for span in &report.spans {
        println!(
            "           {}: calls from {:.2} s to {:.2} s, {} calls, {} answered with an error",
            span.step,
            span.first.as_secs_f64(),
            span.last.as_secs_f64(),
            span.calls,
            span.faulted
        );
    }
}

/// On against off: p99 time to containment and the burst's last containment (goal: within
/// 5 % of off).
fn print_comparison(
    mode: Observe,
    latency_off: &LatencyReport,
    latency_on: &LatencyReport,
    burst_off: &BurstReport,
    burst_on: &BurstReport,
) {
    let p99 = |r: &LatencyReport| percentile(&r.ttc_ms, 0.99) as f64;
    let p50 = |r: &LatencyReport| percentile(&r.ttc_ms, 0.50) as f64;
    let last = |b: &BurstReport| b.last_containment.as_secs_f64();
    println!("{} / off (goal: at most 1.05):", mode.label());
    println!(
        "  latency p50 {:.3}, p99 {:.3}; burst last containment {:.3}",
        p50(latency_on) / p50(latency_off),
        p99(latency_on) / p99(latency_off),
        last(burst_on) / last(burst_off)
    );
}
