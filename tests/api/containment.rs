//! The containment path against the emulator's call log: how many sequential round trips
//! come before the act, the act, and the read that verifies it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, calls, emulator, set_faults};
use crate::helpers::TestDaemon;
use crate::remediation::{audit_actions, daemon, report};

/// Long enough that calls made at once overlap and calls made in turn cannot.
const LATENCY_MS: u64 = 100;
const BUSY_KEY: &str = "LTAI5tBusyWorkload000001";
const QUIET_KEY: &str = "LTAI5tQuietWorkload00001";

fn time(value: &Value) -> DateTime<Utc> {
    value.as_str().unwrap().parse().unwrap()
}

/// The calls naming `key` or `user` from the report to containment, grouped into the
/// sequential round trips they took (calls that overlap share one), each sorted by name.
async fn round_trips(url: &str, incident: &Value, key: &str, user: &str) -> Vec<Vec<String>> {
    let from = time(&incident["created_at"]);
    let to = time(&incident["contained_at"]);
    let mut path: Vec<(DateTime<Utc>, DateTime<Utc>, String)> = calls(url)
        .await
        .iter()
        .filter(|c| {
            let p = &c["params"];
            p["UserAccessKeyId"] == key || p["AccessKey"] == key || p["UserName"] == user
        })
        .map(|c| {
            let answered = time(&c["answered_at"]);
            (
                time(&c["at"]),
                answered,
                c["action"].as_str().unwrap().to_owned(),
            )
        })
        .filter(|(at, _, _)| from <= *at && *at <= to)
        .collect();
    path.sort();
    let mut rounds: Vec<Vec<String>> = Vec::new();
    let mut end = from;
    for (at, answered, action) in path {
        match rounds.last_mut() {
            Some(round) if at < end => {
                round.push(action);
                end = end.max(answered);
            }
            _ => {
                rounds.push(vec![action]);
                end = answered;
            }
        }
    }
    for round in &mut rounds {
        round.sort();
    }
    rounds
}

async fn contain(app: &TestDaemon, key: &str) -> Value {
    let id = report(app, key, 25).await;
    app.wait_for_incident(id, "contained", |i| !i["contained_at"].is_null())
        .await
}

#[tokio::test]
async fn containment_learns_owner_and_last_use_at_once_then_acts_and_verifies() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| {
        let user = |name: &str, key: &str, last_used: Option<&str>| {
            let mut access_key = json!({"id": key, "secret": format!("{key}Secret"),
                "create_date": "-100d"});
            if let Some(at) = last_used {
                access_key["last_used"] = at.into();
            }
            json!({"name": name, "create_date": "-100d", "access_keys": [access_key]})
        };
        let users = s["users"].as_array_mut().unwrap();
        users.push(user("svc-busy", BUSY_KEY, Some("-1h")));
        users.push(user("svc-quiet", QUIET_KEY, None));
    })
    .await;
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": LATENCY_MS, "fail_next": []}),
    )
    .await;
    // The fence's own round trips follow the verified Deny policy; `fence` covers them. The
    // client-side limit on reads (`other`, 20/s by default) spaces any two reads 52.5 ms
    // apart, which would serialise the calls made at once; it is lifted here, as in the
    // benchmark, so the test sees the order akguard asks for.
    let app = daemon(
        &url,
        &[
            ("AKGUARD__CONTAINMENT__NETWORK_FENCE", "off"),
            ("AKGUARD__ALIBABA__RATE_LIMITS__OTHER", "0"),
        ],
    )
    .await;
    let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();

    // The first containment also makes sure of the Deny policy, by its name alone.
    let first = contain(&app, LEAKED_KEY).await;
    let busy = contain(&app, BUSY_KEY).await;
    for (incident, key, user) in [
        (&first, LEAKED_KEY, "ci-deployer"),
        (&busy, BUSY_KEY, "svc-busy"),
    ] {
        assert_eq!(incident["path"], "ram_key_in_use", "{incident:#}");
        assert_eq!(
            round_trips(&url, incident, key, user).await,
            [
                names(&["GetAccessKeyLastUsedInfo", "GetUser"]),
                names(&["AttachPolicyToUser"]),
                names(&["ListAccessKeys", "ListPoliciesForUser"]),
            ],
            "{key}: one round trip before the act, the act, then the verify"
        );
    }
    let log = calls(&url).await;
    let policy_reads: Vec<DateTime<Utc>> = log
        .iter()
        .filter(|c| c["action"] == "GetPolicy")
        .map(|c| time(&c["at"]))
        .collect();
    assert!(
        !policy_reads.is_empty()
            && policy_reads
                .iter()
                .all(|at| *at <= time(&first["contained_at"])),
        "the Deny policy is checked at the first containment, not per incident: {policy_reads:?}"
    );
    assert_eq!(busy["findings"]["triage"]["key_status"], "Active");
    assert_eq!(busy["findings"]["triage"]["other_keys"], json!([]));

    // The MFA sweep of the first two runs apart from them and reads every user, svc-quiet's
    // keys included: let it finish before timing the next path.
    for incident in [&first, &busy] {
        let id = incident["id"].as_i64().unwrap();
        app.wait_for_incident(id, "its MFA sweep done", |i| {
            i["findings"]["mfa"].is_object()
        })
        .await;
    }
    let quiet = contain(&app, QUIET_KEY).await;
    assert_eq!(quiet["path"], "ram_key_unused", "{quiet:#}");
    assert_eq!(
        round_trips(&url, &quiet, QUIET_KEY, "svc-quiet").await,
        [
            names(&["GetAccessKeyLastUsedInfo", "GetUser"]),
            // The status a cancel would restore: Alibaba answers a disable the same either way.
            names(&["ListAccessKeys"]),
            names(&["UpdateAccessKey"]),
            names(&["ListAccessKeys"]),
        ],
        "one round trip to learn owner and last use, the key's status, the act, the verify"
    );
    assert_eq!(quiet["findings"]["disable_key"]["verified"], true);
}

#[tokio::test]
async fn when_actiontrail_cannot_tell_the_last_use_ims_does() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        json!({"fail_next": [{"action": "GetAccessKeyLastUsedInfo", "count": 10,
            "code": "NoPermission", "status": 403}]}),
    )
    .await;
    let app = daemon(&url, &[]).await;
    let incident = contain(&app, LEAKED_KEY).await;
    assert_eq!(
        incident["findings"]["triage"]["usage"], "in_use",
        "{incident:#}"
    );
    let asked: Vec<Value> = calls(&url)
        .await
        .into_iter()
        .filter(|c| c["action"] == "GetAccessKeyLastUsed")
        .collect();
    assert_eq!(
        asked.len(),
        1,
        "IMS is asked once, after ActionTrail refused"
    );
    assert_eq!(asked[0]["params"]["UserAccessKeyId"], LEAKED_KEY);
}

#[tokio::test]
async fn an_attach_that_finds_the_policy_gone_has_it_checked_again_and_attaches() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon(&url, &[]).await;
    let first = contain(&app, LEAKED_KEY).await;
    assert_eq!(first["findings"]["revoke"]["verified"], true);
    let reads_before = calls(&url)
        .await
        .iter()
        .filter(|c| c["action"] == "GetPolicy")
        .count();
    // Someone deletes the policy between two leaks: the next attach says so.
    set_faults(
        &url,
        json!({"fail_next": [{"action": "AttachPolicyToUser", "count": 1,
            "code": "EntityNotExist.Policy", "status": 404}]}),
    )
    .await;
    let second = contain(&app, "LTAI5tBkD00rSvcBackup3Zq").await;
    assert_eq!(second["findings"]["revoke"]["verified"], true, "{second:#}");
    let log = calls(&url).await;
    let reads_after = log.iter().filter(|c| c["action"] == "GetPolicy").count();
    assert!(
        reads_after > reads_before,
        "the policy is checked again after an attach found it gone"
    );
}

#[tokio::test]
async fn triages_verdict_is_committed_with_the_first_intent_of_the_act() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // Each call takes long enough that two commits around a claim cannot share a timestamp.
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 20, "fail_next": []}),
    )
    .await;
    let app = daemon(&url, &[("AKGUARD__CONTAINMENT__NETWORK_FENCE", "off")]).await;
    let incident = contain(&app, LEAKED_KEY).await;
    let id = incident["id"].as_i64().unwrap();
    let events = audit_actions(&app, id).await;
    let triaged = events
        .iter()
        .position(|e| e["action"] == "incident.transition" && e["detail"]["to"] == "revoke")
        .expect("triage's transition");
    let intent = events[triaged..]
        .iter()
        .find(|e| e["action"] == "cloud.intent")
        .expect("an intent after triage");
    assert_eq!(
        events[triaged]["at"], intent["at"],
        "triage's verdict and the act's first intent are one commit: {intent:#}"
    );
    // The intent precedes its call in the trail, and the call's result follows it.
    let api = intent["detail"]["api"].as_str().unwrap();
    assert!(
        events
            .iter()
            .skip_while(|e| e["id"] != intent["id"])
            .any(|e| e["action"] == "cloud.call" && e["detail"]["api"] == api),
        "{api}'s result follows its intent"
    );
}
