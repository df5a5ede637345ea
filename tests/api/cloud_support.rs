//! The emulator in process, and clients pointed at it.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use akguard::cloud::credentials::{BaseSource, Credentials};
use akguard::cloud::product::Product;
use akguard::cloud::ratelimit::ApiClass;
use akguard::cloud::{ClientOptions, CloudClient, SignatureVersion};
use akguard_emulator::{EmulatorGuard, Scenario};
use serde_json::Value;

/// akguard's own key in every shipped scenario.
pub const AKGUARD_KEY: &str = "LTAI5tAKGUARDEMULATOR001";
pub const AKGUARD_SECRET: &str = "akguardEmulatorSecretDoNotUse0";
/// The leaked key of `leaked-in-use.json`.
pub const LEAKED_KEY: &str = "LTAI5tQ9xLeakedCiDeploy7";

pub fn scenario_json(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("config/scenarios")
        .join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Starts an emulator on a shipped scenario, changed by `tweak` first.
pub async fn emulator(name: &str, tweak: impl FnOnce(&mut Value)) -> (String, EmulatorGuard) {
    let mut json = scenario_json(name);
    tweak(&mut json);
    let scenario = Scenario::from_json(&json.to_string()).unwrap();
    akguard_emulator::spawn(scenario).await.unwrap()
}

pub fn options(url: &str, base: BaseSource) -> ClientOptions {
    ClientOptions {
        base,
        assume_role: None,
        endpoints: Product::ALL
            .iter()
            .map(|p| (*p, url.to_owned()))
            .collect::<HashMap<_, _>>(),
        regional_actiontrail: false,
        connect_timeout: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        signature_version: SignatureVersion::V3,
        rates: vec![(ApiClass::LookupEvents, 2.0), (ApiClass::RamWrite, 50.0)],
    }
}

pub fn static_key(id: &str, secret: &str) -> BaseSource {
    BaseSource::Static(Credentials {
        access_key_id: id.into(),
        access_key_secret: secret.to_owned().into(),
        security_token: None,
        expires_at: None,
    })
}

/// A client signing as akguard's own identity.
pub fn client(url: &str) -> CloudClient {
    CloudClient::new(options(url, static_key(AKGUARD_KEY, AKGUARD_SECRET))).unwrap()
}

async fn control(method: reqwest::Method, url: &str, path: &str, body: Option<Value>) -> Value {
    let mut request = reqwest::Client::new().request(method, format!("{url}/_emulator/{path}"));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{path}: {}",
        response.status()
    );
    response.json().await.unwrap_or(Value::Null)
}

/// Every call the emulator received, in order.
pub async fn calls(url: &str) -> Vec<Value> {
    control(reqwest::Method::GET, url, "calls", None).await["calls"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub async fn calls_of(url: &str, action: &str) -> Vec<Value> {
    calls(url)
        .await
        .into_iter()
        .filter(|c| c["action"] == action)
        .collect()
}

pub async fn state(url: &str) -> Value {
    control(reqwest::Method::GET, url, "state", None).await
}

pub async fn set_faults(url: &str, faults: Value) {
    control(reqwest::Method::PUT, url, "faults", Some(faults)).await;
}

pub async fn advance_clock(url: &str, secs: i64) {
    control(
        reqwest::Method::POST,
        url,
        "clock",
        Some(serde_json::json!({"advance_secs": secs})),
    )
    .await;
}
