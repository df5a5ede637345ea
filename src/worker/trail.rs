//! The ActionTrail audit: what the leaked key did, from the look-back before detection until
//! now, in every configured region. The first pass waits for its account's audit batch (see
//! `trail_batch`), which answers it from one account-wide pass or leaves it its own query.
//! Keys it created become incidents of their own; what else the attacker left is handled in
//! `artefacts`.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::context::{Parked, StepContext, StepError, StepResult};
use super::{artefacts, sweep};
use crate::domain::forensics::AuditFindings;
use crate::domain::{AccessKeyId, Finding, FindingsPatch, LeakNotification, OwnerType, Signal};
use crate::store::{BatchAnswer, Delivery};

/// The first pass, run as the audit step.
pub(super) async fn first_pass(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let parent = artefacts::parent(ctx).await?;
    if let artefacts::Parent::AuditPending = parent {
        // Waiting, not failing: the parent's step is about to record its findings.
        return Ok(StepResult::wait_until(
            Utc::now() + chrono::Duration::seconds(1),
        ));
    }
    let findings = match batched(ctx).await? {
        Batched::Parked(parked) => return Ok(parked),
        Batched::Events(events) => findings_of(ctx, &events),
        Batched::PerKey => collect(ctx).await?,
    };
    chain_created_keys(ctx, &findings).await?;
    let settle_at =
        Utc::now() + chrono::Duration::from_std(ctx.inner.config.settle_delay).unwrap_or_default();
    let mut result = StepResult {
        settle_audit_at: Some(settle_at),
        ..StepResult::default()
    };
    result.findings = artefacts::findings(ctx, &findings, parent.incident()).await?;
    Ok(result.finding(Finding::Audit(Box::new(findings))))
}

/// The second pass, once ActionTrail has caught up: merged into the first. Returns the merged
/// audit and the findings: the merged audit and what the attacker left.
pub(super) async fn settle_pass(
    ctx: &mut StepContext<'_>,
) -> Result<(AuditFindings, FindingsPatch), StepError> {
    // The first pass waited for the parent's findings, so they are there by now.
    let parent = artefacts::parent(ctx).await?;
    let fresh = collect(ctx).await?;
    let merged = match ctx.incident.findings.audit.clone() {
        Some(earlier) => earlier.merge(fresh),
        None => fresh,
    };
    chain_created_keys(ctx, &merged).await?;
    let mut patch = artefacts::findings(ctx, &merged, parent.incident()).await?;
    patch.push(Finding::Audit(Box::new(merged.clone())));
    Ok((merged, patch))
}

/// What the incident's audit batch says.
enum Batched {
    /// Not answered yet: the incident waits, parked.
    Parked(StepResult),
    /// The key's events, from the account-wide pass.
    Events(Vec<Value>),
    /// The incident queries its own key.
    PerKey,
}

/// Seats the incident in its account's audit batch (see `trail_batch`), or reads the answer.
async fn batched(ctx: &mut StepContext<'_>) -> Result<Batched, StepError> {
    let now = Utc::now();
    let seat = ctx
        .inner
        .store
        .join_audit_batch(
            ctx.work.account.store_key(),
            ctx.incident.id,
            ctx.incident.access_key_id.as_str(),
            window_start(ctx),
            now,
        )
        .await?;
    let Some(answer) = seat.answer else {
        // Parked, not holding a worker: the batch's holder wakes it when the batch is done.
        ctx.work.batch_wake.notify_one();
        return Ok(Batched::Parked(StepResult::parked(
            Parked::AuditBatch(seat.batch),
            sweep::parked_until(now),
        )));
    };
    // The batch's own calls are audited account-wide; the incident names the batch it used.
    let (outcome, batched) = match answer {
        BatchAnswer::Events(events) => ("account_wide", Batched::Events(events)),
        BatchAnswer::PerKey => ("per_key", Batched::PerKey),
    };
    ctx.note_row(
        "audit.batch",
        json!({"step": ctx.step.as_str(), "batch": seat.batch, "outcome": outcome}),
    );
    Ok(batched)
}

/// The start of the incident's window: the look-back before detection.
fn window_start(ctx: &StepContext<'_>) -> DateTime<Utc> {
    let lookback = chrono::Duration::from_std(ctx.inner.config.lookback).unwrap_or_default();
    ctx.incident.detected_at - lookback
}

fn findings_of(ctx: &StepContext<'_>, events: &[Value]) -> AuditFindings {
    AuditFindings::from_events(
        ctx.incident.access_key_id.as_str(),
        events,
        &ctx.inner.config.known_cidrs,
    )
}

/// The key's own query, in every region.
async fn collect(ctx: &mut StepContext<'_>) -> Result<AuditFindings, StepError> {
    let client = ctx.client.clone();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let start = window_start(ctx);
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
    Ok(findings_of(ctx, &events))
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
                    stated_detected_at: None,
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
        tracing::warn!(
            incident.id = parent.0,
            "the leaked key created keys of its own; each is now an incident"
        );
        ctx.inner.wake.notify_waiters();
    }
    Ok(())
}
