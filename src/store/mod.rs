//! The only module with SQL: the `Store` trait and its one implementation, on SQLite or
//! PostgreSQL.

mod audit;
mod audit_log;
mod backend;
mod batch;
mod checkpoint;
#[cfg(test)]
mod contract;
mod database;
mod deliveries;
mod fence;
mod jobs;
mod outbox;
mod outbox_queue;
mod parked;
mod rate_slots;
mod rows;
mod sessions;
mod sql;
mod sweeps;
mod tally;
mod trail_batches;
mod turns;
mod work;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::audit::AuditHead;
use crate::domain::notice::Route;
use crate::domain::{
    AuditEntry, AuditRecord, Event, FindingsPatch, IllegalTransition, Incident, IncidentId,
    IncidentState, OwnerType, Path, Schedule, Sighting, Signal, Step,
};

pub use audit::{AuditGate, verify_audit_chain};
use backend::Creation;
pub use database::SqlStore;
pub use jobs::{JobHolder, JobLease, Replica};
pub use outbox::{DeliveryRecord, OutboxItem, OutboxState, OutboxVerdict};
pub use rate_slots::{SlotOutcome, SlotTake};
pub use sessions::ConsoleSession;
pub use sweeps::{MfaSweep, SweepState, SweepUser, SweepUserState};
pub use tally::Tally;
pub use trail_batches::{AuditBatch, BatchAnswer, BatchMember, BatchSeat};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("cannot prepare the database file or its directory: {0}")]
    Io(#[from] std::io::Error),
    #[error("no database at {}: check database.url", .0.display())]
    Missing(std::path::PathBuf),
    #[error("unsupported database URL: {0}")]
    UnsupportedUrl(String),
    #[error("stored row is not valid: {0}")]
    Corrupt(String),
    /// Another worker took the incident over: stop without further effects.
    #[error("the lease on incident {0} was lost")]
    LeaseLost(IncidentId),
    /// Another replica took the singleton job over: stop without further effects.
    #[error("the lease on the singleton job {0} was lost")]
    JobLost(String),
    #[error("the audit anchor is missing; nothing can be appended to the audit log")]
    AuditAnchorMissing,
    /// Appending now would extend a chain that does not verify, covering the damage.
    #[error("the audit chain is broken ({0}); akguard records nothing until it is restored")]
    AuditChainBroken(String),
}

/// An authenticated, parsed notification on its way into the store.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The configured source name (`generic`, `manual`, ...).
    pub source: String,
    pub format: &'static str,
    /// Unique per source: the event id, or the body hash when the sender gives none.
    pub delivery_id: String,
    pub received_at: DateTime<Utc>,
    pub body_sha256: String,
    /// Who delivered it, for the audit log (`source:generic`, `operator:alice`).
    pub actor: String,
    pub signal: Signal,
    /// For a key created by another incident's key: that incident.
    pub parent: Option<IncidentId>,
}

/// What recording a delivery did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntakeOutcome {
    /// A new incident was opened.
    Created(IncidentId),
    /// The key already has an open incident; this report was added to it.
    Sighting(IncidentId),
    /// Added to the open incident like a sighting, and, being detected later than the time
    /// the incident was judged unused on, sent the incident back to triage.
    Retriaged(IncidentId),
    /// This exact delivery was recorded before; nothing changed.
    Replay(IncidentId),
    /// Activity of a key with no open incident: not ours to keep.
    Ignored,
}

impl IntakeOutcome {
    pub fn incident_id(self) -> Option<IncidentId> {
        match self {
            Self::Created(id) | Self::Sighting(id) | Self::Retriaged(id) | Self::Replay(id) => {
                Some(id)
            }
            Self::Ignored => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created(_) => "created",
            Self::Sighting(_) => "sighting",
            Self::Retriaged(_) => "retriaged",
            Self::Replay(_) => "replay",
            Self::Ignored => "ignored",
        }
    }
}

/// Filters for listing incidents, newest first.
#[derive(Debug, Clone, Default)]
pub struct IncidentFilter {
    /// A stored state name (`new`, `revoke`, `needs_attention`, ...).
    pub state: Option<String>,
    pub access_key_id: Option<String>,
    /// Only incidents waiting for a person (`?waiting=approval|operator`).
    pub waiting: Option<Waiting>,
    /// Only incidents with a smaller id (the cursor of the previous page).
    pub before: Option<IncidentId>,
    pub limit: u32,
}

/// What a listed incident waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Waiting {
    /// An operator's approval of the current step, or one that timed out.
    Approval,
    /// An operator's action: `awaiting_operator`, or `needs_attention` for any reason but a
    /// timed-out approval.
    Operator,
}

/// When a write must be on disk. A power loss (not a crash of the process) can undo a
/// `Deferred` write, but only with every write after it: the next `Synced` commit syncs the
/// log with all that came before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// On disk before the write returns: something later depends on it (an intent before
    /// its call), or it records a change made in the cloud.
    Synced,
    /// For progress that is only done again if lost (what a read found): written without
    /// waiting for the disk, so the write lock is held for less.
    Deferred,
}

/// A worker's hold on one incident. Every write under it is fenced on owner and attempt,
/// so a worker whose lease was taken over cannot change anything.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lease {
    pub incident: IncidentId,
    pub owner: String,
    pub attempt: i64,
}

/// What a claimed incident needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    Step(Step),
    /// The second ActionTrail pass, once ActionTrail has caught up.
    SettleAudit,
}

/// Which work a worker takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClaimScope {
    /// Only steps on the way to containment, so a backlog of forensics never delays them.
    Containment,
    Any,
}

#[derive(Debug, Clone)]
pub struct Claimed {
    pub incident: Incident,
    pub schedule: Schedule,
    pub lease: Lease,
    pub work: Work,
}

/// An incident as read back: its record and, beside it, its schedule.
#[derive(Debug, Clone)]
pub struct Scheduled {
    pub incident: Incident,
    pub schedule: Schedule,
}

/// Changes a worker makes to its incident; `None` leaves a field as it is.
#[derive(Debug, Clone, Default)]
pub struct IncidentUpdate {
    pub state: Option<IncidentState>,
    pub path: Option<Path>,
    /// The owner triage proved, replacing what the notification claimed.
    pub owner: Option<(OwnerType, Option<String>)>,
    pub contained_at: Option<DateTime<Utc>>,
    pub last_error: Option<Option<String>>,
    /// Records replacing the findings' records for their steps.
    pub findings: FindingsPatch,
    /// The step ran in dry run (or not).
    pub dry_run: Option<bool>,
}

/// Changes a worker makes to when and by whom its incident's work runs next; `None` leaves
/// a field as it is.
#[derive(Debug, Clone, Default)]
pub struct ScheduleChange {
    pub next_attempt_at: Option<Option<DateTime<Utc>>>,
    pub settle_audit_at: Option<Option<DateTime<Utc>>>,
    /// Failed tries of the current step.
    pub step_attempts: Option<u32>,
    /// Gives the lease up (the step is over for now).
    pub release: bool,
}

/// What an operator's event changes besides the state.
#[derive(Debug, Clone, Default)]
pub struct OperatorChange {
    /// Why, in the operator's words or the request's, for the audit log.
    pub note: serde_json::Value,
    pub path: Option<Path>,
    /// Records replacing the findings' (e.g. the sink set by `set-rotation`).
    pub findings: FindingsPatch,
}

/// Why an operator's event was not applied.
#[derive(Debug, thiserror::Error)]
pub enum OperatorError {
    #[error("no incident {0}")]
    NotFound(IncidentId),
    #[error(transparent)]
    Illegal(#[from] IllegalTransition),
    #[error("a worker is running a step of incident {0}; try again in a moment")]
    Busy(IncidentId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Everything akguard keeps. Callers never see SQL.
#[async_trait]
pub trait Store: Send + Sync {
    /// `sqlite` or `postgres`, as the status API shows it.
    fn backend(&self) -> &'static str;
    async fn migrate(&self) -> Result<(), StoreError>;
    async fn ping(&self) -> Result<(), StoreError>;
    /// How many batches `record_deliveries` can usefully record at once: 1 where the
    /// database has one writer (SQLite).
    fn intake_writers(&self) -> usize;
    /// Records a batch in one durable transaction, in order; returns one outcome per delivery.
    /// Batches recorded at once are ordered by their locks: two that share an AccessKey id
    /// or a delivery id are recorded one after the other.
    async fn record_deliveries(&self, batch: &[Delivery])
    -> Result<Vec<IntakeOutcome>, StoreError>;
    async fn list_incidents(&self, filter: &IncidentFilter) -> Result<Vec<Scheduled>, StoreError>;
    async fn get_incident(&self, id: IncidentId) -> Result<Option<Scheduled>, StoreError>;
    /// The incidents of `ids` that exist, in one read (a digest's incidents).
    async fn get_incidents(&self, ids: &[IncidentId]) -> Result<Vec<Scheduled>, StoreError>;
    async fn list_sightings(&self, id: IncidentId) -> Result<Vec<Sighting>, StoreError>;
    async fn incident_audit(&self, id: IncidentId) -> Result<Vec<AuditRecord>, StoreError>;
    /// Audit rows with an id above `after`, in id order.
    async fn audit_page(&self, after: i64, limit: u32) -> Result<Vec<AuditRecord>, StoreError>;
    /// The audit chain's anchor, moved with every append; `None` if it is gone.
    async fn audit_head(&self) -> Result<Option<AuditHead>, StoreError>;
    /// The names of append-only triggers on the audit log and its anchor that are missing.
    async fn missing_audit_guards(&self) -> Result<Vec<String>, StoreError>;
    /// The delivery ids of `id`'s notifications from `source` (e.g. Security Center records).
    async fn delivery_ids(&self, id: IncidentId, source: &str) -> Result<Vec<String>, StoreError>;
    /// A named mark kept across restarts: where a poller got to, when a sweep last ran.
    async fn mark(&self, name: &str) -> Result<Option<String>, StoreError>;
    async fn set_mark(&self, name: &str, value: &str) -> Result<(), StoreError>;
    /// Leases the most urgent incident with work to do, if any: containment steps first,
    /// then the most overdue.
    async fn claim_next(
        &self,
        owner: &str,
        scope: ClaimScope,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
    ) -> Result<Option<Claimed>, StoreError>;
    async fn extend_lease(&self, lease: &Lease, until: DateTime<Utc>) -> Result<(), StoreError>;
    /// Applies `update` and `schedule` and appends `audit` in one transaction, fenced by the
    /// lease.
    async fn record(
        &self,
        lease: &Lease,
        update: IncidentUpdate,
        schedule: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError>;
    /// `record` for a write a cloud call is held for (its intent): it is committed before
    /// the other writes waiting for the database, so the call waits for no commit but its own.
    async fn record_before_call(
        &self,
        lease: &Lease,
        update: IncidentUpdate,
        schedule: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> Result<(), StoreError>;
    /// Applies an operator's event through the state machine, with its audit row. It takes
    /// the incident through the workers' fence: refused while a lease is live, and once
    /// applied, the lease is cleared and the attempt moved on, so a worker whose lease had
    /// lapsed can no longer write.
    async fn apply_operator_event(
        &self,
        id: IncidentId,
        event: Event,
        actor: &str,
        change: OperatorChange,
    ) -> Result<IncidentState, OperatorError>;
    /// Leases up to `limit` notifications that are due to `owner`.
    async fn claim_outbox(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
        limit: u32,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// Records a delivery's verdict under the item's lease; `false` when the lease was lost.
    async fn settle_outbox(
        &self,
        item: &OutboxItem,
        verdict: &OutboxVerdict,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Records several verdicts, each under its item's lease; `false` for each lease lost.
    /// A backend that can does it in one transaction, so a batch of sends costs one commit.
    async fn settle_outbox_all(
        &self,
        settled: &[(OutboxItem, OutboxVerdict)],
        now: DateTime<Utc>,
    ) -> Result<Vec<bool>, StoreError> {
        let mut kept = Vec::with_capacity(settled.len());
        for (item, verdict) in settled {
            kept.push(self.settle_outbox(item, verdict, now).await?);
        }
        Ok(kept)
    }
    /// An incident's notifications and how their delivery stands.
    async fn incident_outbox(&self, id: IncidentId) -> Result<Vec<OutboxState>, StoreError>;
    /// Settled delivery attempts with an id above `after`, in id order.
    async fn delivery_page(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<DeliveryRecord>, StoreError>;
    /// The last settled delivery attempt's id, 0 when there is none.
    async fn last_delivery(&self) -> Result<i64, StoreError>;
    /// Changes whenever this process commits audit rows or delivery verdicts; writes by
    /// other processes are seen only by reading (the event stream also polls).
    fn commits(&self) -> tokio::sync::watch::Receiver<u64>;
    /// Incidents per state and pending notifications per channel, for `/metrics`.
    async fn tally(&self) -> Result<Tally, StoreError>;
    /// Keeps a new console session, purging expired ones (and the oldest beyond a cap).
    async fn open_session(
        &self,
        session: &ConsoleSession,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The console session whose secret has this digest, unless it has expired by `now`.
    async fn find_session(
        &self,
        secret_sha256: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<ConsoleSession>, StoreError>;
    /// Ends a console session on every replica.
    async fn close_session(&self, secret_sha256: &str) -> Result<(), StoreError>;
    /// Takes the singleton job `name` for `holder`, or extends the holder's lease; `None`
    /// while another holder's lease runs. A new holder gets a larger fencing token.
    async fn acquire_job(
        &self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
    ) -> Result<Option<JobLease>, StoreError>;
    /// Extends a held job lease; `JobLost` once another holder has it.
    async fn renew_job(
        &self,
        lease: &JobLease,
        now: DateTime<Utc>,
        lease_for: std::time::Duration,
    ) -> Result<(), StoreError>;
    /// Gives a job up so another replica may take it at once.
    async fn release_job(&self, lease: &JobLease) -> Result<(), StoreError>;
    /// The singleton jobs held at `now` and by whom.
    async fn job_holders(&self, now: DateTime<Utc>) -> Result<Vec<JobHolder>, StoreError>;
    /// Registers a replica or records its heartbeat.
    async fn record_replica(&self, replica: &Replica) -> Result<(), StoreError>;
    /// Forgets a replica that stops (it is no longer live).
    async fn remove_replica(&self, id: &str) -> Result<(), StoreError>;
    /// The replicas heard from at or after `since`.
    async fn replicas_since(&self, since: DateTime<Utc>) -> Result<Vec<Replica>, StoreError>;
    /// Parks the incident on an MFA sweep of `account` (its store key: `''` for the home
    /// account) that covers it (see `sweeps::join`); asking again returns the same sweep.
    async fn join_mfa_sweep(
        &self,
        account: &str,
        incident: IncidentId,
        opened_at: DateTime<Utc>,
        user: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<MfaSweep, StoreError>;
    /// The oldest MFA sweep of `account` not yet done.
    async fn next_mfa_sweep(&self, account: &str) -> Result<Option<MfaSweep>, StoreError>;
    /// The MFA sweep an incident joined.
    async fn mfa_sweep_of(&self, incident: IncidentId) -> Result<Option<MfaSweep>, StoreError>;
    /// Each user's progress in a sweep.
    async fn mfa_sweep_users(&self, sweep: i64) -> Result<Vec<SweepUser>, StoreError>;
    /// Starts a queued sweep over `users`, under the job's lease.
    async fn start_mfa_sweep(
        &self,
        lease: &JobLease,
        sweep: i64,
        users: &[String],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Saves one user's progress and its audit rows, under the job's lease.
    async fn save_sweep_user(
        &self,
        lease: &JobLease,
        sweep: i64,
        user: &SweepUser,
        audit: Vec<AuditEntry>,
        now: DateTime<Utc>,
        durability: Durability,
    ) -> Result<(), StoreError>;
    /// Ends the sweep if no user is left and wakes its parked incidents; `false` otherwise.
    async fn finish_mfa_sweep(
        &self,
        lease: &JobLease,
        sweep: i64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Wakes the incidents parked on a done sweep (for one that parked as it finished).
    async fn wake_mfa_waiters(&self, sweep: i64, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Seats the incident in the queued ActionTrail audit batch of `account` (its store key),
    /// to be answered for `access_key_id` from `window_start`; asking again returns the same
    /// seat, with the answer once the batch is done.
    async fn join_audit_batch(
        &self,
        account: &str,
        incident: IncidentId,
        access_key_id: &str,
        window_start: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<BatchSeat, StoreError>;
    /// The oldest audit batch of `account` not yet done.
    async fn next_audit_batch(&self, account: &str) -> Result<Option<AuditBatch>, StoreError>;
    /// Closes a batch to newcomers, under the job's lease; its members.
    async fn start_audit_batch(
        &self,
        lease: &JobLease,
        batch: i64,
        now: DateTime<Utc>,
    ) -> Result<Vec<BatchMember>, StoreError>;
    /// Ends a batch with each member's events (`None`: each queries its own key) and the
    /// audit rows of its calls, and wakes its parked incidents, under the job's lease.
    async fn finish_audit_batch(
        &self,
        lease: &JobLease,
        batch: i64,
        events: Option<&HashMap<IncidentId, Vec<serde_json::Value>>>,
        audit: Vec<AuditEntry>,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Wakes the incidents parked on a done batch (for one that parked as it finished).
    async fn wake_audit_waiters(&self, batch: i64, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Takes the next call slot of a rate limit every process on this database shares, if it
    /// lies within the take's reach; one round trip when granted, two when busy.
    async fn take_rate_slot(&self, take: &SlotTake<'_>) -> Result<SlotOutcome, StoreError>;
}

/// Opens the store named by the URL's scheme, writing no notifications.
pub async fn open(url: &str, max_connections: u32) -> Result<Arc<dyn Store>, StoreError> {
    connect(url, max_connections, Creation::IfMissing, Vec::new()).await
}

/// Opens the store; `routes` say which notifications each transition writes to the outbox.
pub async fn open_with_routes(
    url: &str,
    max_connections: u32,
    routes: Vec<Route>,
) -> Result<Arc<dyn Store>, StoreError> {
    connect(url, max_connections, Creation::IfMissing, routes).await
}

/// Opens a database that must already exist.
pub async fn open_existing(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    connect(url, 1, Creation::Never, Vec::new()).await
}

async fn connect(
    url: &str,
    max_connections: u32,
    creation: Creation,
    routes: Vec<Route>,
) -> Result<Arc<dyn Store>, StoreError> {
    Ok(Arc::new(
        SqlStore::connect(url, max_connections, creation)
            .await?
            .with_routes(routes),
    ))
}
