//! Planning a batch of deliveries: which open incidents, notifications, sightings,
//! re-triages and audit rows it makes. Pure, so every backend records a batch in a handful of
//! statements whatever its size, and the rules live in one place.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Delivery, IntakeOutcome};
use crate::domain::audit::chain_hash;
use crate::domain::triage::retriages;
use crate::domain::{
    AuditRecord, Event, IncidentId, IncidentState, LeakNotification, Path, Signal, transition,
};

/// What the database already holds that the batch's deliveries may refer to.
#[derive(Debug, Default)]
pub(super) struct Known {
    /// `(source, delivery_id)` of deliveries recorded before, with their incident.
    pub replays: HashMap<(String, String), IncidentId>,
    /// Open incidents by AccessKey ID.
    pub open: HashMap<String, OpenIncident>,
}

/// What a later report of an open incident's key needs to know about it.
#[derive(Debug, Clone, Copy)]
pub(super) struct OpenIncident {
    pub id: IncidentId,
    pub state: IncidentState,
    pub path: Option<Path>,
    pub detected_at: DateTime<Utc>,
    /// A worker holds it, or has recorded its intent to disable the key.
    pub busy: bool,
}

impl OpenIncident {
    /// An incident this batch opens: it waits for triage.
    fn new(id: IncidentId, detected_at: DateTime<Utc>) -> Self {
        Self {
            id,
            state: IncidentState::Active(crate::domain::Step::Triage),
            path: None,
            detected_at,
            busy: false,
        }
    }
}

/// The highest ids in use and the audit chain's head, read inside the write transaction.
#[derive(Debug)]
pub(super) struct Heads {
    pub incident: i64,
    pub notification: i64,
    pub sighting: i64,
    pub audit: i64,
    pub audit_hash: String,
}

pub(super) struct NewIncident<'a> {
    pub id: IncidentId,
    pub parent: Option<IncidentId>,
    pub leak: &'a LeakNotification,
    pub detected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub(super) struct NewNotification<'a> {
    pub id: i64,
    pub delivery: &'a Delivery,
    pub kind: &'static str,
    pub normalized: String,
    pub outcome: &'static str,
    pub incident: IncidentId,
}

/// An incident sent back to triage by a later report (see `triage::retriages`).
pub(super) struct Retriage<'a> {
    pub incident: IncidentId,
    pub from: IncidentState,
    pub to: IncidentState,
    pub detected_at: DateTime<Utc>,
    pub leak: &'a LeakNotification,
}

pub(super) struct NewSighting<'a> {
    pub id: i64,
    pub incident: IncidentId,
    pub notification: i64,
    pub source: &'a str,
    pub kind: &'static str,
    pub observed_at: DateTime<Utc>,
    pub detail: String,
}

/// Everything a batch writes, in insertion order.
#[derive(Default)]
pub(super) struct Plan<'a> {
    pub outcomes: Vec<IntakeOutcome>,
    pub incidents: Vec<NewIncident<'a>>,
    pub notifications: Vec<NewNotification<'a>>,
    pub sightings: Vec<NewSighting<'a>>,
    pub retriages: Vec<Retriage<'a>>,
    /// Incidents that received a sighting, with the time to record as their `updated_at`.
    pub touched: HashMap<IncidentId, DateTime<Utc>>,
    pub audit: Vec<AuditRecord>,
}

pub(super) fn plan(batch: &[Delivery], mut known: Known, mut heads: Heads) -> Plan<'_> {
    let mut plan = Plan::default();
    for d in batch {
        let delivery_key = (d.source.clone(), d.delivery_id.clone());
        if let Some(&incident) = known.replays.get(&delivery_key) {
            plan.outcomes.push(IntakeOutcome::Replay(incident));
            continue;
        }
        let key = d.signal.access_key_id().as_str();
        let open = known.open.get(key).copied();
        // The queue has clamped it already; this keeps any other caller out of the future.
        let reported =
            |leak: &LeakNotification| leak.detected_at.unwrap_or(d.received_at).min(d.received_at);
        let (kind, normalized) = match &d.signal {
            Signal::Leak(n) => ("leak", to_json(n)),
            Signal::Activity(a) => ("activity", to_json(a)),
        };
        let notification = heads.notification + 1;
        let (outcome, incident, action, detail) = match (&d.signal, open) {
            (Signal::Activity(_), None) => {
                plan.outcomes.push(IntakeOutcome::Ignored);
                continue;
            }
            (Signal::Leak(leak), None) => {
                heads.incident += 1;
                let id = IncidentId(heads.incident);
                plan.incidents.push(NewIncident {
                    id,
                    parent: d.parent,
                    leak,
                    detected_at: reported(leak),
                    created_at: d.received_at,
                });
                known
                    .open
                    .insert(key.to_owned(), OpenIncident::new(id, reported(leak)));
                let detail = serde_json::json!({
                    "notification_id": notification,
                    "source": d.source,
                    "delivery_id": d.delivery_id,
                    "leak": normalized,
                });
                (IntakeOutcome::Created(id), id, "incident.opened", detail)
            }
            (_, Some(open)) => {
                let id = open.id;
                let (sighting_kind, observed) = match &d.signal {
                    Signal::Leak(n) => ("report", n.detected_at),
                    Signal::Activity(a) => ("activity", a.event_time),
                };
                let retriage = match &d.signal {
                    Signal::Leak(leak)
                        if retriages(
                            open.state,
                            open.path,
                            open.busy,
                            open.detected_at,
                            reported(leak),
                        ) =>
                    {
                        transition(open.state, Event::Retriage)
                            .ok()
                            .map(|to| (leak, to))
                    }
                    _ => None,
                };
                heads.sighting += 1;
                plan.sightings.push(NewSighting {
                    id: heads.sighting,
                    incident: id,
                    notification,
                    source: &d.source,
                    kind: sighting_kind,
                    observed_at: observed.unwrap_or(d.received_at),
                    detail: normalized.to_string(),
                });
                let touched = plan.touched.entry(id).or_insert(d.received_at);
                *touched = (*touched).max(d.received_at);
                let mut detail = serde_json::json!({
                    "notification_id": notification,
                    "sighting_id": heads.sighting,
                    "kind": sighting_kind,
                    "source": d.source,
                    "delivery_id": d.delivery_id,
                });
                match retriage {
                    Some((leak, to)) => {
                        let detected_at = reported(leak);
                        detail["from"] = open.state.as_str().into();
                        detail["to"] = to.as_str().into();
                        detail["judged_on"] = serde_json::json!(open.detected_at);
                        detail["detected_at"] = serde_json::json!(detected_at);
                        plan.retriages.push(Retriage {
                            incident: id,
                            from: open.state,
                            to,
                            detected_at,
                            leak,
                        });
                        // Later deliveries of this batch find it waiting for triage.
                        known
                            .open
                            .insert(key.to_owned(), OpenIncident::new(id, detected_at));
                        (
                            IntakeOutcome::Retriaged(id),
                            id,
                            "incident.retriaged",
                            detail,
                        )
                    }
                    None => (IntakeOutcome::Sighting(id), id, "incident.sighting", detail),
                }
            }
        };
        heads.notification = notification;
        plan.notifications.push(NewNotification {
            id: notification,
            delivery: d,
            kind,
            normalized: normalized.to_string(),
            outcome: match outcome {
                IntakeOutcome::Created(_) => "created",
                _ => "sighting",
            },
            incident,
        });
        known.replays.insert(delivery_key, incident);
        heads.audit += 1;
        let detail_json = detail.to_string();
        let hash = chain_hash(
            &heads.audit_hash,
            heads.audit,
            Some(incident),
            d.received_at,
            &d.actor,
            action,
            &detail_json,
        );
        plan.audit.push(AuditRecord {
            id: heads.audit,
            incident_id: Some(incident),
            at: d.received_at,
            actor: d.actor.clone(),
            action: action.to_owned(),
            detail_json,
            prev_hash: std::mem::replace(&mut heads.audit_hash, hash.clone()),
            hash,
        });
        plan.outcomes.push(outcome);
    }
    plan
}

fn to_json(value: &impl serde::Serialize) -> Value {
    // Domain types are plain data; serializing them cannot fail.
    serde_json::to_value(value).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::audit::{GENESIS_HASH, verify_rows};
    use crate::domain::{AccessKeyId, Activity};

    fn leak(key: &str, event: &str) -> Delivery {
        Delivery {
            source: "generic".into(),
            format: "generic",
            delivery_id: event.into(),
            received_at: DateTime::from_timestamp(1_700_000_000, 0).unwrap(),
            body_sha256: "00".into(),
            actor: "source:generic".into(),
            parent: None,
            signal: Signal::Leak(LeakNotification {
                access_key_id: AccessKeyId::parse(key).unwrap(),
                account_id: None,
                account_name: None,
                owner_type: None,
                user_name: None,
                leak_url: None,
                detected_at: None,
                stated_detected_at: None,
                event_id: Some(event.into()),
            }),
        }
    }

    fn activity(key: &str, event: &str) -> Delivery {
        let mut d = leak(key, event);
        d.signal = Signal::Activity(Activity {
            access_key_id: AccessKeyId::parse(key).unwrap(),
            account_id: None,
            event_id: Some(event.into()),
            event_name: Some("RunInstances".into()),
            event_time: None,
            source_ip: None,
            error_code: None,
        });
        d
    }

    fn empty_heads() -> Heads {
        Heads {
            incident: 0,
            notification: 0,
            sighting: 0,
            audit: 0,
            audit_hash: GENESIS_HASH.into(),
        }
    }

    #[test]
    fn one_batch_opens_once_per_key_and_remembers_its_own_deliveries() {
        let batch = [
            activity("LTAI5tKEYONE00001", "a0"),
            leak("LTAI5tKEYONE00001", "e1"),
            leak("LTAI5tKEYONE00001", "e1"),
            leak("LTAI5tKEYONE00001", "e2"),
            activity("LTAI5tKEYONE00001", "a1"),
            leak("LTAI5tKEYTWO00002", "e3"),
        ];
        let plan = plan(&batch, Known::default(), empty_heads());
        let i1 = IncidentId(1);
        assert_eq!(
            plan.outcomes,
            [
                IntakeOutcome::Ignored,
                IntakeOutcome::Created(i1),
                IntakeOutcome::Replay(i1),
                IntakeOutcome::Sighting(i1),
                IntakeOutcome::Sighting(i1),
                IntakeOutcome::Created(IncidentId(2)),
            ]
        );
        assert_eq!(plan.incidents.len(), 2);
        assert_eq!(
            plan.notifications.iter().map(|n| n.id).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        assert_eq!(
            plan.sightings
                .iter()
                .map(|s| s.notification)
                .collect::<Vec<_>>(),
            [2, 3]
        );
        assert_eq!(plan.audit.len(), 4);
        assert!(verify_rows(GENESIS_HASH.into(), &plan.audit).is_ok());
    }

    #[test]
    fn a_later_report_sends_an_unused_key_not_yet_disabled_back_to_triage_once() {
        use crate::domain::Step;
        let judged_on = DateTime::from_timestamp(1_600_000_000, 0).unwrap();
        let waiting = |busy| OpenIncident {
            id: IncidentId(3),
            state: IncidentState::Active(Step::DisableKey),
            path: Some(Path::RamKeyUnused),
            detected_at: judged_on,
            busy,
        };
        let heads = || Heads {
            incident: 3,
            notification: 0,
            sighting: 0,
            audit: 0,
            audit_hash: GENESIS_HASH.into(),
        };
        let key = "LTAI5tKEYOPEN0001";
        let batch = [leak(key, "later-1"), leak(key, "later-2")];
        let mut known = Known::default();
        known.open.insert(key.into(), waiting(false));
        let first = plan(&batch, known, heads());
        assert_eq!(
            first.outcomes,
            [
                IntakeOutcome::Retriaged(IncidentId(3)),
                IntakeOutcome::Sighting(IncidentId(3))
            ]
        );
        assert_eq!(first.retriages.len(), 1);
        assert_eq!(first.retriages[0].to, IncidentState::Active(Step::Triage));
        assert_eq!(first.retriages[0].detected_at, batch[0].received_at);
        assert_eq!(first.audit[0].action, "incident.retriaged");
        assert_eq!(first.sightings.len(), 2, "a re-triage is a sighting too");

        // Being disabled (or leased) by a worker: only a sighting.
        let mut known = Known::default();
        known.open.insert(key.into(), waiting(true));
        let busy = plan(&batch[..1], known, heads());
        assert_eq!(busy.outcomes, [IntakeOutcome::Sighting(IncidentId(3))]);
        assert!(busy.retriages.is_empty());
    }

    #[test]
    fn what_the_database_knows_turns_deliveries_into_replays_and_sightings() {
        let mut known = Known::default();
        known
            .replays
            .insert(("generic".into(), "old".into()), IncidentId(7));
        known.open.insert(
            "LTAI5tKEYOPEN0001".into(),
            OpenIncident::new(IncidentId(9), DateTime::from_timestamp(0, 0).unwrap()),
        );
        let heads = Heads {
            incident: 9,
            notification: 20,
            sighting: 3,
            audit: 40,
            audit_hash: "ab".repeat(32),
        };
        let batch = [
            leak("LTAI5tANYKEY00001", "old"),
            leak("LTAI5tKEYOPEN0001", "new"),
        ];
        let plan = plan(&batch, known, heads);
        assert_eq!(
            plan.outcomes,
            [
                IntakeOutcome::Replay(IncidentId(7)),
                IntakeOutcome::Sighting(IncidentId(9))
            ]
        );
        assert_eq!(plan.notifications[0].id, 21);
        assert_eq!(plan.sightings[0].id, 4);
        assert_eq!(plan.audit[0].id, 41);
        assert_eq!(plan.audit[0].prev_hash, "ab".repeat(32));
    }
}
