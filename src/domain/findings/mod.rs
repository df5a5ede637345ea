//! What each step found: one typed record per step, kept on the incident as JSON. A step
//! hands on to later steps only through these fields, and changes them only through a
//! `FindingsPatch` the store applies to the whole record in the transaction of the step's
//! outcome (or the operator's event).

mod approvals;
mod steps;
#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

use super::billing::BillingFindings;
use super::forensics::AuditFindings;
use super::{IncidentState, Reason, Step};
pub use approvals::Approvals;
pub use steps::{
    Approval, AttackerArtefacts, AttackerLogins, Cancel, Cutover, Deletion, Disable, Fence, Logon,
    LogonState, Mfa, ProtectedStop, Reenable, Revoke, Rotation, RotationSink, Triage,
    UsageEvidence, Verified,
};

/// Everything the steps found about one incident. The JSON keys are the step names the API
/// has always shown (`approval_<step>` for approvals); a step that has not run is absent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub triage: Option<Triage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected: Option<ProtectedStop>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoke: Option<Revoke>,
    /// The network fence, set in the revoke step after the Deny policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fence: Option<Fence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_key: Option<Disable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa: Option<Mfa>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit: Option<AuditFindings>,
    /// `audit` in a line, kept with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audit_summary: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attacker_logins: Option<AttackerLogins>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attacker_artefacts: Option<AttackerArtefacts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing: Option<BillingFindings>,
    /// `billing` in a line, kept with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_summary: Option<String>,
    /// The sink an operator chose with `set-rotation`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation_sink: Option<RotationSink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotation: Option<Rotation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cutover: Option<Cutover>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disable_old_key: Option<Disable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_key: Option<Deletion>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reenable: Option<Reenable>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel: Option<Cancel>,
    #[serde(flatten)]
    pub approvals: Approvals,
}

/// One record, replacing what the findings held in its place.
#[derive(Debug, Clone, PartialEq)]
pub enum Finding {
    Triage(Triage),
    Protected(ProtectedStop),
    Revoke(Revoke),
    Fence(Fence),
    DisableKey(Disable),
    Mfa(Mfa),
    /// Also sets `audit_summary`.
    Audit(Box<AuditFindings>),
    AttackerLogins(AttackerLogins),
    AttackerArtefacts(AttackerArtefacts),
    /// Also sets `billing_summary`.
    Billing(Box<BillingFindings>),
    /// `None`: the operator left the rotation to a person after all.
    RotationSink(Option<RotationSink>),
    Rotation(Rotation),
    Cutover(Cutover),
    DisableOldKey(Disable),
    DeleteKey(Deletion),
    Reenable(Reenable),
    Cancel(Cancel),
    Approval(Step, Approval),
}

/// The records a step's outcome (or an operator's event) writes, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FindingsPatch(Vec<Finding>);

impl FindingsPatch {
    pub fn one(finding: Finding) -> Self {
        Self(vec![finding])
    }

    pub fn push(&mut self, finding: Finding) {
        self.0.push(finding);
    }

    /// Appends `later`'s records after these, as if written after them.
    pub fn extend(&mut self, later: FindingsPatch) {
        self.0.extend(later.0);
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The step whose approval this patch asks for afresh (`before` held no request for it).
    pub fn approval_requested(&self, before: &Findings) -> Option<Step> {
        self.0.iter().find_map(|finding| match finding {
            Finding::Approval(step, approval)
                if !approval.is_granted() && before.approvals.get(*step).is_none() =>
            {
                Some(*step)
            }
            _ => None,
        })
    }
}

impl Findings {
    pub fn apply(&mut self, patch: FindingsPatch) {
        for finding in patch.0 {
            self.set(finding);
        }
    }

    fn set(&mut self, finding: Finding) {
        match finding {
            Finding::Triage(t) => self.triage = Some(t),
            Finding::Protected(p) => self.protected = Some(p),
            Finding::Revoke(r) => self.revoke = Some(r),
            Finding::Fence(f) => self.fence = Some(f),
            Finding::DisableKey(d) => self.disable_key = Some(d),
            Finding::Mfa(m) => self.mfa = Some(m),
            Finding::Audit(a) => {
                self.audit_summary = Some(a.summary());
                self.audit = Some(*a);
            }
            Finding::AttackerLogins(l) => self.attacker_logins = Some(l),
            Finding::AttackerArtefacts(a) => self.attacker_artefacts = Some(a),
            Finding::Billing(b) => {
                self.billing_summary = Some(b.summary());
                self.billing = Some(*b);
            }
            Finding::RotationSink(s) => self.rotation_sink = s,
            Finding::Rotation(r) => self.rotation = Some(r),
            Finding::Cutover(c) => self.cutover = Some(c),
            Finding::DisableOldKey(d) => self.disable_old_key = Some(d),
            Finding::DeleteKey(d) => self.delete_key = Some(d),
            Finding::Reenable(r) => self.reenable = Some(r),
            Finding::Cancel(c) => self.cancel = Some(c),
            Finding::Approval(step, a) => self.approvals.set(step, a),
        }
    }

    /// The step whose approval was asked for and not yet given (the latest asked, should
    /// there be more); kept beside the findings so the store can filter on it.
    pub fn pending_approval(&self) -> Option<Step> {
        self.approvals
            .iter()
            .filter(|(_, a)| !a.is_granted())
            .max_by_key(|(_, a)| a.requested_at)
            .map(|(step, _)| step)
    }

    /// The approval `state` waits for: its step's request, unanswered (or timed out).
    pub fn awaited_approval(&self, state: IncidentState) -> Option<(Step, &Approval)> {
        let step = match state {
            IncidentState::Active(step) => step,
            IncidentState::NeedsAttention(Reason::ApprovalTimedOut(step)) => step,
            _ => return None,
        };
        let approval = self.approvals.get(step)?;
        (!approval.is_granted() && approval.requested_at.is_some()).then_some((step, approval))
    }

    /// When the leaked key was verified disabled (after a rotation, the old key's step).
    pub fn disabled_at(&self) -> Option<chrono::DateTime<chrono::Utc>> {
        self.disable_old_key
            .as_ref()
            .or(self.disable_key.as_ref())
            .map(|d| d.disabled_at)
    }

    /// The key's user principal name, as triage proved it.
    pub fn user_principal_name(&self) -> Option<&str> {
        self.triage.as_ref()?.user_principal_name.as_deref()
    }
}
