//! The report's content, from the incident's typed findings and its audit log.

use serde_json::Value;

use super::words::{OpenItem, Words};
use super::{
    Action, Billing, Containment, Forensics, Lang, Report, SourceIpLine, Summary, TimelineEntry,
};
use crate::domain::findings::Verified;
use crate::domain::{AuditRecord, Incident, IncidentState, Path, Reason};

pub fn build(incident: &Incident, audit: &[AuditRecord], language: Lang) -> Report {
    let items = open_items(incident);
    let words = Words::of(language);
    Report {
        language,
        summary: summary(incident, audit),
        timeline: audit
            .iter()
            .filter_map(timeline_entry)
            .map(|mut entry| {
                entry.what = masked(incident, &entry.what);
                entry
            })
            .collect(),
        containment: containment(incident),
        forensics: forensics(incident),
        billing: incident.findings.billing.as_ref().map(|b| Billing {
            summary: b.summary(),
            current_cycle: b.current_cycle.clone(),
            previous_cycle: b.previous_cycle.clone(),
            currency: b.currency.clone(),
            flags: b.flags,
            products: b.products.clone(),
        }),
        actions: audit
            .iter()
            .filter_map(action)
            .map(|mut action| {
                action.target = action.target.map(|t| masked(incident, &t));
                action
            })
            .collect(),
        open_items: items
            .iter()
            .map(|item| words.open_item(item, str::to_owned))
            .collect(),
        items,
    }
}

/// `text` with the leaked key's id masked as the summary shows it (a network policy's target
/// is the key itself).
fn masked(incident: &Incident, text: &str) -> String {
    let key = incident.access_key_id.as_str();
    text.replace(key, &crate::notify::shown_key(key, false))
}

fn summary(incident: &Incident, audit: &[AuditRecord]) -> Summary {
    let opened = audit.iter().find(|r| r.action == "incident.opened");
    let source = opened.map(|r| {
        r.detail()["source"]
            .as_str()
            .map(str::to_owned)
            .unwrap_or_else(|| r.actor.clone())
    });
    let reason = match incident.state {
        IncidentState::NeedsAttention(reason) => Some(reason.as_str()),
        _ => None,
    };
    Summary {
        incident_id: incident.id.0,
        access_key_id: crate::notify::shown_key(incident.access_key_id.as_str(), false),
        owner_type: incident.owner_type.as_str(),
        user_name: incident.user_name.clone(),
        account_id: incident.account_id.clone(),
        source,
        leak_url: incident.leak_url.clone(),
        state: incident.state.as_str(),
        reason,
        path: incident.path.map(Path::as_str),
        detected_at: incident.detected_at,
        contained_at: incident.contained_at,
        resolved_at: incident
            .closed_at
            .filter(|_| incident.state == IncidentState::Resolved),
        closed_at: incident.closed_at,
        time_to_containment_ms: incident.time_to_containment_ms(),
        parent_incident_id: incident.parent_incident_id.map(|p| p.0),
        dry_run: incident.dry_run,
    }
}

fn text(detail: &Value, field: &str) -> Option<String> {
    detail[field].as_str().map(str::to_owned)
}

fn timeline_entry(record: &AuditRecord) -> Option<TimelineEntry> {
    let detail = record.detail();
    let field = |name: &str| detail[name].as_str().unwrap_or("?").to_owned();
    let what = match record.action.as_str() {
        "incident.opened" => format!("opened ({})", field("source")),
        "incident.transition" if detail["from"] == detail["to"] => format!(
            "{} failed, retried: {}",
            field("step"),
            detail["detail"]["error"].as_str().unwrap_or("?")
        ),
        "incident.transition" => format!("{} → {}", field("from"), field("to")),
        "cloud.call" | "cloud.dry_run" => format!(
            "{} {}: {}",
            field("api"),
            field("target"),
            detail["outcome"].as_str().unwrap_or("dry run")
        ),
        "audit.settle_pass" => format!(
            "ActionTrail pass {}",
            detail["summary"]
                .as_str()
                .or(detail["error"].as_str())
                .unwrap_or("?")
        ),
        action if action.starts_with("operator.") => {
            format!("{} → {}", field("from"), field("to"))
        }
        _ => return None,
    };
    Some(TimelineEntry {
        at: record.at,
        actor: record.actor.clone(),
        action: record.action.clone(),
        what,
    })
}

fn action(record: &AuditRecord) -> Option<Action> {
    let detail = record.detail();
    match record.action.as_str() {
        "cloud.call" | "cloud.dry_run" => Some(Action {
            at: record.at,
            actor: record.actor.clone(),
            action: text(&detail, "api").unwrap_or_default(),
            target: text(&detail, "target"),
            outcome: text(&detail, "outcome").or_else(|| Some("dry_run".into())),
            request_id: text(&detail, "request_id"),
        }),
        action if action.starts_with("operator.") => Some(Action {
            at: record.at,
            actor: record.actor.clone(),
            action: action.to_owned(),
            target: None,
            outcome: text(&detail, "to"),
            request_id: None,
        }),
        _ => None,
    }
}

fn containment(incident: &Incident) -> Containment {
    let f = &incident.findings;
    let verification = |v: Option<Verified>| match v {
        Some(Verified::Yes) => "verified",
        Some(Verified::SkippedInDryRun) => "skipped_in_dry_run",
        None => "not_verified",
    };
    let mut out = Containment {
        method: "none",
        policy: None,
        user_name: None,
        verification: "not_verified",
        contained_at: incident.contained_at,
        time_to_containment_ms: incident.time_to_containment_ms(),
        key_deleted_at: f
            .delete_key
            .as_ref()
            .filter(|d| d.deleted == Some(true))
            .and_then(|d| d.deleted_at),
        network_fence: None,
        network_fence_verification: None,
    };
    if let Some(fence) = &f.fence
        && let Some(networks) = &fence.networks
    {
        out.network_fence = Some(networks.describe());
        out.network_fence_verification = Some(verification(fence.verified));
    }
    if let Some(revoke) = &f.revoke {
        out.method = "deny_policy";
        out.policy = Some(revoke.policy.clone());
        out.user_name = Some(revoke.user_name.clone());
        out.verification = verification(revoke.verified);
    } else if let Some(disabled) = f.disable_key.as_ref().or(f.disable_old_key.as_ref()) {
        out.method = "key_disabled";
        out.user_name = Some(disabled.user_name.clone());
        out.verification = verification(disabled.verified);
    }
    out
}

fn forensics(incident: &Incident) -> Option<Forensics> {
    let audit = incident.findings.audit.as_ref()?;
    Some(Forensics {
        summary: audit.summary(),
        events_examined: audit.events_examined,
        source_ips: audit
            .source_ips
            .iter()
            .map(|ip| SourceIpLine {
                ip: ip.ip.clone(),
                calls: ip.calls,
                known: ip.known,
                country: None,
            })
            .collect(),
        resources_created: audit.resources_created.items.clone(),
        users_created: audit.users_created.items.clone(),
        keys_created: audit.keys_created.items.clone(),
        denied_attempts: audit.refused_by_leak_protection.items.clone(),
        refused_by_leak_protection: audit.refused_by_leak_protection.total(),
        succeeded_calls: audit.succeeded,
    })
}

/// What a person still has to do, most urgent first.
fn open_items(incident: &Incident) -> Vec<OpenItem> {
    let f = &incident.findings;
    let mut items = Vec::new();
    let mut say = |item: OpenItem| items.push(item);
    if incident.findings.awaited_approval(incident.state).is_some() {
        say(OpenItem::Approve {
            step: incident
                .findings
                .awaited_approval(incident.state)
                .map_or("", |(step, _)| step.as_str()),
            id: incident.id.0,
        });
    } else if matches!(
        incident.state,
        IncidentState::NeedsAttention(_)
            | IncidentState::Active(crate::domain::Step::AwaitingOperator)
    ) && let Some(explanation) = crate::domain::explain::explanation(incident)
    {
        say(OpenItem::Act {
            state: incident.state.as_str(),
            explanation,
        });
    }
    if let Some(artefacts) = &f.attacker_artefacts {
        for item in &artefacts.items {
            say(OpenItem::RemoveArtefact(item.clone()));
        }
    } else if let Some(audit) = &f.audit {
        for item in audit.checklist() {
            say(OpenItem::RemoveArtefact(item));
        }
    }
    let unknown: Vec<&str> = f
        .audit
        .iter()
        .flat_map(|a| &a.source_ips)
        .filter(|ip| !ip.known)
        .map(|ip| ip.ip.as_str())
        .collect();
    if !unknown.is_empty() {
        say(OpenItem::UnknownIps(unknown.join(", ")));
    }
    if let Some(mfa) = &f.mfa {
        let required = mfa.mfa_now_required.clone().unwrap_or_default();
        if !required.is_empty() {
            say(OpenItem::Mfa(required.join(", ")));
        }
        if let Some(user) = &mfa.password_reset_required {
            say(OpenItem::Password(user.clone()));
        }
    }
    if let Some(cancel) = &f.cancel {
        for kept in &cancel.not_undone {
            say(OpenItem::NotUndone {
                api: kept.api.clone(),
                target: kept.target.clone(),
                why: kept.why.clone(),
            });
        }
    }
    if f.billing.as_ref().is_some_and(|b| b.flags > 0) {
        say(OpenItem::Billing);
    }
    let deleted = f
        .delete_key
        .as_ref()
        .is_some_and(|d| d.deleted == Some(true));
    let closed_without = matches!(
        incident.state,
        IncidentState::Cancelled | IncidentState::NeedsAttention(Reason::ProtectedIdentity)
    );
    if !deleted && !closed_without && incident.path != Some(Path::StsKey) {
        say(OpenItem::DeleteKey);
    }
    say(OpenItem::PostMortem);
    items
}
