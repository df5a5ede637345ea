//! A harness that drives request handling without HTTP on a fixed clock, and a test-only
//! signer written differently from both the verifier and the client (the documented
//! "URL-encode, then patch `+`, `*` and `%7E`" recipe).

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;

use super::super::clock::Clock;
use super::super::network::Source;
use super::super::params::Params;
use super::super::scenario::Scenario;
use super::super::server;
use super::super::state::Shared;
use super::super::when::format_time;

pub const RAM: &str = "2015-05-01";
pub const IMS: &str = "2019-08-15";
pub const STS: &str = "2015-04-01";
pub const TRAIL: &str = "2020-07-06";
pub const BSS: &str = "2017-12-14";
pub const KMS: &str = "2016-01-20";
pub const SAS: &str = "2018-12-03";

pub const AKGUARD_KEY: &str = "LTAI5tAKGUARDEMULATOR001";
pub const AKGUARD_SECRET: &str = "akguardEmulatorSecretDoNotUse0";
pub const LEAKED_KEY: &str = "LTAI5tLEAKEDLEAKEDLEAK01";
pub const LEAKED_SECRET: &str = "leakedSecretLeakedSecret000001";
pub const SPARE_KEY: &str = "LTAI5tCIDEPLOYERSPARE001";
pub const ROOT_KEY: &str = "LTAI5tROOTROOTROOTROOT01";

/// A small account: akguard's own user, a CI user with a leaked key and an inactive spare,
/// two console users, a trail, bills, a secret and two leak records.
pub const SCENARIO: &str = r#"{
  "account": {"uid": "1234567890123456", "name": "acme-prod", "alias": "acme",
    "access_keys": [{"id": "LTAI5tROOTROOTROOTROOT01", "secret": "rootSecretRootSecretRootSecret", "create_date": "-900d", "last_used": "-30d", "last_used_service": "Ecs"}]},
  "users": [
    {"name": "akguard", "access_keys": [{"id": "LTAI5tAKGUARDEMULATOR001", "secret": "akguardEmulatorSecretDoNotUse0"}]},
    {"name": "ci-deployer", "display_name": "CI deployer", "create_date": "-400d",
     "policies": [{"name": "AliyunECSFullAccess", "type": "System", "attach_date": "-399d"}],
     "access_keys": [
       {"id": "LTAI5tLEAKEDLEAKEDLEAK01", "secret": "leakedSecretLeakedSecret000001", "create_date": "-200d", "last_used": "-15m", "last_used_service": "Ecs", "leaked": true},
       {"id": "LTAI5tCIDEPLOYERSPARE001", "secret": "spareSecretSpareSecretSpare001", "status": "Inactive"}]},
    {"name": "alice", "login_profile": {"mfa_bind_required": false}},
    {"name": "bob", "login_profile": {"mfa_bind_required": true, "create_date": "-10d"},
     "mfa_device": {"serial_number": "acs:ram::1234567890123456:mfa/bob"}}
  ],
  "policies": [{"name": "ReadOnlyCustom", "description": "reads", "default_version": "v1",
    "versions": [{"id": "v1", "document": {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "ecs:Describe*", "Resource": "*"}]}}]}],
  "roles": [
    {"arn": "acs:ram::1234567890123456:role/akguard-responder"},
    {"arn": "acs:ram::1234567890123456:role/short-lived", "duration_secs": 2}
  ],
  "metadata": {"role": "akguard-responder", "imds_v2_only": true},
  "events": [
    {"eventId": "e1", "eventTime": "-5h", "eventName": "DescribeRegions", "eventRW": "Read", "acsRegion": "cn-hangzhou", "sourceIpAddress": "203.0.113.7", "userIdentity": {"accessKeyId": "LTAI5tLEAKEDLEAKEDLEAK01", "userName": "ci-deployer"}},
    {"eventId": "e2", "eventTime": "-4h", "eventName": "RunInstances", "eventRW": "Write", "acsRegion": "ap-southeast-1", "sourceIpAddress": "203.0.113.7", "userIdentity": {"accessKeyId": "LTAI5tLEAKEDLEAKEDLEAK01", "userName": "ci-deployer"}},
    {"eventId": "e3", "eventTime": "-3h", "eventName": "CreateUser", "eventRW": "Write", "acsRegion": "cn-hangzhou", "sourceIpAddress": "203.0.113.7", "userIdentity": {"accessKeyId": "LTAI5tLEAKEDLEAKEDLEAK01", "userName": "ci-deployer"}, "referencedResources": {"ACS::RAM::User": ["backdoor"]}},
    {"eventId": "e4", "eventTime": "-2h", "eventName": "ListUsers", "eventRW": "Read", "acsRegion": "cn-hangzhou", "sourceIpAddress": "10.0.0.5", "userIdentity": {"accessKeyId": "LTAI5tAKGUARDEMULATOR001", "userName": "akguard"}},
    {"eventId": "e5", "eventTime": "-30d", "eventName": "CreateAccessKey", "eventRW": "Write", "acsRegion": "cn-hangzhou", "sourceIpAddress": "203.0.113.7", "userIdentity": {"accessKeyId": "LTAI5tLEAKEDLEAKEDLEAK01", "userName": "ci-deployer"}}
  ],
  "billing": {"balance": {"available_amount": "120.50"},
    "overview": {
      "current": [{"ProductCode": "ecs", "ProductName": "ECS", "PretaxAmount": 9123.4, "SubscriptionType": "PayAsYouGo"},
                  {"ProductCode": "oss", "ProductName": "OSS", "PretaxAmount": 12.0, "SubscriptionType": "PayAsYouGo"}],
      "current-1": [{"ProductCode": "ecs", "ProductName": "ECS", "PretaxAmount": 310.0, "SubscriptionType": "PayAsYouGo"}]}},
  "secrets": [{"name": "prod/ci-deployer/ak", "versions": [{"version_id": "v1", "data": "{\"AccessKeyId\":\"LTAI5tLEAKEDLEAKEDLEAK01\"}", "stages": ["ACSCurrent"]}]}],
  "leaks": [
    {"id": 389357, "access_key_id": "LTAI5tLEAKEDLEAKEDLEAK01", "ali_user_name": "acme-prod", "user_type": "ram", "url": "https://github.com/someone/repo/blob/abc/config.py", "gmt_modified": "-20m", "github_repo_name": "someone/repo"},
    {"id": 300001, "access_key_id": "LTAI5tOLDOLDOLDOLDOLD001", "ali_user_name": "acme-prod", "user_type": "ram", "url": "https://github.com/x/y", "gmt_modified": "-300d", "status": "dealed", "deal_type": "manual", "deal_time": "-299d"}
  ]
}"#;

/// The instant the harness clock starts at.
pub fn t0() -> DateTime<Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
        .replace('*', "%2A")
        .replace("%7E", "~")
}

/// The documented V1 signature, computed independently of `signature.rs`.
pub fn sign(method: &str, params: &BTreeMap<String, String>, secret: &str) -> String {
    let query = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let to_sign = format!("{method}&{}&{}", encode("/"), encode(&query));
    let mut mac = Hmac::<Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// One request to sign: who makes it, and what.
pub struct Call<'a> {
    pub method: &'a str,
    pub who: Signer<'a>,
    pub version: &'a str,
    pub action: &'a str,
    pub extra: &'a [(&'a str, &'a str)],
}

impl Call<'_> {
    /// The parameters stamped with `at` and `nonce`, and signed.
    pub fn signed_at(&self, at: DateTime<Utc>, nonce: &str) -> BTreeMap<String, String> {
        let mut params: BTreeMap<String, String> = [
            ("Action", self.action),
            ("Version", self.version),
            ("Format", "JSON"),
            ("AccessKeyId", self.who.key),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureVersion", "1.0"),
            ("Timestamp", &format_time(at)),
            ("SignatureNonce", nonce),
        ]
        .into_iter()
        .chain(self.who.token.map(|t| ("SecurityToken", t)))
        .chain(self.extra.iter().copied())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let signature = sign(self.method, &params, self.who.secret);
        params.insert("Signature".into(), signature);
        params
    }
}

pub struct Harness {
    pub shared: Shared,
    pub clock: Clock,
    nonce: std::cell::Cell<u32>,
}

/// Who signs: key id, secret and, for STS credentials, the token.
#[derive(Clone, Copy)]
pub struct Signer<'a> {
    pub key: &'a str,
    pub secret: &'a str,
    pub token: Option<&'a str>,
}

pub const AKGUARD: Signer<'static> = Signer {
    key: AKGUARD_KEY,
    secret: AKGUARD_SECRET,
    token: None,
};

pub const LEAKED: Signer<'static> = Signer {
    key: LEAKED_KEY,
    secret: LEAKED_SECRET,
    token: None,
};

impl Harness {
    pub fn new() -> Self {
        Self::with(SCENARIO)
    }

    pub fn with(json: &str) -> Self {
        let clock = Clock::fixed(t0());
        let scenario = Scenario::from_json(json).expect("the test scenario loads");
        let shared = Shared::load(scenario, clock.clone()).expect("the test scenario is valid");
        Self {
            shared,
            clock,
            nonce: std::cell::Cell::new(0),
        }
    }

    pub fn advance(&self, secs: i64) {
        self.clock.advance(TimeDelta::seconds(secs));
    }

    /// Signed parameters with a fresh nonce and the harness clock's time.
    pub fn signed(
        &self,
        method: &str,
        who: Signer,
        version: &str,
        action: &str,
        extra: &[(&str, &str)],
    ) -> BTreeMap<String, String> {
        self.nonce.set(self.nonce.get() + 1);
        let nonce = format!("nonce-{}", self.nonce.get());
        let call = Call {
            method,
            who,
            version,
            action,
            extra,
        };
        call.signed_at(self.clock.now(), &nonce)
    }

    pub fn send(&self, method: &str, params: &BTreeMap<String, String>) -> (u16, Value) {
        self.send_from(&Source::default(), method, params)
    }

    fn send_from(
        &self,
        source: &Source,
        method: &str,
        params: &BTreeMap<String, String>,
    ) -> (u16, Value) {
        let params = Params::from_pairs(params.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        let answer = server::process(
            &self.shared,
            self.shared.clock.now(),
            method,
            &params,
            None,
            None,
            source,
        );
        (answer.status.as_u16(), answer.body)
    }

    /// A call as `who`, taken as coming from `address` (and `vpc`, if any).
    pub fn call_from(
        &self,
        who: Signer,
        address: &str,
        vpc: Option<&str>,
        version: &str,
        action: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let source = Source {
            address: address.parse().expect("an address"),
            vpc: vpc.map(str::to_owned),
        };
        let params = self.signed("POST", who, version, action, extra);
        self.send_from(&source, "POST", &params)
    }

    pub fn call_as(
        &self,
        who: Signer,
        version: &str,
        action: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let params = self.signed("POST", who, version, action, extra);
        self.send("POST", &params)
    }

    /// A call with akguard's own key.
    pub fn call(&self, version: &str, action: &str, extra: &[(&str, &str)]) -> (u16, Value) {
        self.call_as(AKGUARD, version, action, extra)
    }

    pub fn state(&self) -> Value {
        serde_json::to_value(&self.shared.lock().world).unwrap()
    }
}

/// The answer's status and `Code`, for error assertions.
pub fn code(answer: &(u16, Value)) -> (u16, String) {
    (
        answer.0,
        answer.1["Code"].as_str().unwrap_or("").to_string(),
    )
}
