//! The counts `/metrics` shows as gauges. Plain SQL, the same on every backend.

use sqlx::{Row, SqlitePool};

use super::StoreError;

/// Incidents per stored state, those whose current step waits for an approval, and
/// undelivered notifications per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub incidents_by_state: Vec<(String, u64)>,
    pub awaiting_approval: u64,
    pub pending_by_channel: Vec<(String, u64)>,
}

const INCIDENTS_BY_STATE: &str =
    "SELECT state AS name, COUNT(*) AS n FROM incidents GROUP BY state";
/// The approval asked for is the current step's (`new` is the triage step's state).
const AWAITING_APPROVAL: &str = "SELECT COUNT(*) AS n FROM incidents \
     WHERE approval_pending = CASE state WHEN 'new' THEN 'triage' ELSE state END";
const PENDING_BY_CHANNEL: &str =
    "SELECT channel AS name, COUNT(*) AS n FROM outbox WHERE state = 'pending' GROUP BY channel";

pub(super) async fn read(pool: &SqlitePool) -> Result<Tally, StoreError> {
    let mut counts = [Vec::new(), Vec::new()];
    for (sql, out) in [INCIDENTS_BY_STATE, PENDING_BY_CHANNEL]
        .into_iter()
        .zip(&mut counts)
    {
        for row in sqlx::query(sql).fetch_all(pool).await? {
            let n: i64 = row.try_get("n")?;
            out.push((row.try_get("name")?, n.max(0) as u64));
        }
    }
    let awaiting: i64 = sqlx::query(AWAITING_APPROVAL)
        .fetch_one(pool)
        .await?
        .try_get("n")?;
    let [incidents_by_state, pending_by_channel] = counts;
    Ok(Tally {
        incidents_by_state,
        awaiting_approval: awaiting.max(0) as u64,
        pending_by_channel,
    })
}
