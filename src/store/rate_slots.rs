//! Call slots of the fleet-wide rate limits: one row per account and API class holds when the
//! next call may go, and a take moves it on by one interval in a single statement.

use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::AnyPool;

use super::StoreError;
use super::backend::Backend;

/// One call's request for a slot.
#[derive(Debug, Clone)]
pub struct SlotTake<'a> {
    pub account: &'a str,
    pub class: &'a str,
    /// The spacing between two calls of this class.
    pub interval: Duration,
    /// How far ahead of `now` the slot may lie; `None` takes whatever slot is next. Lower
    /// priorities take only near slots, so the queue ahead stays free for containment.
    pub within: Option<Duration>,
    pub now: DateTime<Utc>,
}

/// What a take got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotOutcome {
    /// The call may go at this time (the past means at once).
    Granted(DateTime<Utc>),
    /// The next free slot lies further ahead than the take allowed.
    Busy { next_free: DateTime<Utc> },
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn from_micros(us: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(us)
        .ok_or_else(|| StoreError::Corrupt(format!("rate slot time {us}")))
}

/// One upsert: the row is moved on only when its next slot lies within reach, and the statement
/// returns nothing otherwise. A single statement needs no explicit transaction: PostgreSQL locks
/// the row for it, SQLite takes its write lock for it (no read precedes the write, so it waits on
/// the busy timeout like `BEGIN IMMEDIATE`). A free schedule starts at the later of the caller's
/// `now` and the database's clock once the lock is held: a take that waited for the lock must
/// not be handed a slot already past, which its caller would use late, close to the next one.
pub(super) async fn take(
    pool: &AnyPool,
    backend: Backend,
    take: &SlotTake<'_>,
) -> Result<SlotOutcome, StoreError> {
    let interval = micros(take.interval);
    let now = take.now.timestamp_micros();
    let reach = take
        .within
        .map_or(i64::MAX, |within| now.saturating_add(micros(within)));
    let start = backend.greatest("$3", backend.now_micros());
    let moved = backend.greatest("rate_slots.next_free", &start);
    let granted: Option<i64> = sqlx::query_scalar(&format!(
        "INSERT INTO rate_slots (account, class, next_free) VALUES ($1, $2, {start} + $4) \
         ON CONFLICT (account, class) DO UPDATE SET next_free = {moved} + $4 \
         WHERE rate_slots.next_free <= $5 RETURNING next_free"
    ))
    .bind(take.account)
    .bind(take.class)
    .bind(now)
    .bind(interval)
    .bind(reach)
    .fetch_optional(pool)
    .await?;
    if let Some(next_free) = granted {
        return Ok(SlotOutcome::Granted(from_micros(next_free - interval)?));
    }
    let next_free: i64 =
        sqlx::query_scalar("SELECT next_free FROM rate_slots WHERE account = $1 AND class = $2")
            .bind(take.account)
            .bind(take.class)
            .fetch_one(pool)
            .await?;
    Ok(SlotOutcome::Busy {
        next_free: from_micros(next_free)?,
    })
}
