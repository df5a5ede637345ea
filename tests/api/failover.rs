//! Failover across processes: replicas on one database are killed with SIGKILL in turn while a
//! burst of leaks is remediated, and afterwards nothing is lost, every incident settles and
//! no cloud mutation happened twice for one target; a step in flight on a killed replica is
//! taken over by another once its lease lapses.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use akguard::cloud::CloudClient;
use akguard_emulator::{self as emulator, Scenario};
use serde_json::{Value, json};

use crate::cloud_support::{AKGUARD_KEY, AKGUARD_SECRET, calls, options, state, static_key};
use crate::helpers::{GENERIC_SECRET, TestDaemon, VIEWER_TOKEN, backend_name, hmac_signature, now};
use crate::remediation::daemon_with;
use crate::rotation::FAST;

const KEYS: usize = 200;
/// How long replicas are killed in turn, and how often.
const CHAOS: Duration = Duration::from_secs(30);
const KILL_EVERY: Duration = Duration::from_secs(3);
/// Notifications arrive spread over this much of the chaos.
const ARRIVALS: Duration = Duration::from_secs(15);
/// Bound on the settling after the chaos, far above what it takes.
const SETTLE_WITHIN: Duration = Duration::from_secs(180);

/// What a leaked key is, and so what its incident does.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(crate) enum Kind {
    /// Unused for months: disabled, then deleted; resolved.
    Unused,
    /// In use by a console user without MFA: the Deny policy attached, MFA required; handed
    /// to a person.
    InUse,
    /// In use and listed in `[[rotation.users]]`: a new key through KMS, the cutover, the
    /// leaked key disabled and deleted; resolved.
    Rotatable,
}

pub(crate) fn kind(i: usize) -> Kind {
    match i % 3 {
        0 => Kind::Unused,
        1 => Kind::InUse,
        _ => Kind::Rotatable,
    }
}

pub(crate) fn key_id(i: usize) -> String {
    format!("LTAI5tChaos{i:013}")
}

fn user_name(i: usize) -> String {
    format!("chaos-{i:03}")
}

fn secret_name(i: usize) -> String {
    format!("chaos/{}/accesskey", user_name(i))
}

/// akguard's own user and one user per leaked key, each key of its `Kind`.
pub(crate) fn scenario(keys: usize) -> Scenario {
    let mut users = vec![json!({
        "name": "akguard",
        "create_date": "-120d",
        "policies": [{"name": "AliyunRAMFullAccess", "type": "System", "attach_date": "-120d"},
            {"name": "AliyunKMSSecretAdminAccess", "type": "System", "attach_date": "-120d"}],
        "access_keys": [{"id": AKGUARD_KEY, "secret": AKGUARD_SECRET, "create_date": "-120d"}],
    })];
    let mut secrets = Vec::new();
    for i in 0..keys {
        let secret = format!("chaosSecret{i:019}");
        let last_used = if kind(i) == Kind::Unused {
            "-240d"
        } else {
            "-1h"
        };
        let mut user = json!({
            "name": user_name(i),
            "create_date": "-300d",
            "access_keys": [{"id": key_id(i), "secret": secret, "create_date": "-300d",
                "last_used": last_used, "last_used_service": "Ecs", "leaked": true}],
        });
        if kind(i) == Kind::InUse {
            user["login_profile"] = json!({"mfa_bind_required": false,
                "password_reset_required": false, "create_date": "-300d"});
        }
        if kind(i) == Kind::Rotatable {
            secrets.push(json!({
                "name": secret_name(i),
                "create_date": "-300d",
                "versions": [{"version_id": "v1", "create_date": "-300d", "stages": ["ACSCurrent"],
                    "data": json!({"AccessKeyId": key_id(i), "AccessKeySecret": secret}).to_string()}],
            }));
        }
        users.push(user);
    }
    let scenario = json!({
        "description": "a burst of leaked keys, unused, in use and rotatable",
        "account": {"uid": "1234567890123456", "name": "acme", "alias": "acme", "access_keys": []},
        "users": users,
        "secrets": secrets,
        "enforce_rate_limits": false,
    });
    Scenario::from_json(&scenario.to_string()).unwrap()
}

/// `[[rotation.users]]` for every rotatable key's user.
pub(crate) fn rotation_config(keys: usize) -> String {
    (0..keys)
        .filter(|i| kind(*i) == Kind::Rotatable)
        .map(|i| {
            format!(
                "[[rotation.users]]\nuser = \"{}\"\nsink = \"kms\"\nsecret_name = \"{}\"\n",
                user_name(i),
                secret_name(i)
            )
        })
        .collect()
}

pub(crate) fn notification(i: usize) -> String {
    let detected = chrono::Utc::now() - chrono::Duration::minutes(5);
    json!({"access_key_id": key_id(i), "event_id": format!("chaos-{i}"),
        "detected_at": detected.to_rfc3339()})
    .to_string()
}

/// The replicas' addresses as the chaos leaves them: empty while one is down.
type Bases = Arc<RwLock<Vec<String>>>;

/// Posts notification `i` to replica `i mod n`, or the next one up, until one acknowledges
/// it with 202, as a source retries a delivery that failed; returns the incident id.
async fn deliver(client: &reqwest::Client, bases: &Bases, i: usize) -> i64 {
    let body = notification(i);
    let deadline = Instant::now() + Duration::from_secs(60);
    for attempt in i.. {
        assert!(
            Instant::now() < deadline,
            "notification {i} never acknowledged"
        );
        let base = {
            let bases = bases.read().unwrap();
            bases[attempt % bases.len()].clone()
        };
        if base.is_empty() {
            continue;
        }
        let ts = now();
        let sent = client
            .post(format!("{base}/v1/notifications/generic"))
            .header("content-type", "application/json")
            .header("x-akguard-timestamp", ts.to_string())
            .header(
                "x-akguard-signature",
                hmac_signature(GENERIC_SECRET, ts, body.as_bytes()),
            )
            .body(body.clone())
            .send()
            .await;
        // Refused or cut by a kill: not acknowledged, so delivered again.
        let Ok(response) = sent else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        if status == 202 {
            return answer["incident_id"].as_i64().expect("an incident id");
        }
        assert!(
            status.is_server_error(),
            "notification {i}: {status} {answer}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    unreachable!()
}

/// Incidents of this run in `state`, as one live replica lists them.
async fn in_state(client: &reqwest::Client, bases: &Bases, state: &str) -> Option<Vec<Value>> {
    let base = bases
        .read()
        .unwrap()
        .iter()
        .find(|b| !b.is_empty())?
        .clone();
    let response = client
        .get(format!("{base}/v1/incidents?state={state}&limit=200"))
        .bearer_auth(VIEWER_TOKEN)
        .send()
        .await
        .ok()?;
    let body: Value = response.json().await.ok()?;
    body["incidents"].as_array().cloned()
}

/// Plays each rotatable user's workload: once a new key waits for its cutover, the workload
/// reads it from its KMS secret and calls with it, once per incident.
async fn play_workloads(url: String, bases: Bases, stop: tokio_util::sync::CancellationToken) {
    let client = reqwest::Client::new();
    let mut switched = std::collections::HashSet::new();
    while !stop.is_cancelled() {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let Some(waiting) = in_state(&client, &bases, "awaiting_cutover").await else {
            continue;
        };
        if waiting.iter().all(|i| switched.contains(&i["id"].as_i64())) {
            continue;
        }
        let cloud = state(&url).await;
        for incident in waiting {
            let user = incident["user_name"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            let Some((key, secret)) = current_secret(&cloud, &user) else {
                continue;
            };
            if key == incident["access_key_id"] || !switched.insert(incident["id"].as_i64()) {
                continue;
            }
            let workload = CloudClient::new(options(&url, static_key(&key, &secret))).unwrap();
            workload.get_user(&user).await.unwrap();
        }
    }
}

/// The key and secret the `ACSCurrent` version of `user`'s KMS secret holds.
fn current_secret(cloud: &Value, user: &str) -> Option<(String, String)> {
    let name = format!("chaos/{user}/accesskey");
    let secret = cloud["secrets"]
        .as_array()?
        .iter()
        .find(|s| s["name"] == name.as_str())?;
    let current = secret["versions"].as_array()?.iter().find(|v| {
        v["stages"]
            .as_array()
            .is_some_and(|s| s.contains(&json!("ACSCurrent")))
    })?;
    let data: Value = serde_json::from_str(current["data"].as_str()?).ok()?;
    Some((
        data["AccessKeyId"].as_str()?.to_owned(),
        data["AccessKeySecret"].as_str()?.to_owned(),
    ))
}

/// Kills one replica with SIGKILL every `KILL_EVERY` in turn and starts it again, for
/// `CHAOS`; returns how many kills there were.
async fn kill_in_turn(fleet: &mut [TestDaemon], bases: &Bases) -> usize {
    let started = Instant::now();
    let mut kills = 0;
    while started.elapsed() < CHAOS {
        tokio::time::sleep(KILL_EVERY).await;
        let victim = kills % fleet.len();
        bases.write().unwrap()[victim].clear();
        assert!(!fleet[victim].kill().await.success());
        fleet[victim].restart().await;
        bases.write().unwrap()[victim] = fleet[victim].base.clone();
        kills += 1;
    }
    kills
}

/// The state each kind of incident ends in.
pub(crate) fn expected_end(kind: Kind) -> &'static str {
    match kind {
        Kind::Unused | Kind::Rotatable => "resolved",
        Kind::InUse => "awaiting_operator",
    }
}

/// Successful calls of `action` per target, as `target` names it (None: not counted).
fn per_target(
    log: &[Value],
    action: &str,
    target: impl Fn(&Value) -> Option<String>,
) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for call in log
        .iter()
        .filter(|c| c["action"] == action && c["status"] == 200)
    {
        if let Some(t) = target(&call["params"]) {
            *counts.entry(t).or_insert(0) += 1;
        }
    }
    counts
}

fn param(p: &Value, name: &str) -> String {
    p[name].as_str().unwrap_or_default().to_owned()
}

/// Names the target of a call from its parameters; `None`: not counted.
type Target = Box<dyn Fn(&Value) -> Option<String>>;

/// Each mutation at most once per target, from the emulator's call log. A new key's secret
/// is answered once, by `CreateAccessKey`: a replica killed after the call and before its
/// record loses it, and the step then deletes that key and creates another (see README,
/// "Rotation crash safety"). So a user's keys may be created twice only with the lost one
/// deleted: every create beyond the first is matched by a delete beyond the leaked key's.
pub(crate) fn assert_no_mutation_repeated(log: &[Value]) {
    let creates = per_target(log, "CreateAccessKey", |p| Some(param(p, "UserName")));
    let deletes = per_target(log, "DeleteAccessKey", |p| Some(param(p, "UserName")));
    let unmatched: Vec<_> = creates
        .iter()
        .filter(|(user, n)| **n > 1 + deletes.get(*user).copied().unwrap_or(0).saturating_sub(1))
        .collect();
    assert!(
        unmatched.is_empty(),
        "CreateAccessKey repeated for a user without the lost key deleted: {unmatched:?}"
    );
    let checks: [(&str, &str, Target); 5] = [
        (
            "AttachPolicyToUser",
            "user and policy",
            Box::new(|p| {
                Some(format!(
                    "{}|{}",
                    param(p, "UserName"),
                    param(p, "PolicyName")
                ))
            }),
        ),
        (
            "UpdateLoginProfile",
            "user and change (the sweep's MFA, the incident's password reset or logon)",
            Box::new(|p| {
                Some(format!(
                    "{}|{}|{}|{}",
                    param(p, "UserName"),
                    param(p, "MFABindRequired"),
                    param(p, "PasswordResetRequired"),
                    param(p, "Status")
                ))
            }),
        ),
        (
            "UpdateAccessKey",
            "key and status",
            Box::new(|p| {
                Some(format!(
                    "{}|{}",
                    param(p, "UserAccessKeyId"),
                    param(p, "Status")
                ))
            }),
        ),
        (
            "DeleteAccessKey",
            "key",
            Box::new(|p| Some(param(p, "UserAccessKeyId"))),
        ),
        (
            "PutSecretValue",
            "secret (one delivery each)",
            Box::new(|p| Some(param(p, "SecretName"))),
        ),
    ];
    for (action, target, name) in checks {
        let repeated: Vec<_> = per_target(log, action, name)
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .collect();
        assert!(
            repeated.is_empty(),
            "{action} repeated per {target}: {repeated:?}"
        );
    }
}

/// What each kind's remediation changes did happen (so the check above counted real work).
fn assert_every_effect_made(log: &[Value]) {
    let made = |action: &str, target: &str, name: &str| {
        per_target(log, action, |p| Some(param(p, name))).contains_key(target)
    };
    for i in 0..KEYS {
        let (user, key) = (user_name(i), key_id(i));
        let effects: &[(&str, &str, &str)] = match kind(i) {
            Kind::Unused => &[("DeleteAccessKey", &key, "UserAccessKeyId")],
            Kind::InUse => &[
                ("AttachPolicyToUser", &user, "UserName"),
                ("UpdateLoginProfile", &user, "UserName"),
            ],
            Kind::Rotatable => &[
                ("CreateAccessKey", &user, "UserName"),
                ("DeleteAccessKey", &key, "UserAccessKeyId"),
            ],
        };
        for (action, target, name) in effects {
            assert!(made(action, target, name), "no {action} for {target}");
        }
    }
    let deliveries = per_target(log, "PutSecretValue", |p| Some(param(p, "SecretName")));
    assert_eq!(
        deliveries.len(),
        (0..KEYS).filter(|i| kind(*i) == Kind::Rotatable).count()
    );
}

/// Settings that keep a burst short: rotation without waiting, the fleet's limits well
/// above what the emulator needs to be gentle with, a poll each second.
pub(crate) fn fast_env() -> Vec<(&'static str, &'static str)> {
    let mut env: Vec<(&str, &str)> = FAST.to_vec();
    env.extend([
        ("AKGUARD__REMEDIATION__WORKERS", "4"),
        ("AKGUARD__REMEDIATION__POLL_INTERVAL", "1s"),
        ("AKGUARD__ALIBABA__RATE_LIMITS__RAM_WRITES", "40"),
        ("AKGUARD__ALIBABA__RATE_LIMITS__LOOKUP_EVENTS", "40"),
        ("AKGUARD__ALIBABA__RATE_LIMITS__OTHER", "80"),
    ]);
    env
}

/// Replicas: three on PostgreSQL; on SQLite, two processes on one file.
fn replica_count() -> usize {
    if backend_name() == "postgres" { 3 } else { 2 }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_killed_in_turn_lose_no_notification_and_repeat_no_mutation() {
    let (url, _emulator) = emulator::spawn(scenario(KEYS)).await.unwrap();
    let env = fast_env();
    let first = daemon_with(&url, &rotation_config(KEYS), &env).await;
    let mut fleet = vec![first];
    while fleet.len() < replica_count() {
        let next = fleet[0].spawn_another().await;
        fleet.push(next);
    }
    let bases: Bases = Arc::new(RwLock::new(fleet.iter().map(|d| d.base.clone()).collect()));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    let stop = tokio_util::sync::CancellationToken::new();
    let workloads = tokio::spawn(play_workloads(url.clone(), bases.clone(), stop.clone()));
    let arrivals = {
        let (client, bases) = (client.clone(), bases.clone());
        tokio::spawn(async move {
            let gap = ARRIVALS / KEYS as u32;
            let mut posted = Vec::new();
            for i in 0..KEYS {
                let (client, bases) = (client.clone(), bases.clone());
                posted.push(tokio::spawn(async move {
                    (i, deliver(&client, &bases, i).await)
                }));
                tokio::time::sleep(gap).await;
            }
            let mut acknowledged = HashMap::new();
            for task in posted {
                let (i, id) = task.await.unwrap();
                acknowledged.insert(i, id);
            }
            acknowledged
        })
    };
    let kills = kill_in_turn(&mut fleet, &bases).await;
    let acknowledged = arrivals.await.unwrap();
    assert!(kills >= 6, "only {kills} kills");

    // Every incident settles: resolved, or handed to a person.
    let deadline = Instant::now() + SETTLE_WITHIN;
    loop {
        let mut settled = 0;
        for state in ["resolved", "awaiting_operator", "needs_attention"] {
            settled += in_state(&client, &bases, state).await.unwrap().len();
        }
        if settled >= KEYS {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{settled} of {KEYS} incidents settled:\n{}",
            fleet[0].log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    stop.cancel();
    workloads.await.unwrap();

    // Every acknowledged notification has its incident, in the state its kind ends in.
    assert_eq!(acknowledged.len(), KEYS);
    for (i, id) in &acknowledged {
        let incident = fleet[0].get_ok(&format!("/v1/incidents/{id}")).await;
        assert_eq!(incident["access_key_id"], key_id(*i).as_str());
        assert_eq!(
            incident["state"],
            expected_end(kind(*i)),
            "{:?} key {i}: {incident:#}",
            kind(*i)
        );
    }
    let log = calls(&url).await;
    assert_no_mutation_repeated(&log);
    assert_every_effect_made(&log);
}

/// The replica id a worker's lease owner (`{replica}-{n}`) belongs to.
fn replica_of(owner: &str) -> &str {
    owner.rsplit_once('-').map_or(owner, |(replica, _)| replica)
}

fn time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test]
async fn a_step_in_flight_on_a_killed_replica_resumes_on_another_once_its_lease_lapses() {
    // Every answer takes a second, so each step is in flight for several.
    let (url, _emulator) = crate::cloud_support::emulator("leaked-in-use.json", |s| {
        s["faults"] = json!({"latency_ms": 1000});
    })
    .await;
    let poll = Duration::from_secs(1);
    let env = [
        ("AKGUARD__REMEDIATION__LEASE", "3s"),
        ("AKGUARD__REMEDIATION__POLL_INTERVAL", "1s"),
    ];
    let first = crate::remediation::daemon(&url, &env).await;
    let second = first.spawn_another().await;
    let mut fleet = [first, second];
    let mut ids = Vec::new();
    for daemon in &fleet {
        ids.push(
            daemon.get_ok("/v1/status").await["replica"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let id = crate::remediation::report(&fleet[0], crate::cloud_support::LEAKED_KEY, 25).await;

    // Held by a worker, and a call of its step under way.
    let held = fleet[0]
        .wait_for_incident(id, "held by a worker", |i| i["lease_owner"].is_string())
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let holder = replica_of(held["lease_owner"].as_str().unwrap()).to_owned();
    let victim = ids
        .iter()
        .position(|r| *r == holder)
        .expect("a known replica");
    let [a, b] = &mut fleet;
    let (killed, survivor) = if victim == 0 { (a, &*b) } else { (b, &*a) };
    assert!(!killed.kill().await.success());
    // Read after the kill: nothing renews this lease any more, and the step it covers is the
    // one in flight.
    let dead = survivor.get_ok(&format!("/v1/incidents/{id}")).await;
    let step = dead["current_step"].clone();
    assert_eq!(replica_of(dead["lease_owner"].as_str().unwrap()), holder);
    let lapses = time(&dead["lease_expires_at"]);

    let taken = survivor
        .wait_for_incident(id, "taken over", |i| {
            i["lease_owner"]
                .as_str()
                .is_some_and(|o| replica_of(o) == ids[1 - victim])
        })
        .await;
    assert_eq!(
        taken["current_step"], step,
        "the step in flight is the one resumed"
    );
    // The new lease runs `lease` from its claim (observed before its first renewal).
    let claimed_at = time(&taken["lease_expires_at"]) - chrono::Duration::seconds(3);
    assert!(claimed_at >= lapses, "taken over before the lease lapsed");
    let late = (claimed_at - lapses).to_std().unwrap();
    assert!(
        late <= poll + Duration::from_millis(500),
        "taken over {late:?} after the lease lapsed"
    );
    survivor
        .wait_for_incident(id, "settled", crate::remediation::settled)
        .await;
    for action in crate::remediation::MUTATING {
        assert!(
            crate::remediation::most_per_target(&url, action).await <= 1,
            "{action} repeated after the takeover"
        );
    }
}
