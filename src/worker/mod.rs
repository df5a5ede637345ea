//! The remediation worker: claims an incident with a lease, runs one step, and records the
//! transition with its audit rows. Steps are reconcilers, so a step cut short by a crash or
//! a lost lease is simply run again by whoever claims the incident next.

mod account_job;
mod approval;
mod artefacts;
mod billing;
mod contain;
mod context;
mod deliver;
mod fence;
mod handover;
mod identity;
mod keys;
mod logins;
mod mfa;
mod retire;
mod rotate;
mod sweep;
mod trail;
mod trail_batch;
mod triage;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use serde_json::json;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::cloud::ErrorClass;
use crate::cloud::accounts::{Account, Accounts};
use crate::cloud::retry::{RetryPolicy, unit_sample};
use crate::config::RemediationConfig;
use crate::domain::{
    Event, Finding, IncidentState, Protection, Reason, Schedule, Step, transition,
};
use crate::monitoring::record;
use crate::store::{
    AuditGate, ClaimScope, Claimed, IncidentUpdate, Lease, ScheduleChange, Store, StoreError, Work,
};
use context::{Parked, StepContext, StepError, StepResult};
use handover::{Carried, Handover};

/// Names the API after which the crash test hook aborts the process; the hook exists only
/// in builds with the `fault-injection` feature.
pub const CRASH_HOOK_VAR: &str = "AKGUARD_TEST_CRASH_AFTER";

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    /// The accounts, the home account first; a step acts in its incident's.
    pub accounts: Accounts,
    /// Each account's own worker state, in the order of `accounts`.
    pub work: Vec<AccountWork>,
    pub config: RemediationConfig,
    pub retry: RetryPolicy,
    pub wake: Arc<Notify>,
    /// No step starts while the audit chain is broken: its audit rows could not be appended.
    pub gate: AuditGate,
    #[cfg(feature = "fault-injection")]
    pub crash_after: Option<String>,
    /// This replica's id: the MFA sweep's job holder and the prefix of lease owners.
    pub replica: String,
    /// Identities no step may change: akguard's own and `protect.*`.
    pub protection: Protection,
}

/// What the worker keeps per account: account-wide work is the account's own.
pub(crate) struct AccountWork {
    pub account: Arc<Account>,
    /// Wakes this replica's sweep runner for the account when an incident joins a sweep.
    pub sweep_wake: Notify,
    /// Wakes this replica's audit batch runner for the account when an incident joins a batch.
    pub batch_wake: Notify,
    /// Whether the account's Deny policy was found to hold the configured document (see
    /// `contain::revoke`); held while it is checked, so one worker checks and the rest wait.
    pub deny_policy: tokio::sync::Mutex<bool>,
}

impl Inner {
    /// Test hook: dies between a successful effect and its record, the worst moment.
    #[cfg(feature = "fault-injection")]
    pub fn crash_point(&self, effect: &str) {
        if self.crash_after.as_deref() == Some(effect) {
            tracing::error!(
                api = effect,
                "crash hook: aborting after the call, before its record"
            );
            std::process::abort();
        }
    }
}

/// A pool of `remediation.workers` worker loops.
pub struct Worker {
    store: Arc<dyn Store>,
    accounts: Accounts,
    config: RemediationConfig,
    retry: RetryPolicy,
    wake: Arc<Notify>,
    gate: AuditGate,
    #[cfg(feature = "fault-injection")]
    crash_after: Option<String>,
    replica: crate::replicas::ReplicaIdentity,
}

impl Worker {
    pub fn new(
        store: Arc<dyn Store>,
        accounts: Accounts,
        config: RemediationConfig,
        retry: RetryPolicy,
        wake: Arc<Notify>,
        gate: AuditGate,
        replica: crate::replicas::ReplicaIdentity,
    ) -> Self {
        let crash_after = std::env::var(CRASH_HOOK_VAR).ok().filter(|v| !v.is_empty());
        #[cfg(feature = "fault-injection")]
        if let Some(api) = &crash_after {
            tracing::warn!(
                api,
                "TEST HOOK: the process will abort right after its first successful {api} call"
            );
        }
        #[cfg(not(feature = "fault-injection"))]
        if crash_after.is_some() {
            tracing::warn!(
                "{CRASH_HOOK_VAR} is ignored: this build has no fault-injection feature"
            );
        }
        Self {
            store,
            accounts,
            config,
            retry,
            wake,
            gate,
            #[cfg(feature = "fault-injection")]
            crash_after,
            replica,
        }
    }

    /// Learns akguard's own identity, then runs the loops until `shutdown`; each finishes
    /// its current step first.
    pub async fn run(self, shutdown: CancellationToken) {
        let account = &self.replica.account;
        let home = self.accounts.home();
        let Some(protection) =
            identity::learn(&home.client, &self.config, account, &shutdown).await
        else {
            return;
        };
        if let Some(id) = account.get() {
            home.learn_id(id);
        }
        let work = self
            .accounts
            .all()
            .iter()
            .map(|account| AccountWork {
                account: account.clone(),
                sweep_wake: Notify::new(),
                batch_wake: Notify::new(),
                deny_policy: tokio::sync::Mutex::new(false),
            })
            .collect();
        let inner = Arc::new(Inner {
            store: self.store,
            accounts: self.accounts,
            work,
            config: self.config,
            retry: self.retry,
            wake: self.wake,
            gate: self.gate,
            #[cfg(feature = "fault-injection")]
            crash_after: self.crash_after,
            replica: self.replica.id.clone(),
            protection,
        });
        let prefix = inner.replica.clone();
        let sweepers: Vec<_> = (0..inner.work.len())
            .flat_map(|n| {
                [
                    tokio::spawn(sweep::run(inner.clone(), n, shutdown.clone())),
                    tokio::spawn(trail_batch::run(inner.clone(), n, shutdown.clone())),
                ]
            })
            .collect();
        // With two or more loops, half take only containment steps, so however many
        // forensics steps wait on ActionTrail's quota, a new leak is contained at once.
        let workers = inner.config.workers;
        let containment_only = if workers >= 2 { workers / 2 } else { 0 };
        let loops: Vec<_> = (0..workers)
            .map(|n| {
                let scope = if n < containment_only {
                    ClaimScope::Containment
                } else {
                    ClaimScope::Any
                };
                let owner = format!("{prefix}-{n}");
                tokio::spawn(worker_loop(inner.clone(), owner, scope, shutdown.clone()))
            })
            .collect();
        tracing::info!(workers = loops.len(), "remediation workers started");
        for handle in loops.into_iter().chain(sweepers) {
            let _ = handle.await;
        }
    }
}

async fn worker_loop(
    inner: Arc<Inner>,
    owner: String,
    scope: ClaimScope,
    shutdown: CancellationToken,
) {
    loop {
        // Registered before the claim, so a wake-up between the claim and the wait is not lost.
        let notified = inner.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if shutdown.is_cancelled() {
            return;
        }
        let claim = match inner.gate.check_appendable() {
            // Paused until a later check of the chain finds it intact.
            Err(_) => {
                tracing::debug!("the audit chain is broken: not claiming incidents");
                Ok(None)
            }
            Ok(()) => {
                inner
                    .store
                    .claim_next(&owner, scope, Utc::now(), inner.config.lease)
                    .await
            }
        };
        match claim {
            Ok(Some(claimed)) => {
                run_claimed(&inner, claimed).await;
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "cannot claim incidents"),
        }
        tokio::select! {
            () = &mut notified => {}
            () = tokio::time::sleep(inner.config.poll_interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
}

/// Runs the claimed work while a heartbeat keeps the lease; a lost lease stops it.
async fn run_claimed(inner: &Inner, claimed: Claimed) {
    let Claimed {
        incident,
        schedule,
        lease,
        work,
    } = claimed;
    let started = std::time::Instant::now();
    let work_done = async {
        match work {
            Work::Step(step) => run_step(inner, &incident, &schedule, &lease, step).await,
            Work::SettleAudit => {
                let settled = settle_audit(inner, &incident, &schedule, &lease).await;
                record::step_ran("audit_settle", started.elapsed());
                settled
            }
        }
    };
    tokio::select! {
        result = work_done => {
            match result {
            Ok(()) => tracing::debug!(incident.id = incident.id.0, ?work, duration_ms = started.elapsed().as_millis() as u64, "work done"),
            Err(StepError::Store(StoreError::LeaseLost(_))) => {
                tracing::warn!(incident.id = incident.id.0, "lease lost; another worker continues")
            }
            Err(err) => tracing::error!(incident.id = incident.id.0, error = %err, "cannot record the outcome; the lease will expire and the step run again"),
            }
        }
        lost = heartbeat(inner, &lease) => {
            tracing::warn!(incident.id = incident.id.0, error = %lost, "lease lost; step abandoned");
        }
    }
}

async fn heartbeat(inner: &Inner, lease: &Lease) -> StoreError {
    let every = inner.config.lease / 3;
    loop {
        tokio::time::sleep(every).await;
        let until = Utc::now() + chrono::Duration::from_std(inner.config.lease).unwrap_or_default();
        if let Err(err) = inner.store.extend_lease(lease, until).await {
            return err;
        }
    }
}

/// Runs the claimed step and, after triage, containment's act in the same claim.
async fn run_step(
    inner: &Inner,
    incident: &crate::domain::Incident,
    schedule: &Schedule,
    lease: &Lease,
    step: Step,
) -> Result<(), StepError> {
    let Some(account) = inner.accounts.route(incident.account_id.as_deref()) else {
        return stop_unknown_account(inner, incident, schedule, lease, step).await;
    };
    let work = &inner.work[account];
    let Some(next) = run_one(inner, work, incident, schedule, lease, step, None).await? else {
        return Ok(());
    };
    let carried = Some(next.carried);
    run_one(
        inner,
        work,
        &next.incident,
        &next.schedule,
        lease,
        next.step,
        carried,
    )
    .await
    .map(|_| ())
}

/// Runs one step; the step to run next in the same claim, if any.
async fn run_one(
    inner: &Inner,
    work: &AccountWork,
    incident: &crate::domain::Incident,
    schedule: &Schedule,
    lease: &Lease,
    step: Step,
    carried: Option<Carried>,
) -> Result<Option<Handover>, StepError> {
    let started = std::time::Instant::now();
    let mut ctx = StepContext::new(inner, work, incident, schedule, lease, step);
    if let Some(carried) = carried {
        ctx = ctx.carrying(carried);
    }
    let ran = decide(&mut ctx).await;
    record::step_ran(step.as_str(), started.elapsed());
    ran
}

async fn decide(ctx: &mut StepContext<'_>) -> Result<Option<Handover>, StepError> {
    let step = ctx.step;
    match approval::gate(ctx).await {
        Ok(Some(waiting)) => return finish(ctx, waiting).await,
        Ok(None) => {}
        Err(err) => return Err(err),
    }
    let result = match step {
        Step::Triage => triage::run(ctx).await,
        Step::DisableKey => contain::disable(ctx, Finding::DisableKey).await,
        Step::Revoke => contain::revoke(ctx).await,
        Step::EnforceMfa => mfa::run(ctx).await,
        Step::Audit => trail::first_pass(ctx).await,
        Step::Billing => billing::run(ctx).await,
        Step::Rotate => rotate::create_and_deliver(ctx).await,
        Step::AwaitingCutover => rotate::await_cutover(ctx).await,
        Step::DisableOldKey => contain::disable(ctx, Finding::DisableOldKey).await,
        Step::DeleteKey => retire::delete_key(ctx).await,
        Step::Reenable => retire::reenable(ctx).await,
        Step::Cancelling => retire::cancel(ctx).await,
        // Never claimed (it waits for a person); should a claim find it, look again later.
        Step::AwaitingOperator => Ok(StepResult::wait_until(
            Utc::now() + chrono::Duration::hours(1),
        )),
    };
    match result {
        Ok(outcome) => finish(ctx, outcome).await,
        Err(StepError::Store(err)) => Err(StepError::Store(err)),
        Err(StepError::Protected { target, why }) => {
            let named = identity::Named {
                refused_change_to: Some(target),
                ..identity::Named::default()
            };
            let stop = identity::stop(ctx, why, named);
            finish(ctx, stop).await
        }
        Err(err) => fail(ctx, err).await.map(|()| None),
    }
}

/// An incident of an account akguard does not know waits for a person, no call made: an
/// undo of one that never reached the cloud (no path yet) has nothing to put back.
async fn stop_unknown_account(
    inner: &Inner,
    incident: &crate::domain::Incident,
    schedule: &Schedule,
    lease: &Lease,
    step: Step,
) -> Result<(), StepError> {
    // The home account's state stands in: the context's client is never called here.
    let mut ctx = StepContext::new(inner, &inner.work[0], incident, schedule, lease, step);
    let outcome = match (step, incident.path) {
        (Step::Cancelling, None) => StepResult::default(),
        _ => {
            tracing::warn!(
                incident.id = incident.id.0,
                account = incident.account_id.as_deref().unwrap_or_default(),
                "the incident's account is not configured; no call made"
            );
            StepResult::halted(Reason::UnknownAccount(step))
        }
    };
    finish(&mut ctx, outcome).await.map(|_| ())
}

/// Applies a step's verdict: the transition, its findings and audit rows, in one transaction;
/// or, when containment's act follows in the same claim, hands them over to be written with
/// its first write.
async fn finish(
    ctx: &mut StepContext<'_>,
    outcome: StepResult,
) -> Result<Option<Handover>, StepError> {
    if let Some(at) = outcome.wait_until {
        // Waiting is not failing: the step's attempts are not spent.
        let update = IncidentUpdate {
            findings: outcome.findings,
            dry_run: Some(ctx.dry_run()),
            ..IncidentUpdate::default()
        };
        let schedule = ScheduleChange {
            next_attempt_at: Some(Some(at)),
            release: true,
            ..ScheduleChange::default()
        };
        let reads = ctx.take_reads();
        ctx.commit(update, schedule, reads).await?;
        // The work may have finished while this step looked: its wake-up then found the
        // incident still leased, so wake it now.
        let store = &ctx.inner.store;
        let woken = match outcome.parked_on {
            Some(Parked::MfaSweep(sweep)) => store.wake_mfa_waiters(sweep, Utc::now()).await?,
            Some(Parked::AuditBatch(batch)) => store.wake_audit_waiters(batch, Utc::now()).await?,
            None => 0,
        };
        if woken > 0 {
            ctx.inner.wake.notify_one();
        }
        return Ok(None);
    }
    let from = ctx.incident.state;
    let path = outcome.path.or(ctx.incident.path);
    let event = match (outcome.halted, ctx.step, path) {
        (Some(Reason::ApprovalTimedOut(_)), _, _) => Event::ApprovalExpired,
        (Some(reason), _, _) => Event::Halted(reason),
        (None, Step::Cancelling, _) => Event::Undone,
        (None, Step::Triage, Some(path)) => Event::Triaged(path),
        (None, _, Some(path)) => Event::StepDone(path),
        (None, _, None) => Event::Halted(Reason::StepFailed(ctx.step)),
    };
    let to = transition(from, event).unwrap_or_else(|illegal| {
        tracing::error!(incident.id = ctx.incident.id.0, error = %illegal, "a step asked for an impossible transition");
        IncidentState::NeedsAttention(Reason::StepFailed(ctx.step))
    });
    let now = Utc::now();
    let mut audit = ctx.take_reads();
    audit.push(ctx.transition_entry(
        from,
        to,
        json!({"event": format!("{event:?}"), "contained": outcome.contained}),
    ));
    let update = IncidentUpdate {
        state: Some(to),
        path: outcome.path,
        owner: outcome.owner,
        contained_at: outcome.contained.then_some(now),
        last_error: Some(None),
        findings: outcome.findings,
        dry_run: Some(ctx.dry_run()),
    };
    let schedule = ScheduleChange {
        settle_audit_at: outcome.settle_audit_at.map(Some),
        next_attempt_at: Some(None),
        step_attempts: Some(0),
        release: true,
    };
    if let Some(next) = handover::next_step(ctx.step, to) {
        if ctx.dry_run() {
            tracing::info!(incident.id = ctx.incident.id.0, from = %from, to = %to, dry_run = true,
                "transition in dry run, written with the next step's first record: the step's changes would be made, none was");
        } else {
            tracing::info!(incident.id = ctx.incident.id.0, from = %from, to = %to,
                "transition, written with the next step's first record");
        }
        let handover = Handover::new(
            next,
            ctx.incident,
            ctx.schedule,
            update,
            schedule,
            audit,
            outcome.keys,
        );
        return Ok(Some(handover));
    }
    ctx.commit(update, schedule, audit).await?;
    // Only the first containment is the incident's: a later step that verifies a key
    // disabled (after a cutover, say) does not contain it again.
    if outcome.contained && ctx.incident.contained_at.is_none() {
        let ms = (now - ctx.incident.created_at).num_milliseconds();
        record::contained(
            ctx.client.metrics_account(),
            Duration::from_millis(ms.max(0) as u64),
        );
        tracing::info!(
            incident.id = ctx.incident.id.0,
            time_to_containment_ms = ms,
            "contained"
        );
    }
    if ctx.dry_run() {
        tracing::info!(incident.id = ctx.incident.id.0, from = %from, to = %to, dry_run = true,
            "transition in dry run: the step's changes would be made, none was");
    } else {
        tracing::info!(incident.id = ctx.incident.id.0, from = %from, to = %to, "transition");
    }
    Ok(None)
}

/// A failed step: rescheduled while its failures are transient and attempts remain,
/// otherwise handed to a person with the error and its RequestId.
async fn fail(ctx: &mut StepContext<'_>, err: StepError) -> Result<(), StepError> {
    let attempts = ctx.schedule.step_attempts + 1;
    let transient = match &err {
        StepError::Cloud(cloud) => cloud.class() == ErrorClass::Retryable,
        StepError::Unverified(_) => true,
        StepError::Store(_) | StepError::Refused(_) | StepError::Protected { .. } => false,
    };
    let class = match &err {
        StepError::Cloud(cloud) => match cloud.class() {
            ErrorClass::Retryable => "retryable",
            ErrorClass::AlreadyDone | ErrorClass::Fatal => "fatal",
        },
        StepError::Unverified(_) => "unverified",
        StepError::Refused(_) => "refused",
        StepError::Store(_) => "store",
        StepError::Protected { .. } => "protected",
    };
    record::step_failed(ctx.client.metrics_account(), ctx.step.as_str(), class);
    let message = err.to_string();
    let mut audit = ctx.take_reads();
    if transient && attempts < ctx.inner.retry.max_attempts {
        let delay = ctx
            .inner
            .retry
            .delay(attempts, unit_sample(), retry_after(&err));
        let at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        tracing::warn!(incident.id = ctx.incident.id.0, step = ctx.step.as_str(), attempts, error = %message, "step failed; retry scheduled");
        audit.push(ctx.transition_entry(
            ctx.incident.state,
            ctx.incident.state,
            json!({"retry_at": at, "attempt": attempts, "error": message}),
        ));
        let update = IncidentUpdate {
            last_error: Some(Some(message)),
            dry_run: Some(ctx.dry_run()),
            ..IncidentUpdate::default()
        };
        let schedule = ScheduleChange {
            next_attempt_at: Some(Some(at)),
            step_attempts: Some(attempts),
            release: true,
            ..ScheduleChange::default()
        };
        return ctx.commit(update, schedule, audit).await;
    }
    let from = ctx.incident.state;
    let to = transition(from, Event::Halted(Reason::StepFailed(ctx.step)))
        .unwrap_or(IncidentState::NeedsAttention(Reason::StepFailed(ctx.step)));
    tracing::error!(incident.id = ctx.incident.id.0, step = ctx.step.as_str(), error = %message, "step failed for good; a person must act");
    audit.push(ctx.transition_entry(from, to, json!({"error": message, "attempts": attempts})));
    let update = IncidentUpdate {
        state: Some(to),
        last_error: Some(Some(message)),
        dry_run: Some(ctx.dry_run()),
        ..IncidentUpdate::default()
    };
    let schedule = ScheduleChange {
        next_attempt_at: Some(None),
        step_attempts: Some(0),
        release: true,
        ..ScheduleChange::default()
    };
    ctx.commit(update, schedule, audit).await
}

fn retry_after(err: &StepError) -> Option<Duration> {
    match err {
        StepError::Cloud(cloud) => cloud.retry_after(),
        _ => None,
    }
}

/// The second ActionTrail pass: merged into the findings; the state does not change.
async fn settle_audit(
    inner: &Inner,
    incident: &crate::domain::Incident,
    schedule: &Schedule,
    lease: &Lease,
) -> Result<(), StepError> {
    let Some(account) = inner.accounts.route(incident.account_id.as_deref()) else {
        // The account left the configuration after the first pass: nothing more to read.
        let schedule = ScheduleChange {
            settle_audit_at: Some(None),
            release: true,
            ..ScheduleChange::default()
        };
        let update = IncidentUpdate {
            last_error: Some(Some(
                "the incident's account is no longer configured".into(),
            )),
            ..IncidentUpdate::default()
        };
        return Ok(inner
            .store
            .record(lease, update, schedule, Vec::new())
            .await?);
    };
    let mut ctx = StepContext::new(
        inner,
        &inner.work[account],
        incident,
        schedule,
        lease,
        Step::Audit,
    );
    let (update, settle_at, mut audit) = match trail::settle_pass(&mut ctx).await {
        Ok((merged, findings)) => {
            let summary = merged.summary();
            let update = IncidentUpdate {
                findings,
                ..IncidentUpdate::default()
            };
            (
                update,
                None,
                vec![json!({"passes": merged.passes, "summary": summary})],
            )
        }
        Err(StepError::Store(err)) => return Err(StepError::Store(err)),
        Err(err) => {
            // ActionTrail is only reachable later: try the pass again after the settle delay.
            let at = Utc::now()
                + chrono::Duration::from_std(inner.config.settle_delay).unwrap_or_default();
            let update = IncidentUpdate {
                last_error: Some(Some(err.to_string())),
                ..IncidentUpdate::default()
            };
            (
                update,
                Some(at),
                vec![json!({"error": err.to_string(), "retry_at": at})],
            )
        }
    };
    let mut entries = ctx.take_reads();
    for detail in audit.drain(..) {
        entries.push(crate::domain::AuditEntry {
            incident_id: Some(incident.id),
            actor: format!("worker:{}", lease.owner),
            action: "audit.settle_pass".into(),
            detail,
        });
    }
    let schedule = ScheduleChange {
        settle_audit_at: Some(settle_at),
        release: true,
        ..ScheduleChange::default()
    };
    Ok(inner.store.record(lease, update, schedule, entries).await?)
}
