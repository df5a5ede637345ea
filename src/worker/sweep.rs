//! The account-wide MFA sweep, run by whichever replica holds its singleton job. Progress is
//! kept per user in the store, so a crash or a lost lease resumes where it stopped, a user
//! whose calls fail is retried alone with backoff, and no user's login profile is changed
//! twice in one sweep: the intent is durable before the call, and after a crash the login
//! profile is read back before anything is called again.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::{Inner, account_job};
use crate::cloud::retry::unit_sample;
use crate::cloud::{Called, CloudError, ErrorClass};
use crate::domain::AuditEntry;
use crate::singleton::{MFA_SWEEP, keep};
use crate::store::{
    Durability, JobLease, MfaSweep, StoreError, SweepState, SweepUser, SweepUserState,
};

#[derive(Debug, thiserror::Error)]
enum SweepError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a user's task ended abnormally: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Users settled at once. Their calls still queue for the client's rate limits (behind
/// containment's); this many keeps RAM's read quota busy at a few hundred milliseconds a
/// call (faults and the client's own retries included) without queueing a whole account
/// there.
const PARALLEL_USERS: usize = 16;

/// Runs account `n`'s sweeps whenever one is waiting and this replica can take the
/// account's job, until `shutdown`.
pub(super) async fn run(inner: Arc<Inner>, n: usize, shutdown: CancellationToken) {
    let account = inner.work[n].account.label();
    let failed = |err: SweepError| match err {
        SweepError::Store(StoreError::JobLost(_)) => tracing::warn!(
            account,
            "the MFA sweep's lease was lost; another replica continues"
        ),
        err => tracing::warn!(account, error = %err, "MFA sweep interrupted; will resume"),
    };
    let wake = &inner.work[n].sweep_wake;
    account_job::run(&inner, wake, shutdown, || sweep_once(&inner, n), failed).await;
}

/// Takes the job and drives the oldest unfinished sweep to its end; `false` when there was
/// nothing to do or another replica holds the job.
async fn sweep_once(inner: &Arc<Inner>, n: usize) -> Result<bool, SweepError> {
    let account = &inner.work[n].account;
    let Some(sweep) = inner.store.next_mfa_sweep(account.store_key()).await? else {
        return Ok(false);
    };
    let lease_for = inner.config.lease;
    let Some(lease) = inner
        .store
        .acquire_job(
            &account.scoped(MFA_SWEEP),
            &inner.replica,
            Utc::now(),
            lease_for,
        )
        .await?
    else {
        return Ok(false);
    };
    let result = tokio::select! {
        result = drive(inner, n, &lease, &sweep) => result,
        lost = keep(inner.store.as_ref(), &lease, lease_for) => Err(lost.into()),
    };
    if let Err(err) = inner.store.release_job(&lease).await {
        tracing::warn!(error = %err, "cannot release the MFA sweep's lease");
    }
    result.map(|()| true)
}

async fn drive(
    inner: &Arc<Inner>,
    n: usize,
    lease: &JobLease,
    sweep: &MfaSweep,
) -> Result<(), SweepError> {
    if sweep.state == SweepState::Queued {
        let users = inner.work[n].account.client.list_users().await?.value;
        let names: Vec<String> = users.into_iter().map(|u| u.user_name).collect();
        tracing::info!(
            sweep.id = sweep.id,
            users = names.len(),
            "MFA sweep started"
        );
        inner
            .store
            .start_mfa_sweep(lease, sweep.id, &names, Utc::now())
            .await?;
    }
    // A pipeline, not rounds: the next user starts as soon as any other is through, so a
    // slow user, or one waiting for its retry, holds back no one. Dropped with `drive` when
    // the lease is lost, which aborts the tasks.
    let mut tasks = JoinSet::new();
    let mut in_flight = HashSet::new();
    // Due users not started yet. The store is read again only once this runs dry, so a
    // large account is not read once per user.
    let mut due = VecDeque::new();
    let mut next_retry: Option<DateTime<Utc>> = None;
    loop {
        if due.is_empty() {
            let now = Utc::now();
            next_retry = None;
            for user in inner.store.mfa_sweep_users(sweep.id).await? {
                if !matches!(
                    user.state,
                    SweepUserState::Pending | SweepUserState::Applying
                ) || in_flight.contains(&user.user_name)
                {
                    continue;
                }
                if user.next_attempt_at <= now {
                    due.push_back(user);
                } else {
                    let at = user.next_attempt_at;
                    next_retry = Some(next_retry.map_or(at, |next| next.min(at)));
                }
            }
        }
        while tasks.len() < PARALLEL_USERS
            && let Some(user) = due.pop_front()
        {
            in_flight.insert(user.user_name.clone());
            let (inner, lease, id) = (inner.clone(), lease.clone(), sweep.id);
            tasks.spawn(async move {
                let name = user.user_name.clone();
                (name, settle_user(&inner, n, &lease, id, user).await)
            });
        }
        if tasks.is_empty() && next_retry.is_none() {
            // Nothing is open, unless a user joined since the last look.
            if inner
                .store
                .finish_mfa_sweep(lease, sweep.id, Utc::now())
                .await?
            {
                tracing::info!(sweep.id = sweep.id, "MFA sweep done");
                inner.wake.notify_waiters();
                return Ok(());
            }
            continue;
        }
        // With every slot taken only a user's end frees one; otherwise a retry coming due
        // (looked for at least once a poll interval) may start too.
        let retry_due = async {
            match next_retry {
                Some(at) if due.is_empty() => {
                    let wait = (at - Utc::now()).to_std().unwrap_or_default();
                    let poll = inner.config.poll_interval.max(Duration::from_millis(100));
                    tokio::time::sleep(wait.min(poll)).await;
                }
                _ => std::future::pending().await,
            }
        };
        tokio::select! {
            Some(ended) = tasks.join_next() => {
                let (name, settled) = ended?;
                in_flight.remove(&name);
                settled?;
            }
            () = retry_due => {}
        }
    }
}

/// Brings one user to what the sweep requires, recording every step; a cloud failure is
/// saved on the user's row (retried later, or given up) and does not stop the sweep.
async fn settle_user(
    inner: &Inner,
    n: usize,
    lease: &JobLease,
    sweep: i64,
    mut user: SweepUser,
) -> Result<(), SweepError> {
    let job = Sweeping {
        inner,
        lease,
        sweep,
    };
    let mut audit = Vec::new();
    if inner.protection.user(&user.user_name).is_some() {
        user.state = SweepUserState::Done;
        user.outcome = Some("protected".into());
        return job.save(&user, audit, Durability::Deferred).await;
    }
    match reconcile(inner, n, lease, sweep, &mut user, &mut audit).await {
        Ok(()) => Ok(()),
        Err(SweepError::Cloud(err)) => {
            user.attempts += 1;
            user.error = Some(err.to_string());
            let retryable = err.class() == ErrorClass::Retryable;
            if retryable && user.attempts < inner.retry.max_attempts {
                let delay = inner
                    .retry
                    .delay(user.attempts, unit_sample(), err.retry_after());
                user.next_attempt_at =
                    Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
                tracing::warn!(user = %user.user_name, attempts = user.attempts, error = %err,
                    "MFA sweep: a user's call failed; that user is retried alone");
            } else {
                user.state = SweepUserState::Failed;
                tracing::error!(user = %user.user_name, attempts = user.attempts, error = %err,
                    "MFA sweep: gave up on a user; the sweep goes on without it");
            }
            // Lost, the failed reads are only made again.
            job.save(&user, audit, Durability::Deferred).await
        }
        Err(err) => Err(err),
    }
}

async fn reconcile(
    inner: &Inner,
    n: usize,
    lease: &JobLease,
    sweep: i64,
    user: &mut SweepUser,
    audit: &mut Vec<AuditEntry>,
) -> Result<(), SweepError> {
    let job = Sweeping {
        inner,
        lease,
        sweep,
    };
    let name = user.user_name.clone();
    let client = inner.work[n].account.client.clone();
    let profile = read(
        inner,
        audit,
        "GetLoginProfile",
        &name,
        client.get_login_profile(&name),
    )
    .await?;
    let Some(profile) = profile else {
        user.state = SweepUserState::Done;
        user.outcome = Some("no_console".into());
        return job
            .save(user, std::mem::take(audit), Durability::Deferred)
            .await;
    };
    // A crash after the intent: the profile shows whether the call happened.
    if user.state == SweepUserState::Applying
        && (!user.want_mfa || profile.mfa_bind_required)
        && (!user.want_reset || profile.password_reset_required)
    {
        audit.push(entry(
            inner,
            "cloud.reconciled",
            json!({"api": "UpdateLoginProfile",
            "target": name, "sweep": sweep, "outcome": "applied"}),
        ));
        user.state = SweepUserState::Done;
        user.password_reset = user.reset_password;
        return job
            .save(user, std::mem::take(audit), Durability::Synced)
            .await;
    }
    let device = read(
        inner,
        audit,
        "GetUserMFAInfo",
        &name,
        client.get_user_mfa_info(&name),
    )
    .await?;
    let has_device = device.is_some();
    user.want_mfa = !has_device && !profile.mfa_bind_required;
    user.want_reset = user.reset_password && !profile.password_reset_required;
    user.outcome = Some(
        match (has_device, user.want_mfa) {
            (true, _) => "has_device",
            (false, true) => "mfa_now_required",
            (false, false) => "mfa_already_required",
        }
        .into(),
    );
    if !user.want_mfa && !user.want_reset {
        user.state = SweepUserState::Done;
        user.password_reset = user.reset_password;
        // Nothing was changed: lost, the user is only read again. Most users of a sweep end
        // here, and each synced commit would hold the write lock that containment waits for.
        return job
            .save(user, std::mem::take(audit), Durability::Deferred)
            .await;
    }
    // The intent is durable (and fenced by the job's lease) before the call.
    let token = format!("mfa_sweep:{sweep}:UpdateLoginProfile:{name}");
    let base = json!({"api": "UpdateLoginProfile", "target": name, "sweep": sweep,
        "idempotency_token": token, "mfa_bind_required": user.want_mfa,
        "password_reset_required": user.want_reset});
    let dry_run = inner.config.dry_run;
    let intent = if dry_run {
        "cloud.dry_run"
    } else {
        "cloud.intent"
    };
    audit.push(entry(inner, intent, base.clone()));
    user.state = SweepUserState::Applying;
    job.save(user, std::mem::take(audit), Durability::Synced)
        .await?;
    if !dry_run {
        let called = client
            .update_login_profile(
                &name,
                user.want_mfa.then_some(true),
                user.want_reset.then_some(true),
            )
            .await;
        #[cfg(feature = "fault-injection")]
        if called.is_ok() {
            inner.crash_point("UpdateLoginProfile");
        }
        let mut detail = base;
        match &called {
            Ok(done) => {
                detail["request_id"] = json!(done.request_id);
                detail["outcome"] = json!("applied");
            }
            Err(err) => {
                detail["request_id"] = json!(err.request_id());
                detail["outcome"] = json!(err.code().unwrap_or("error"));
                detail["may_have_acted"] = json!(err.may_have_acted());
            }
        }
        audit.push(entry(inner, "cloud.call", detail));
        if let Err(err) = called {
            // The row stays `applying`: the next try reads the profile back first.
            job.save(user, std::mem::take(audit), Durability::Synced)
                .await?;
            return Err(err.into());
        }
    }
    user.state = SweepUserState::Done;
    user.password_reset = user.reset_password;
    user.error = None;
    job.save(user, std::mem::take(audit), Durability::Synced)
        .await
}

/// One sweep as a user's task sees it: where the user's progress goes.
struct Sweeping<'a> {
    inner: &'a Inner,
    lease: &'a JobLease,
    sweep: i64,
}

impl Sweeping<'_> {
    async fn save(
        &self,
        user: &SweepUser,
        audit: Vec<AuditEntry>,
        durability: Durability,
    ) -> Result<(), SweepError> {
        let (store, now) = (&self.inner.store, Utc::now());
        Ok(store
            .save_sweep_user(self.lease, self.sweep, user, audit, now, durability)
            .await?)
    }
}

/// Makes a read call and notes it for the user's next saved row.
async fn read<T>(
    inner: &Inner,
    audit: &mut Vec<AuditEntry>,
    action: &str,
    target: &str,
    call: impl std::future::Future<Output = Result<Called<T>, CloudError>>,
) -> Result<T, CloudError> {
    let result = call.await;
    let (request_id, outcome) = match &result {
        Ok(called) => (Some(called.request_id.clone()), "ok".to_owned()),
        Err(err) => (
            err.request_id().map(str::to_owned),
            err.code().unwrap_or("error").to_owned(),
        ),
    };
    audit.push(entry(
        inner,
        "cloud.read",
        json!({"step": MFA_SWEEP, "api": action,
        "target": target, "request_id": request_id, "outcome": outcome}),
    ));
    Ok(result?.value)
}

fn entry(inner: &Inner, action: &str, mut detail: Value) -> AuditEntry {
    detail["step"] = json!(MFA_SWEEP);
    AuditEntry {
        incident_id: None,
        actor: format!("job:{MFA_SWEEP}:{}", inner.replica),
        action: action.to_owned(),
        detail,
    }
}

/// When an incident parked on a sweep looks again by itself, should its wake-up be lost.
pub(super) const PARK_RECHECK: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// The time a parked incident is due again.
pub(super) fn parked_until(now: DateTime<Utc>) -> DateTime<Utc> {
    now + PARK_RECHECK
}
