//! The report's Markdown keeps its shape whatever the cloud, the reporter or the operator
//! wrote into the incident.

use chrono::Utc;
use serde_json::json;

use super::{Lang, build, markdown};
use crate::domain::billing::{BillingFindings, ProductCharge};
use crate::domain::fence::{FenceSource, Networks};
use crate::domain::findings::{Cancel, Fence, Mfa, Revoke, Verified};
use crate::domain::forensics::{AuditFindings, CreatedKey, CreatedUser, EventSummary};
use crate::domain::undo::NotUndone;
use crate::domain::{
    AccessKeyId, Amount, AuditRecord, Findings, Incident, IncidentId, IncidentState, OwnerType,
    Reason,
};
use crate::hostile::hostile_strings;

/// An incident in which every free-text field holds `text`.
fn incident_naming(text: &str) -> (Incident, Vec<AuditRecord>) {
    let now = Utc::now();
    let mut audit = AuditFindings::from_events("LTAI5tQ9xLeakedCiDeploy7", &[], &[]);
    audit.users_created.items.push(CreatedUser {
        user_name: Some(text.into()),
        time: Some(now),
        event_id: text.into(),
    });
    audit.keys_created.items.push(CreatedKey {
        access_key_id: Some(text.into()),
        user_name: Some(text.into()),
        time: Some(now),
        event_id: text.into(),
    });
    audit.refused_by_leak_protection.items.push(EventSummary {
        event_id: text.into(),
        time: None,
        name: text.into(),
        service: Some(text.into()),
        region: Some(text.into()),
        source_ip: Some(text.into()),
        error_code: Some(text.into()),
    });
    let charge = ProductCharge {
        product_code: text.into(),
        product_name: Some(text.into()),
        amount: Amount::default(),
    };
    let billing = BillingFindings::compare(&[charge], &[], None, Some(text.into()), now, 50);
    let findings = Findings {
        revoke: Some(Revoke {
            policy: text.into(),
            user_name: text.into(),
            new_version: None,
            error: Some(text.into()),
            verified: Some(Verified::Yes),
        }),
        mfa: Some(Mfa {
            mfa_now_required: Some(vec![text.into()]),
            password_reset_required: Some(text.into()),
            ..Mfa::default()
        }),
        audit: Some(audit),
        billing: Some(billing),
        cancel: Some(Cancel {
            undone: vec![text.into()],
            not_undone: vec![NotUndone {
                api: text.into(),
                target: text.into(),
                why: text.into(),
            }],
            dry_run: false,
        }),
        ..Findings::default()
    };
    let incident = Incident {
        id: IncidentId(7),
        access_key_id: AccessKeyId::parse("LTAI5tQ9xLeakedCiDeploy7").unwrap(),
        account_id: Some(text.into()),
        account_name: Some(text.into()),
        user_name: Some(text.into()),
        owner_type: OwnerType::RamUser,
        leak_url: Some(text.into()),
        detected_at: now,
        stated_detected_at: None,
        state: IncidentState::NeedsAttention(Reason::PolicyLimit),
        path: None,
        created_at: now,
        updated_at: now,
        closed_at: None,
        contained_at: None,
        parent_incident_id: None,
        last_error: Some(text.into()),
        findings,
        dry_run: false,
    };
    let record = |action: &str, detail: serde_json::Value| AuditRecord {
        id: 1,
        incident_id: Some(IncidentId(7)),
        at: now,
        actor: format!("operator:{text}"),
        action: action.into(),
        detail_json: detail.to_string(),
        prev_hash: String::new(),
        hash: String::new(),
    };
    let records = vec![
        record("incident.opened", json!({"source": text})),
        record(
            "cloud.call",
            json!({"api": text, "target": text, "outcome": text, "request_id": text}),
        ),
        record(
            "incident.transition",
            json!({"from": "revoke", "to": "revoke", "step": text,
            "detail": {"error": text}}),
        ),
        record("operator.cancel", json!({"from": text, "to": text})),
    ];
    (incident, records)
}

/// Each line's first two characters: what kind of Markdown line it is.
fn shape(md: &str) -> Vec<String> {
    md.lines().map(|l| l.chars().take(2).collect()).collect()
}

#[test]
fn hostile_text_in_any_field_cannot_change_the_reports_markdown() {
    for lang in [Lang::En, Lang::Ja] {
        let (plain, plain_audit) = incident_naming("x");
        let expected = shape(&markdown(&build(&plain, &plain_audit, lang)));
        for raw in hostile_strings() {
            let (incident, audit) = incident_naming(&raw);
            let md = markdown(&build(&incident, &audit, lang));
            assert_eq!(shape(&md), expected, "{raw:?} changed the shape:\n{md}");
            assert!(!md.contains('<'), "{raw:?}: {md}");
            // The one link is the leak URL's, when it is an https URL (its target encoded).
            let links = md.lines().filter(|l| l.contains("]("));
            let leak_line =
                |l: &str| l.starts_with("- **Leak URL**") || l.starts_with("- **漏えい");
            assert!(links.clone().all(leak_line), "{raw:?} made a link: {md}");
            assert!(links.count() <= 1);
            assert!(!md.contains("@all") && !md.contains("@here"), "{raw:?}");
        }
    }
}

#[test]
fn json_quotes_names_as_they_are_and_markdown_escapes_them() {
    let (incident, audit) = incident_naming("svc_[x](y)");
    let report = build(&incident, &audit, Lang::En);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["summary"]["user_name"], "svc_[x](y)");
    assert!(json["open_items"].to_string().contains("svc_[x](y)"));
    let md = markdown(&report);
    assert!(md.contains(r"svc\_\[x\]\(y\)"), "{md}");
    assert!(!md.contains("svc_[x](y)"));
}

#[test]
fn the_report_names_the_fence_and_what_restrictive_protection_left_open() {
    let (mut incident, audit) = incident_naming("x");
    incident.findings.fence = Some(Fence {
        access_key_id: "LTAI5tQ9xLeakedCiDeploy7".into(),
        networks: Some(Networks {
            cidrs: vec!["10.0.8.0/24".into()],
            vpcs: Vec::new(),
        }),
        source: Some(FenceSource::Configured),
        previous_policy: None,
        verified: Some(Verified::Yes),
        not_fenced: None,
    });
    if let Some(found) = incident.findings.audit.as_mut() {
        found.succeeded = 12;
    }
    let report = build(&incident, &audit, Lang::En);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["containment"]["network_fence"], "10.0.8.0/24");
    assert_eq!(json["forensics"]["refused_by_leak_protection"], 1);
    assert_eq!(json["forensics"]["succeeded_calls"], 12);
    let md = markdown(&report);
    assert!(md.contains(r"10\.0\.8\.0/24 (verified)"), "{md}");
    assert!(
        md.contains("restrictive protection refused 1 of these calls")
            && md.contains("(12 calls with it succeeded)"),
        "{md}"
    );
}
