//! What the attacker left, handled by both audit passes: the console logons of users the
//! leaked key created, switched off, and for a chain incident the checklist of everything the
//! attacker created, for the person who cleans up.

use super::context::{StepContext, StepError};
use super::logins;
use crate::domain::findings::AttackerArtefacts;
use crate::domain::forensics::AuditFindings;
use crate::domain::{Finding, FindingsPatch, Incident, IncidentState, Step};

/// A chain incident's parent, as far as the checklist needs it.
pub(super) enum Parent {
    /// Not a chain incident, or its parent is gone.
    None,
    /// The parent's audit opened this incident and is recorded just after it.
    AuditPending,
    Ready(Box<Incident>),
}

impl Parent {
    pub fn incident(&self) -> Option<&Incident> {
        match self {
            Self::Ready(parent) => Some(parent),
            _ => None,
        }
    }
}

/// The parent of a chain incident, once its audit findings are recorded (the checklist starts
/// from them), so a pass waits for them before it spends ActionTrail's quota.
pub(super) async fn parent(ctx: &StepContext<'_>) -> Result<Parent, StepError> {
    let Some(parent_id) = ctx.incident.parent_incident_id else {
        return Ok(Parent::None);
    };
    let parent = ctx.inner.store.get_incident(parent_id).await?;
    Ok(match parent.map(|found| found.incident) {
        None => Parent::None,
        Some(parent) if parent.findings.audit.is_none() && parent.state.is_open() => {
            Parent::AuditPending
        }
        Some(parent) => Parent::Ready(Box::new(parent)),
    })
}

/// The findings about what the attacker left, given this pass's audit and the parent.
pub(super) async fn findings(
    ctx: &mut StepContext<'_>,
    own: &AuditFindings,
    parent: Option<&Incident>,
) -> Result<FindingsPatch, StepError> {
    let mut out = FindingsPatch::default();
    if ctx.incident.state == IncidentState::Active(Step::Cancelling) {
        // A settle pass due while a cancel puts things back must not switch logons off again.
        return Ok(out);
    }
    let logons = logins::disable_created(ctx, own).await?;
    if let Some(parent_id) = ctx.incident.parent_incident_id {
        let mut items = Vec::new();
        let mut console_logons = Vec::new();
        if let Some(parent) = parent {
            if let Some(audit) = &parent.findings.audit {
                items.extend(audit.checklist());
            }
            if let Some(theirs) = &parent.findings.attacker_logins {
                console_logons.extend(theirs.users.iter().cloned());
            }
        }
        items.extend(own.checklist());
        let mut seen = std::collections::HashSet::new();
        items.retain(|item| seen.insert(item.clone()));
        console_logons.extend(logons.users.iter().cloned());
        out.push(Finding::AttackerArtefacts(AttackerArtefacts {
            created_by_incident: parent_id,
            parent_access_key_id: parent.map(|p| p.access_key_id.clone()),
            items,
            console_logons,
        }));
    }
    out.push(Finding::AttackerLogins(logons));
    Ok(out)
}
