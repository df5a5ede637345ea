//! The findings read what the release before typed findings wrote, and write it back alike.

use serde_json::{Value, json};

use super::*;
use crate::domain::forensics::AuditFindings;

/// The JSON without its null-valued keys: typed findings leave out what a step did not learn,
/// where the untyped ones wrote `null`.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(without_nulls).collect()),
        other => other.clone(),
    }
}

fn round_trip(stored: Value) -> Findings {
    let findings: Findings = serde_json::from_value(stored.clone()).unwrap();
    let written = serde_json::to_value(&findings).unwrap();
    assert_eq!(without_nulls(&written), without_nulls(&stored));
    findings
}

#[test]
fn records_the_earlier_release_wrote_that_its_fixture_lacks_read_back_alike() {
    let findings = round_trip(json!({
        "triage": {"owner": null, "why": "neither IMS nor ActionTrail knows the key"},
        "protected": {"access_key_id": "LTAI5tQ9xLeakedCiDeploy7", "own_credentials": false,
            "listed": true, "step": "revoke", "refused_change_to": "ci-deployer"},
        "revoke": {"policy": "akguard-deny", "user_name": "ci-deployer", "new_version": true,
            "verified": "skipped in dry run"},
        "disable_old_key": {"user_name": "ci-deployer", "access_key_id": "LTAI5tQ9xLeakedCiDeploy7",
            "disabled_at": "2026-12-05T03:14:55.645951824Z", "note": "the key no longer exists"},
        "mfa": {"covered_by_sweep_started_at": "2026-12-05T03:14:50Z", "dry_run": true,
            "password_reset_required": "ci-deployer", "mfa_now_required": []},
        "attacker_logins": {"dry_run": true, "users": [{"user_name": "svc-backup",
            "console_logon": "would_disable", "user_principal_name": "svc-backup@acme"}]},
        "rotation": {"other_key": "LTAI5tOtherKey000001", "other_key_created": "2026-12-05T01:00:00Z",
            "other_key_status": "Active", "appeared_after_detection": true,
            "other_key_disabled": true},
        "rotation_sink": {"kind": "file", "path": "/run/secrets/ak.json"},
        "delete_key": {"grace_until": "2026-12-06T03:14:55Z"},
        "reenable": {"access_key_id": "LTAI5tQ9xLeakedCiDeploy7",
            "reenabled_at": "2026-12-05T04:00:00Z"},
        "approval_disable_old_key": {"requested_at": "2026-12-05T00:00:00Z",
            "deadline": "2026-12-05T04:00:00Z", "granted_at": "2026-12-05T00:05:00Z",
            "by": "deadline"},
        "approval_billing": {"requested_at": "2026-12-05T00:00:00Z", "deadline": null},
    }));
    assert_eq!(
        findings.revoke.as_ref().unwrap().verified,
        Some(Verified::SkippedInDryRun)
    );
    assert_eq!(
        findings.rotation_sink,
        Some(RotationSink::File {
            path: "/run/secrets/ak.json".into()
        })
    );
    assert!(
        findings
            .approvals
            .get(Step::DisableOldKey)
            .unwrap()
            .is_granted()
    );
    assert_eq!(findings.pending_approval(), Some(Step::Billing));
}

#[test]
fn a_cleared_sink_and_a_null_approval_read_as_absent() {
    let findings: Findings =
        serde_json::from_value(json!({"rotation_sink": null, "approval_revoke": null,
            "some_key_a_later_release_added": {"x": 1}}))
        .unwrap();
    assert_eq!(findings, Findings::default());
    assert_eq!(serde_json::to_value(&findings).unwrap(), json!({}));
}

#[test]
fn a_patch_replaces_only_its_own_records_and_keeps_summaries_with_them() {
    let mut findings = Findings::default();
    let requested = "2026-12-05T00:00:00Z".parse().unwrap();
    let mut patch = FindingsPatch::one(Finding::Approval(
        Step::DeleteKey,
        Approval::waiting(requested, None),
    ));
    assert_eq!(patch.approval_requested(&findings), Some(Step::DeleteKey));
    let audit = AuditFindings::from_events("LTAI5tQ9xLeakedCiDeploy7", &[], &[]);
    patch.push(Finding::Audit(Box::new(audit.clone())));
    findings.apply(patch);
    assert_eq!(findings.audit_summary, Some(audit.summary()));
    assert_eq!(findings.pending_approval(), Some(Step::DeleteKey));
    let waiting = IncidentState::Active(Step::DeleteKey);
    assert_eq!(
        findings.awaited_approval(waiting).unwrap().0,
        Step::DeleteKey
    );

    // Asked again (the step woke up): not a fresh request.
    let again = FindingsPatch::one(Finding::Approval(
        Step::DeleteKey,
        Approval::waiting(requested, None),
    ));
    assert_eq!(again.approval_requested(&findings), None);
    let granted = findings
        .approvals
        .get(Step::DeleteKey)
        .unwrap()
        .granted(requested, "operator:alice".into());
    findings.apply(FindingsPatch::one(Finding::Approval(
        Step::DeleteKey,
        granted,
    )));
    assert_eq!(findings.pending_approval(), None);
    assert_eq!(findings.awaited_approval(waiting), None);
    assert_eq!(findings.audit, Some(audit), "the audit is untouched");
    assert_eq!(
        serde_json::to_value(&findings).unwrap()["approval_delete_key"]["by"],
        "operator:alice"
    );
}

#[test]
fn the_grace_period_starts_at_the_old_keys_disabling_after_a_rotation() {
    let disabled = |at: &str| Disable {
        user_name: "u".into(),
        access_key_id: "LTAI5tQ9xLeakedCiDeploy7".into(),
        disabled_at: at.parse().unwrap(),
        note: None,
        verified: Some(Verified::Yes),
    };
    let mut findings = Findings {
        disable_key: Some(disabled("2026-12-05T00:00:00Z")),
        ..Findings::default()
    };
    assert_eq!(
        findings.disabled_at(),
        Some("2026-12-05T00:00:00Z".parse().unwrap())
    );
    findings.apply(FindingsPatch::one(Finding::DisableOldKey(disabled(
        "2026-12-05T02:00:00Z",
    ))));
    assert_eq!(
        findings.disabled_at(),
        Some("2026-12-05T02:00:00Z".parse().unwrap())
    );
}

#[test]
fn a_record_of_the_wrong_shape_is_refused_not_guessed() {
    let garbled = json!({"revoke": {"policy": "p", "user_name": "u", "verified": false}});
    assert!(serde_json::from_value::<Findings>(garbled).is_err());
    let garbled = json!({"rotation_sink": {"kind": "s3", "bucket": "b"}});
    assert!(serde_json::from_value::<Findings>(garbled).is_err());
}
