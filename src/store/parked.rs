//! Incidents parked on an account-wide job (an MFA sweep, an audit batch): once the job is
//! done, its waiters are made claimable at once instead of at their own recheck.

use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use super::StoreError;
use super::backend::Backend;

/// Where one kind of job keeps its waiters.
pub(super) struct Parking {
    /// The step its waiters are parked in.
    pub step: &'static str,
    /// The table of `(incident_id, <job_column>)` rows.
    pub waiters: &'static str,
    pub job_column: &'static str,
    /// The jobs' table, with `id` and `state`.
    pub jobs: &'static str,
}

/// Makes the incidents parked on done job `job` claimable now.
pub(super) async fn wake(
    pool: &AnyPool,
    backend: Backend,
    parking: &Parking,
    job: i64,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = backend.begin_write(pool).await?;
    let woken = wake_in(&mut tx, parking, job, now).await?;
    tx.commit().await?;
    Ok(woken)
}

/// `wake` within the caller's transaction (the one that marks the job done).
pub(super) async fn wake_in(
    conn: &mut sqlx::AnyConnection,
    parking: &Parking,
    job: i64,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let Parking {
        step,
        waiters,
        job_column,
        jobs,
    } = parking;
    let woken = sqlx::query(&format!(
        "UPDATE incidents SET next_attempt_at = $1 \
         WHERE state = '{step}' AND next_attempt_at > $1 AND id IN \
             (SELECT incident_id FROM {waiters} WHERE {job_column} = $2) \
           AND EXISTS (SELECT 1 FROM {jobs} WHERE id = $2 AND state = 'done')"
    ))
    .bind(now.timestamp_millis())
    .bind(job)
    .execute(&mut *conn)
    .await?;
    Ok(woken.rows_affected())
}
