//! The emulator over real HTTP: form bodies and query strings, the control API and the
//! metadata service.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use super::super::scenario::Scenario;
use super::super::spawn;
use super::support::*;

/// Signed with the system clock, which a spawned emulator uses.
fn signed(
    method: &str,
    who: Signer,
    version: &str,
    action: &str,
    nonce: &str,
) -> BTreeMap<String, String> {
    let call = Call {
        method,
        who,
        version,
        action,
        extra: &[],
    };
    call.signed_at(Utc::now(), nonce)
}

fn form(params: &BTreeMap<String, String>) -> String {
    form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish()
}

async fn post_form(
    client: &reqwest::Client,
    url: &str,
    params: &BTreeMap<String, String>,
) -> (u16, Value) {
    let response = client
        .post(format!("{url}/"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form(params))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn form_posts_and_query_gets_both_work_and_are_logged() {
    let (url, _guard) = spawn(Scenario::from_json(SCENARIO).unwrap()).await.unwrap();
    let client = reqwest::Client::new();
    let (status, body) = post_form(
        &client,
        &url,
        &signed("POST", AKGUARD, RAM, "ListUsers", "n1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["Users"]["User"].as_array().unwrap().len(), 4);
    let query = form(&signed(
        "GET",
        AKGUARD,
        SAS,
        "DescribeAccesskeyLeakList",
        "n2",
    ));
    let response = client.get(format!("{url}/?{query}")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let query = form(&signed("POST", AKGUARD, BSS, "QueryAccountBalance", "n3"));
    let response = client.post(format!("{url}/?{query}")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let calls: Value = client
        .get(format!("{url}/_emulator/calls"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let calls = calls["calls"].as_array().unwrap();
    assert_eq!(calls.len(), 3);
    assert_eq!(calls[1]["method"], "GET");
    assert_eq!(calls[2]["action"], "QueryAccountBalance");
    assert!(calls[0]["params"].get("Signature").is_none());
}

#[tokio::test]
async fn the_control_api_steers_faults_and_the_clock() {
    let (url, _guard) = spawn(Scenario::from_json(SCENARIO).unwrap()).await.unwrap();
    let client = reqwest::Client::new();
    let faults = json!({"fail_next": [{"action": "ListUsers"}], "retry_after_ms": 200});
    let put = client
        .put(format!("{url}/_emulator/faults"))
        .json(&faults)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    let (status, body) = post_form(
        &client,
        &url,
        &signed("POST", AKGUARD, RAM, "ListUsers", "n1"),
    )
    .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (503, Some("ServiceUnavailable"))
    );
    let current: Value = client
        .get(format!("{url}/_emulator/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(current["fail_next"], json!([]));
    let bad = client
        .put(format!("{url}/_emulator/faults"))
        .body("{\"throttle_rate\": 2}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);

    let moved = client
        .post(format!("{url}/_emulator/clock"))
        .json(&json!({"offset_secs": 3600}))
        .send()
        .await
        .unwrap();
    assert_eq!(moved.status().as_u16(), 200);
    let (status, body) = post_form(
        &client,
        &url,
        &signed("POST", AKGUARD, RAM, "ListUsers", "n2"),
    )
    .await;
    assert_eq!(
        (status, body["Code"].as_str()),
        (400, Some("InvalidTimeStamp.Expired"))
    );

    client
        .post(format!("{url}/_emulator/clock"))
        .json(&json!({"offset_secs": 0}))
        .send()
        .await
        .unwrap();
    let update = Call {
        method: "POST",
        who: AKGUARD,
        version: RAM,
        action: "UpdateAccessKey",
        extra: &[
            ("UserName", "ci-deployer"),
            ("UserAccessKeyId", LEAKED_KEY),
            ("Status", "Inactive"),
        ],
    }
    .signed_at(Utc::now(), "n3");
    assert_eq!(post_form(&client, &url, &update).await.0, 200);
    let state: Value = client
        .get(format!("{url}/_emulator/state"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(state["users"][1]["access_keys"][0]["status"], "Inactive");
}

#[tokio::test]
async fn instance_role_credentials_come_from_the_metadata_service() {
    let (url, _guard) = spawn(Scenario::from_json(SCENARIO).unwrap()).await.unwrap();
    let client = reqwest::Client::new();
    let roles = format!("{url}/latest/meta-data/ram/security-credentials/");
    // This scenario allows IMDSv2 only.
    assert_eq!(
        client.get(&roles).send().await.unwrap().status().as_u16(),
        403
    );
    let token = client
        .put(format!("{url}/latest/api/token"))
        .header("X-aliyun-ecs-metadata-token-ttl-seconds", "300")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let with_token = |path: String| {
        client
            .get(path)
            .header("X-aliyun-ecs-metadata-token", token.as_str())
    };
    let role = with_token(roles.clone())
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(role, "akguard-responder");
    let creds: Value = with_token(format!("{roles}{role}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(creds["Code"], "Success");
    let again: Value = with_token(format!("{roles}{role}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(again["AccessKeyId"], creds["AccessKeyId"]);
    let who = Signer {
        key: creds["AccessKeyId"].as_str().unwrap(),
        secret: creds["AccessKeySecret"].as_str().unwrap(),
        token: creds["SecurityToken"].as_str(),
    };
    let (status, body) = post_form(
        &client,
        &url,
        &signed("POST", who, STS, "GetCallerIdentity", "m1"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["Arn"],
        "acs:ram::1234567890123456:assumed-role/akguard-responder/ecs-instance-role"
    );
    let stale = client
        .get(format!("{roles}{role}"))
        .header("X-aliyun-ecs-metadata-token", "stale")
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status().as_u16(), 401);
}

/// The call log stamps a request when it arrives, not once its body is read: a stamp taken
/// late would show two calls closer together than they came, and the fleet's rate-limit test
/// reads rates from these stamps.
#[tokio::test]
async fn a_call_is_logged_at_its_arrival_not_when_its_body_has_come() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (url, _guard) = spawn(Scenario::from_json(SCENARIO).unwrap()).await.unwrap();
    let address = url.trim_start_matches("http://");
    let body = form(&signed("POST", AKGUARD, RAM, "ListUsers", "n1"));
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The body follows a while after the head, as from a slow client.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let body_sent = Utc::now();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    let calls: Value = reqwest::get(format!("{url}/_emulator/calls"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let at = calls["calls"][0]["at"].as_str().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(at).unwrap();
    assert!(
        at < body_sent,
        "the call was logged at {at}, after its body was sent at {body_sent}"
    );
}
