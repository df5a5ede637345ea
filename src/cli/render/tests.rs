use super::*;
use crate::domain::text::is_unsafe;
use crate::hostile::hostile_strings;

fn now() -> DateTime<Utc> {
    "2024-05-01T05:00:00Z".parse().unwrap()
}

fn incident() -> Value {
    json!({
        "id": 12,
        "access_key_id": "LTAI5tExample000001",
        "account_id": "1234567890123456",
        "account_name": "acme-prod",
        "user_name": "ci-deployer",
        "owner_type": "ram_user",
        "leak_url": "https://github.com/acme/app/blob/main/deploy.sh",
        "detected_at": "2024-05-01T03:00:00Z",
        "created_at": "2024-05-01T03:00:02.114Z",
        "state": "needs_attention",
        "reason": "step_failed",
        "explanation": "The revoke step failed.",
        "waiting_for": null,
        "dry_run": false,
        "contained_at": "2024-05-01T03:00:02.603Z",
        "time_to_containment_ms": 489,
        "closed_at": null,
        "parent_incident_id": null,
        "last_error": "Throttling.User",
        "notifications": [{"channel": "oncall", "event": "needs_person", "state": "sent",
                           "attempts": 1, "last_error": null}],
        "sightings": [],
    })
}

#[test]
fn a_row_masks_the_key_and_says_what_a_person_is_asked_for() {
    let row = Row::of(&incident(), now());
    assert_eq!(row.key, "*************000001");
    assert_eq!(row.owner, "ci-deployer");
    assert_eq!(row.state, "needs_attention (step_failed)");
    assert_eq!(row.waiting_for, "operator: retry");
    assert_eq!(row.age_secs, Some(7197));

    let mut approval = incident();
    approval["state"] = json!("rotate");
    approval["reason"] = Value::Null;
    approval["waiting_for"] = json!({"approval": "rotate", "since": "2024-05-01T04:00:00Z"});
    assert_eq!(Row::of(&approval, now()).waiting_for, "approval: rotate");

    let mut console = incident();
    console["reason"] = json!("account_key");
    assert_eq!(Row::of(&console, now()).waiting_for, "operator: console");

    let mut resolved = incident();
    resolved["state"] = json!("resolved");
    resolved["reason"] = Value::Null;
    resolved["user_name"] = Value::Null;
    let row = Row::of(&resolved, now());
    assert_eq!(
        (row.waiting_for.as_str(), row.owner.as_str()),
        ("-", "ram_user")
    );
}

#[test]
fn the_table_aligns_its_columns_under_a_header() {
    let rows = [Row::of(&incident(), now())];
    let table = table(&rows);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 2, "{table}");
    assert!(lines[0].starts_with("ID  KEY "), "{table}");
    assert_eq!(
        lines[0].find("OWNER"),
        lines[1].find("ci-deployer"),
        "{table}"
    );
    assert!(lines[1].ends_with("operator: retry  1h"), "{table}");
}

#[test]
fn ages_read_at_a_glance() {
    assert_eq!(age(-3), "0s");
    assert_eq!(age(59), "59s");
    assert_eq!(age(61), "1m");
    assert_eq!(age(7200), "2h");
    assert_eq!(age(3 * 86_400), "3d");
}

#[test]
fn show_lists_what_a_person_acts_on() {
    let mut view = incident();
    view["explanation"] = json!("Check and remove:\n- [ ] RAM user svc-backup");
    let text = super::incident(&view, now());
    for expected in [
        "incident 12  needs_attention (step_failed)",
        "key          LTAI5tExample000001",
        "account      acme-prod (1234567890123456)",
        "contained    2024-05-01T03:00:02.603Z  (489 ms after detection)",
        "waiting for  operator: retry",
        "last error   Throttling.User",
        "\n  Check and remove:\n  - [ ] RAM user svc-backup\n",
        "oncall  needs_person  sent after 1 attempt(s)",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
}

/// Every renderer's output with each field holding `value`.
fn rendered(value: &str) -> Vec<String> {
    let mut view = incident();
    for field in [
        "access_key_id",
        "account_name",
        "user_name",
        "owner_type",
        "leak_url",
        "state",
        "reason",
        "last_error",
        "detected_at",
    ] {
        view[field] = json!(value);
    }
    // Its lines are lines (checklists), each escaped.
    view["explanation"] = json!(format!("x{}", value.replace('\n', "")));
    view["waiting_for"] = json!({"approval": value});
    view["notifications"][0]["channel"] = json!(value);
    view["notifications"][0]["last_error"] = json!(value);
    view["cancel"] = json!({"will_undo": [value],
        "cannot_undo": [{"api": value, "target": value, "why": value}]});
    let audit_body = json!({"events": [{"at": value, "actor": value, "action": value,
                                        "detail": {"name": value}}]});
    let row = Row::of(&view, now());
    vec![
        table(std::slice::from_ref(&row)),
        super::incident(&view, now()),
        audit(&audit_body),
        acted("cancel", &view),
        escape::json(&row.to_json()),
    ]
}

#[test]
fn no_hostile_string_from_the_api_reaches_the_terminal_raw() {
    let plain = rendered("x");
    for raw in hostile_strings() {
        for (out, plain) in rendered(&raw).iter().zip(&plain) {
            assert!(
                !out.chars().any(|c| c != '\n' && is_unsafe(c)),
                "{raw:?} reached the terminal raw in:\n{out}"
            );
            // A value cannot add a line of its own.
            assert_eq!(
                out.lines().count(),
                plain.lines().count(),
                "{raw:?} added lines to:\n{out}"
            );
        }
    }
}
