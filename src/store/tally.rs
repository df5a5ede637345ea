//! The counts `/metrics` shows as gauges. Plain SQL, the same on every backend.

use sqlx::{Row, SqlitePool};

use super::StoreError;

/// Incidents per stored state, and undelivered notifications per channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub incidents_by_state: Vec<(String, u64)>,
    pub pending_by_channel: Vec<(String, u64)>,
}

const INCIDENTS_BY_STATE: &str =
    "SELECT state AS name, COUNT(*) AS n FROM incidents GROUP BY state";
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
    let [incidents_by_state, pending_by_channel] = counts;
    Ok(Tally {
        incidents_by_state,
        pending_by_channel,
    })
}
