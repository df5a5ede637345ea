//! Account-wide work that must run on one replica at a time (the MFA sweep, the audit batch,
//! the Security Center poll) holds a lease in the database, never a process lock: the holder
//! renews it while it works, and another replica takes the job once it lapses.

use std::time::Duration;

use chrono::Utc;

use crate::store::{JobLease, Store, StoreError};

/// The MFA sweep over every RAM user with console access.
pub const MFA_SWEEP: &str = "mfa_sweep";
/// The account-wide ActionTrail audit of incidents that wait for it at once.
pub const AUDIT_BATCH: &str = "audit_batch";
/// The Security Center leak-record poll.
pub const SECURITY_CENTER: &str = "security_center";

/// Renews `lease` every third of `lease_for` until it cannot; returns why. Run it beside
/// the work in a `select!`, so losing the lease stops the work.
pub async fn keep(store: &dyn Store, lease: &JobLease, lease_for: Duration) -> StoreError {
    loop {
        tokio::time::sleep(lease_for / 3).await;
        if let Err(err) = store.renew_job(lease, Utc::now(), lease_for).await {
            return err;
        }
    }
}
