//! The containment path of one incident as the emulator's call log shows it: which calls, in
//! what order, which ran at once, and akguard's own time between them (from one call's answer
//! leaving the emulator to the next call reaching it).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

/// One call on the path.
pub struct Call {
    pub action: String,
    pub at: DateTime<Utc>,
    pub answered: DateTime<Utc>,
}

/// The calls made for the leaked `key` (or for its `user`) between `from` and `to`, in the
/// order they reached the emulator.
pub fn path(
    log: &[Value],
    key: &str,
    user: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Call> {
    let names = |call: &Value| {
        let param = |name: &str| call["params"][name].as_str();
        param("UserAccessKeyId") == Some(key)
            || param("AccessKey") == Some(key)
            || param("UserName") == Some(user)
    };
    let mut calls: Vec<Call> = log
        .iter()
        .filter(|call| names(call))
        .filter_map(|call| {
            Some(Call {
                action: call["action"].as_str()?.to_owned(),
                at: time(&call["at"])?,
                answered: time(&call["answered_at"])?,
            })
        })
        .filter(|call| from <= call.at && call.at <= to)
        .collect();
    calls.sort_by_key(|call| call.at);
    calls
}

/// The path's sequential round trips (calls that overlap count once) and the gaps between
/// them in microseconds, each named by the round trips it separates (`pairs[i]`: round
/// `i + 1` to `i + 2`), so a slow gap shows which call it delayed.
pub struct Rounds {
    pub count: usize,
    pub gaps_us: Vec<i64>,
    pub pairs: Vec<String>,
}

pub fn rounds(path: &[Call]) -> Rounds {
    let Some(first) = path.first() else {
        return Rounds {
            count: 0,
            gaps_us: Vec::new(),
            pairs: Vec::new(),
        };
    };
    let mut end = first.answered;
    let mut rounds = Rounds {
        count: 1,
        gaps_us: Vec::new(),
        pairs: Vec::new(),
    };
    for call in &path[1..] {
        if call.at < end {
            end = end.max(call.answered);
            continue;
        }
        rounds.count += 1;
        rounds
            .gaps_us
            .push((call.at - end).num_microseconds().unwrap_or(i64::MAX));
        rounds
            .pairs
            .push(format!("({}) -> ({})", rounds.count - 1, rounds.count));
        end = call.answered;
    }
    rounds
}

/// Prints the path, each call with its start offset from the report and its duration.
pub fn print(label: &str, created_at: DateTime<Utc>, ttc_ms: i64, path: &[Call]) {
    let rounds = rounds(path);
    println!(
        "  {label}: contained {ttc_ms} ms after the report, {} calls in {} sequential round trips",
        path.len(),
        rounds.count
    );
    for call in path {
        let ms = |d: chrono::TimeDelta| d.num_microseconds().unwrap_or_default() as f64 / 1000.0;
        println!(
            "    +{:7.1} ms  {:<26} {:5.1} ms",
            ms(call.at - created_at),
            call.action,
            ms(call.answered - call.at)
        );
    }
}

/// `n` round trips of a bare HTTP client (pooled, TCP_NODELAY) to the emulator's RPC path,
/// in milliseconds, sorted: what one call costs beyond the configured latency, whoever makes it.
pub async fn bare_round_trips(emulator_url: &str, n: usize) -> Vec<f64> {
    let client = reqwest::Client::builder()
        .tcp_nodelay(true)
        .build()
        .expect("build the HTTP client");
    let url = format!("{emulator_url}/");
    let call = || {
        client
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("Action=GetCallerIdentity&Version=2015-04-01&Format=JSON")
            .send()
    };
    // The first call opens the connection; the rest reuse it, as the daemon's do.
    let _ = call().await.expect("reach the emulator");
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        let response = call().await.expect("reach the emulator");
        let _ = response.bytes().await;
        times.push(as_ms(started.elapsed()));
    }
    times.sort_by(f64::total_cmp);
    times
}

fn as_ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(value.as_str()?)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}
