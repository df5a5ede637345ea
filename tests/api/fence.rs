//! The network fence end to end: the leaked key limited to its workload's networks beside the
//! Deny policy, the attacker's calls refused while the workload's go on, and cancel putting
//! the previous policy back exactly.

use akguard::cloud::sign;
use akguard_emulator::SOURCE_IP_HEADER;
use serde_json::{Value, json};

use crate::artefacts::act;
use crate::cloud_support::{LEAKED_KEY, calls, calls_of, emulator, set_faults, state};
use crate::remediation::{daemon_with, report, user};

const LEAKED_SECRET: &str = "Xk3pLm9QwRt7YvZ2Nb5HjF8sDc4GaE";
const WORKLOAD: &str = "10.0.8.14";
const ATTACKER: &str = "45.134.26.19";
const FENCE: &str = r#"
[[containment.fence]]
user = "ci-deployer"
cidrs = ["10.0.8.0/24"]
"#;

/// A call signed with the leaked key, as if from `address`: its HTTP status and `Code`.
async fn leaked_key_call(url: &str, address: &str) -> (u16, Value) {
    let mut params: Vec<(String, String)> = [
        ("Action", "QueryAccountBalance"),
        ("Version", "2017-12-14"),
        ("Format", "JSON"),
        ("AccessKeyId", LEAKED_KEY),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    params.push(("SignatureNonce".into(), sign::fresh_nonce()));
    params.push(("Timestamp".into(), sign::timestamp(chrono::Utc::now())));
    let signature = sign::signature(LEAKED_SECRET, "POST", &params);
    params.push(("Signature".into(), signature));
    let response = reqwest::Client::new()
        .post(format!("{url}/"))
        .header(SOURCE_IP_HEADER, address)
        .form(&params)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn leaked_key(cloud: &Value) -> Value {
    user(cloud, "ci-deployer")["access_keys"][0].clone()
}

fn with_workload(scenario: &mut Value) {
    scenario["workload"] = json!({"access_key_id": LEAKED_KEY,
        "secret_name": "acme/ci-deployer/accesskey", "interval_ms": 50, "source_ip": WORKLOAD});
}

#[tokio::test]
async fn a_fenced_key_refuses_the_attackers_calls_while_its_workload_goes_on() {
    let (url, _emulator) = emulator("leaked-in-use.json", with_workload).await;
    assert_eq!(leaked_key_call(&url, ATTACKER).await.0, 200);
    let app = daemon_with(&url, FENCE, &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "awaiting_operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    let fence = &incident["findings"]["fence"];
    assert_eq!(fence["verified"], true, "{incident:#}");
    assert_eq!(fence["source"], "configured");
    assert_eq!(fence["networks"]["cidrs"], json!(["10.0.8.0/24"]));
    assert_eq!(
        fence["previous_policy"],
        r#"{"Version":1,"Status":"Inactive","Statements":[]}"#
    );
    // Beside the Deny policy, never in its place.
    assert_eq!(incident["findings"]["revoke"]["verified"], true);
    let explanation = incident["explanation"].as_str().unwrap();
    assert!(
        explanation.contains("limited to calls from 10.0.8.0/24"),
        "{explanation}"
    );

    let refused = leaked_key_call(&url, ATTACKER).await;
    assert_eq!(refused.0, 403, "{refused:?}");
    assert_eq!(refused.1["Code"], "Forbidden.AccessKeyNetworkPolicy");
    assert_eq!(leaked_key_call(&url, WORKLOAD).await.0, 200);
    // The simulated workload keeps using the key: its last use moves on.
    let before = leaked_key(&state(&url).await)["last_used"].clone();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let after = leaked_key(&state(&url).await)["last_used"].clone();
    assert_ne!(before, after, "the workload stopped using its key");
    // Set once, read back before and after.
    assert_eq!(calls_of(&url, "SetAccessKeyPolicy").await.len(), 1);
    assert_eq!(calls_of(&url, "GetAccessKeyPolicy").await.len(), 2);
}

#[tokio::test]
async fn cancel_restores_the_keys_previous_policy_exactly() {
    // An earlier policy of the owner's, spaced its own way: it must come back byte for byte.
    let previous = r#"{"Version": 1, "Status": "Active", "Statements": [{"Type": "ClassicWhiteList", "IPList": ["10.0.8.0/24", "198.51.100.0/24"]}]}"#;
    let (url, _emulator) = emulator("leaked-in-use.json", |scenario| {
        with_workload(scenario);
        let users = scenario["users"].as_array_mut().unwrap();
        let ci = users
            .iter_mut()
            .find(|u| u["name"] == "ci-deployer")
            .unwrap();
        ci["access_keys"][0]["network_policy"] = previous.into();
    })
    .await;
    let app = daemon_with(&url, FENCE, &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "awaiting_operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    assert_eq!(incident["findings"]["fence"]["previous_policy"], previous);
    assert_ne!(leaked_key(&state(&url).await)["network_policy"], previous);

    let (status, body) = act(&app, id, "cancel", json!({"reason": "a test key"})).await;
    assert_eq!(status, 200, "{body}");
    let cancelled = app
        .wait_for_incident(id, "cancelled", |i| i["state"] == "cancelled")
        .await;
    assert_eq!(leaked_key(&state(&url).await)["network_policy"], previous);
    let undone = cancelled["findings"]["cancel"]["undone"].to_string();
    assert!(undone.contains("network access policy"), "{cancelled:#}");
    assert_eq!(leaked_key_call(&url, "198.51.100.7").await.0, 200);
}

#[tokio::test]
async fn with_the_fence_off_the_deny_policy_alone_contains_the_key() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(
        &url,
        FENCE,
        &[("AKGUARD__CONTAINMENT__NETWORK_FENCE", "off")],
    )
    .await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "awaiting_operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    assert!(incident["findings"]["fence"].is_null(), "{incident:#}");
    assert_eq!(incident["findings"]["revoke"]["verified"], true);
    assert!(calls_of(&url, "SetAccessKeyPolicy").await.is_empty());
}

#[tokio::test]
async fn a_crash_right_after_setting_the_fence_is_settled_by_reading_it_and_cancel_still_restores()
{
    let (url, _emulator) = emulator("leaked-in-use.json", with_workload).await;
    let mut app = daemon_with(
        &url,
        FENCE,
        &[("AKGUARD_TEST_CRASH_AFTER", "SetAccessKeyPolicy")],
    )
    .await;
    let id = report(&app, LEAKED_KEY, 25).await;
    assert!(
        !app.wait_exit().await.success(),
        "the crash hook did not fire"
    );
    app.set_env("AKGUARD_TEST_CRASH_AFTER", None);
    app.restart().await;
    let incident = app
        .wait_for_incident(id, "awaiting_operator", |i| {
            i["state"] == "awaiting_operator"
        })
        .await;
    assert_eq!(incident["findings"]["fence"]["verified"], true);
    // Read back, not set again.
    assert_eq!(calls_of(&url, "SetAccessKeyPolicy").await.len(), 1);

    let (status, body) = act(&app, id, "cancel", json!({"reason": "a test key"})).await;
    assert_eq!(status, 200, "{body}");
    let cancelled = app
        .wait_for_incident(id, "cancelled", |i| i["state"] == "cancelled")
        .await;
    assert_eq!(
        cancelled["findings"]["cancel"]["not_undone"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["api"] == "SetAccessKeyPolicy")
            .count(),
        0,
        "{cancelled:#}"
    );
    assert_eq!(
        leaked_key(&state(&url).await)["network_policy"],
        r#"{"Version":1,"Status":"Inactive","Statements":[]}"#
    );
    assert_eq!(leaked_key_call(&url, ATTACKER).await.0, 200);
}

#[tokio::test]
async fn the_fence_is_set_beside_the_deny_policy_not_after_it() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // Long enough that a call made after another's answer cannot start before it.
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 100, "fail_next": []}),
    )
    .await;
    let app = daemon_with(&url, FENCE, &[]).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app
        .wait_for_incident(id, "contained", |i| !i["contained_at"].is_null())
        .await;
    assert_eq!(
        incident["findings"]["fence"]["verified"], true,
        "{incident:#}"
    );
    assert_eq!(incident["findings"]["revoke"]["verified"], true);
    let log = calls(&url).await;
    let first = |action: &str, field: &str| -> chrono::DateTime<chrono::Utc> {
        let call = log
            .iter()
            .filter(|c| {
                c["params"]["UserName"] == "ci-deployer"
                    || c["params"]["UserAccessKeyId"] == LEAKED_KEY
            })
            .find(|c| c["action"] == action)
            .unwrap_or_else(|| panic!("no {action} call"));
        call[field].as_str().unwrap().parse().unwrap()
    };
    assert!(
        first("GetAccessKeyPolicy", "at") < first("AttachPolicyToUser", "answered_at"),
        "the fence's read starts while the attach is under way"
    );
    assert!(
        first("SetAccessKeyPolicy", "at") < first("ListPoliciesForUser", "answered_at"),
        "the fence is set while the attach is verified"
    );
}
