//! Recording a batch of deliveries: read what they may refer to, plan (see `batch`), write
//! the plan with one multi-row statement per table, all under the batch's locks
//! (`lock_keys`). The database
//! numbers the new rows; each insert returns its ids with the columns that tell its rows
//! apart, so nothing depends on the order `RETURNING` gives them in.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::AnyConnection;
use sqlx::Row;

use super::backend::Backend;
use super::batch::{self, Assigned, IncidentRef, Known, OpenIncident, Plan};
use super::fence::{Fence, FencedUpdate, Target};
use super::rows::time;
use super::sql::Sql;
use super::{Delivery, IntakeOutcome, ScheduleChange, StoreError, audit_log, outbox_queue};
use crate::domain::notice::{Change, Route};
use crate::domain::{IncidentId, IncidentState, Path, Step};

/// What a batch's transaction locks (`Backend::begin_keyed`): its AccessKey ids (the open
/// incident it may find or open) and its delivery ids (the replays it may find), so a batch
/// of other keys can be recorded at the same time.
pub(super) fn lock_keys(batch: &[Delivery]) -> Vec<String> {
    batch
        .iter()
        .flat_map(|d| {
            [
                format!("key {}", d.signal.access_key_id().as_str()),
                format!("delivery {} {}", d.source, d.delivery_id),
            ]
        })
        .collect()
}

/// Records `batch` inside `conn`'s transaction, which holds the batch's locks.
pub(super) async fn record(
    conn: &mut AnyConnection,
    backend: Backend,
    routes: &[Route],
    batch: &[Delivery],
) -> Result<Vec<IntakeOutcome>, StoreError> {
    let now = Utc::now();
    let known = load_known(conn, backend, batch, now).await?;
    let plan = batch::plan(batch, known);
    let ids = write_plan(conn, backend, &plan, now).await?;
    let opened: Vec<_> = plan
        .notifications
        .iter()
        .filter(|n| n.outcome == "created")
        .map(|n| {
            let change = Change {
                after: Some(IncidentState::Active(Step::Triage)),
                source: Some(n.delivery.source.clone()),
                parent: n.delivery.parent,
                ..Change::default()
            };
            (ids.incident(n.incident), change, n.delivery.received_at)
        })
        .collect();
    let opened: Vec<_> = opened.iter().map(|(id, c, at)| (*id, c, *at)).collect();
    outbox_queue::enqueue_all(conn, routes, &opened).await?;
    // Last: from here to the commit the chain's head is locked.
    audit_log::append_audit(conn, backend, &plan.audit(&ids)).await?;
    Ok(plan.outcomes(&ids))
}

/// Reads what the batch's deliveries may refer to: earlier deliveries and open incidents.
async fn load_known(
    conn: &mut AnyConnection,
    backend: Backend,
    batch: &[Delivery],
    now: DateTime<Utc>,
) -> Result<Known, StoreError> {
    let mut known = Known::default();
    // A join on VALUES uses the (source, delivery_id) index; `IN (VALUES ...)` would scan.
    let mut replays = Sql::new("SELECT n.source, n.delivery_id, n.incident_id FROM (VALUES ");
    replays.tuples(batch, |row, d| {
        row.bind(d.source.as_str()).bind(d.delivery_id.as_str());
    });
    replays
        .push(") AS v JOIN notifications n ON n.source = v.column1 AND n.delivery_id = v.column2");
    for row in replays.fetch_all(&mut *conn).await? {
        known.replays.insert(
            (row.try_get("source")?, row.try_get("delivery_id")?),
            IncidentId(row.try_get("incident_id")?),
        );
    }
    // `busy`: leased now, or a disable of the key was intended (perhaps made, then a crash).
    let api = backend.json_text("a.detail", &["'api'"]);
    let mut open = Sql::new(
        "SELECT i.access_key_id, i.id, i.state, i.reason, i.resume_step, i.path, i.detected_at, \
         CASE WHEN COALESCE(i.lease_expires_at, 0) > ",
    );
    open.bind(now.timestamp_millis()).push(&format!(
        " OR EXISTS (SELECT 1 FROM audit_log a WHERE a.incident_id = i.id \
         AND a.action IN ('cloud.intent', 'cloud.dry_run') \
         AND {api} = 'UpdateAccessKey') THEN 1 ELSE 0 END AS busy \
         FROM incidents i WHERE i.closed_at IS NULL AND i.access_key_id IN ("
    ));
    for (i, d) in batch.iter().enumerate() {
        if i > 0 {
            open.push(", ");
        }
        open.bind(d.signal.access_key_id().as_str());
    }
    open.push(")")
        .push(&backend.lock_rows("i"))
        .planned_each_time();
    for row in open.fetch_all(&mut *conn).await? {
        let state: String = row.try_get("state")?;
        let reason: Option<String> = row.try_get("reason")?;
        let resume: Option<String> = row.try_get("resume_step")?;
        let path: Option<String> = row.try_get("path")?;
        let incident = OpenIncident {
            id: IncidentRef::Stored(IncidentId(row.try_get("id")?)),
            state: IncidentState::parse(&state, reason.as_deref(), resume.as_deref())
                .ok_or_else(|| StoreError::Corrupt(format!("state {state}")))?,
            path: path.as_deref().and_then(Path::parse),
            detected_at: time(row.try_get("detected_at")?)?,
            busy: row.try_get::<i64, _>("busy")? != 0,
        };
        known.open.insert(row.try_get("access_key_id")?, incident);
    }
    Ok(known)
}

/// Writes a plan's rows (all but the audit) and returns the ids the database gave them.
async fn write_plan(
    conn: &mut AnyConnection,
    backend: Backend,
    plan: &Plan<'_>,
    now: DateTime<Utc>,
) -> Result<Assigned, StoreError> {
    let mut ids = Assigned::default();
    if !plan.incidents.is_empty() {
        let mut q = Sql::new(
            "INSERT INTO incidents (access_key_id, account_id, account_name, user_name, \
             owner_type, leak_url, detected_at, stated_detected_at, state, created_at, updated_at, \
             parent_incident_id) VALUES ",
        );
        q.tuples(&plan.incidents, |row, i| {
            row.bind(i.leak.access_key_id.as_str())
                .bind(i.leak.account_id.as_deref())
                .bind(i.leak.account_name.as_deref())
                .bind(i.leak.user_name.as_deref())
                .bind(i.leak.effective_owner_type().as_str())
                .bind(i.leak.leak_url.as_deref())
                .bind(i.detected_at.timestamp_millis())
                .bind(i.leak.stated_detected_at.map(|t| t.timestamp_millis()))
                .bind(IncidentState::Active(Step::Triage).as_str())
                .bind(i.created_at.timestamp_millis())
                .bind(i.created_at.timestamp_millis())
                .bind(i.parent.map(|p| p.0));
        });
        // A batch opens at most one incident per key.
        q.push(" RETURNING id, access_key_id");
        let mut by_key = HashMap::new();
        for row in q.fetch_all(&mut *conn).await? {
            by_key.insert(
                row.try_get::<String, _>("access_key_id")?,
                row.try_get("id")?,
            );
        }
        ids.incidents = plan
            .incidents
            .iter()
            .map(|i| returned(&by_key, i.leak.access_key_id.as_str()).map(IncidentId))
            .collect::<Result<_, _>>()?;
    }
    if !plan.notifications.is_empty() {
        let mut q = Sql::new(
            "INSERT INTO notifications (source, format, delivery_id, received_at, \
             body_sha256, kind, access_key_id, event_id, normalized, outcome, incident_id) VALUES ",
        );
        q.tuples(&plan.notifications, |row, n| {
            let d = n.delivery;
            row.bind(d.source.as_str())
                .bind(d.format)
                .bind(d.delivery_id.as_str())
                .bind(d.received_at.timestamp_millis())
                .bind(d.body_sha256.as_str())
                .bind(n.kind)
                .bind(d.signal.access_key_id().as_str())
                .bind(d.signal.event_id())
                .bind(n.normalized.as_str())
                .bind(n.outcome)
                .bind(ids.incident(n.incident).0);
        });
        q.push(" RETURNING id, source, delivery_id");
        let mut by_delivery = HashMap::new();
        for row in q.fetch_all(&mut *conn).await? {
            let key = (
                row.try_get::<String, _>("source")?,
                row.try_get::<String, _>("delivery_id")?,
            );
            by_delivery.insert(key, row.try_get("id")?);
        }
        ids.notifications = plan
            .notifications
            .iter()
            .map(|n| {
                let d = n.delivery;
                let key = (d.source.clone(), d.delivery_id.clone());
                returned(&by_delivery, &key)
            })
            .collect::<Result<_, _>>()?;
    }
    if !plan.sightings.is_empty() {
        let mut q = Sql::new(
            "INSERT INTO sightings (incident_id, notification_id, source, kind, observed_at, \
             detail) VALUES ",
        );
        q.tuples(&plan.sightings, |row, s| {
            row.bind(ids.incident(s.incident).0)
                .bind(ids.notifications[s.notification])
                .bind(s.source)
                .bind(s.kind)
                .bind(s.observed_at.timestamp_millis())
                .bind(s.detail.as_str());
        });
        // One sighting per notification.
        q.push(" RETURNING id, notification_id");
        let mut by_notification = HashMap::new();
        for row in q.fetch_all(&mut *conn).await? {
            by_notification.insert(
                row.try_get::<i64, _>("notification_id")?,
                row.try_get("id")?,
            );
        }
        ids.sightings = plan
            .sightings
            .iter()
            .map(|s| returned(&by_notification, &ids.notifications[s.notification]))
            .collect::<Result<_, _>>()?;
        let updated_at = backend.greatest("updated_at", "$1");
        for (incident, at) in &plan.touched {
            sqlx::query(&format!(
                "UPDATE incidents SET updated_at = {updated_at} WHERE id = $2"
            ))
            .bind(at.timestamp_millis())
            .bind(ids.incident(*incident).0)
            .execute(&mut *conn)
            .await?;
        }
    }
    for retriage in &plan.retriages {
        // The plan found no live lease under this transaction's write lock; the fence moves
        // the attempt on, so a worker whose lease had lapsed cannot finish the old step over
        // the retriage.
        let id = ids.incident(retriage.incident);
        let mut q = FencedUpdate::new();
        q.set("state", retriage.to.as_str())
            .set_sql("reason", "NULL")
            .set_sql("resume_step", "NULL")
            .set_sql("path", "NULL")
            .set("detected_at", retriage.detected_at.timestamp_millis())
            .set(
                "stated_detected_at",
                retriage
                    .leak
                    .stated_detected_at
                    .map(|t| t.timestamp_millis()),
            )
            .set_sql("last_error", "NULL")
            .schedule(&ScheduleChange {
                next_attempt_at: Some(None),
                step_attempts: Some(0),
                ..ScheduleChange::default()
            });
        q.execute(
            &mut *conn,
            Target::Incident(id),
            Fence::Takeover(now, None),
            "id",
        )
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("incident {id} was leased while planned")))?;
    }
    Ok(ids)
}

/// The id an insert returned for the row with `key`.
fn returned<K, Q>(ids: &HashMap<K, i64>, key: &Q) -> Result<i64, StoreError>
where
    K: std::borrow::Borrow<Q> + std::hash::Hash + Eq,
    Q: std::hash::Hash + Eq + std::fmt::Debug + ?Sized,
{
    ids.get(key)
        .copied()
        .ok_or_else(|| StoreError::Corrupt(format!("the insert returned no id for {key:?}")))
}
