//! `GET /v1/events`: the live event stream (Server-Sent Events). Every event is read from a
//! durable, ordered table — the audit log (transitions and every other audit row) and the
//! delivery log (notification verdicts) — after the client's cursor, so a stream resumes
//! across reconnects, restarts and replicas without gaps or repeats. A commit in this
//! process wakes the streams at once; other writers are seen by polling.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;

use super::extract::Query;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio_util::sync::CancellationToken;
use utoipa::IntoParams;

use super::views::{AuditEvent, DeliveryEvent, ErrorBody};
use super::{ApiError, AppState};
use crate::config::{EventLimits, Role};
use crate::store::{Store, StoreError};

/// What every stream shares: the cap on open streams and the signal that ends them all.
#[derive(Clone)]
pub struct EventHub {
    slots: Arc<Semaphore>,
    limits: EventLimits,
    /// Cancelled at shutdown: a stream never ends by itself, and the server drains
    /// connections before it stops.
    end: CancellationToken,
}

impl EventHub {
    pub fn new(limits: EventLimits, end: CancellationToken) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(limits.max_streams as usize)),
            limits,
            end,
        }
    }
}

/// Where a client is: the last audit row and the last delivery verdict it has seen. Sent
/// as each event's `id`, `<audit>.<delivery>`; clients treat it as opaque.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    audit: i64,
    delivery: i64,
}

impl Cursor {
    fn parse(raw: &str) -> Option<Self> {
        let (audit, delivery) = raw.trim().split_once('.')?;
        let cursor = Self {
            audit: audit.parse().ok()?,
            delivery: delivery.parse().ok()?,
        };
        (cursor.audit >= 0 && cursor.delivery >= 0).then_some(cursor)
    }

    /// Now: a client without a cursor sees what happens from here on.
    async fn head(store: &dyn Store) -> Result<Self, StoreError> {
        Ok(Self {
            audit: store.audit_head().await?.map_or(0, |h| h.last_id),
            delivery: store.last_delivery().await?,
        })
    }
}

/// The cursor of now, as an event id: where a page rendered now starts its stream.
pub(super) async fn head(store: &dyn Store) -> Result<String, StoreError> {
    Ok(Cursor::head(store).await?.to_string())
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.audit, self.delivery)
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// A cursor to start after, for clients that cannot set `Last-Event-ID` (a browser's
    /// first connection); the header, sent on reconnection, wins.
    after: Option<String>,
}

/// The live event stream (Server-Sent Events). Each event has `id:` (send it back as
/// `Last-Event-ID` to resume without gaps or repeats), `event:` and JSON `data:`:
/// `transition` (an audit row with `detail.from`/`detail.to`) and `audit` (any other audit
/// row) carry an `AuditEvent`; `notification` carries a `DeliveryEvent`. Comments (`:`)
/// keep the connection alive. Without a cursor the stream starts now.
#[utoipa::path(get, path = "/v1/events", tag = "events", security(("viewer" = [])),
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, description = "The `id` of the last event received."),
    ),
    responses(
        (status = 200, description = "The stream; it ends only at shutdown.",
            content_type = "text/event-stream", body = String),
        (status = 400, description = "`Last-Event-ID` or `after` is not an id this API sent.", body = ErrorBody),
        (status = 401, description = "No bearer token, or not one akguard knows.", body = ErrorBody),
        (status = 413, description = "The request carries a body over the server's limit; this operation takes none.", body = ErrorBody),
        (status = 429, description = "Too many failed authentications from this address; see `Retry-After`.", body = ErrorBody),
        (status = 503, description = "`api.events.max_streams` streams are open, or akguard is shutting down.", body = ErrorBody),
    ))]
pub async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<EventsQuery>,
) -> Result<Response, ApiError> {
    super::console::authorize(&state, &headers, Role::Viewer).await?;
    let raw = headers
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or_default().to_owned())
        .or(query.after);
    let cursor = match raw {
        Some(raw) => Cursor::parse(&raw).ok_or_else(|| {
            ApiError::BadRequest("Last-Event-ID (or after) is not an event id this API sent".into())
        })?,
        None => Cursor::head(state.store.as_ref()).await?,
    };
    let hub = &state.events;
    let permit = hub.slots.clone().try_acquire_owned().map_err(|_| {
        ApiError::Unavailable(
            "too many event streams are open (api.events.max_streams); retry later".into(),
        )
    })?;
    let feed = Feed {
        commits: state.store.commits(),
        store: state.store.clone(),
        cursor,
        pending: VecDeque::new(),
        limits: hub.limits,
        end: hub.end.clone(),
        _permit: permit,
    };
    let events = futures_util::stream::unfold(feed, |mut feed| async move {
        let event = feed.next().await?;
        Some((Ok::<_, Infallible>(event), feed))
    });
    let keep_alive = KeepAlive::new().interval(hub.limits.keep_alive);
    let mut response = Sse::new(events).keep_alive(keep_alive).into_response();
    // Proxies that buffer responses would hold events back.
    response.headers_mut().insert(
        "x-accel-buffering",
        axum::http::HeaderValue::from_static("no"),
    );
    Ok(response)
}

/// One client's stream: its cursor and the events read ahead of what it has taken.
struct Feed {
    store: Arc<dyn Store>,
    commits: watch::Receiver<u64>,
    cursor: Cursor,
    pending: VecDeque<Event>,
    limits: EventLimits,
    end: CancellationToken,
    /// Held while the stream is open: dropping the stream frees its slot.
    _permit: OwnedSemaphorePermit,
}

impl Feed {
    /// The next event, waiting for one; `None` ends the stream (shutdown or a store fault,
    /// after which the client reconnects from its last id).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.end.is_cancelled() {
                return None;
            }
            // Marked seen before reading: a commit during the read wakes the wait below.
            self.commits.borrow_and_update();
            match self.read().await {
                Ok(true) => continue,
                Ok(false) => {}
                Err(err) => {
                    tracing::warn!(error = %err, "event stream cannot read the store; closing it");
                    return None;
                }
            }
            tokio::select! {
                changed = self.commits.changed() => {
                    if changed.is_err() {
                        return None;
                    }
                }
                () = tokio::time::sleep(self.limits.poll_interval) => {}
                () = self.end.cancelled() => return None,
            }
        }
    }

    /// Reads up to `buffer` events after the cursor into `pending`, oldest first; whether
    /// there were any.
    async fn read(&mut self) -> Result<bool, StoreError> {
        let limit = self.limits.buffer;
        let audit = self.store.audit_page(self.cursor.audit, limit).await?;
        let deliveries = self
            .store
            .delivery_page(self.cursor.delivery, limit)
            .await?;
        // A full page may have more behind it: once it runs out, the other log waits for
        // the next read, or a later row of the full one would come after an earlier one.
        let audit_full = audit.len() == limit as usize;
        let deliveries_full = deliveries.len() == limit as usize;
        let mut audit = audit.into_iter().peekable();
        let mut deliveries = deliveries.into_iter().peekable();
        let mut cursor = self.cursor;
        // Merged by time, so a verdict follows the transition that caused it; each event's
        // id is the cursor just after it, whichever log it came from.
        for _ in 0..limit {
            let audit_first = match (audit.peek(), deliveries.peek()) {
                (Some(a), Some(d)) => a.at <= d.at,
                (Some(_), None) if !deliveries_full => true,
                (None, Some(_)) if !audit_full => false,
                _ => break,
            };
            let event = if audit_first {
                let Some(record) = audit.next() else { break };
                cursor.audit = record.id;
                let detail = record.detail();
                let is_transition = detail.get("from").is_some_and(|v| v.is_string())
                    && detail.get("to").is_some_and(|v| v.is_string());
                let name = if is_transition { "transition" } else { "audit" };
                Event::default()
                    .event(name)
                    .json_data(AuditEvent::from(&record))
            } else {
                let Some(record) = deliveries.next() else {
                    break;
                };
                cursor.delivery = record.id;
                Event::default()
                    .event("notification")
                    .json_data(DeliveryEvent::from(&record))
            };
            let event = event.map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?;
            self.pending.push_back(event.id(cursor.to_string()));
        }
        self.cursor = cursor;
        Ok(!self.pending.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::Cursor;

    #[test]
    fn a_cursor_reads_back_as_it_was_written_and_nothing_else_parses() {
        let cursor = Cursor {
            audit: 42,
            delivery: 7,
        };
        assert_eq!(Cursor::parse(&cursor.to_string()), Some(cursor));
        for bad in ["", "42", "42.", ".7", "-1.0", "1.-1", "a.b", "1.2.3"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
