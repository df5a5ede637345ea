//! The hand-over from triage to containment inside one claim. Triage only reads, so its
//! outcome need not be durable before containment starts: it is carried in memory and
//! committed with containment's first write (the act's intent, which must be durable before
//! the act anyway). A crash before that commit leaves the incident in triage, which simply
//! runs again; one commit then stands where three did (triage's outcome, the next claim,
//! the intent).

use super::context::OwnKeys;
use crate::domain::{AuditEntry, Incident, IncidentState, Schedule, Step};
use crate::store::{IncidentUpdate, ScheduleChange};

/// A step's outcome written with the next step's first write, the lease kept between them.
#[derive(Debug)]
pub(crate) struct Carried {
    update: IncidentUpdate,
    schedule: ScheduleChange,
    audit: Vec<AuditEntry>,
    /// What triage read that the act starts from (not written).
    pub(super) keys: Option<OwnKeys>,
}

/// The step to run next in the same claim, and the incident as it will be once the step
/// before's outcome is written.
pub(super) struct Handover {
    pub step: Step,
    pub incident: Incident,
    pub schedule: Schedule,
    pub carried: Carried,
}

/// Containment's act follows triage in the same claim; every other step ends its claim.
pub(super) fn next_step(from: Step, to: IncidentState) -> Option<Step> {
    match (from, to) {
        (Step::Triage, IncidentState::Active(next @ (Step::Revoke | Step::DisableKey))) => {
            Some(next)
        }
        _ => None,
    }
}

impl Handover {
    /// Carries `update` (triage's verdict) into `step`, with the incident and schedule as
    /// `update` and `schedule` leave them; the lease is kept.
    pub fn new(
        step: Step,
        incident: &Incident,
        schedule: &Schedule,
        update: IncidentUpdate,
        mut change: ScheduleChange,
        audit: Vec<AuditEntry>,
        keys: Option<OwnKeys>,
    ) -> Self {
        let mut next = incident.clone();
        if let Some(state) = update.state {
            next.state = state;
        }
        if let Some(path) = update.path {
            next.path = Some(path);
        }
        if let Some((owner_type, user_name)) = &update.owner {
            next.owner_type = *owner_type;
            next.user_name.clone_from(user_name);
        }
        if let Some(error) = &update.last_error {
            next.last_error.clone_from(error);
        }
        if let Some(dry_run) = update.dry_run {
            next.dry_run = dry_run;
        }
        next.findings.apply(update.findings.clone());
        let mut schedule = schedule.clone();
        if let Some(at) = change.next_attempt_at {
            schedule.next_attempt_at = at;
        }
        if let Some(at) = change.settle_audit_at {
            schedule.settle_audit_at = at;
        }
        if let Some(attempts) = change.step_attempts {
            schedule.step_attempts = attempts;
        }
        change.release = false;
        Self {
            step,
            incident: next,
            schedule,
            carried: Carried {
                update,
                schedule: change,
                audit,
                keys,
            },
        }
    }
}

impl Carried {
    pub fn into_parts(self) -> (IncidentUpdate, ScheduleChange, Vec<AuditEntry>) {
        (self.update, self.schedule, self.audit)
    }

    /// This outcome followed by a later write that changes no state: one update, the later
    /// write's fields winning, findings and audit rows in order.
    pub fn merged(
        self,
        later: IncidentUpdate,
        then: ScheduleChange,
        audit: Vec<AuditEntry>,
    ) -> (IncidentUpdate, ScheduleChange, Vec<AuditEntry>) {
        let Self {
            update: mut first,
            schedule: before,
            audit: mut rows,
            keys: _,
        } = self;
        first.findings.extend(later.findings);
        let update = IncidentUpdate {
            state: later.state.or(first.state),
            path: later.path.or(first.path),
            owner: later.owner.or(first.owner),
            contained_at: later.contained_at.or(first.contained_at),
            last_error: later.last_error.or(first.last_error),
            findings: first.findings,
            dry_run: later.dry_run.or(first.dry_run),
        };
        let schedule = ScheduleChange {
            next_attempt_at: then.next_attempt_at.or(before.next_attempt_at),
            settle_audit_at: then.settle_audit_at.or(before.settle_audit_at),
            step_attempts: then.step_attempts.or(before.step_attempts),
            release: then.release,
        };
        rows.extend(audit);
        (update, schedule, rows)
    }
}
