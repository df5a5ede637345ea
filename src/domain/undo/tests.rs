//! The undo plan, from audit rows as the worker writes them.

use super::*;
use chrono::Utc;
use serde_json::json;

fn row(action: &str, detail: Value) -> AuditRecord {
    AuditRecord {
        id: 0,
        incident_id: None,
        at: Utc::now(),
        actor: "worker:test".into(),
        action: action.into(),
        detail_json: detail.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

fn call(step: &str, token: &str, outcome: &str, change: Option<Change>) -> Vec<AuditRecord> {
    let api = change.as_ref().map_or("CreatePolicy", Change::api);
    let target = change.as_ref().map_or("p", |c| c.target()).to_owned();
    let base = json!({"step": step, "api": api, "target": target, "idempotency_token": token,
        "change": change});
    let mut result = base.clone();
    result["outcome"] = json!(outcome);
    // As the worker records it: a lost answer or a server fault may have acted.
    if !["applied", "already_done"].contains(&outcome) {
        result["may_have_acted"] = json!(["error", "ServiceUnavailable"].contains(&outcome));
    }
    vec![row("cloud.intent", base), row("cloud.call", result)]
}

fn key(from: &str, to: &str) -> Change {
    Change::KeyStatus {
        user: "u".into(),
        access_key_id: "K".into(),
        from: from.into(),
        to: to.into(),
    }
}

#[test]
fn only_applied_results_are_undone() {
    let attach = Change::AttachPolicy {
        user: "u".into(),
        policy: "deny".into(),
    };
    let mut rows = call("revoke", "t1", "already_done", Some(attach.clone()));
    rows.extend(call(
        "disable_key",
        "t2",
        "applied",
        Some(key("Active", "Inactive")),
    ));
    rows.extend(call("revoke", "t3", "applied", None));
    let planned = plan(&rows);
    assert_eq!(planned.undo, [key("Inactive", "Active")]);
    assert_eq!(planned.cannot.len(), 1);
    assert_eq!(planned.cannot[0].api, "CreatePolicy");

    let mut rows = call("revoke", "t1", "applied", Some(attach));
    rows.extend(call(
        "revoke",
        "t4",
        "NoPermission",
        Some(key("Active", "Inactive")),
    ));
    let planned = plan(&rows);
    assert_eq!(
        planned.undo_described(),
        ["detach deny from u"],
        "a failed call changed nothing"
    );
}

#[test]
fn an_intent_without_a_result_is_reported_not_guessed() {
    let rows = vec![row(
        "cloud.intent",
        json!({"step": "revoke", "api": "AttachPolicyToUser", "target": "u", "idempotency_token": "t"}),
    )];
    let planned = plan(&rows);
    assert!(planned.undo.is_empty());
    assert_eq!(planned.cannot[0].api, "AttachPolicyToUser");
    assert!(planned.cannot[0].why.contains("never recorded"));
}

#[test]
fn a_lost_answer_is_reported_until_a_retry_settles_it() {
    let change = key("Active", "Inactive");
    let mut rows = call("disable_key", "t1", "error", Some(change.clone()));
    let planned = plan(&rows);
    assert!(planned.undo.is_empty());
    assert!(planned.cannot[0].why.contains("may have taken effect"));
    // Refused outright: nothing happened, nothing to report.
    let refused = call("disable_key", "t1", "NoPermission", Some(change.clone()));
    assert_eq!(plan(&refused), UndoPlan::default());
    // The retried call went through: undone, no longer unknown.
    rows.extend(call("disable_key", "t1", "applied", Some(change)));
    let planned = plan(&rows);
    assert_eq!(planned.undo, [key("Inactive", "Active")]);
    assert!(planned.cannot.is_empty());
}

#[test]
fn net_effects_count_and_deleted_keys_cannot_come_back() {
    let mut rows = call(
        "disable_key",
        "t1",
        "applied",
        Some(key("Active", "Inactive")),
    );
    rows.extend(call(
        "reenable",
        "t2",
        "applied",
        Some(key("Inactive", "Active")),
    ));
    assert!(plan(&rows).undo.is_empty(), "back where it started");

    let mut rows = call(
        "disable_key",
        "t1",
        "applied",
        Some(key("Active", "Inactive")),
    );
    let delete = Change::DeleteKey {
        user: "u".into(),
        access_key_id: "K".into(),
    };
    rows.extend(call("delete_key", "t3", "applied", Some(delete)));
    let planned = plan(&rows);
    assert!(planned.undo.is_empty());
    assert_eq!(planned.cannot[0].why, "a deleted key cannot be restored");
}

#[test]
fn the_cancel_steps_own_calls_do_not_change_the_plan() {
    let mut rows = call(
        "disable_key",
        "t1",
        "applied",
        Some(key("Active", "Inactive")),
    );
    rows.extend(call(
        "cancelling",
        "t2",
        "applied",
        Some(key("Inactive", "Active")),
    ));
    assert_eq!(plan(&rows).undo, [key("Inactive", "Active")]);
}

fn fence(from: &str, to: &str) -> Change {
    Change::AccessKeyPolicy {
        user_principal_name: "u@acme.onaliyun.com".into(),
        access_key_id: "K".into(),
        from: from.into(),
        to: to.into(),
    }
}

#[test]
fn a_fence_is_undone_by_setting_the_first_policy_back_exactly() {
    let before = r#"{"Status": "Active", "Statements": [{"Type": "ClassicWhiteList", "IPList": ["198.51.100.0/24"]}]}"#;
    let rows = call("revoke", "t1", "applied", Some(fence(before, "F")));
    assert_eq!(plan(&rows).undo, [fence("F", before)]);
    // A fence set on a key the incident later deleted went with the key.
    let mut rows = call("revoke", "t1", "applied", Some(fence(before, "F")));
    rows.extend(call(
        "delete_key",
        "t2",
        "applied",
        Some(Change::DeleteKey {
            user: "u".into(),
            access_key_id: "K".into(),
        }),
    ));
    assert!(plan(&rows).undo.is_empty());
}

#[test]
fn a_reconciled_fence_settles_its_unrecorded_call_and_is_undone() {
    let change = fence("P", "F");
    let intent = json!({"step": "revoke", "api": "SetAccessKeyPolicy", "target": "K",
        "idempotency_token": "t1", "change": change});
    let unsettled = vec![row("cloud.intent", intent.clone())];
    let planned = plan(&unsettled);
    assert!(planned.undo.is_empty());
    assert_eq!(planned.cannot.len(), 1, "{planned:?}");

    let mut reconciled = intent;
    reconciled["outcome"] = json!("applied");
    let rows = vec![
        row("cloud.intent", unsettled[0].detail()),
        row("cloud.reconciled", reconciled),
    ];
    let planned = plan(&rows);
    assert_eq!(planned.undo, [fence("F", "P")]);
    assert!(planned.cannot.is_empty(), "{planned:?}");
}
