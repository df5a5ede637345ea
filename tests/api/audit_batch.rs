//! The ActionTrail audit of a burst: the incidents of one account that wait for it at once
//! share one account-wide `LookupEvents` pass, with the findings each would have alone.

use serde_json::{Value, json};

use crate::cloud_support::{LEAKED_KEY, calls_of, emulator};
use crate::helpers::TestDaemon;
use crate::remediation::{audit_actions, daemon, report, settled};

const BACKDOOR_KEY: &str = "LTAI5tBkD00rSvcBackup3Zq";
/// Long enough for every report of a test to join the first batch.
const GATHER: (&str, &str) = ("AKGUARD__AUDIT__BATCH_GATHER", "4s");
const WORKERS: (&str, &str) = ("AKGUARD__REMEDIATION__WORKERS", "4");

fn burst_key(i: usize) -> String {
    format!("LTAI5tBurstKey{i:010}")
}

fn burst_ip(i: usize) -> String {
    format!("203.0.113.{}", 10 + i)
}

/// An event of the scenario's, made with `key` from `ip` at `at` in `region`.
fn event_like(scenario: &Value, id: &str, key: &str, ip: &str, at: &str, region: &str) -> Value {
    let mut event = scenario["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventName"] == "DescribeInstances")
        .unwrap()
        .clone();
    event["eventId"] = json!(id);
    event["requestId"] = json!(id);
    event["eventTime"] = json!(at);
    event["acsRegion"] = json!(region);
    event["sourceIpAddress"] = json!(ip);
    event["userIdentity"]["accessKeyId"] = json!(key);
    event
}

/// `keys` more leaked keys in use, each with one call in cn-hangzhou from an address of its
/// own, and `noise` calls of a key no incident is about.
fn with_burst(scenario: &mut Value, keys: usize, noise: usize) {
    let mut events: Vec<Value> = (0..keys)
        .map(|i| {
            let id = format!("burst-event-{i}");
            event_like(
                scenario,
                &id,
                &burst_key(i),
                &burst_ip(i),
                "-30m",
                "cn-hangzhou",
            )
        })
        .collect();
    events.extend((0..noise).map(|i| {
        let id = format!("noise-event-{i}");
        let at = format!("-{}m", 40 + i);
        event_like(
            scenario,
            &id,
            "LTAI5tNoiseKey0000000001",
            "10.0.0.9",
            &at,
            "cn-hangzhou",
        )
    }));
    scenario["events"].as_array_mut().unwrap().extend(events);
    let users = scenario["users"].as_array_mut().unwrap();
    users.extend((0..keys).map(|i| {
        json!({
            "name": format!("burst-{i}"),
            "create_date": "-100d",
            "access_keys": [{
                "id": burst_key(i),
                "secret": format!("burstSecret{i:019}"),
                "create_date": "-100d",
                "last_used": "-5m",
                "last_used_service": "Ecs",
                "leaked": true,
            }],
        })
    }));
}

/// Reports the leaked key and the burst's keys; their incident ids, the leaked key's first.
async fn report_all(app: &TestDaemon, keys: usize) -> Vec<i64> {
    let mut ids = vec![report(app, LEAKED_KEY, 25).await];
    for i in 0..keys {
        ids.push(report(app, &burst_key(i), 25).await);
    }
    ids
}

async fn settled_incident(app: &TestDaemon, id: i64) -> Value {
    app.wait_for_incident(id, "settled with its audit", |i| {
        settled(i) && i["findings"]["audit"].is_object()
    })
    .await
}

/// How the incident's audit batch answered it (`account_wide` or `per_key`), and its own
/// `LookupEvents` reads in the audit step.
async fn batch_outcome(app: &TestDaemon, id: i64) -> (String, usize) {
    let rows = audit_actions(app, id).await;
    let outcome = rows
        .iter()
        .find(|r| r["action"] == "audit.batch")
        .map(|r| r["detail"]["outcome"].as_str().unwrap().to_owned())
        .unwrap_or_default();
    let own = rows
        .iter()
        .filter(|r| {
            r["action"] == "cloud.read"
                && r["detail"]["api"] == "LookupEvents"
                && r["detail"]["step"] == "audit"
        })
        .count();
    (outcome, own)
}

/// `LookupEvents` calls with no lookup attribute: the account-wide pages.
async fn account_wide_calls(url: &str) -> usize {
    calls_of(url, "LookupEvents")
        .await
        .iter()
        .filter(|c| c["params"]["LookupAttribute.1.Key"].is_null())
        .count()
}

fn source_ips(incident: &Value) -> Vec<String> {
    let mut ips: Vec<String> = incident["findings"]["audit"]["source_ips"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["ip"].as_str().unwrap().to_owned())
        .collect();
    ips.sort();
    ips
}

/// The leaked key's findings: its addresses, what it created, and its chained key.
async fn assert_leaked_key_findings(app: &TestDaemon, incident: &Value) {
    let audit = &incident["findings"]["audit"];
    assert_eq!(
        source_ips(incident),
        ["10.0.8.14", "185.220.101.47", "45.134.26.19"],
        "{audit:#}"
    );
    assert!(
        audit["resources_created"]
            .to_string()
            .contains("RunInstances"),
        "{audit:#}"
    );
    assert_eq!(
        audit["keys_created"]["items"][0]["access_key_id"],
        BACKDOOR_KEY
    );
    let chained = app
        .get_ok(&format!("/v1/incidents?access_key_id={BACKDOOR_KEY}"))
        .await;
    assert_eq!(
        chained["incidents"][0]["parent_incident_id"],
        incident["id"]
    );
}

#[tokio::test]
async fn a_burst_is_audited_with_far_fewer_lookups_than_incidents() {
    const KEYS: usize = 11;
    let (url, _emulator) = emulator("leaked-in-use.json", |s| with_burst(s, KEYS, 0)).await;
    let app = daemon(&url, &[GATHER, WORKERS]).await;
    let ids = report_all(&app, KEYS).await;
    let mut lookups = account_wide_calls(&url).await;
    for (n, id) in ids.iter().enumerate() {
        let incident = settled_incident(&app, *id).await;
        let (outcome, own) = batch_outcome(&app, *id).await;
        assert_eq!(
            (outcome.as_str(), own),
            ("account_wide", 0),
            "incident {id}"
        );
        lookups += own;
        if n == 0 {
            assert_leaked_key_findings(&app, &incident).await;
        } else {
            let audit = &incident["findings"]["audit"];
            assert_eq!(source_ips(&incident), [burst_ip(n - 1)], "{audit:#}");
            assert_eq!(audit["events_examined"], 1, "{audit:#}");
        }
    }
    // One page per region for the whole burst.
    let account_wide = account_wide_calls(&url).await;
    assert_eq!(account_wide, 3);
    assert!(
        lookups + account_wide < ids.len() / 2,
        "{lookups} lookups for {} incidents",
        ids.len()
    );
}

#[tokio::test]
async fn an_incident_audited_in_a_batch_has_the_findings_it_has_alone() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| with_burst(s, 3, 0)).await;
    // Alone: its own queries.
    let mut alone = daemon(&url, &[GATHER, WORKERS]).await;
    let id = report(&alone, LEAKED_KEY, 25).await;
    let by_itself = settled_incident(&alone, id).await;
    assert_eq!(batch_outcome(&alone, id).await, ("per_key".into(), 3));
    assert!(alone.stop().await.success());
    assert_eq!(account_wide_calls(&url).await, 0);

    // In a batch, on a fresh database against the same cloud.
    let app = daemon(&url, &[GATHER, WORKERS]).await;
    let ids = report_all(&app, 3).await;
    let batched = settled_incident(&app, ids[0]).await;
    assert_eq!(
        batch_outcome(&app, ids[0]).await,
        ("account_wide".into(), 0)
    );
    assert_eq!(
        batched["findings"]["audit"], by_itself["findings"]["audit"],
        "the same events make the same findings"
    );
    assert_leaked_key_findings(&app, &batched).await;
}

#[tokio::test]
async fn an_account_with_more_events_than_the_batch_is_worth_falls_back_to_per_key_queries() {
    // Two incidents are worth two pages; cn-hangzhou holds more than a hundred events.
    let (url, _emulator) = emulator("leaked-in-use.json", |s| with_burst(s, 1, 120)).await;
    let app = daemon(&url, &[GATHER, WORKERS]).await;
    let ids = report_all(&app, 1).await;
    let leaked = settled_incident(&app, ids[0]).await;
    let other = settled_incident(&app, ids[1]).await;
    assert_eq!(
        account_wide_calls(&url).await,
        2,
        "paging stopped at the budget"
    );
    for id in &ids {
        assert_eq!(
            batch_outcome(&app, *id).await,
            ("per_key".into(), 3),
            "incident {id}"
        );
    }
    assert_leaked_key_findings(&app, &leaked).await;
    assert_eq!(source_ips(&other), [burst_ip(0)]);
}

#[cfg(feature = "fault-injection")]
#[tokio::test]
async fn a_crash_in_the_middle_of_a_batch_loses_no_incident() {
    let (url, _emulator) = emulator("leaked-in-use.json", |s| with_burst(s, 3, 0)).await;
    let mut app = daemon(
        &url,
        &[
            GATHER,
            WORKERS,
            ("AKGUARD_TEST_CRASH_AFTER", "LookupEvents"),
        ],
    )
    .await;
    let ids = report_all(&app, 3).await;
    assert!(
        !app.wait_exit().await.success(),
        "the crash hook did not fire"
    );
    assert_eq!(
        account_wide_calls(&url).await,
        1,
        "died after the first page"
    );

    app.set_env("AKGUARD_TEST_CRASH_AFTER", None);
    app.restart().await;
    for (n, id) in ids.iter().enumerate() {
        let incident = settled_incident(&app, *id).await;
        assert_eq!(batch_outcome(&app, *id).await, ("account_wide".into(), 0));
        if n == 0 {
            assert_leaked_key_findings(&app, &incident).await;
        } else {
            assert_eq!(source_ips(&incident), [burst_ip(n - 1)]);
        }
    }
    // The batch's pass ran again from its start: one page per region.
    assert_eq!(account_wide_calls(&url).await, 1 + 3);
}
