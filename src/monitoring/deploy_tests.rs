//! The shipped alert rules and dashboard name only metrics akguard exports, and the rules
//! cover what on-call needs to hear about.

use super::record::*;

const RULES: &str = include_str!("../../deploy/prometheus/akguard-alerts.yml");
const DASHBOARD: &str = include_str!("../../deploy/grafana/akguard-dashboard.json");

/// Every `akguard_*` identifier in `text`.
fn metric_names(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find("akguard_") {
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        names.push(&tail[..end]);
        rest = &tail[end..];
    }
    names
}

fn exported(name: &str) -> bool {
    let gauges_and_counters = [
        INCIDENTS,
        INCIDENTS_AWAITING_APPROVAL,
        STEP_FAILURES,
        CLOUD_CALLS,
        INTAKE,
        NOTIFICATIONS_PENDING,
        NOTIFICATION_DELIVERIES,
        POLLER_LAST_SUCCESS,
        CREDENTIALS_EXPIRY,
        CREDENTIALS_CHECK,
    ];
    // A histogram by its family name, or one of its series.
    let histogram = |base: &str| {
        name == base
            || ["_bucket", "_sum", "_count"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix) == Some(base))
    };
    gauges_and_counters.contains(&name)
        || [TIME_TO_CONTAINMENT, STEP_DURATION, RATE_LIMIT_WAIT]
            .into_iter()
            .any(histogram)
}

#[test]
fn the_rules_and_the_dashboard_use_only_exported_metrics() {
    for (file, text) in [("alert rules", RULES), ("dashboard", DASHBOARD)] {
        let names = metric_names(text);
        assert!(names.len() > 10, "{file} names {names:?}");
        for name in names {
            assert!(
                exported(name),
                "{file} uses `{name}`, which akguard does not export"
            );
        }
    }
    let dashboard: serde_json::Value = serde_json::from_str(DASHBOARD).unwrap();
    assert!(
        dashboard["panels"]
            .as_array()
            .is_some_and(|p| p.len() >= 10)
    );
}

#[test]
fn the_rules_alert_on_what_needs_a_person() {
    for (alert, metric) in [
        (
            "AkguardIncidentWaitingForPerson",
            INCIDENTS_AWAITING_APPROVAL,
        ),
        ("AkguardContainmentSlow", TIME_TO_CONTAINMENT),
        ("AkguardNotificationsFailing", NOTIFICATION_DELIVERIES),
        ("AkguardPollerStale", POLLER_LAST_SUCCESS),
        ("AkguardCredentialsFailing", CREDENTIALS_CHECK),
    ] {
        let start = RULES
            .find(&format!("alert: {alert}\n"))
            .unwrap_or_else(|| panic!("no alert {alert}"));
        let rule = RULES[start..]
            .split("\n      - alert:")
            .next()
            .unwrap_or_default();
        assert!(rule.contains(metric), "{alert} does not look at {metric}");
    }
}
