//! The account-wide ActionTrail audit, run by whichever replica holds the account's batch job.
//! ActionTrail answers 2 `LookupEvents` calls a second per account, so a burst of leaks
//! audited key by key waits minutes on the quota. One pass over all the account's events (no
//! lookup attribute) answers every incident waiting at the same time: an event is a key's when
//! its `userIdentity.accessKeyId` is that key, which is what the `EventAccessKeyId` filter
//! matches, and it falls in the incident's own window.
//!
//! The pass is made only while it costs fewer calls than per-key queries would: a batch of
//! one incident, or one whose pass in a region needs more pages than it has incidents, is
//! answered "per key", and each incident then queries its own key as it would alone.
//!
//! The members are fixed when a batch starts, and their events are saved with the batch's end
//! in one transaction fenced by the job's lease. A crash or a lost lease before then leaves
//! the batch running with the same members, and the next holder makes its pass again: reads
//! only, so repeating them changes nothing.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, SubsecRound, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Inner, account_job};
use crate::cloud::api::AccountPage;
use crate::cloud::retry::unit_sample;
use crate::cloud::{CloudError, ErrorClass};
use crate::domain::{AuditEntry, IncidentId};
use crate::singleton::{AUDIT_BATCH, keep};
use crate::store::{BatchMember, JobLease, StoreError, SweepState};

/// Fewer incidents than this are answered per key: a pass costs at least a call per region,
/// as one incident's own query does.
const SHARED_FROM: usize = 2;

/// Runs account `n`'s audit batches whenever one is waiting and this replica can take the
/// account's job, until `shutdown`.
pub(super) async fn run(inner: Arc<Inner>, n: usize, shutdown: CancellationToken) {
    let account = inner.work[n].account.label();
    let failed = |err: StoreError| match err {
        StoreError::JobLost(_) => tracing::warn!(
            account,
            "the audit batch's lease was lost; another replica continues"
        ),
        err => tracing::warn!(account, error = %err, "audit batch interrupted; will resume"),
    };
    let wake = &inner.work[n].batch_wake;
    account_job::run(&inner, wake, shutdown, || batch_once(&inner, n), failed).await;
}

/// Takes the job and answers the oldest batch not yet done; `false` when there was nothing to
/// do or another replica holds the job.
async fn batch_once(inner: &Arc<Inner>, n: usize) -> Result<bool, StoreError> {
    let account = &inner.work[n].account;
    let Some(batch) = inner.store.next_audit_batch(account.store_key()).await? else {
        return Ok(false);
    };
    if batch.state == SweepState::Queued {
        // The rest of a burst joins while the first incident waits.
        let gather = chrono::Duration::from_std(inner.config.batch_gather).unwrap_or_default();
        let wait = (batch.created_at + gather - Utc::now()).to_std();
        tokio::time::sleep(wait.unwrap_or_default()).await;
    }
    let lease_for = inner.config.lease;
    let Some(lease) = inner
        .store
        .acquire_job(
            &account.scoped(AUDIT_BATCH),
            &inner.replica,
            Utc::now(),
            lease_for,
        )
        .await?
    else {
        return Ok(false);
    };
    let result = tokio::select! {
        result = answer(inner, n, &lease, batch.id) => result,
        lost = keep(inner.store.as_ref(), &lease, lease_for) => Err(lost),
    };
    if let Err(err) = inner.store.release_job(&lease).await {
        tracing::warn!(error = %err, "cannot release the audit batch's lease");
    }
    result.map(|()| true)
}

async fn answer(inner: &Inner, n: usize, lease: &JobLease, batch: i64) -> Result<(), StoreError> {
    let members = inner
        .store
        .start_audit_batch(lease, batch, Utc::now())
        .await?;
    let mut audit = Vec::new();
    let events = if members.len() < SHARED_FROM {
        None
    } else {
        pass(inner, n, batch, &members, &mut audit).await
    };
    tracing::info!(
        batch.id = batch,
        incidents = members.len(),
        calls = audit.len(),
        account_wide = events.is_some(),
        "audit batch answered"
    );
    inner
        .store
        .finish_audit_batch(lease, batch, events.as_ref(), audit, Utc::now())
        .await?;
    inner.wake.notify_waiters();
    Ok(())
}

/// Every member's events from one account-wide pass per region; `None` when the pass costs
/// more than per-key queries would, or ActionTrail cannot answer it.
async fn pass(
    inner: &Inner,
    n: usize,
    batch: i64,
    members: &[BatchMember],
    audit: &mut Vec<AuditEntry>,
) -> Option<HashMap<IncidentId, Vec<Value>>> {
    // Per-key queries cost at least one call per incident and region.
    let budget = members.len();
    let start = members.iter().map(|m| m.window_start).min()?;
    let end = Utc::now();
    let mut found: HashMap<IncidentId, Vec<Value>> =
        members.iter().map(|m| (m.incident, Vec::new())).collect();
    for region in &inner.config.regions {
        let mut token = None;
        let mut pages = 0;
        loop {
            if pages == budget {
                tracing::info!(
                    batch.id = batch,
                    region,
                    pages,
                    "the account's events outnumber the batch's keys: each incident queries its own"
                );
                return None;
            }
            let page = page(inner, n, batch, region, (start, end), token, audit).await?;
            pages += 1;
            for event in &page.events {
                for member in members.iter().filter(|m| belongs(event, m)) {
                    if let Some(events) = found.get_mut(&member.incident) {
                        events.push(event.clone());
                    }
                }
            }
            #[cfg(feature = "fault-injection")]
            inner.crash_point("LookupEvents");
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    Some(found)
}

/// Whether the member's own query would have returned `event`: made with its key, at or
/// after the start of its window (to the second, as the query states it).
fn belongs(event: &Value, member: &BatchMember) -> bool {
    let identity = event.get("userIdentity").and_then(|u| u.get("accessKeyId"));
    if identity.and_then(Value::as_str) != Some(member.access_key_id.as_str()) {
        return false;
    }
    match event
        .get("eventTime")
        .and_then(Value::as_str)
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(at) => at >= member.window_start.trunc_subsecs(0),
        // ActionTrail placed it in the pass's window, which is the union of the members'.
        None => true,
    }
}

/// One page, asked again after a transient failure as a step would be; `None` once
/// ActionTrail cannot answer.
async fn page(
    inner: &Inner,
    n: usize,
    batch: i64,
    region: &str,
    (start, end): (DateTime<Utc>, DateTime<Utc>),
    token: Option<String>,
    audit: &mut Vec<AuditEntry>,
) -> Option<AccountPage> {
    let client = &inner.work[n].account.client;
    let mut attempts = 0;
    loop {
        let called = client
            .account_events_page(region, start, end, token.clone())
            .await;
        audit.push(read_entry(inner, batch, region, &called));
        let err = match called {
            Ok(called) => return Some(called.value),
            Err(err) => err,
        };
        attempts += 1;
        if err.class() != ErrorClass::Retryable || attempts >= inner.retry.max_attempts {
            tracing::warn!(batch.id = batch, region, error = %err,
                "ActionTrail cannot answer the audit batch: each incident queries its own key");
            return None;
        }
        let delay = inner
            .retry
            .delay(attempts, unit_sample(), err.retry_after());
        tokio::time::sleep(delay).await;
    }
}

fn read_entry<T>(
    inner: &Inner,
    batch: i64,
    region: &str,
    called: &Result<crate::cloud::Called<T>, CloudError>,
) -> AuditEntry {
    let (request_id, outcome) = match called {
        Ok(called) => (Some(called.request_id.clone()), "ok".to_owned()),
        Err(err) => (
            err.request_id().map(str::to_owned),
            err.code().unwrap_or("error").to_owned(),
        ),
    };
    AuditEntry {
        incident_id: None,
        actor: format!("job:{AUDIT_BATCH}:{}", inner.replica),
        action: "cloud.read".into(),
        detail: json!({"step": AUDIT_BATCH, "api": "LookupEvents", "target": region,
            "batch": batch, "request_id": request_id, "outcome": outcome}),
    }
}
