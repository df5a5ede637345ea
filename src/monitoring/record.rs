//! Every metric's name, help text and the one call that records it. Labels take only values
//! from closed sets (states, steps, products, actions, configured source and channel names),
//! never key ids, messages or anything a request supplied.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};

pub const INCIDENTS: &str = "akguard_incidents";
pub const INCIDENTS_AWAITING_APPROVAL: &str = "akguard_incidents_awaiting_approval";
pub const TIME_TO_CONTAINMENT: &str = "akguard_time_to_containment_seconds";
pub const STEP_DURATION: &str = "akguard_step_duration_seconds";
pub const STEP_FAILURES: &str = "akguard_step_failures_total";
pub const CLOUD_CALLS: &str = "akguard_cloud_calls_total";
pub const RATE_LIMIT_WAIT: &str = "akguard_rate_limit_wait_seconds";
pub const INTAKE: &str = "akguard_intake_notifications_total";
pub const NOTIFICATIONS_PENDING: &str = "akguard_notifications_pending";
pub const NOTIFICATION_DELIVERIES: &str = "akguard_notification_deliveries_total";
pub const POLLER_LAST_SUCCESS: &str = "akguard_poller_last_success_timestamp_seconds";
pub const CREDENTIALS_EXPIRY: &str = "akguard_credentials_expiry_timestamp_seconds";
pub const CREDENTIALS_CHECK: &str = "akguard_credentials_check_success";

/// Histogram buckets, in seconds. Containment takes seconds when all goes well and minutes
/// under throttling; the alert rules look at 60 s.
pub(super) const BUCKETS: &[(&str, &[f64])] = &[
    (
        TIME_TO_CONTAINMENT,
        &[
            0.5, 1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 45.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
        ],
    ),
    (
        STEP_DURATION,
        &[
            0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
        ],
    ),
    (
        RATE_LIMIT_WAIT,
        &[0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0],
    ),
];

/// Gives each metric its `# HELP` line.
pub(super) fn describe() {
    describe_gauge!(
        INCIDENTS,
        "Incidents in the database per state (every replica reports the same count)"
    );
    describe_gauge!(
        INCIDENTS_AWAITING_APPROVAL,
        "Incidents whose current step waits for an operator's approval"
    );
    describe_histogram!(
        TIME_TO_CONTAINMENT,
        "From an incident's creation to its first verified containment"
    );
    describe_histogram!(
        STEP_DURATION,
        "How long one run of a remediation step took, whatever its outcome"
    );
    describe_counter!(
        STEP_FAILURES,
        "Remediation step runs that failed, by step and error class"
    );
    describe_counter!(
        CLOUD_CALLS,
        "Alibaba Cloud API requests sent, each retry counted, by outcome"
    );
    describe_histogram!(
        RATE_LIMIT_WAIT,
        "Time a call waited for its API class's client-side rate limit"
    );
    describe_counter!(
        INTAKE,
        "Leak notifications received, by source and what became of them"
    );
    describe_gauge!(
        NOTIFICATIONS_PENDING,
        "On-call notifications not yet delivered, per channel (from the database)"
    );
    describe_counter!(
        NOTIFICATION_DELIVERIES,
        "On-call notification delivery attempts, by channel and outcome"
    );
    describe_gauge!(
        POLLER_LAST_SUCCESS,
        "When the Security Center poller last finished a poll without error (Unix time)"
    );
    describe_gauge!(
        CREDENTIALS_EXPIRY,
        "When akguard's temporary Alibaba Cloud credentials expire (Unix time); absent for a static AccessKey"
    );
    describe_gauge!(
        CREDENTIALS_CHECK,
        "1 when the last STS GetCallerIdentity with akguard's credentials succeeded, 0 when it failed"
    );
}

/// One request to Alibaba Cloud and how it ended (`ok`, or the error's kind).
pub fn cloud_call(product: &'static str, action: &'static str, outcome: &'static str) {
    counter!(CLOUD_CALLS, "product" => product, "action" => action, "outcome" => outcome)
        .increment(1);
}

/// `account` is the account the call went to (its id, or `home` for akguard's own).
pub fn rate_limit_wait(account: &str, class: &'static str, waited: Duration) {
    histogram!(RATE_LIMIT_WAIT, "account" => account.to_owned(), "class" => class)
        .record(waited.as_secs_f64());
}

/// `source` is a configured source name or one of akguard's own (`manual`, `sas`).
pub fn intake(source: &str, outcome: &'static str) {
    counter!(INTAKE, "source" => source.to_owned(), "outcome" => outcome).increment(1);
}

pub fn step_ran(step: &'static str, took: Duration) {
    histogram!(STEP_DURATION, "step" => step).record(took.as_secs_f64());
}

/// `account` as for [`rate_limit_wait`].
pub fn step_failed(account: &str, step: &'static str, class: &'static str) {
    counter!(STEP_FAILURES, "account" => account.to_owned(), "step" => step, "class" => class)
        .increment(1);
}

/// `account` as for [`rate_limit_wait`].
pub fn contained(account: &str, after: Duration) {
    histogram!(TIME_TO_CONTAINMENT, "account" => account.to_owned()).record(after.as_secs_f64());
}

/// `channel` is a configured channel name; `outcome` is `sent`, `retry` or `failed`.
pub fn notification_delivery(channel: &str, outcome: &'static str) {
    counter!(NOTIFICATION_DELIVERIES, "channel" => channel.to_owned(), "outcome" => outcome)
        .increment(1);
}

pub fn poll_succeeded(at: chrono::DateTime<chrono::Utc>) {
    gauge!(POLLER_LAST_SUCCESS).set(unix_seconds(at));
}

pub fn credentials_expire(at: chrono::DateTime<chrono::Utc>) {
    gauge!(CREDENTIALS_EXPIRY).set(unix_seconds(at));
}

pub fn credentials_checked(account: &str, ok: bool) {
    gauge!(CREDENTIALS_CHECK, "account" => account.to_owned()).set(if ok { 1.0 } else { 0.0 });
}

pub(super) fn incidents(state: &'static str, count: u64) {
    gauge!(INCIDENTS, "state" => state).set(count as f64);
}

pub(super) fn awaiting_approval(count: u64) {
    gauge!(INCIDENTS_AWAITING_APPROVAL).set(count as f64);
}

pub(super) fn pending(channel: &str, count: u64) {
    gauge!(NOTIFICATIONS_PENDING, "channel" => channel.to_owned()).set(count as f64);
}

fn unix_seconds(at: chrono::DateTime<chrono::Utc>) -> f64 {
    at.timestamp_millis() as f64 / 1000.0
}
