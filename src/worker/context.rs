//! What a step works with: the incident, its lease, the cloud client, and the rules for
//! recording calls. A mutating call's intent is durable before it runs; its result is
//! durable with the next write (the next intent, or the step's outcome), so the read that
//! verifies a change does not wait on a commit. A crash at any point leaves a trail the
//! retried step can reconcile with: one that loses a result loses it just as a crash right
//! after the call would. Calls may run at once (the Deny policy beside the network fence):
//! the context is shared, and its writes take turns so rows keep the order they were noted.

use std::future::Future;
use std::sync::{Arc, Mutex};

use futures_util::future::{self, Either};
use serde_json::{Value, json};
use tokio::sync::watch;

use super::handover::Carried;
use super::{AccountWork, Inner};
use crate::cloud::api::{AccessKeyInfo, Effect};
use crate::cloud::client::held_until;
use crate::cloud::{Called, CloudClient, CloudError};
use crate::domain::undo::Change;
use crate::domain::{
    AuditEntry, Finding, FindingsPatch, Incident, IncidentState, Path, Reason, Schedule, Step,
};
use crate::store::{IncidentUpdate, Lease, ScheduleChange, StoreError};

/// Why a step stopped before it was done.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The change was made but reading it back did not show it yet.
    #[error("not verified: {0}")]
    Unverified(String),
    /// akguard's own rules forbid the change (a sink outside the allowlist).
    #[error("refused: {0}")]
    Refused(String),
    /// A change to a protected identity was refused before it was attempted.
    #[error("refused to change {target}: it is a protected identity")]
    Protected {
        target: String,
        why: crate::domain::Protected,
    },
}

/// A step's verdict, applied by the worker in one transaction.
#[derive(Debug, Default)]
pub(super) struct StepResult {
    pub halted: Option<Reason>,
    pub path: Option<Path>,
    pub owner: Option<(crate::domain::OwnerType, Option<String>)>,
    pub findings: FindingsPatch,
    pub contained: bool,
    pub settle_audit_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Not done yet: run the step again at this time (a wait, not a failure).
    pub wait_until: Option<chrono::DateTime<chrono::Utc>>,
    /// Waiting for account-wide work, which wakes the incident when it is done.
    pub parked_on: Option<Parked>,
    /// The owner's key list, when triage read it beside the owner (the report named the
    /// user): the act that follows in the same claim starts from it instead of reading it.
    pub keys: Option<OwnKeys>,
}

/// A user's key list as read, with the user it is of.
#[derive(Debug, Clone)]
pub(super) struct OwnKeys {
    pub user: String,
    pub keys: Vec<AccessKeyInfo>,
}

/// The account-wide work an incident is parked on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Parked {
    MfaSweep(i64),
    AuditBatch(i64),
}

impl StepResult {
    pub fn finding(mut self, finding: Finding) -> Self {
        self.findings.push(finding);
        self
    }

    pub fn wait_until(at: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            wait_until: Some(at),
            ..Self::default()
        }
    }

    /// Waits for account-wide work, looking again by itself at `until` at the latest.
    pub fn parked(on: Parked, until: chrono::DateTime<chrono::Utc>) -> Self {
        Self {
            wait_until: Some(until),
            parked_on: Some(on),
            ..Self::default()
        }
    }

    pub fn halted(reason: Reason) -> Self {
        Self {
            halted: Some(reason),
            ..Self::default()
        }
    }
}

pub(super) struct StepContext<'a> {
    pub inner: &'a Inner,
    /// The incident's account: its Deny-policy check and sweep.
    pub work: &'a AccountWork,
    /// The account's client, acting in the incident's own role session (`akguard-<id>`).
    pub client: Arc<CloudClient>,
    pub incident: &'a Incident,
    pub schedule: &'a Schedule,
    pub lease: &'a Lease,
    pub step: Step,
    /// Read calls, and the results of mutating calls, written with the next intent or the
    /// step's outcome: reads change nothing, and a lost result is reconciled.
    reads: Mutex<Vec<AuditEntry>>,
    /// The step before's outcome, not yet committed: it goes with this step's first write.
    carried: Mutex<Option<Carried>>,
    /// Held while a write is committed, so two calls made at once write in turn.
    writing: tokio::sync::Mutex<()>,
    /// The owner's key list triage read, until the first read of it here takes its place.
    listed: Mutex<Option<OwnKeys>>,
}

impl<'a> StepContext<'a> {
    pub fn new(
        inner: &'a Inner,
        work: &'a AccountWork,
        incident: &'a Incident,
        schedule: &'a Schedule,
        lease: &'a Lease,
        step: Step,
    ) -> Self {
        let session = format!("akguard-{}", incident.id.0);
        Self {
            inner,
            work,
            client: Arc::new(work.account.client.in_session(session)),
            incident,
            schedule,
            lease,
            step,
            reads: Mutex::new(Vec::new()),
            carried: Mutex::new(None),
            writing: tokio::sync::Mutex::new(()),
            listed: Mutex::new(None),
        }
    }

    /// Continues from the step before without a commit between: its outcome is written with
    /// this step's first write (see `handover`).
    pub fn carrying(self, mut carried: Carried) -> Self {
        *lock(&self.listed) = carried.keys.take();
        *lock(&self.carried) = Some(carried);
        self
    }

    /// `user`'s key list as triage read it, once: a later read (the verify after a change)
    /// asks the cloud again.
    pub fn listed_keys(&self, user: &str) -> Option<Vec<AccessKeyInfo>> {
        let mut listed = lock(&self.listed);
        match listed.take() {
            Some(own) if own.user == user => Some(own.keys),
            _ => None,
        }
    }

    pub fn dry_run(&self) -> bool {
        self.inner.config.dry_run
    }

    /// The RAM user triage proved owns the key.
    pub fn user(&self) -> Result<&str, StepError> {
        self.incident
            .user_name
            .as_deref()
            .ok_or_else(|| StepError::Unverified("the incident names no RAM user".into()))
    }

    /// Notes an audit row written with the step's outcome (like a read, it records no effect).
    pub fn note_row(&self, action: &str, detail: Value) {
        let entry = self.entry(action, detail);
        lock(&self.reads).push(entry);
    }

    pub fn take_reads(&self) -> Vec<AuditEntry> {
        std::mem::take(&mut *lock(&self.reads))
    }

    fn entry(&self, action: &str, detail: Value) -> AuditEntry {
        AuditEntry {
            incident_id: Some(self.incident.id),
            actor: format!("worker:{}", self.lease.owner),
            action: action.to_owned(),
            detail,
        }
    }

    /// Makes a read call and notes it for the audit log.
    pub async fn read<T>(
        &self,
        action: &str,
        target: &str,
        call: impl Future<Output = Result<Called<T>, CloudError>>,
    ) -> Result<T, StepError> {
        let result = call.await;
        self.note(action, target, result)
    }

    /// Notes a read already made (one of several run at once) for the audit log.
    pub fn note<T>(
        &self,
        action: &str,
        target: &str,
        result: Result<Called<T>, CloudError>,
    ) -> Result<T, StepError> {
        let (request_id, outcome) = match &result {
            Ok(called) => (Some(called.request_id.clone()), "ok".to_owned()),
            Err(err) => (
                err.request_id().map(str::to_owned),
                err.code().unwrap_or("error").to_owned(),
            ),
        };
        let detail = json!({"step": self.step.as_str(), "api": action, "target": target,
            "request_id": request_id, "outcome": outcome});
        lock(&self.reads).push(self.entry("cloud.read", detail));
        Ok(result?.value)
    }

    /// Makes a mutating call: its intent is durable before the call and its result after.
    /// In dry-run mode only the intent is recorded and `None` is returned.
    pub async fn mutate<F, Fut>(
        &self,
        action: &str,
        target: &str,
        call: F,
    ) -> Result<Option<Effect>, StepError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Called<Effect>, CloudError>>,
    {
        self.recorded_call(action, target, None, call).await
    }

    /// `mutate` for a change a cancel can undo: the change is recorded with the call, so
    /// the cancel knows from the result alone what was applied.
    pub async fn apply<F, Fut>(&self, change: Change, call: F) -> Result<Option<Effect>, StepError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Called<Effect>, CloudError>>,
    {
        let target = change.target().to_owned();
        self.recorded_call(change.api(), &target, Some(change), call)
            .await
    }

    async fn recorded_call<F, Fut>(
        &self,
        action: &str,
        target: &str,
        change: Option<Change>,
        call: F,
    ) -> Result<Option<Effect>, StepError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Called<Effect>, CloudError>>,
    {
        super::identity::guard(self, target)?;
        let token = self.idempotency_token(action, target);
        let mut base = json!({"step": self.step.as_str(), "api": action, "target": target, "idempotency_token": token});
        if let Some(change) = &change {
            base["change"] = json!(change);
        }
        let intent = if self.dry_run() {
            "cloud.dry_run"
        } else {
            "cloud.intent"
        };
        if self.dry_run() {
            self.write(vec![self.entry(intent, base.clone())]).await?;
            tracing::info!(
                incident.id = self.incident.id.0,
                step = self.step.as_str(),
                api = action,
                "dry run: would call {action}; nothing was changed"
            );
            return Ok(None);
        }
        // The call waits for its rate-limit slot while the intent is committed, and is sent
        // only once the intent is durable.
        let (open, gate) = watch::channel(false);
        let write = std::pin::pin!(self.write(vec![self.entry(intent, base.clone())]));
        let call = std::pin::pin!(held_until(gate, call()));
        let result = match future::select(write, call).await {
            Either::Left((written, call)) => {
                written?;
                open.send_replace(true);
                call.await
            }
            // Not before the gate opens, above; should it, the intent is still awaited first.
            Either::Right((result, write)) => {
                write.await?;
                result
            }
        };
        #[cfg(feature = "fault-injection")]
        if result.is_ok() {
            self.crash_point(action);
        }
        let mut detail = base;
        match &result {
            Ok(called) => {
                detail["request_id"] = json!(called.request_id);
                detail["outcome"] = json!(match called.value {
                    Effect::Applied => "applied",
                    Effect::AlreadyDone => "already_done",
                });
            }
            Err(err) => {
                detail["request_id"] = json!(err.request_id());
                detail["outcome"] = json!(err.code().unwrap_or("error"));
                detail["may_have_acted"] = json!(err.may_have_acted());
            }
        }
        let entry = self.entry("cloud.call", detail);
        lock(&self.reads).push(entry);
        Ok(Some(result?.value))
    }

    /// Records that reading the cloud showed `change` in effect although its call's result was
    /// never recorded (the process stopped between the two): the change is settled without
    /// making it a second time, and a cancel can undo it.
    pub async fn reconciled(&self, change: Change) -> Result<(), StepError> {
        let action = change.api();
        let target = change.target().to_owned();
        let token = self.idempotency_token(action, &target);
        let detail = json!({"step": self.step.as_str(), "api": action, "target": target,
            "idempotency_token": token, "change": change, "outcome": "applied"});
        self.write(vec![self.entry("cloud.reconciled", detail)])
            .await
    }

    /// Names one change of one step of the incident: the intent, its result and a
    /// reconciliation of it carry the same token.
    fn idempotency_token(&self, action: &str, target: &str) -> String {
        format!(
            "{}:{}:{action}:{target}",
            self.incident.id,
            self.step.as_str()
        )
    }

    /// Test hook: dies between a successful effect and its record, the worst moment.
    #[cfg(feature = "fault-injection")]
    pub fn crash_point(&self, effect: &str) {
        self.inner.crash_point(effect);
    }

    /// Appends audit rows under the lease, after the reads and results noted so far (and the
    /// step before's outcome, if it is still to be written); a lost lease stops the step.
    /// What follows waits for it (a call for its intent), so it goes before other writes
    /// waiting for the database.
    pub async fn write(&self, audit: Vec<AuditEntry>) -> Result<(), StepError> {
        let _turn = self.writing.lock().await;
        let carried = lock(&self.carried).take();
        let (update, schedule, mut rows) = match carried {
            Some(carried) => carried.into_parts(),
            None => Default::default(),
        };
        rows.extend(self.take_reads());
        rows.extend(audit);
        self.inner
            .store
            .record_before_call(self.lease, update, schedule, rows)
            .await
            .map_err(StepError::from)
    }

    /// Commits a step's outcome (or part of it) with `audit`. The step before's outcome, if it
    /// is still to be written, goes in the same commit, or just before it when both change
    /// the state (each transition then has its own commit, and its own notices).
    pub async fn commit(
        &self,
        update: IncidentUpdate,
        schedule: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StepError> {
        let _turn = self.writing.lock().await;
        let carried = lock(&self.carried).take();
        let store = &self.inner.store;
        let (update, schedule, rows) = match carried {
            None => (update, schedule, audit),
            Some(carried) if update.state.is_some() => {
                let (before, kept, rows) = carried.into_parts();
                store.record(self.lease, before, kept, rows).await?;
                (update, schedule, audit)
            }
            Some(carried) => carried.merged(update, schedule, audit),
        };
        Ok(store.record(self.lease, update, schedule, rows).await?)
    }

    /// An audit row for a transition, with the step's reads.
    pub fn transition_entry(
        &self,
        from: IncidentState,
        to: IncidentState,
        detail: Value,
    ) -> AuditEntry {
        self.entry(
            "incident.transition",
            json!({"from": from.as_str(), "to": to.as_str(), "step": self.step.as_str(), "detail": detail}),
        )
    }
}

/// Wraps a call whose success has no effect value as `Applied`.
pub(super) async fn applied<T>(
    call: impl Future<Output = Result<Called<T>, CloudError>>,
) -> Result<Called<Effect>, CloudError> {
    Ok(call.await?.map(|_| Effect::Applied))
}

/// The lock of a value no holder can leave half-changed (each holds it for one push or take).
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}
