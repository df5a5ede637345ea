//! The Security Center poller end to end: the real daemon polling the emulator.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cloud_support::{AKGUARD_KEY, AKGUARD_SECRET, LEAKED_KEY, calls_of, emulator};
use crate::helpers::TestDaemon;

async fn daemon_polling(url: &str) -> TestDaemon {
    TestDaemon::spawn_with_env(
        "",
        &[
            ("AKGUARD__INTAKE__SECURITY_CENTER__ENABLED", "true"),
            ("AKGUARD__INTAKE__SECURITY_CENTER__INTERVAL", "1s"),
            ("AKGUARD__ALIBABA__ENDPOINT", url),
            ("AKGUARD__ALIBABA__ACCESS_KEY_ID", AKGUARD_KEY),
            ("AKGUARD__ALIBABA__ACCESS_KEY_SECRET", AKGUARD_SECRET),
        ],
    )
    .await
}

/// Waits (bounded) until the emulator has answered `n` leak-list calls.
async fn wait_for_polls(url: &str, n: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let polls: Vec<Value> = calls_of(url, "DescribeAccesskeyLeakList")
            .await
            .into_iter()
            .filter(|c| c["status"] == 200)
            .collect();
        if polls.len() >= n {
            return polls;
        }
        assert!(
            Instant::now() < deadline,
            "only {} polls in 20 s",
            polls.len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn leak_records_become_incidents_once_even_across_restarts() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let mut app = daemon_polling(&url).await;

    // The second poll starts after the first one's records are durable.
    wait_for_polls(&url, 2).await;
    let incidents = app.get_ok("/v1/incidents").await["incidents"].clone();
    let incidents = incidents.as_array().unwrap();
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let incident = &incidents[0];
    assert_eq!(incident["access_key_id"], LEAKED_KEY);
    assert_eq!(incident["owner_type"], "ram_user");
    assert_eq!(incident["account_name"], "acme-prod");
    assert_eq!(
        incident["leak_url"],
        "https://github.com/acme-dev/deploy-scripts/blob/3f9c2ab/config/settings.py"
    );
    let id = incident["id"].as_i64().unwrap();
    let audit = app.get_ok(&format!("/v1/incidents/{id}/audit")).await;
    assert_eq!(audit["events"][0]["actor"], "poller:security_center");
    assert_eq!(audit["events"][0]["detail"]["delivery_id"], "389357");

    assert!(app.stop().await.success());
    let before_restart = calls_of(&url, "DescribeAccesskeyLeakList").await.len();
    app.restart().await;
    let polls = wait_for_polls(&url, before_restart + 2).await;
    assert_eq!(app.incident_ids().await, vec![id]);
    // The high-water mark survived the restart: the first poll after it did not start at 0.
    let first_after = &polls[before_restart];
    let start: i64 = first_after["params"]["StartTs"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(start > 0, "the poller forgot its mark: {first_after}");
    let incident = app.get_ok(&format!("/v1/incidents/{id}")).await;
    assert_eq!(incident["sightings"], serde_json::json!([]));
}
