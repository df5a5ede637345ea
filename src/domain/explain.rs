//! What a person reads on an incident: what akguard did (in a dry run, what it would do),
//! what the incident waits for, and what is left for a person.

mod containment;

use serde_json::{Value, json};

use super::findings::LogonState;
use super::{Incident, IncidentState, Reason};

/// Said first when the reported key is akguard's own.
const OWN_KEY_WARNING: &str = "POSSIBLE LEAK OF AKGUARD'S OWN CREDENTIALS: the reported key \
    belongs to akguard's own identity (the key it signs its calls with, or its own RAM user). \
    akguard does not act on its own identity, so a person must act now: create a new key for \
    akguard's identity, switch akguard to it, then disable and delete the reported one, and \
    review what that key did.";

/// The approval the incident waits for: `{"approval": step, "since": ..., "deadline": ...}`.
pub fn waiting_for(incident: &Incident) -> Option<Value> {
    let (step, approval) = incident.findings.awaited_approval(incident.state)?;
    Some(json!({
        "approval": step.as_str(),
        "since": approval.requested_at,
        "deadline": approval.deadline,
    }))
}

/// The incident's explanation, or `None` when nothing is for a person to read.
pub fn explanation(incident: &Incident) -> Option<String> {
    let text = if let Some(waiting) = waiting_for(incident) {
        Some(approval_text(incident, &waiting))
    } else if incident.state == IncidentState::Cancelled {
        Some(cancel_text(incident))
    } else if incident.state == IncidentState::NeedsAttention(Reason::ProtectedIdentity) {
        // Before the chain text: a protected key is never the attacker's to disable.
        Some(protected_text(incident))
    } else if incident.parent_incident_id.is_some() {
        Some(chain_text(incident))
    } else {
        let base = incident.state.explanation(incident.dry_run);
        let base = match (triage_caveat(incident), base) {
            (Some(caveat), Some(base)) => Some(format!("{caveat} {base}")),
            (caveat, base) => base.or(caveat.map(str::to_owned)),
        };
        let notes = [
            base,
            created_note(incident),
            containment::fence_note(incident),
            containment::protection_note(incident),
        ];
        let notes: Vec<String> = notes.into_iter().flatten().collect();
        (!notes.is_empty()).then(|| notes.join(" "))
    };
    if !incident.dry_run {
        return text;
    }
    let lead = "Dry run: akguard changed nothing in the cloud; the audit log lists each call it \
                would have made (cloud.dry_run).";
    Some(match text {
        Some(text) => format!("{lead} {text}"),
        None => lead.to_owned(),
    })
}

fn approval_text(incident: &Incident, waiting: &Value) -> String {
    let step = waiting["approval"].as_str().unwrap_or_default();
    let since = waiting["since"].as_str().unwrap_or("an unknown time");
    let deadline = match waiting["deadline"].as_str() {
        Some(at) => format!(
            "If none comes by {at}, approvals.on_deadline decides (proceed, or needs_attention)."
        ),
        None => "It waits until one comes (approvals.deadline is not set).".to_owned(),
    };
    format!(
        "Waiting for an operator's approval of the {step} step since {since}. {deadline} \
         Approve it (POST /v1/incidents/{}/actions/approve) to let it run, or cancel the \
         incident.",
        incident.id
    )
}

fn cancel_text(incident: &Incident) -> String {
    let cancel = incident.findings.cancel.clone().unwrap_or_default();
    let undone = &cancel.undone;
    let mut text = if undone.is_empty() {
        "Cancelled. akguard had changed nothing that needed undoing.".to_owned()
    } else if incident.dry_run {
        format!(
            "Cancelled. akguard would have undone: {}.",
            undone.join("; ")
        )
    } else {
        format!("Cancelled. akguard undid: {}.", undone.join("; "))
    };
    let kept: Vec<String> = cancel
        .not_undone
        .iter()
        .map(|n| format!("{} on {} ({})", n.api, n.target, n.why))
        .collect();
    if !kept.is_empty() {
        text.push_str(&format!(" It could not undo: {}.", kept.join("; ")));
    }
    text
}

/// A protected identity: what the reason says, after the warning when it is akguard's own.
fn protected_text(incident: &Incident) -> String {
    let reason = Reason::ProtectedIdentity.explanation();
    if incident
        .findings
        .protected
        .as_ref()
        .is_some_and(|p| p.own_credentials)
    {
        format!("{OWN_KEY_WARNING} {reason}")
    } else {
        reason
    }
}

/// Why triage left an open incident to a person: a use it could not attribute, or a window
/// the data could not cover (see `triage::Usage::caveat`).
fn triage_caveat(incident: &Incident) -> Option<&'static str> {
    if !incident.state.is_open() {
        return None;
    }
    incident.findings.triage.as_ref()?.usage?.caveat()
}

fn chain_text(incident: &Incident) -> String {
    let parent = incident
        .parent_incident_id
        .map(|p| p.to_string())
        .unwrap_or_default();
    let mut text = format!(
        "The leaked key of incident {parent} created this key: it is the attacker's, and no \
         workload of yours depends on it. akguard disables it at once and deletes it after the \
         grace period; do not give it a sink (set-rotation), which would hand the attacker's \
         user a fresh key."
    );
    if let IncidentState::NeedsAttention(reason) = incident.state {
        text.push(' ');
        text.push_str(&reason.explanation());
    }
    let Some(artefacts) = &incident.findings.attacker_artefacts else {
        text.push_str(&format!(
            " The checklist of what the attacker created follows once this incident's audit \
             step has run; until then see incident {parent}'s audit findings."
        ));
        return text;
    };
    text.push_str(" Check and remove what the attacker created:");
    for item in &artefacts.items {
        text.push_str(&format!("\n- [ ] {item}"));
    }
    for logon in &artefacts.console_logons {
        text.push_str(&format!(
            "\n- [ ] console logon of {}: {}",
            logon.user_name,
            logon_text(logon.console_logon)
        ));
    }
    if artefacts.items.is_empty() {
        text.push_str("\n- [ ] nothing found in ActionTrail yet: check it by hand");
    }
    text
}

/// What the leaked key created, in a sentence, for an open incident whose audit found any.
fn created_note(incident: &Incident) -> Option<String> {
    if !incident.state.is_open() {
        return None;
    }
    let audit = incident.findings.audit.as_ref()?;
    let users: Vec<&str> = audit
        .users_created
        .items
        .iter()
        .filter_map(|u| u.user_name.as_deref())
        .collect();
    let keys: Vec<&str> = audit
        .keys_created
        .items
        .iter()
        .filter_map(|k| k.access_key_id.as_deref())
        .collect();
    if users.is_empty() && keys.is_empty() {
        return None;
    }
    let mut note = "The leaked key created".to_owned();
    if !users.is_empty() {
        let logons = if incident.dry_run {
            "their console logons would be switched off"
        } else {
            "their console logons are switched off (see attacker_logins)"
        };
        note.push_str(&format!(" users {} ({logons})", users.join(", ")));
    }
    if !keys.is_empty() {
        if !users.is_empty() {
            note.push_str(" and");
        }
        note.push_str(&format!(
            " keys {} (each an incident of its own, linked by parent_incident_id, with a \
             checklist of what the attacker created)",
            keys.join(", ")
        ));
    }
    note.push('.');
    Some(note)
}

/// A created user's console logon, as the checklist says it.
pub fn logon_text(state: LogonState) -> &'static str {
    match state {
        LogonState::Disabled | LogonState::AlreadyDisabled => {
            "switched off; delete the user once reviewed"
        }
        LogonState::WouldDisable => "would be switched off (dry run)",
        LogonState::None => "none",
        LogonState::UserDeleted => "the user is deleted",
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::domain::forensics::AuditFindings;
    use crate::domain::triage::Usage;
    use crate::domain::{AccessKeyId, IncidentId, OwnerType, Step};

    fn incident(state: IncidentState, findings: Value) -> Incident {
        let now = Utc::now();
        Incident {
            id: IncidentId(7),
            access_key_id: AccessKeyId::parse("LTAI5tQ9xLeakedCiDeploy7").unwrap(),
            account_id: None,
            account_name: None,
            user_name: Some("ci-deployer".into()),
            owner_type: OwnerType::RamUser,
            leak_url: None,
            detected_at: now,
            stated_detected_at: None,
            state,
            path: None,
            created_at: now,
            updated_at: now,
            closed_at: None,
            contained_at: None,
            parent_incident_id: None,
            last_error: None,
            findings: serde_json::from_value(findings).unwrap(),
            dry_run: false,
        }
    }

    #[test]
    fn a_dry_run_never_claims_what_it_did_not_do() {
        let mut waiting = incident(IncidentState::Active(Step::AwaitingOperator), json!({}));
        let real = explanation(&waiting).unwrap();
        assert!(real.starts_with("Contained: the Deny policy is attached"));
        waiting.dry_run = true;
        let dry = explanation(&waiting).unwrap();
        assert!(dry.starts_with("Dry run:"), "{dry}");
        assert!(dry.contains("Would be contained"), "{dry}");
        assert!(!dry.contains("policy is attached"), "{dry}");
        let mut resolved = incident(IncidentState::Resolved, json!({}));
        assert_eq!(explanation(&resolved), None);
        resolved.dry_run = true;
        assert!(explanation(&resolved).unwrap().contains("would have made"));
    }

    #[test]
    fn a_pending_approval_is_shown_until_it_is_granted() {
        let asked = json!({"approval_disable_old_key":
            {"requested_at": "2026-12-05T00:00:00Z", "deadline": "2026-12-05T04:00:00Z"}});
        let waiting = incident(IncidentState::Active(Step::DisableOldKey), asked.clone());
        assert_eq!(
            waiting_for(&waiting),
            Some(
                json!({"approval": "disable_old_key", "since": "2026-12-05T00:00:00Z",
                        "deadline": "2026-12-05T04:00:00Z"})
            )
        );
        assert!(
            explanation(&waiting)
                .unwrap()
                .contains("approval of the disable_old_key step")
        );
        let timed_out = incident(
            IncidentState::NeedsAttention(Reason::ApprovalTimedOut(Step::DisableOldKey)),
            asked,
        );
        assert!(waiting_for(&timed_out).is_some());
        let granted = json!({"approval_disable_old_key":
            {"requested_at": "2026-12-05T00:00:00Z", "granted_at": "2026-12-05T00:01:00Z"}});
        let moving = incident(IncidentState::Active(Step::DisableOldKey), granted);
        assert_eq!(waiting_for(&moving), None);
    }

    #[test]
    fn the_leaks_own_incident_names_what_its_key_created() {
        let mut audit = serde_json::to_value(AuditFindings::from_events(
            "LTAI5tQ9xLeakedCiDeploy7",
            &[],
            &[],
        ))
        .unwrap();
        audit["users_created"] =
            json!({"items": [{"user_name": "svc-backup", "event_id": "e3"}], "truncated": 0});
        audit["keys_created"] = json!({"items": [{"access_key_id": "LTAI5tBkD00rSvcBackup3Zq",
            "event_id": "e4"}], "truncated": 0});
        let findings = json!({ "audit": audit });
        let waiting = incident(IncidentState::Active(Step::AwaitingOperator), findings);
        let text = explanation(&waiting).unwrap();
        assert!(text.starts_with("Contained:"), "{text}");
        assert!(text.contains("users svc-backup (their console logons are switched off"));
        assert!(text.contains("keys LTAI5tBkD00rSvcBackup3Zq (each an incident of its own"));
    }

    #[test]
    fn a_chain_incident_gets_a_checklist_not_rotation_advice() {
        let findings = json!({"attacker_artefacts": {
            "created_by_incident": 3, "parent_access_key_id": "LTAI5tQ9xLeakedCiDeploy7",
            "items": ["RAM user svc-backup (created by event e3)", "policy AdministratorAccess attached to svc-backup"],
            "console_logons": [{"user_name": "svc-backup", "console_logon": "disabled"}]}});
        let mut chain = incident(IncidentState::Active(Step::DeleteKey), findings);
        chain.parent_incident_id = Some(IncidentId(3));
        let text = explanation(&chain).unwrap();
        assert!(text.contains("incident 3"), "{text}");
        assert!(text.contains("- [ ] RAM user svc-backup"), "{text}");
        assert!(text.contains("- [ ] policy AdministratorAccess attached to svc-backup"));
        assert!(text.contains("- [ ] console logon of svc-backup: switched off"));
        assert!(!text.contains("give akguard a sink"), "{text}");
    }

    #[test]
    fn the_explanation_leads_with_why_a_person_must_decide() {
        let waiting = IncidentState::Active(Step::AwaitingOperator);
        let state_only = explanation(&incident(waiting, json!({}))).unwrap();
        let in_use = incident(waiting, json!({"triage": {"usage": "in_use"}}));
        assert_eq!(explanation(&in_use).unwrap(), state_only);
        let unattributed = incident(waiting, json!({"triage": {"usage": "unattributed"}}));
        let text = explanation(&unattributed).unwrap();
        assert!(
            text.starts_with(Usage::Unattributed.caveat().unwrap()),
            "{text}"
        );
        assert!(text.ends_with(&state_only), "{text}");

        let protected = IncidentState::NeedsAttention(Reason::ProtectedIdentity);
        let stop = |own: bool| {
            json!({"protected": {"access_key_id": "LTAI5tQ9xLeakedCiDeploy7",
                "own_credentials": own, "listed": !own, "step": "triage"}})
        };
        let own = incident(protected, stop(true));
        assert!(explanation(&own).unwrap().starts_with(OWN_KEY_WARNING));
        let mut listed = incident(protected, stop(false));
        assert_eq!(
            explanation(&listed),
            Some(Reason::ProtectedIdentity.explanation())
        );
        // A chained key that is protected is not the attacker's to disable.
        listed.parent_incident_id = Some(IncidentId(3));
        assert!(
            !explanation(&listed)
                .unwrap()
                .contains("disables it at once")
        );
        // Closed incidents ask nothing of anyone.
        let closed = incident(
            IncidentState::Resolved,
            json!({"triage": {"usage": "unattributed"}}),
        );
        assert_eq!(explanation(&closed), None);
    }
}
