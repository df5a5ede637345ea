//! The ActionTrail audit: what the leaked key did, from the look-back before detection until
//! now, in every configured region. Keys it created become incidents of their own, and the
//! console logons of users it created are switched off. A chain incident also lists what the
//! attacker created, for the person who cleans up.

use chrono::Utc;
use serde_json::{Value, json};

use super::context::{StepContext, StepError, StepResult};
use super::logins;
use crate::domain::forensics::AuditFindings;
use crate::domain::{AccessKeyId, IncidentState, LeakNotification, OwnerType, Signal, Step};
use crate::store::Delivery;

/// The first pass, run as the audit step.
pub(super) async fn first_pass(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let findings = collect(ctx).await?;
    chain_created_keys(ctx, &findings).await?;
    let settle_at =
        Utc::now() + chrono::Duration::from_std(ctx.inner.config.settle_delay).unwrap_or_default();
    let summary = findings.summary();
    let mut result = StepResult {
        settle_audit_at: Some(settle_at),
        ..StepResult::default()
    };
    result.findings = artefact_findings(ctx, &findings).await?;
    Ok(result
        .finding(
            "audit",
            serde_json::to_value(&findings).unwrap_or(Value::Null),
        )
        .finding("audit_summary", json!(summary)))
}

/// The findings about what the attacker left: the created users' console logons, switched
/// off, and for a chain incident the checklist of everything the attacker created.
pub(super) async fn artefact_findings(
    ctx: &mut StepContext<'_>,
    findings: &AuditFindings,
) -> Result<Vec<(String, Value)>, StepError> {
    if ctx.incident.state == IncidentState::Active(Step::Cancelling) {
        // A settle pass due while a cancel puts things back must not switch logons off again.
        return Ok(Vec::new());
    }
    let logons = logins::disable_created(ctx, findings).await?;
    let mut out = Vec::new();
    if let Some(parent_id) = ctx.incident.parent_incident_id {
        let parent = ctx.inner.store.get_incident(parent_id).await?;
        let mut items = Vec::new();
        let mut logon_list = Vec::new();
        if let Some(parent) = &parent {
            if parent.findings.get("audit").is_none() && parent.state.is_open() {
                // The parent's audit opened this incident and is recorded just after: the
                // checklist starts from it, so wait for it.
                return Err(StepError::Unverified(format!(
                    "incident {parent_id}'s audit findings are not recorded yet"
                )));
            }
            let audit = parent.findings.get("audit").cloned().unwrap_or_default();
            if let Ok(audit) = serde_json::from_value::<AuditFindings>(audit) {
                items.extend(audit.checklist());
            }
            if let Some(list) = parent.findings[logins::FINDING]["users"].as_array() {
                logon_list.extend(list.iter().cloned());
            }
        }
        items.extend(findings.checklist());
        let mut seen = std::collections::HashSet::new();
        items.retain(|item| seen.insert(item.clone()));
        if let Some(list) = logons["users"].as_array() {
            logon_list.extend(list.iter().cloned());
        }
        out.push((
            "attacker_artefacts".into(),
            json!({"created_by_incident": parent_id,
                   "parent_access_key_id": parent.map(|p| p.access_key_id),
                   "items": items, "console_logons": logon_list}),
        ));
    }
    out.push((logins::FINDING.into(), logons));
    Ok(out)
}

/// The second pass, once ActionTrail has caught up: merged into the first.
pub(super) async fn settle_pass(ctx: &mut StepContext<'_>) -> Result<AuditFindings, StepError> {
    let fresh = collect(ctx).await?;
    let earlier: Option<AuditFindings> = ctx
        .incident
        .findings
        .get("audit")
        .and_then(|v| serde_json::from_value(v.clone()).ok());
    let merged = match earlier {
        Some(earlier) => earlier.merge(fresh),
        None => fresh,
    };
    chain_created_keys(ctx, &merged).await?;
    Ok(merged)
}

async fn collect(ctx: &mut StepContext<'_>) -> Result<AuditFindings, StepError> {
    let client = ctx.inner.client.clone();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let lookback = chrono::Duration::from_std(ctx.inner.config.lookback).unwrap_or_default();
    let start = ctx.incident.detected_at - lookback;
    let end = Utc::now();
    let mut events = Vec::new();
    for region in ctx.inner.config.regions.clone() {
        let found = ctx
            .read(
                "LookupEvents",
                &region,
                client.lookup_events(&key, &region, start, end),
            )
            .await?;
        events.extend(found);
    }
    Ok(AuditFindings::from_events(
        &key,
        &events,
        &ctx.inner.config.known_cidrs,
    ))
}

/// A key the leaked key created is itself in the attacker's hands: it becomes an incident,
/// linked to this one. Delivery ids make this idempotent across passes and retries.
async fn chain_created_keys(
    ctx: &mut StepContext<'_>,
    findings: &AuditFindings,
) -> Result<(), StepError> {
    let parent = ctx.incident.id;
    let deliveries: Vec<Delivery> = findings
        .keys_created()
        .iter()
        .filter_map(|created| {
            let key = AccessKeyId::parse(created.access_key_id.as_deref()?).ok()?;
            Some(Delivery {
                source: "chain".into(),
                format: "actiontrail",
                delivery_id: format!("{parent}:{key}"),
                received_at: Utc::now(),
                body_sha256: String::new(),
                actor: format!("worker:{}", ctx.lease.owner),
                parent: Some(parent),
                signal: Signal::Leak(LeakNotification {
                    access_key_id: key,
                    account_id: ctx.incident.account_id.clone(),
                    account_name: ctx.incident.account_name.clone(),
                    owner_type: Some(OwnerType::RamUser),
                    user_name: created.user_name.clone(),
                    leak_url: None,
                    detected_at: Some(Utc::now()),
                    event_id: Some(created.event_id.clone()),
                }),
            })
        })
        .collect();
    if deliveries.is_empty() {
        return Ok(());
    }
    let outcomes = ctx.inner.store.record_deliveries(&deliveries).await?;
    if outcomes
        .iter()
        .any(|o| matches!(o, crate::store::IntakeOutcome::Created(_)))
    {
        tracing::warn!(incident.id = %parent, "the leaked key created keys of its own; each is now an incident");
        ctx.inner.wake.notify_waiters();
    }
    Ok(())
}
