//! Planning a batch of deliveries: which open incidents, notifications, sightings,
//! re-triages and audit rows it makes. Pure, so every backend records a batch in a handful of
//! statements whatever its size, and the rules live in one place. The database assigns the
//! ids when the plan is written; until then new rows are referred to by their place in it.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::{Delivery, IntakeOutcome};
use crate::domain::triage::retriages;
use crate::domain::{
    AuditEntry, Event, IncidentId, IncidentState, LeakNotification, Path, Signal, transition,
};

/// An incident of the batch: one the database holds, or the n-th the plan opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum IncidentRef {
    Stored(IncidentId),
    New(usize),
}

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
    pub id: IncidentRef,
    pub state: IncidentState,
    pub path: Option<Path>,
    pub detected_at: DateTime<Utc>,
    /// A worker holds it, or has recorded its intent to disable the key.
    pub busy: bool,
}

impl OpenIncident {
    /// An incident waiting for triage: opened by this batch, or sent back by it.
    fn waiting(id: IncidentRef, detected_at: DateTime<Utc>) -> Self {
        Self {
            id,
            state: IncidentState::Active(crate::domain::Step::Triage),
            path: None,
            detected_at,
            busy: false,
        }
    }
}

pub(super) struct NewIncident<'a> {
    pub parent: Option<IncidentId>,
    pub leak: &'a LeakNotification,
    pub detected_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

pub(super) struct NewNotification<'a> {
    pub delivery: &'a Delivery,
    pub kind: &'static str,
    pub normalized: String,
    pub outcome: &'static str,
    pub incident: IncidentRef,
}

/// An incident sent back to triage by a later report (see `triage::retriages`).
pub(super) struct Retriage<'a> {
    pub incident: IncidentRef,
    pub to: IncidentState,
    pub detected_at: DateTime<Utc>,
    pub leak: &'a LeakNotification,
}

pub(super) struct NewSighting<'a> {
    pub incident: IncidentRef,
    /// Its notification's place in the plan.
    pub notification: usize,
    pub source: &'a str,
    pub kind: &'static str,
    pub observed_at: DateTime<Utc>,
    pub detail: String,
}

/// An audit row whose detail still lacks the ids the database assigns.
pub(super) struct AuditDraft {
    pub at: DateTime<Utc>,
    pub incident: IncidentRef,
    pub actor: String,
    pub action: &'static str,
    pub detail: Value,
    pub notification: usize,
    pub sighting: Option<usize>,
}

/// Everything a batch writes, in insertion order.
#[derive(Default)]
pub(super) struct Plan<'a> {
    pub outcomes: Vec<Outcome>,
    pub incidents: Vec<NewIncident<'a>>,
    pub notifications: Vec<NewNotification<'a>>,
    pub sightings: Vec<NewSighting<'a>>,
    pub retriages: Vec<Retriage<'a>>,
    /// Incidents that received a sighting, with the time to record as their `updated_at`.
    pub touched: HashMap<IncidentRef, DateTime<Utc>>,
    pub audit: Vec<AuditDraft>,
}

/// An [`IntakeOutcome`] before the database has numbered the new incidents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    Created(IncidentRef),
    Sighting(IncidentRef),
    Retriaged(IncidentRef),
    Replay(IncidentRef),
    Ignored,
}

/// The ids the database gave the plan's new rows, in plan order.
#[derive(Debug, Default)]
pub(super) struct Assigned {
    pub incidents: Vec<IncidentId>,
    pub notifications: Vec<i64>,
    pub sightings: Vec<i64>,
}

impl Assigned {
    pub fn incident(&self, id: IncidentRef) -> IncidentId {
        match id {
            IncidentRef::Stored(id) => id,
            IncidentRef::New(n) => self.incidents[n],
        }
    }
}

impl Plan<'_> {
    /// The outcomes, with the ids the database assigned.
    pub fn outcomes(&self, ids: &Assigned) -> Vec<IntakeOutcome> {
        self.outcomes
            .iter()
            .map(|o| match *o {
                Outcome::Created(i) => IntakeOutcome::Created(ids.incident(i)),
                Outcome::Sighting(i) => IntakeOutcome::Sighting(ids.incident(i)),
                Outcome::Retriaged(i) => IntakeOutcome::Retriaged(ids.incident(i)),
                Outcome::Replay(i) => IntakeOutcome::Replay(ids.incident(i)),
                Outcome::Ignored => IntakeOutcome::Ignored,
            })
            .collect()
    }

    /// The audit rows, their details completed with the ids the database assigned.
    pub fn audit(&self, ids: &Assigned) -> Vec<(DateTime<Utc>, AuditEntry)> {
        self.audit
            .iter()
            .map(|draft| {
                let mut detail = draft.detail.clone();
                detail["notification_id"] = ids.notifications[draft.notification].into();
                if let Some(sighting) = draft.sighting {
                    detail["sighting_id"] = ids.sightings[sighting].into();
                }
                let entry = AuditEntry {
                    incident_id: Some(ids.incident(draft.incident)),
                    actor: draft.actor.clone(),
                    action: draft.action.to_owned(),
                    detail,
                };
                (draft.at, entry)
            })
            .collect()
    }
}

pub(super) fn plan(batch: &[Delivery], mut known: Known) -> Plan<'_> {
    let mut plan = Plan::default();
    // Deliveries of this batch, recorded earlier in it.
    let mut recorded: HashMap<(&str, &str), IncidentRef> = HashMap::new();
    for d in batch {
        let delivery_key = (d.source.as_str(), d.delivery_id.as_str());
        let earlier = recorded.get(&delivery_key).copied().or_else(|| {
            let stored = (d.source.clone(), d.delivery_id.clone());
            known
                .replays
                .get(&stored)
                .map(|&id| IncidentRef::Stored(id))
        });
        if let Some(incident) = earlier {
            plan.outcomes.push(Outcome::Replay(incident));
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
        let notification = plan.notifications.len();
        let (outcome, incident, action, detail, sighting) = match (&d.signal, open) {
            (Signal::Activity(_), None) => {
                plan.outcomes.push(Outcome::Ignored);
                continue;
            }
            (Signal::Leak(leak), None) => {
                let id = IncidentRef::New(plan.incidents.len());
                plan.incidents.push(NewIncident {
                    parent: d.parent,
                    leak,
                    detected_at: reported(leak),
                    created_at: d.received_at,
                });
                known
                    .open
                    .insert(key.to_owned(), OpenIncident::waiting(id, reported(leak)));
                let detail = serde_json::json!({
                    "source": d.source,
                    "delivery_id": d.delivery_id,
                    "leak": normalized,
                });
                (Outcome::Created(id), id, "incident.opened", detail, None)
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
                let sighting = plan.sightings.len();
                plan.sightings.push(NewSighting {
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
                            to,
                            detected_at,
                            leak,
                        });
                        // Later deliveries of this batch find it waiting for triage.
                        known
                            .open
                            .insert(key.to_owned(), OpenIncident::waiting(id, detected_at));
                        let action = "incident.retriaged";
                        (Outcome::Retriaged(id), id, action, detail, Some(sighting))
                    }
                    None => (
                        Outcome::Sighting(id),
                        id,
                        "incident.sighting",
                        detail,
                        Some(sighting),
                    ),
                }
            }
        };
        plan.notifications.push(NewNotification {
            delivery: d,
            kind,
            normalized: normalized.to_string(),
            outcome: match outcome {
                Outcome::Created(_) => "created",
                _ => "sighting",
            },
            incident,
        });
        recorded.insert(delivery_key, incident);
        plan.audit.push(AuditDraft {
            at: d.received_at,
            incident,
            actor: d.actor.clone(),
            action,
            detail,
            notification,
            sighting,
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

    fn assigned(plan: &Plan<'_>, first_incident: i64) -> Assigned {
        Assigned {
            incidents: (0..plan.incidents.len() as i64)
                .map(|n| IncidentId(first_incident + n))
                .collect(),
            notifications: (1..=plan.notifications.len() as i64).collect(),
            sightings: (1..=plan.sightings.len() as i64).collect(),
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
        let plan = plan(&batch, Known::default());
        let ids = assigned(&plan, 1);
        let i1 = IncidentId(1);
        assert_eq!(
            plan.outcomes(&ids),
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
        assert_eq!(plan.notifications.len(), 4);
        assert_eq!(
            plan.sightings
                .iter()
                .map(|s| s.notification)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        let audit = plan.audit(&ids);
        assert_eq!(
            audit
                .iter()
                .map(|(_, e)| (e.action.as_str(), e.detail["notification_id"].as_i64()))
                .collect::<Vec<_>>(),
            [
                ("incident.opened", Some(1)),
                ("incident.sighting", Some(2)),
                ("incident.sighting", Some(3)),
                ("incident.opened", Some(4)),
            ]
        );
        assert_eq!(audit[2].1.detail["sighting_id"], 2);
        assert_eq!(audit[3].1.incident_id, Some(IncidentId(2)));
    }

    #[test]
    fn a_later_report_sends_an_unused_key_not_yet_disabled_back_to_triage_once() {
        use crate::domain::Step;
        let judged_on = DateTime::from_timestamp(1_600_000_000, 0).unwrap();
        let stored = IncidentRef::Stored(IncidentId(3));
        let waiting = |busy| OpenIncident {
            id: stored,
            state: IncidentState::Active(Step::DisableKey),
            path: Some(Path::RamKeyUnused),
            detected_at: judged_on,
            busy,
        };
        let key = "LTAI5tKEYOPEN0001";
        let batch = [leak(key, "later-1"), leak(key, "later-2")];
        let mut known = Known::default();
        known.open.insert(key.into(), waiting(false));
        let first = plan(&batch, known);
        assert_eq!(
            first.outcomes,
            [Outcome::Retriaged(stored), Outcome::Sighting(stored)]
        );
        assert_eq!(first.retriages.len(), 1);
        assert_eq!(first.retriages[0].to, IncidentState::Active(Step::Triage));
        assert_eq!(first.retriages[0].detected_at, batch[0].received_at);
        assert_eq!(first.audit[0].action, "incident.retriaged");
        assert_eq!(first.sightings.len(), 2, "a re-triage is a sighting too");

        // Being disabled (or leased) by a worker: only a sighting.
        let mut known = Known::default();
        known.open.insert(key.into(), waiting(true));
        let busy = plan(&batch[..1], known);
        assert_eq!(busy.outcomes, [Outcome::Sighting(stored)]);
        assert!(busy.retriages.is_empty());
    }

    #[test]
    fn what_the_database_knows_turns_deliveries_into_replays_and_sightings() {
        let mut known = Known::default();
        known
            .replays
            .insert(("generic".into(), "old".into()), IncidentId(7));
        let open = IncidentRef::Stored(IncidentId(9));
        known.open.insert(
            "LTAI5tKEYOPEN0001".into(),
            OpenIncident::waiting(open, DateTime::from_timestamp(0, 0).unwrap()),
        );
        let batch = [
            leak("LTAI5tANYKEY00001", "old"),
            leak("LTAI5tKEYOPEN0001", "new"),
        ];
        let plan = plan(&batch, known);
        assert_eq!(
            plan.outcomes,
            [
                Outcome::Replay(IncidentRef::Stored(IncidentId(7))),
                Outcome::Sighting(open)
            ]
        );
        let ids = Assigned {
            incidents: vec![],
            notifications: vec![21],
            sightings: vec![4],
        };
        let audit = plan.audit(&ids);
        assert_eq!(audit[0].1.detail["notification_id"], 21);
        assert_eq!(audit[0].1.detail["sighting_id"], 4);
        assert_eq!(audit[0].1.incident_id, Some(IncidentId(9)));
    }
}
