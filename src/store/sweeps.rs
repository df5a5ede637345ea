//! The account-wide MFA sweep's durable progress: the sweeps, one row per user, and the
//! incidents parked until their sweep is done.

use chrono::{DateTime, Utc};
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::backend::Backend;
use super::jobs::{self, JobLease};
use super::parked::{self, Parking};
use super::rows::{opt_time, time};
use super::sql::Sql;
use super::{StoreError, audit_log};
use crate::domain::{AuditEntry, IncidentId};

/// Where a sweep is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepState {
    /// Waiting for the job's holder to list the users.
    Queued,
    Running,
    Done,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaSweep {
    pub id: i64,
    pub state: SweepState,
    pub created_at: DateTime<Utc>,
    /// When the users were listed: the sweep covers every incident opened before it.
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// Where one user of a sweep is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SweepUserState {
    Pending,
    /// The intent record: the holder was about to change the login profile.
    Applying,
    Done,
    /// Out of attempts; the sweep goes on without it.
    Failed,
}

/// One user's progress in a sweep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepUser {
    pub user_name: String,
    /// An incident of this user's leaked key asked for a new password too.
    pub reset_password: bool,
    pub state: SweepUserState,
    /// What the intent (`Applying`) was about to change.
    pub want_mfa: bool,
    pub want_reset: bool,
    /// What the user came to: `no_console`, `has_device`, `mfa_now_required`,
    /// `mfa_already_required`, `protected`.
    pub outcome: Option<String>,
    /// The user must change its password at next logon (now or already).
    pub password_reset: bool,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub error: Option<String>,
}

impl SweepState {
    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "queued" => Ok(Self::Queued),
            "running" => Ok(Self::Running),
            "done" => Ok(Self::Done),
            other => Err(StoreError::Corrupt(format!("sweep state {other}"))),
        }
    }
}

impl SweepUserState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Applying => "applying",
            Self::Done => "done",
            Self::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "pending" => Ok(Self::Pending),
            "applying" => Ok(Self::Applying),
            "done" => Ok(Self::Done),
            "failed" => Ok(Self::Failed),
            other => Err(StoreError::Corrupt(format!("sweep user state {other}"))),
        }
    }
}

const SWEEP_COLUMNS: &str = "id, state, created_at, started_at, finished_at";
const USER_COLUMNS: &str = "user_name, reset_password, state, want_mfa, want_reset, outcome, \
    password_reset, attempts, next_attempt_at, error";

fn sweep_from_row(row: &AnyRow) -> Result<MfaSweep, StoreError> {
    Ok(MfaSweep {
        id: row.try_get("id")?,
        state: SweepState::parse(&row.try_get::<String, _>("state")?)?,
        created_at: time(row.try_get("created_at")?)?,
        started_at: opt_time(row.try_get("started_at")?)?,
        finished_at: opt_time(row.try_get("finished_at")?)?,
    })
}

fn user_from_row(row: &AnyRow) -> Result<SweepUser, StoreError> {
    let flag = |name: &str| row.try_get::<i64, _>(name).map(|v| v != 0);
    Ok(SweepUser {
        user_name: row.try_get("user_name")?,
        reset_password: flag("reset_password")?,
        state: SweepUserState::parse(&row.try_get::<String, _>("state")?)?,
        want_mfa: flag("want_mfa")?,
        want_reset: flag("want_reset")?,
        outcome: row.try_get("outcome")?,
        password_reset: flag("password_reset")?,
        attempts: u32::try_from(row.try_get::<i64, _>("attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: time(row.try_get("next_attempt_at")?)?,
        error: row.try_get("error")?,
    })
}

/// An incident asking to be covered by a sweep of its account.
pub(super) struct Joining<'a> {
    /// The account's store key: `''` for the home account.
    pub account: &'a str,
    pub incident: IncidentId,
    pub opened_at: DateTime<Utc>,
    /// The leaked key's user, to be asked for a new password.
    pub user: Option<&'a str>,
}

/// Puts the incident on a sweep that covers it: one it already waits for, one not yet
/// started, or one that started (running or done) after the incident was opened; otherwise
/// a new one. `user` (the leaked key's) is asked for a new password with the sweep's own
/// change, if the sweep has not passed that user yet.
pub(super) async fn join(
    pool: &AnyPool,
    backend: Backend,
    joining: Joining<'_>,
    now: DateTime<Utc>,
) -> Result<MfaSweep, StoreError> {
    let Joining {
        account,
        incident,
        opened_at,
        user,
    } = joining;
    let mut tx = backend.begin_write(pool).await?;
    let waiting = sqlx::query(&format!(
        "SELECT {SWEEP_COLUMNS} FROM mfa_sweeps \
         WHERE id = (SELECT sweep_id FROM mfa_sweep_waiters WHERE incident_id = $1)"
    ))
    .bind(incident.0)
    .fetch_optional(&mut *tx)
    .await?;
    if let Some(row) = waiting {
        return sweep_from_row(&row);
    }
    let covering = sqlx::query(&format!(
        "SELECT {SWEEP_COLUMNS} FROM mfa_sweeps \
         WHERE (state = 'queued' OR started_at >= $1) AND account = $2 \
         ORDER BY id DESC LIMIT 1"
    ))
    .bind(opened_at.timestamp_millis())
    .bind(account)
    .fetch_optional(&mut *tx)
    .await?;
    let sweep = match covering {
        Some(row) => sweep_from_row(&row)?,
        None => {
            let row = sqlx::query(&format!(
                "INSERT INTO mfa_sweeps (state, created_at, account) VALUES ('queued', $1, $2) \
                 RETURNING {SWEEP_COLUMNS}"
            ))
            .bind(now.timestamp_millis())
            .bind(account)
            .fetch_one(&mut *tx)
            .await?;
            sweep_from_row(&row)?
        }
    };
    sqlx::query("INSERT INTO mfa_sweep_waiters (incident_id, sweep_id) VALUES ($1, $2)")
        .bind(incident.0)
        .bind(sweep.id)
        .execute(&mut *tx)
        .await?;
    if let Some(user) = user {
        // A user the holder has already passed keeps its row; the incident then asks for
        // the new password itself once the sweep is done.
        sqlx::query(
            "INSERT INTO mfa_sweep_users (sweep_id, user_name, reset_password, state) \
             VALUES ($1, $2, 1, 'pending') \
             ON CONFLICT (sweep_id, user_name) DO UPDATE SET reset_password = 1 \
             WHERE mfa_sweep_users.state = 'pending'",
        )
        .bind(sweep.id)
        .bind(user)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(sweep)
}

/// The sweep an incident waits for, if it joined one.
pub(super) async fn of_incident(
    pool: &AnyPool,
    incident: IncidentId,
) -> Result<Option<MfaSweep>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SWEEP_COLUMNS} FROM mfa_sweeps \
         WHERE id = (SELECT sweep_id FROM mfa_sweep_waiters WHERE incident_id = $1)"
    ))
    .bind(incident.0)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(sweep_from_row).transpose()
}

/// The account's oldest sweep not yet done.
pub(super) async fn next(pool: &AnyPool, account: &str) -> Result<Option<MfaSweep>, StoreError> {
    let row = sqlx::query(&format!(
        "SELECT {SWEEP_COLUMNS} FROM mfa_sweeps WHERE account = $1 AND state <> 'done' \
         ORDER BY id LIMIT 1"
    ))
    .bind(account)
    .fetch_optional(pool)
    .await?;
    row.as_ref().map(sweep_from_row).transpose()
}

/// The users of a sweep, by name.
pub(super) async fn users(pool: &AnyPool, sweep: i64) -> Result<Vec<SweepUser>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {USER_COLUMNS} FROM mfa_sweep_users WHERE sweep_id = $1 ORDER BY user_name"
    ))
    .bind(sweep)
    .fetch_all(pool)
    .await?;
    rows.iter().map(user_from_row).collect()
}

/// Starts a queued sweep with the users listed now; rows already there (a leaked key's
/// user asking for a new password) are kept.
/// Users listed in one statement, well within every backend's limit on bound values.
const USERS_PER_INSERT: usize = 500;

pub(super) async fn start(
    pool: &AnyPool,
    backend: Backend,
    lease: &JobLease,
    sweep: i64,
    users: &[String],
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    jobs::fence(&mut tx, lease, now).await?;
    // Many users to a statement: row by row, an account of a few hundred users held the
    // write lock for tens of milliseconds, and containment's intents waited behind it.
    for chunk in users.chunks(USERS_PER_INSERT) {
        let mut q = Sql::new("INSERT INTO mfa_sweep_users (sweep_id, user_name, state) VALUES ");
        q.tuples(chunk, |row, user| {
            row.bind(sweep).bind(user.as_str()).bind("pending");
        });
        q.push(" ON CONFLICT (sweep_id, user_name) DO NOTHING");
        q.execute(&mut *tx).await?;
    }
    sqlx::query(
        "UPDATE mfa_sweeps SET state = 'running', started_at = $1 WHERE id = $2 AND state = 'queued'",
    )
    .bind(now.timestamp_millis())
    .bind(sweep)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Saves one user's progress with its audit rows, fenced by the job's lease: a holder that
/// lost the job records nothing, and must not go on to call the cloud.
pub(super) async fn save_user(
    pool: &AnyPool,
    backend: Backend,
    lease: &JobLease,
    sweep: i64,
    user: &SweepUser,
    audit: Vec<AuditEntry>,
    now: DateTime<Utc>,
) -> Result<(), StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    jobs::fence(&mut tx, lease, now).await?;
    sqlx::query(
        "UPDATE mfa_sweep_users SET state = $1, want_mfa = $2, want_reset = $3, outcome = $4, \
             password_reset = $5, attempts = $6, next_attempt_at = $7, error = $8 \
         WHERE sweep_id = $9 AND user_name = $10",
    )
    .bind(user.state.as_str())
    .bind(i64::from(user.want_mfa))
    .bind(i64::from(user.want_reset))
    .bind(user.outcome.clone())
    .bind(i64::from(user.password_reset))
    .bind(i64::from(user.attempts))
    .bind(user.next_attempt_at.timestamp_millis())
    .bind(user.error.clone())
    .bind(sweep)
    .bind(&user.user_name)
    .execute(&mut *tx)
    .await?;
    let stamped: Vec<_> = audit.into_iter().map(|entry| (now, entry)).collect();
    audit_log::append_audit(&mut tx, backend, &stamped).await?;
    tx.commit().await?;
    Ok(())
}

/// Marks the sweep done if no user is left to do, and wakes the incidents parked on it.
/// `false` while a user is still pending (one may have joined since the last look).
pub(super) async fn finish(
    pool: &AnyPool,
    backend: Backend,
    lease: &JobLease,
    sweep: i64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    jobs::fence(&mut tx, lease, now).await?;
    let done = sqlx::query(
        "UPDATE mfa_sweeps SET state = 'done', finished_at = $1 \
         WHERE id = $2 AND state = 'running' AND NOT EXISTS (SELECT 1 FROM mfa_sweep_users \
             WHERE sweep_id = $2 AND state IN ('pending', 'applying'))",
    )
    .bind(now.timestamp_millis())
    .bind(sweep)
    .execute(&mut *tx)
    .await?;
    if done.rows_affected() == 0 {
        return Ok(false);
    }
    parked::wake_in(&mut tx, &SWEEP_WAITERS, sweep, now).await?;
    tx.commit().await?;
    Ok(true)
}

/// Where incidents wait for a sweep.
pub(super) const SWEEP_WAITERS: Parking = Parking {
    step: "enforce_mfa",
    waiters: "mfa_sweep_waiters",
    job_column: "sweep_id",
    jobs: "mfa_sweeps",
};
