//! When and by whom an incident's work runs next, kept apart from the record of what happened
//! to it. The step to run is the incident's state; the schedule says when, and under whose
//! lease. Only the store's fenced write changes it.

use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    /// Claims and operator events so far: the fencing token. Each takeover moves it on, so
    /// a write fenced on an older value is refused.
    pub attempt: i64,
    /// Failed tries of the current step, for its retry policy.
    pub step_attempts: u32,
    /// When the current step runs again; `None`: as soon as a worker is free.
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the second ActionTrail pass is due, once ActionTrail has caught up.
    pub settle_audit_at: Option<DateTime<Utc>>,
    pub lease_owner: Option<String>,
    pub lease_expires_at: Option<DateTime<Utc>>,
}
