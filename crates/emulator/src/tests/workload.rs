//! The simulated workload: it keeps its key in use and moves to a delivered key that works.

use serde_json::Value;

use super::super::workload;
use super::support::{Harness, KMS, LEAKED_KEY, RAM, SCENARIO, SPARE_KEY};

const SECRET: &str = "prod/ci-deployer/ak";

fn harness() -> Harness {
    let mut scenario: Value = serde_json::from_str(SCENARIO).unwrap();
    scenario["workload"] = serde_json::json!({"access_key_id": LEAKED_KEY, "secret_name": SECRET});
    Harness::with(&scenario.to_string())
}

fn tick(h: &Harness) {
    workload::tick(&mut h.shared.lock().world, h.clock.now());
}

fn key(h: &Harness, id: &str) -> Value {
    let state = h.state();
    state["users"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|u| u["access_keys"].as_array().unwrap().iter())
        .find(|k| k["id"] == id)
        .cloned()
        .unwrap_or(Value::Null)
}

/// Makes room, creates a key for ci-deployer and returns its id and secret.
fn new_key(h: &Harness) -> (String, String) {
    let deleted = h.call(
        RAM,
        "DeleteAccessKey",
        &[("UserName", "ci-deployer"), ("UserAccessKeyId", SPARE_KEY)],
    );
    assert_eq!(deleted.0, 200, "{deleted:?}");
    let (status, body) = h.call(RAM, "CreateAccessKey", &[("UserName", "ci-deployer")]);
    assert_eq!(status, 200, "{body}");
    let created = &body["AccessKey"];
    (
        created["AccessKeyId"].as_str().unwrap().to_owned(),
        created["AccessKeySecret"].as_str().unwrap().to_owned(),
    )
}

fn deliver(h: &Harness, version: &str, id: &str, secret: &str) {
    let data = serde_json::json!({"AccessKeyId": id, "AccessKeySecret": secret}).to_string();
    let (status, body) = h.call(
        KMS,
        "PutSecretValue",
        &[
            ("SecretName", SECRET),
            ("VersionId", version),
            ("SecretData", &data),
        ],
    );
    assert_eq!(status, 200, "{body}");
}

#[test]
fn the_workload_keeps_using_its_key_until_a_working_one_is_delivered() {
    let h = harness();
    tick(&h);
    let first_use = key(&h, LEAKED_KEY)["last_used"].clone();
    assert_eq!(first_use, "2026-11-28T12:00:00Z", "used at the first tick");
    h.advance(5);
    tick(&h);
    assert_ne!(key(&h, LEAKED_KEY)["last_used"], first_use, "still in use");

    let (id, secret) = new_key(&h);
    // A delivery whose secret is wrong does not work, so the workload stays where it is.
    deliver(&h, "bad", &id, "not-the-secret");
    h.advance(5);
    tick(&h);
    assert_eq!(h.state()["workload"]["access_key_id"], LEAKED_KEY);
    assert!(key(&h, &id).get("last_used").is_none_or(Value::is_null));

    deliver(&h, "good", &id, &secret);
    h.advance(5);
    tick(&h);
    assert_eq!(h.state()["workload"]["access_key_id"], id.as_str());
    let switched_at = key(&h, &id)["last_used"].clone();
    assert!(switched_at.is_string());
    let old_last = key(&h, LEAKED_KEY)["last_used"].clone();
    h.advance(5);
    tick(&h);
    assert_eq!(
        key(&h, LEAKED_KEY)["last_used"],
        old_last,
        "the old key went quiet"
    );
    assert_ne!(
        key(&h, &id)["last_used"],
        switched_at,
        "the new key stays in use"
    );
}

#[test]
fn a_disabled_key_is_not_used() {
    let h = harness();
    let (status, body) = h.call(
        RAM,
        "UpdateAccessKey",
        &[
            ("UserName", "ci-deployer"),
            ("UserAccessKeyId", LEAKED_KEY),
            ("Status", "Inactive"),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let before = key(&h, LEAKED_KEY)["last_used"].clone();
    h.advance(5);
    tick(&h);
    assert_eq!(key(&h, LEAKED_KEY)["last_used"], before);
}

#[test]
fn a_workload_must_name_an_existing_key_and_secret() {
    for (id, secret) in [
        ("LTAI5tNOSUCHKEY000000001", SECRET),
        (LEAKED_KEY, "no/such/secret"),
    ] {
        let mut scenario: Value = serde_json::from_str(SCENARIO).unwrap();
        scenario["workload"] = serde_json::json!({"access_key_id": id, "secret_name": secret});
        let err = super::super::scenario::Scenario::from_json(&scenario.to_string())
            .unwrap_err()
            .to_string();
        assert!(err.contains("workload"), "{err}");
    }
}
