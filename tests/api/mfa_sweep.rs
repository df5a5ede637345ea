//! The MFA sweep's pace: users are settled in a pipeline, so a user whose calls are slow or
//! fail holds back no other user, its retry included.

use serde_json::{Value, json};

use crate::cloud_support::{calls_of, set_faults};
use crate::remediation::{daemon, report};
use crate::replicas::{key_id, many_console_users, past_mfa, user_name};

/// When `user`'s first successful call of `action` arrived.
async fn succeeded_at(url: &str, action: &str, user: &str) -> String {
    calls_of(url, action)
        .await
        .into_iter()
        .filter(|c| c["status"] == 200 && c["params"]["UserName"] == user)
        .map(|c| c["at"].as_str().unwrap().to_owned())
        .min()
        .unwrap_or_else(|| panic!("no successful {action} for {user}"))
}

#[tokio::test]
async fn a_slow_user_does_not_hold_back_another_users_retry() {
    let (url, _emulator) = many_console_users(10).await;
    let (slow, failing) = (user_name(0), user_name(1));
    // The slow user's first login-profile read is throttled four times, each answer asking
    // for a second's wait, which the client's own retries honour: one call of 4 s or more.
    // The failing user's read fails on every one of the client's attempts, so that user
    // waits for the sweep's retry, due after a few milliseconds.
    let throttled = |user: &str, count: u32, code: &str, status: u16| -> Value {
        json!({"action": "GetLoginProfile", "user": user, "count": count, "code": code,
            "status": status})
    };
    set_faults(
        &url,
        json!({"throttle_rate": 0.0, "error_rate": 0.0, "latency_ms": 10,
        "retry_after_ms": 1000, "fail_next": [
            throttled(&slow, 4, "Throttling.User", 400),
            throttled(&failing, 5, "ServiceUnavailable", 503),
        ]}),
    )
    .await;
    let app = daemon(&url, &[("AKGUARD__REMEDIATION__WORKERS", "4")]).await;
    let id = report(&app, &key_id(2), 5).await;
    let incident = app
        .wait_for_incident(id, "past the MFA step", past_mfa)
        .await;
    assert_eq!(
        incident["findings"]["mfa"]["users_failed"],
        json!([]),
        "{incident:#}"
    );

    let slow_read = succeeded_at(&url, "GetLoginProfile", &slow).await;
    let failing_changed = succeeded_at(&url, "UpdateLoginProfile", &failing).await;
    assert!(
        failing_changed < slow_read,
        "the failing user was retried only after the slow user's call ended: \
         changed at {failing_changed}, the slow user's read went through at {slow_read}"
    );
    for user in [&slow, &failing] {
        let changes = calls_of(&url, "UpdateLoginProfile")
            .await
            .into_iter()
            .filter(|c| c["status"] == 200 && c["params"]["UserName"] == user.as_str())
            .count();
        assert_eq!(changes, 1, "{user}");
    }
}
