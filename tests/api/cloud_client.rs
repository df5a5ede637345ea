//! The cloud client against the emulator: every call, each error class, pagination,
//! retries, rate limits and temporary credentials.

use std::collections::HashSet;
use std::time::Duration;

use akguard::cloud::api::{AccountType, Effect, KeyStatus, LeakStatus, PolicyType};
use akguard::cloud::credentials::BaseSource;
use akguard::cloud::ratelimit::Priority;
use akguard::cloud::{CloudClient, ErrorClass};
use akguard::domain::Amount;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use crate::cloud_support::{
    AKGUARD_KEY, AKGUARD_SECRET, LEAKED_KEY, advance_clock, calls, calls_of, client, emulator,
    options, set_faults, state, static_key,
};

#[tokio::test]
async fn ram_reads_find_users_keys_profiles_and_mfa() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);

    let user = c.get_user("ci-deployer").await.unwrap();
    assert!(!user.request_id.is_empty());
    assert_eq!(user.value.user_id, "276500000000000101");

    let names: Vec<String> = c
        .list_users()
        .await
        .unwrap()
        .value
        .into_iter()
        .map(|u| u.user_name)
        .collect();
    assert!(names.contains(&"alice".to_owned()) && names.contains(&"ci-deployer".to_owned()));

    let keys = c.list_access_keys("ci-deployer").await.unwrap().value;
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0].access_key_id.as_str(), keys[0].status),
        (LEAKED_KEY, KeyStatus::Active)
    );

    assert_eq!(
        c.get_login_profile("ci-deployer").await.unwrap().value,
        None
    );
    let alice = c.get_login_profile("alice").await.unwrap().value.unwrap();
    assert!(!alice.mfa_bind_required);
    assert_eq!(c.get_user_mfa_info("alice").await.unwrap().value, None);
    assert!(c.get_user_mfa_info("carol").await.unwrap().value.is_some());

    let missing = c.get_user("nobody").await.unwrap_err();
    assert_eq!(missing.code(), Some("EntityNotExist.User"));
    assert_eq!(missing.class(), ErrorClass::Fatal);
    assert!(missing.request_id().is_some());
}

#[tokio::test]
async fn listing_users_follows_the_marker_through_every_page() {
    let (url, _emulator) = emulator("leaked-unused.json", |s| {
        let users = s["users"].as_array_mut().unwrap();
        for i in 0..1205 {
            users.push(json!({"name": format!("bulk-{i:04}"), "create_date": "-10d"}));
        }
    })
    .await;
    let listed = client(&url).list_users().await.unwrap();
    let names: HashSet<String> = listed.value.into_iter().map(|u| u.user_name).collect();
    assert_eq!(names.len(), 1205 + 3);
    assert_eq!(calls_of(&url, "ListUsers").await.len(), 2);
    assert_eq!(listed.request_id.split(',').count(), 2);
}

#[tokio::test]
async fn key_lifecycle_respects_the_two_key_limit_and_disabled_keys_stop_signing() {
    let (url, _emulator) = emulator("two-keys.json", |_| {}).await;
    let c = client(&url);

    let limit = c.create_access_key("data-pipeline").await.unwrap_err();
    assert_eq!(limit.code(), Some("LimitExceeded.User.AccessKey"));
    assert_eq!(limit.class(), ErrorClass::Fatal);

    c.update_access_key(
        "data-pipeline",
        "LTAI5tDataPipeSecond7Mx4",
        KeyStatus::Inactive,
    )
    .await
    .unwrap();
    let keys = c.list_access_keys("data-pipeline").await.unwrap().value;
    assert!(
        keys.iter()
            .any(|k| k.access_key_id == "LTAI5tDataPipeSecond7Mx4"
                && k.status == KeyStatus::Inactive)
    );

    assert_eq!(
        c.delete_access_key("data-pipeline", "LTAI5tDataPipeSecond7Mx4")
            .await
            .unwrap()
            .value,
        Effect::Applied
    );
    assert_eq!(
        c.delete_access_key("data-pipeline", "LTAI5tDataPipeSecond7Mx4")
            .await
            .unwrap()
            .value,
        Effect::AlreadyDone
    );

    let created = c.create_access_key("data-pipeline").await.unwrap().value;
    assert!(created.access_key_id.starts_with("LTAI"));
    let secret = created.secret.expose_secret().to_owned();
    assert!(
        !format!("{created:?}").contains(&secret),
        "Debug shows the new secret"
    );

    // The new key signs; once disabled it no longer does.
    let own = CloudClient::new(options(&url, static_key(&created.access_key_id, &secret))).unwrap();
    own.get_user("data-pipeline").await.unwrap();
    c.update_access_key("data-pipeline", &created.access_key_id, KeyStatus::Inactive)
        .await
        .unwrap();
    let refused = own.get_user("data-pipeline").await.unwrap_err();
    assert_eq!(refused.code(), Some("InvalidAccessKeyId.Inactive"));
}

#[tokio::test]
async fn policy_writes_are_idempotent() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);
    let doc = r#"{"Version":"1","Statement":[{"Effect":"Deny","Action":["ram:CreateUser"],"Resource":"*"}]}"#;

    assert_eq!(
        c.get_policy("akguard-deny", PolicyType::Custom)
            .await
            .unwrap()
            .value,
        None
    );
    assert_eq!(
        c.create_policy("akguard-deny", doc, "test")
            .await
            .unwrap()
            .value,
        Effect::Applied
    );
    assert_eq!(
        c.create_policy("akguard-deny", doc, "test")
            .await
            .unwrap()
            .value,
        Effect::AlreadyDone
    );
    let policy = c
        .get_policy("akguard-deny", PolicyType::Custom)
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(policy.default_version, "v1");
    let stored: Value = serde_json::from_str(policy.document.as_deref().unwrap()).unwrap();
    assert_eq!(stored, serde_json::from_str::<Value>(doc).unwrap());

    let v2 = c
        .create_policy_version(
            "akguard-deny",
            &doc.replace("CreateUser", "CreateAccessKey"),
        )
        .await;
    assert_eq!(v2.unwrap().value, "v2");

    let attach = || c.attach_policy_to_user(PolicyType::Custom, "akguard-deny", "ci-deployer");
    assert_eq!(attach().await.unwrap().value, Effect::Applied);
    assert_eq!(attach().await.unwrap().value, Effect::AlreadyDone);
    let attached = c.list_policies_for_user("ci-deployer").await.unwrap().value;
    assert!(
        attached
            .iter()
            .any(|p| p.name == "akguard-deny" && p.policy_type == "Custom")
    );

    let detach = || c.detach_policy_from_user(PolicyType::Custom, "akguard-deny", "ci-deployer");
    assert_eq!(detach().await.unwrap().value, Effect::Applied);
    assert_eq!(detach().await.unwrap().value, Effect::AlreadyDone);

    let bad = c
        .create_policy("akguard-bad", "{not json", "x")
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Some("MalformedPolicyDocument"));
}

#[tokio::test]
async fn login_profiles_can_require_mfa_and_a_password_reset() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);
    c.update_login_profile("alice", Some(true), Some(true))
        .await
        .unwrap();
    let profile = c.get_login_profile("alice").await.unwrap().value.unwrap();
    assert!(profile.mfa_bind_required && profile.password_reset_required);
    c.update_login_profile("bob", Some(true), None)
        .await
        .unwrap();
    let profile = c.get_login_profile("bob").await.unwrap().value.unwrap();
    assert!(profile.mfa_bind_required && !profile.password_reset_required);
    let none = c
        .update_login_profile("ci-deployer", Some(true), None)
        .await
        .unwrap_err();
    assert_eq!(none.code(), Some("EntityNotExist.User.LoginProfile"));
}

#[tokio::test]
async fn ims_and_actiontrail_tell_who_owns_a_key_and_what_it_did() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);

    let owner = c
        .user_by_access_key(LEAKED_KEY)
        .await
        .unwrap()
        .value
        .unwrap();
    assert_eq!(owner.user_name, "ci-deployer");
    assert_eq!(
        c.user_by_access_key("LTAI5tRootAcmeProd0Key01")
            .await
            .unwrap()
            .value,
        None
    );

    let upn = owner.user_principal_name.unwrap();
    let used = c
        .access_key_last_used(LEAKED_KEY, &upn)
        .await
        .unwrap()
        .value
        .unwrap();
    let age = Utc::now() - used;
    assert!(
        age > chrono::Duration::minutes(5) && age < chrono::Duration::minutes(10),
        "{age}"
    );

    let info = c
        .access_key_last_used_info(LEAKED_KEY, Priority::Forensics)
        .await
        .unwrap()
        .value;
    assert_eq!(info.account_type, AccountType::RamUser);
    assert_eq!(info.user_name.as_deref(), Some("ci-deployer"));
    assert!(info.used_at.is_some());
    let root = c
        .access_key_last_used_info("LTAI5tRootAcmeProd0Key01", Priority::Forensics)
        .await
        .unwrap()
        .value;
    assert_eq!(root.account_type, AccountType::RootAccount);

    let end = Utc::now() + chrono::Duration::minutes(1);
    let mut events = Vec::new();
    for region in ["cn-hangzhou", "ap-southeast-1"] {
        let found = c.lookup_events(LEAKED_KEY, region, end - chrono::Duration::days(1), end);
        let found = found.await.unwrap().value;
        assert!(found.iter().all(|e| e["acsRegion"] == region), "{region}");
        events.extend(found);
    }
    assert!(!events.is_empty());
    assert!(
        events
            .iter()
            .all(|e| e["userIdentity"]["accessKeyId"] == LEAKED_KEY)
    );
    let names: HashSet<&str> = events
        .iter()
        .filter_map(|e| e["eventName"].as_str())
        .collect();
    assert!(
        names.contains("RunInstances") && names.contains("CreateUser"),
        "{names:?}"
    );
}

#[tokio::test]
async fn actiontrail_lookups_follow_next_token_within_the_window() {
    let (url, _emulator) = emulator("leaked-unused.json", |s| {
        s["enforce_rate_limits"] = json!(true);
        let events = s["events"].as_array_mut().unwrap();
        for i in 0..120 {
            events.push(json!({
                "eventId": format!("bulk-{i}"), "eventTime": format!("-{}m", i + 1),
                "eventName": "DescribeInstances", "eventRW": "Read", "eventType": "ApiCall",
                "acsRegion": "cn-hangzhou", "sourceIpAddress": "198.51.100.9",
                "userIdentity": {"type": "ram-user", "accessKeyId": "LTAI5tLegacyBackup2x8QwP", "userName": "legacy-backup"}
            }));
        }
    })
    .await;
    let c = client(&url);
    let end = Utc::now() + chrono::Duration::minutes(1);
    let all = c
        .lookup_events(
            "LTAI5tLegacyBackup2x8QwP",
            "cn-hangzhou",
            end - chrono::Duration::hours(3),
            end,
        )
        .await
        .unwrap();
    assert_eq!(
        all.value
            .iter()
            .filter(|e| e["eventId"].as_str().unwrap_or("").starts_with("bulk-"))
            .count(),
        120
    );
    assert_eq!(all.request_id.split(',').count(), 3);
    let recent = c
        .lookup_events(
            "LTAI5tLegacyBackup2x8QwP",
            "cn-hangzhou",
            end - chrono::Duration::minutes(31),
            end,
        )
        .await
        .unwrap();
    assert_eq!(recent.value.len(), 30);
}

#[tokio::test]
async fn billing_amounts_are_exact_and_balances_may_be_negative() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);
    let cycle = Utc::now().format("%Y-%m").to_string();
    let bill = c.query_bill_overview(&cycle).await.unwrap().value;
    assert!(!bill.is_empty());
    let total = bill
        .iter()
        .fold(Amount::default(), |sum, item| sum + item.pretax_amount);
    let previous = (Utc::now() - chrono::Duration::days(31))
        .format("%Y-%m")
        .to_string();
    let before = c.query_bill_overview(&previous).await.unwrap().value;
    let total_before = before
        .iter()
        .fold(Amount::default(), |sum, item| sum + item.pretax_amount);
    assert!(total > total_before, "{total} vs {total_before}");
    let balance = c.query_account_balance().await.unwrap().value;
    assert!(
        balance.available_amount.ten_thousandths() < 0,
        "{}",
        balance.available_amount
    );
    let missing = c.query_bill_overview("").await.unwrap_err();
    assert_eq!(missing.class(), ErrorClass::Fatal);
}

#[tokio::test]
async fn secret_versions_are_stored_once_per_version_id() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);
    let data = SecretString::from(
        r#"{"AccessKeyId":"LTAI5tNEW","AccessKeySecret":"s3cr3t-value"}"#.to_owned(),
    );
    let put = c
        .put_secret_value("acme/ci-deployer/accesskey", "akguard-incident-7", &data)
        .await
        .unwrap();
    assert!(put.value.stages.contains(&"ACSCurrent".to_owned()));
    c.put_secret_value("acme/ci-deployer/accesskey", "akguard-incident-7", &data)
        .await
        .unwrap();
    let secret = state(&url).await["secrets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "acme/ci-deployer/accesskey")
        .cloned()
        .unwrap();
    let versions = secret["versions"].as_array().unwrap();
    assert_eq!(
        versions
            .iter()
            .filter(|v| v["version_id"] == "akguard-incident-7")
            .count(),
        1
    );
    let other = SecretString::from("different".to_owned());
    let clash = c
        .put_secret_value("acme/ci-deployer/accesskey", "akguard-incident-7", &other)
        .await
        .unwrap_err();
    assert_eq!(clash.code(), Some("Rejected.ResourceExist"));
    // The secret data never appears in the emulator's call log.
    assert!(
        !calls(&url)
            .await
            .iter()
            .any(|c| c.to_string().contains("s3cr3t-value"))
    );

    c.create_secret("akguard/new", "v1", &data, "made by a test")
        .await
        .unwrap();
    let again = c
        .create_secret("akguard/new", "v1", &data, "made by a test")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some("Rejected.ResourceExist"));
}

#[tokio::test]
async fn security_center_records_are_listed_detailed_and_closed() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = client(&url);
    let page = c
        .describe_access_key_leak_list(0, 1, 100, None)
        .await
        .unwrap()
        .value;
    assert_eq!(page.total, 1);
    let record = &page.records[0];
    assert_eq!(
        (record.id, record.access_key_id.as_str()),
        (389357, LEAKED_KEY)
    );
    assert_eq!(record.status, LeakStatus::Pending);
    assert_eq!(record.user_type.as_deref(), Some("ram"));
    let detail = c
        .describe_access_key_leak_detail(389357, None)
        .await
        .unwrap()
        .value;
    assert!(detail.file_url.unwrap().ends_with("config/settings.py"));
    c.modify_access_key_leak_deal(
        389357,
        akguard::cloud::api::DealType::Disable,
        "rotated by akguard",
    )
    .await
    .unwrap();
    assert_eq!(
        c.describe_access_key_leak_list(0, 1, 100, None)
            .await
            .unwrap()
            .value
            .total,
        0
    );
    let unknown = c
        .describe_access_key_leak_detail(1, None)
        .await
        .unwrap_err();
    assert_eq!(unknown.class(), ErrorClass::Fatal);
}

#[tokio::test]
async fn throttling_and_server_errors_are_retried_with_fresh_nonces() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "retry_after_ms": 20, "fail_next": [
            {"action": "ListAccessKeys", "count": 1, "code": "Throttling.User", "status": 400},
            {"action": "ListAccessKeys", "count": 1, "code": "ServiceUnavailable", "status": 503}
        ]}),
    )
    .await;
    let keys = client(&url).list_access_keys("ci-deployer").await.unwrap();
    assert_eq!(keys.value.len(), 1);
    let log = calls_of(&url, "ListAccessKeys").await;
    let codes: Vec<Value> = log.iter().map(|c| c["code"].clone()).collect();
    assert_eq!(
        codes,
        [
            json!("Throttling.User"),
            json!("ServiceUnavailable"),
            Value::Null
        ]
    );
    let nonces: HashSet<&str> = log.iter().filter_map(|c| c["nonce"].as_str()).collect();
    assert_eq!(nonces.len(), 3, "every attempt needs its own nonce");
}

#[tokio::test]
async fn a_server_asking_for_a_long_pause_is_left_to_the_step_not_slept_on() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "retry_after_ms": 30000, "fail_next": [
            {"action": "ListAccessKeys", "count": 1, "code": "Throttling.User", "status": 400}
        ]}),
    )
    .await;
    let err = client(&url)
        .list_access_keys("ci-deployer")
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(calls_of(&url, "ListAccessKeys").await.len(), 1);
}

#[tokio::test]
async fn a_write_is_resent_only_when_the_server_refused_it_before_acting() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "fail_next": [
            {"action": "CreateAccessKey", "count": 1, "code": "Throttling.User", "status": 400}
        ]}),
    )
    .await;
    let c = client(&url);
    // Throttled: the gateway turned it away, so sending it again is safe.
    let created = c.create_access_key("ci-deployer").await.unwrap();
    let codes: Vec<Value> = calls_of(&url, "CreateAccessKey")
        .await
        .iter()
        .map(|c| c["code"].clone())
        .collect();
    assert_eq!(codes, [json!("Throttling.User"), Value::Null]);
    c.delete_access_key("ci-deployer", &created.value.access_key_id)
        .await
        .unwrap();

    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "fail_next": [
            {"action": "CreateAccessKey", "code": "ServiceUnavailable", "status": 503, "lose_answer": true}
        ]}),
    )
    .await;
    // A 503 may follow a completed action: the call is not sent again, and the caller learns
    // that the outcome is unknown (retryable, for the step to reconcile).
    let err = c.create_access_key("ci-deployer").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(calls_of(&url, "CreateAccessKey").await.len(), 3);
    let keys = c.list_access_keys("ci-deployer").await.unwrap().value;
    assert_eq!(
        keys.len(),
        2,
        "the server acted although the answer was lost"
    );

    // With a free slot a resend would succeed and leave a second key nobody holds.
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "fail_next": [
            {"action": "CreateAccessKey", "code": "InternalError", "status": 500, "lose_answer": true}
        ]}),
    )
    .await;
    c.create_access_key("alice").await.unwrap_err();
    let keys = c.list_access_keys("alice").await.unwrap().value;
    assert_eq!(keys.len(), 1, "no extra key is left behind");
}

#[tokio::test]
async fn retries_stop_after_the_last_attempt_and_fatal_errors_are_not_retried() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 0, "fail_next": [
            {"action": "GetUser", "count": 10, "code": "InternalError", "status": 500}
        ]}),
    )
    .await;
    let c = client(&url);
    let err = c.get_user("alice").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(calls_of(&url, "GetUser").await.len(), 5);

    let err = c
        .update_login_profile("nobody", Some(true), None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some("EntityNotExist.User"));
    assert_eq!(err.class(), ErrorClass::Fatal);
    assert_eq!(calls_of(&url, "UpdateLoginProfile").await.len(), 1);

    let wrong = CloudClient::new(options(&url, static_key(AKGUARD_KEY, "not-the-secret"))).unwrap();
    let err = wrong.list_users().await.unwrap_err();
    assert_eq!(err.code(), Some("SignatureDoesNotMatch"));
    assert_eq!(calls_of(&url, "ListUsers").await.len(), 1);
}

#[tokio::test]
async fn lookup_events_never_exceeds_two_calls_in_any_second() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let c = std::sync::Arc::new(client(&url));
    let end = Utc::now() + chrono::Duration::minutes(1);
    let tasks: Vec<_> = (0..7)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move {
                c.lookup_events(
                    LEAKED_KEY,
                    "cn-hangzhou",
                    end - chrono::Duration::hours(2),
                    end,
                )
                .await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let times: Vec<DateTime<Utc>> = calls_of(&url, "LookupEvents")
        .await
        .iter()
        .map(|c| c["at"].as_str().unwrap().parse().unwrap())
        .collect();
    assert_eq!(
        times.len(),
        7,
        "the emulator (which enforces the quota) throttled a call"
    );
    for (i, start) in times.iter().enumerate() {
        let window = times[i..]
            .iter()
            .filter(|t| **t - *start < chrono::Duration::seconds(1))
            .count();
        assert!(window <= 2, "{window} LookupEvents calls within one second");
    }
}

#[tokio::test]
async fn assumed_role_credentials_are_used_and_renewed_when_they_expire() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let mut opts = options(&url, static_key(AKGUARD_KEY, AKGUARD_SECRET));
    opts.assume_role = Some((
        "acs:ram::1234567890123456:role/akguard-responder".into(),
        "akguard-test".into(),
        Duration::from_secs(60),
    ));
    let c = CloudClient::new(opts).unwrap();
    c.get_user("alice").await.unwrap();
    c.get_user("bob").await.unwrap();
    advance_clock(&url, 120).await;
    c.get_user("carol").await.unwrap();

    let log = calls(&url).await;
    assert_eq!(
        log.iter().filter(|c| c["action"] == "AssumeRole").count(),
        2
    );
    let users: Vec<&Value> = log.iter().filter(|c| c["action"] == "GetUser").collect();
    let keys: Vec<&str> = users
        .iter()
        .filter_map(|c| c["access_key_id"].as_str())
        .collect();
    assert!(keys.iter().all(|k| k.starts_with("STS.")), "{keys:?}");
    assert_eq!(
        keys[0], keys[1],
        "credentials were not reused before expiry"
    );
    assert_eq!(users[2]["code"], "InvalidSecurityToken.Expired");
    assert_ne!(keys[2], keys[3], "expired credentials were not replaced");
}

#[tokio::test]
async fn the_ecs_instance_role_provides_credentials() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let base = BaseSource::EcsRamRole {
        metadata_url: url.clone(),
        role: None,
    };
    let c = CloudClient::new(options(&url, base)).unwrap();
    c.get_user("alice").await.unwrap();
    let log = calls_of(&url, "GetUser").await;
    assert!(
        log[0]["access_key_id"]
            .as_str()
            .unwrap()
            .starts_with("STS.")
    );
}

/// Regression: an STS outage outlasting one credentials fetch was reported as fatal (as if
/// the role were refused), so the step that needed credentials was given up for good.
#[tokio::test]
async fn an_sts_outage_is_transient_and_a_refused_role_is_not() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let assuming = |arn: &str| {
        let mut opts = options(&url, static_key(AKGUARD_KEY, AKGUARD_SECRET));
        opts.assume_role = Some((arn.into(), "akguard".into(), Duration::from_secs(900)));
        CloudClient::new(opts).unwrap()
    };
    set_faults(
        &url,
        json!({"fail_next": [{"action": "AssumeRole", "count": 20, "status": 503}]}),
    )
    .await;
    let c = assuming("acs:ram::1234567890123456:role/akguard-responder");
    let err = c.get_user("alice").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    let attempts = calls_of(&url, "AssumeRole").await.len();
    assert!(
        attempts > 1,
        "AssumeRole was not retried: {attempts} attempt"
    );
    set_faults(&url, json!({})).await;
    c.get_user("alice").await.unwrap();

    let refused = assuming("acs:ram::1234567890123456:role/no-such-role");
    let err = refused.get_user("alice").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Fatal, "{err}");
}

/// Regression: an unreachable metadata service was a fatal error on the first try.
#[tokio::test]
async fn an_unreachable_metadata_service_is_a_transient_failure() {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    // A port nothing listens on: every connection is refused.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metadata_url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let base = BaseSource::EcsRamRole {
        metadata_url,
        role: None,
    };
    let c = CloudClient::new(options(&url, base)).unwrap();
    let err = c.get_user("alice").await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Retryable, "{err}");
    assert!(err.to_string().contains("metadata service"), "{err}");
}
