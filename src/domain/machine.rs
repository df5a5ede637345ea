//! The remediation state machine: one pure transition function that the worker, operator
//! actions and audit replay all use. Any pair it does not list is an `IllegalTransition`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A step of the runbook an incident waits for or is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    Triage,
    DisableKey,
    Revoke,
    EnforceMfa,
    Audit,
    Billing,
    /// Create the new key and hand it to the workload.
    Rotate,
    /// Wait until the workload uses the new key and no longer the old one.
    AwaitingCutover,
    DisableOldKey,
    /// Delete the leaked key once the grace period after disabling it is over.
    DeleteKey,
    /// Wait for a person: the key is in use and akguard is not set up to rotate it.
    AwaitingOperator,
    /// An operator asked, during the grace period, for the disabled key back.
    Reenable,
    /// A false positive: undo what akguard changed, then close.
    Cancelling,
}

impl Step {
    pub const ALL: [Step; 13] = [
        Self::Triage,
        Self::DisableKey,
        Self::Revoke,
        Self::EnforceMfa,
        Self::Audit,
        Self::Billing,
        Self::Rotate,
        Self::AwaitingCutover,
        Self::DisableOldKey,
        Self::DeleteKey,
        Self::AwaitingOperator,
        Self::Reenable,
        Self::Cancelling,
    ];

    /// The steps on the way to containment, which go before forensics when workers are scarce.
    pub const CONTAINMENT: [Step; 3] = [Self::Triage, Self::Revoke, Self::DisableKey];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Triage => "triage",
            Self::DisableKey => "disable_key",
            Self::Revoke => "revoke",
            Self::EnforceMfa => "enforce_mfa",
            Self::Audit => "audit",
            Self::Billing => "billing",
            Self::Rotate => "rotate",
            Self::AwaitingCutover => "awaiting_cutover",
            Self::DisableOldKey => "disable_old_key",
            Self::DeleteKey => "delete_key",
            Self::AwaitingOperator => "awaiting_operator",
            Self::Reenable => "reenable",
            Self::Cancelling => "cancelling",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// Which branch of the runbook triage chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Path {
    /// A RAM user's key that a workload uses and whose rotation akguard is configured to do:
    /// contain, rotate, disable, delete.
    RamKeyRotatable,
    /// A RAM user's key that a workload uses, rotated by a person: contain, wait for the
    /// person (who may let akguard rotate after all), then disable and delete.
    RamKeyInUse,
    /// A RAM user's key nobody uses: disable, then delete after the grace period.
    RamKeyUnused,
    /// The Alibaba Cloud account's own key: RAM cannot restrict it.
    AccountKey,
    /// A temporary STS key: it expires; the role is what to restrict.
    StsKey,
    /// A key another incident's leaked key created (a chain incident): the attacker's, which
    /// no workload depends on. Disable at once, delete after the grace period, then a person
    /// removes what the attacker created.
    AttackerKey,
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RamKeyRotatable => "ram_key_rotatable",
            Self::RamKeyInUse => "ram_key_in_use",
            Self::RamKeyUnused => "ram_key_unused",
            Self::AccountKey => "account_key",
            Self::StsKey => "sts_key",
            Self::AttackerKey => "attacker_key",
        }
    }

    pub const ALL: [Path; 6] = [
        Self::RamKeyRotatable,
        Self::RamKeyInUse,
        Self::RamKeyUnused,
        Self::AccountKey,
        Self::StsKey,
        Self::AttackerKey,
    ];

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.as_str() == raw)
    }

    /// The steps after triage, in order.
    fn steps(self) -> &'static [Step] {
        match self {
            Self::RamKeyRotatable => &[
                Step::Revoke,
                Step::EnforceMfa,
                Step::Audit,
                Step::Billing,
                Step::Rotate,
                Step::AwaitingCutover,
                Step::DisableOldKey,
                Step::DeleteKey,
            ],
            Self::RamKeyInUse => &[
                Step::Revoke,
                Step::EnforceMfa,
                Step::Audit,
                Step::Billing,
                Step::AwaitingOperator,
                Step::AwaitingCutover,
                Step::DisableOldKey,
                Step::DeleteKey,
            ],
            Self::RamKeyUnused | Self::AttackerKey => &[
                Step::DisableKey,
                Step::Audit,
                Step::Billing,
                Step::DeleteKey,
            ],
            Self::AccountKey => &[Step::Audit, Step::Billing],
            Self::StsKey => &[Step::Audit],
        }
    }

    /// Where the incident ends once the automated steps of this path are done.
    fn end(self) -> IncidentState {
        match self {
            Self::RamKeyRotatable | Self::RamKeyUnused | Self::RamKeyInUse => {
                IncidentState::Resolved
            }
            Self::AccountKey => IncidentState::NeedsAttention(Reason::AccountKey),
            Self::StsKey => IncidentState::NeedsAttention(Reason::StsKey),
            Self::AttackerKey => IncidentState::NeedsAttention(Reason::AttackerArtefacts),
        }
    }
}

/// Why an incident waits for a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// An operator re-enabled the leaked key during the grace period.
    Reenabled,
    AccountKey,
    StsKey,
    /// No RAM user, account or role could be shown to own the key.
    OwnerUnknown,
    /// The user already has as many policies as RAM allows.
    PolicyLimit,
    /// The user holds another key akguard did not create, so rotation cannot proceed safely.
    SecondKey,
    /// A step failed for good; an operator may retry it.
    StepFailed(Step),
    /// A step waited for an operator's approval past `approvals.deadline`.
    ApprovalTimedOut(Step),
    /// The key is akguard's own, or belongs to an identity in `protect.*`: akguard makes
    /// no change to it, whatever the step.
    ProtectedIdentity,
    /// The attacker's key is gone; what the attacker created is for a person to remove.
    AttackerArtefacts,
    /// The notification names an account akguard is not configured for: no call was made.
    /// The step is the one to resume once the account is configured.
    UnknownAccount(Step),
}

impl Reason {
    /// The step to resume, for the reasons that keep one.
    pub fn resume_step(self) -> Option<Step> {
        match self {
            Self::StepFailed(step) | Self::ApprovalTimedOut(step) | Self::UnknownAccount(step) => {
                Some(step)
            }
            _ => None,
        }
    }
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reenabled => "reenabled",
            Self::AccountKey => "account_key",
            Self::StsKey => "sts_key",
            Self::OwnerUnknown => "owner_unknown",
            Self::PolicyLimit => "policy_limit",
            Self::SecondKey => "second_key",
            Self::StepFailed(_) => "step_failed",
            Self::ApprovalTimedOut(_) => "approval_timed_out",
            Self::ProtectedIdentity => "protected_identity",
            Self::AttackerArtefacts => "attacker_artefacts",
            Self::UnknownAccount(_) => "unknown_account",
        }
    }

    /// `resume` is the failed step, stored beside `step_failed`.
    pub fn parse(raw: &str, resume: Option<Step>) -> Option<Self> {
        Some(match raw {
            "reenabled" => Self::Reenabled,
            "account_key" => Self::AccountKey,
            "sts_key" => Self::StsKey,
            "owner_unknown" => Self::OwnerUnknown,
            "policy_limit" => Self::PolicyLimit,
            "second_key" => Self::SecondKey,
            "step_failed" => Self::StepFailed(resume?),
            "approval_timed_out" => Self::ApprovalTimedOut(resume?),
            "protected_identity" => Self::ProtectedIdentity,
            "attacker_artefacts" => Self::AttackerArtefacts,
            "unknown_account" => Self::UnknownAccount(resume?),
            _ => return None,
        })
    }

    /// What a person must do, in the runbook's words.
    pub fn explanation(self) -> String {
        match self {
            Self::Reenabled => "An operator re-enabled the leaked key during the grace period because \
                something broke. The Deny policy stays attached. Move the workload to its new key, \
                then retry the incident to disable and delete the leaked key again."
                .into(),
            Self::AccountKey => "This is the Alibaba Cloud account's own key, which RAM policies cannot \
                restrict. If it is not in use, disable and delete it in the console now; if it is in \
                use, create a new key, switch the workload, then disable and delete this one. Then \
                stop using account keys: use RAM users or roles."
                .into(),
            Self::StsKey => "This is a temporary STS key: it expires on its own. Restrict the role it \
                was issued for (its trust policy and permissions) and review the findings for what it did."
                .into(),
            Self::OwnerUnknown => "No RAM user or account could be shown to own this key (IMS, ActionTrail \
                and the user's key list disagree or know nothing). Check the AccessKey ID and who owns it; \
                akguard acts only on a key it has proven belongs to a user."
                .into(),
            Self::PolicyLimit => "The key's RAM user already has as many policies attached as RAM allows, \
                so the Deny policy could not be attached. Detach a policy the user does not need, then \
                retry, or disable the key now if the workload can stop."
                .into(),
            Self::SecondKey => "The key's user holds a second AccessKey that akguard did not create. If it \
                appeared after the leak it may be the attacker's way back in: check the findings and \
                ActionTrail, then disable or delete it (or, if a workload uses it, rotate by hand). \
                Retry the incident once the user holds only the leaked key."
                .into(),
            Self::AttackerArtefacts => "The attacker's key is disabled and deleted. Remove what \
                the attacker created (listed in this explanation), then close the incident \
                with cancel ({\"reason\": \"...\", \"force\": true}): the key is gone, so nothing \
                comes back."
                .into(),
            Self::ApprovalTimedOut(step) => format!(
                "The {} step needs an operator's approval and none came before approvals.deadline. \
                 Approve it to let it run.",
                step.as_str()
            ),
            Self::ProtectedIdentity => "This key belongs to an identity akguard must never act on \
                (one listed in protect.users or protect.access_key_ids, or akguard's own). akguard \
                made no change. A person must handle it now: if the key has leaked, rotate it by \
                hand, disable and delete the leaked one, and review findings.audit."
                .into(),
            Self::UnknownAccount(_) => "The notification names an Alibaba Cloud account akguard is not \
                configured for, so akguard made no call at all. If the account is yours, add it under \
                [[alibaba.accounts]] (its account_id and a role akguard may assume there), restart, \
                and retry the incident; otherwise handle the key by hand and cancel the incident."
                .into(),
            Self::StepFailed(step) => format!(
                "The {} step failed and akguard stopped retrying; the error and its RequestId are on \
                 the incident. Fix the cause (often a missing permission of akguard's identity), then \
                 retry the incident.",
                step.as_str()
            ),
        }
    }
}

/// Where an incident stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncidentState {
    Active(Step),
    NeedsAttention(Reason),
    Resolved,
    Cancelled,
}

impl IncidentState {
    /// The database and API name. A new incident waits for triage, so that state is `new`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active(Step::Triage) => "new",
            Self::Active(step) => step.as_str(),
            Self::NeedsAttention(_) => "needs_attention",
            Self::Resolved => "resolved",
            Self::Cancelled => "cancelled",
        }
    }

    /// Reads the stored state, with the reason and the step to resume for `needs_attention`.
    pub fn parse(raw: &str, reason: Option<&str>, resume: Option<&str>) -> Option<Self> {
        Some(match raw {
            "new" => Self::Active(Step::Triage),
            "needs_attention" => {
                Self::NeedsAttention(Reason::parse(reason?, resume.and_then(Step::parse))?)
            }
            "resolved" => Self::Resolved,
            "cancelled" => Self::Cancelled,
            other => Self::Active(Step::parse(other).filter(|s| *s != Step::Triage)?),
        })
    }

    /// Every stored state name, for validating filters.
    pub const NAMES: [&'static str; 16] = [
        "new",
        "disable_key",
        "revoke",
        "enforce_mfa",
        "audit",
        "billing",
        "rotate",
        "awaiting_cutover",
        "disable_old_key",
        "delete_key",
        "awaiting_operator",
        "reenable",
        "cancelling",
        "needs_attention",
        "resolved",
        "cancelled",
    ];

    /// Whether any further report of the key belongs to this incident.
    pub fn is_open(self) -> bool {
        !matches!(self, Self::Resolved | Self::Cancelled)
    }

    /// What a person must do now, if anything; `dry_run` when nothing was really changed.
    pub fn explanation(self, dry_run: bool) -> Option<String> {
        match self {
            Self::NeedsAttention(reason) => Some(reason.explanation()),
            Self::Active(Step::AwaitingOperator) if dry_run => Some(
                "Would be contained: the Deny policy would be attached and MFA would be required. \
                 The key is in use and akguard is not set up to rotate it. Either give akguard a \
                 sink (set-rotation) and it would rotate the key, or move the workload to a new key \
                 yourself and confirm the cutover (confirm-cutover); akguard would then check the \
                 old key is unused, and disable and delete it."
                    .into(),
            ),
            Self::Active(Step::AwaitingOperator) => Some(
                "Contained: the Deny policy is attached and MFA is required. The key is in use and \
                 akguard is not set up to rotate it. Either give akguard a sink (set-rotation) and it \
                 rotates the key, or move the workload to a new key yourself and confirm the cutover \
                 (confirm-cutover); akguard then checks the old key is unused, disables and deletes it."
                    .into(),
            ),
            _ => None,
        }
    }

    /// The step shown to on-call staff.
    pub fn current_step(self) -> Option<Step> {
        match self {
            Self::Active(step) => Some(step),
            _ => None,
        }
    }
}

impl fmt::Display for IncidentState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What happened to an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// Triage chose a path.
    Triaged(Path),
    /// The current step finished; the incident's path says what comes next.
    StepDone(Path),
    /// The current step found that a person must act.
    Halted(Reason),
    /// An operator asks a failed step to run again.
    Retry,
    /// An operator confirms that the workload has moved to the new key (or, for a key
    /// rotated by hand, off the leaked one).
    ConfirmCutover,
    /// An operator lets akguard rotate the key (a sink is now known).
    SetRotation,
    /// An operator says this key must be rotated by a person after all.
    ClearRotation,
    /// An operator wants the disabled key back during the grace period.
    Reenable,
    /// An operator lets a step that needs approval run.
    Approve,
    /// A step that needs approval waited past its deadline.
    ApprovalExpired,
    /// An operator closes the incident (a false positive, or handled elsewhere).
    Cancel,
    /// The cancel step put back what akguard had changed. It needs no path: an incident
    /// triage never placed (owner unknown) can be cancelled too.
    Undone,
    /// A report detected later than the time an unused key was judged on, before its key
    /// was disabled (`triage::retriages`): judge again.
    Retriage,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{event:?} is not possible while the incident is {state}")]
pub struct IllegalTransition {
    pub state: IncidentState,
    pub event: Event,
}

/// The one place that says which state follows which.
pub fn transition(state: IncidentState, event: Event) -> Result<IncidentState, IllegalTransition> {
    use IncidentState::*;
    let illegal = Err(IllegalTransition { state, event });
    match (state, event) {
        (Active(Step::Triage), Event::Triaged(path)) => Ok(Active(path.steps()[0])),
        // Undoing is not on any path: once done, the incident is closed.
        (Active(Step::Cancelling), Event::Undone) => Ok(Cancelled),
        (Active(step), Event::StepDone(path)) if step != Step::Triage => {
            let steps = path.steps();
            match steps.iter().position(|s| *s == step) {
                Some(i) if i + 1 < steps.len() => Ok(Active(steps[i + 1])),
                Some(_) => Ok(path.end()),
                None => illegal,
            }
        }
        // Whatever the step, a protected identity stops it before any change.
        (Active(_), Event::Halted(Reason::ProtectedIdentity)) => {
            Ok(NeedsAttention(Reason::ProtectedIdentity))
        }
        // Whatever the step, an account akguard cannot act in stops it before any call.
        (Active(step), Event::Halted(Reason::UnknownAccount(at))) if step == at => {
            Ok(NeedsAttention(Reason::UnknownAccount(step)))
        }
        (NeedsAttention(Reason::UnknownAccount(step)), Event::Retry) => Ok(Active(step)),
        // Only back from disabling, never from a containment: see `triage::retriages`.
        (Active(Step::DisableKey), Event::Retriage) => Ok(Active(Step::Triage)),
        (Active(Step::Triage), Event::Halted(reason @ Reason::OwnerUnknown))
        | (Active(Step::Revoke), Event::Halted(reason @ Reason::PolicyLimit))
        | (Active(Step::Rotate), Event::Halted(reason @ Reason::SecondKey)) => {
            Ok(NeedsAttention(reason))
        }
        (Active(step), Event::Halted(Reason::StepFailed(failed))) if step == failed => {
            Ok(NeedsAttention(Reason::StepFailed(step)))
        }
        (NeedsAttention(Reason::StepFailed(step)), Event::Retry) => Ok(Active(step)),
        (NeedsAttention(Reason::PolicyLimit), Event::Retry) => Ok(Active(Step::Revoke)),
        (NeedsAttention(Reason::SecondKey), Event::Retry) => Ok(Active(Step::Rotate)),
        (Active(Step::AwaitingCutover), Event::ConfirmCutover) => Ok(Active(Step::DisableOldKey)),
        (Active(Step::AwaitingOperator), Event::ConfirmCutover) => {
            Ok(Active(Step::AwaitingCutover))
        }
        (Active(Step::AwaitingOperator), Event::SetRotation) => Ok(Active(Step::Rotate)),
        // Before the new key exists the choice can still be taken back; the caller moves the
        // incident to the path that waits for a person.
        (
            Active(step @ (Step::Revoke | Step::EnforceMfa | Step::Audit | Step::Billing)),
            Event::ClearRotation,
        ) => Ok(Active(step)),
        (Active(Step::DeleteKey), Event::Reenable) => Ok(Active(Step::Reenable)),
        // Approval leaves the step where it is; the worker checks it before running the step.
        (Active(step), Event::Approve) if step != Step::Cancelling => Ok(Active(step)),
        (NeedsAttention(Reason::ApprovalTimedOut(step)), Event::Approve) => Ok(Active(step)),
        (Active(step), Event::ApprovalExpired) => {
            Ok(NeedsAttention(Reason::ApprovalTimedOut(step)))
        }
        (Active(Step::Reenable), Event::Halted(reason @ Reason::Reenabled)) => {
            Ok(NeedsAttention(reason))
        }
        (NeedsAttention(Reason::Reenabled), Event::Retry) => Ok(Active(Step::DisableOldKey)),
        (Active(Step::Cancelling), Event::Cancel) => illegal,
        (Active(_) | NeedsAttention(_), Event::Cancel) => Ok(Active(Step::Cancelling)),
        _ => illegal,
    }
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;
    use IncidentState::*;

    const PATHS: [Path; 6] = Path::ALL;

    fn walk(path: Path) -> Vec<IncidentState> {
        let mut state = transition(Active(Step::Triage), Event::Triaged(path)).unwrap();
        let mut seen = vec![state];
        while let Active(_) = state {
            state = transition(state, Event::StepDone(path)).unwrap();
            seen.push(state);
        }
        seen
    }

    #[test]
    fn every_path_walks_the_runbook_in_order() {
        assert_eq!(
            walk(Path::RamKeyInUse),
            [
                Active(Step::Revoke),
                Active(Step::EnforceMfa),
                Active(Step::Audit),
                Active(Step::Billing),
                Active(Step::AwaitingOperator),
                Active(Step::AwaitingCutover),
                Active(Step::DisableOldKey),
                Active(Step::DeleteKey),
                Resolved
            ]
        );
        assert_eq!(
            walk(Path::RamKeyUnused),
            [
                Active(Step::DisableKey),
                Active(Step::Audit),
                Active(Step::Billing),
                Active(Step::DeleteKey),
                Resolved
            ]
        );
        assert_eq!(
            walk(Path::RamKeyRotatable),
            [
                Active(Step::Revoke),
                Active(Step::EnforceMfa),
                Active(Step::Audit),
                Active(Step::Billing),
                Active(Step::Rotate),
                Active(Step::AwaitingCutover),
                Active(Step::DisableOldKey),
                Active(Step::DeleteKey),
                Resolved
            ]
        );
        assert_eq!(
            walk(Path::AccountKey),
            [
                Active(Step::Audit),
                Active(Step::Billing),
                NeedsAttention(Reason::AccountKey)
            ]
        );
        assert_eq!(
            walk(Path::StsKey),
            [Active(Step::Audit), NeedsAttention(Reason::StsKey)]
        );
        assert_eq!(
            walk(Path::AttackerKey),
            [
                Active(Step::DisableKey),
                Active(Step::Audit),
                Active(Step::Billing),
                Active(Step::DeleteKey),
                NeedsAttention(Reason::AttackerArtefacts)
            ]
        );
    }

    #[test]
    fn a_step_off_the_path_is_illegal() {
        for path in PATHS {
            for step in Step::ALL {
                let result = transition(Active(step), Event::StepDone(path));
                let allowed = path.steps().contains(&step);
                assert_eq!(result.is_ok(), allowed, "{step:?} on {path:?}");
            }
            // Triage happens once.
            for step in Step::ALL.into_iter().filter(|s| *s != Step::Triage) {
                assert!(transition(Active(step), Event::Triaged(path)).is_err());
            }
        }
    }

    #[test]
    fn halts_are_allowed_only_where_they_can_arise() {
        let halted = |step, reason| transition(Active(step), Event::Halted(reason));
        assert_eq!(
            halted(Step::Triage, Reason::OwnerUnknown),
            Ok(NeedsAttention(Reason::OwnerUnknown))
        );
        assert_eq!(
            halted(Step::Revoke, Reason::PolicyLimit),
            Ok(NeedsAttention(Reason::PolicyLimit))
        );
        assert!(halted(Step::Audit, Reason::PolicyLimit).is_err());
        assert_eq!(
            halted(Step::Rotate, Reason::SecondKey),
            Ok(NeedsAttention(Reason::SecondKey))
        );
        assert!(halted(Step::Revoke, Reason::SecondKey).is_err());
        assert!(halted(Step::Revoke, Reason::Reenabled).is_err());
        assert_eq!(
            halted(Step::Reenable, Reason::Reenabled),
            Ok(NeedsAttention(Reason::Reenabled))
        );
        for step in Step::ALL {
            assert_eq!(
                halted(step, Reason::StepFailed(step)),
                Ok(NeedsAttention(Reason::StepFailed(step)))
            );
            let other = if step == Step::Audit {
                Step::Billing
            } else {
                Step::Audit
            };
            assert!(halted(step, Reason::StepFailed(other)).is_err());
        }
    }

    #[test]
    fn a_protected_identity_stops_any_step_and_only_cancel_moves_it_on() {
        let protected = NeedsAttention(Reason::ProtectedIdentity);
        for step in Step::ALL {
            assert_eq!(
                transition(Active(step), Event::Halted(Reason::ProtectedIdentity)),
                Ok(protected),
                "{step:?}"
            );
        }
        for event in [
            Event::Retry,
            Event::Approve,
            Event::ConfirmCutover,
            Event::SetRotation,
            Event::Reenable,
            Event::Retriage,
            Event::Triaged(Path::RamKeyUnused),
            Event::StepDone(Path::RamKeyInUse),
        ] {
            assert!(transition(protected, event).is_err(), "{event:?}");
        }
        assert_eq!(
            transition(protected, Event::Cancel),
            Ok(Active(Step::Cancelling))
        );
        for terminal in [Resolved, Cancelled] {
            assert!(transition(terminal, Event::Halted(Reason::ProtectedIdentity)).is_err());
        }
        assert_eq!(Reason::ProtectedIdentity.as_str(), "protected_identity");
    }

    #[test]
    fn only_disabling_an_unused_key_goes_back_to_triage() {
        for step in Step::ALL {
            let result = transition(Active(step), Event::Retriage);
            if step == Step::DisableKey {
                assert_eq!(result, Ok(Active(Step::Triage)));
            } else {
                assert!(result.is_err(), "{step:?}");
            }
        }
        for state in [
            NeedsAttention(Reason::PolicyLimit),
            NeedsAttention(Reason::StepFailed(Step::DisableKey)),
            Resolved,
            Cancelled,
        ] {
            assert!(transition(state, Event::Retriage).is_err(), "{state:?}");
        }
    }

    #[test]
    fn retry_resumes_the_failed_step_and_nothing_else() {
        for step in Step::ALL {
            assert_eq!(
                transition(NeedsAttention(Reason::StepFailed(step)), Event::Retry),
                Ok(Active(step))
            );
            assert!(transition(Active(step), Event::Retry).is_err());
        }
        assert_eq!(
            transition(NeedsAttention(Reason::PolicyLimit), Event::Retry),
            Ok(Active(Step::Revoke))
        );
        assert_eq!(
            transition(NeedsAttention(Reason::Reenabled), Event::Retry),
            Ok(Active(Step::DisableOldKey))
        );
        for reason in [
            Reason::AccountKey,
            Reason::StsKey,
            Reason::OwnerUnknown,
            Reason::ProtectedIdentity,
        ] {
            assert!(
                transition(NeedsAttention(reason), Event::Retry).is_err(),
                "{reason:?}"
            );
        }
    }

    #[test]
    fn approvals_keep_the_step_and_a_timeout_waits_for_one() {
        assert_eq!(
            transition(Active(Step::DeleteKey), Event::Approve),
            Ok(Active(Step::DeleteKey))
        );
        assert_eq!(
            transition(Active(Step::DeleteKey), Event::ApprovalExpired),
            Ok(NeedsAttention(Reason::ApprovalTimedOut(Step::DeleteKey)))
        );
        assert_eq!(
            transition(
                NeedsAttention(Reason::ApprovalTimedOut(Step::DeleteKey)),
                Event::Approve
            ),
            Ok(Active(Step::DeleteKey))
        );
        assert!(transition(Active(Step::Cancelling), Event::Approve).is_err());
        assert!(transition(Resolved, Event::Approve).is_err());
        assert!(transition(NeedsAttention(Reason::AccountKey), Event::Approve).is_err());
    }

    #[test]
    fn a_cutover_is_confirmed_only_while_it_is_awaited() {
        for step in Step::ALL {
            let result = transition(Active(step), Event::ConfirmCutover);
            match step {
                Step::AwaitingCutover => assert_eq!(result, Ok(Active(Step::DisableOldKey))),
                Step::AwaitingOperator => assert_eq!(result, Ok(Active(Step::AwaitingCutover))),
                _ => assert!(result.is_err(), "{step:?}"),
            }
        }
        assert!(transition(NeedsAttention(Reason::AccountKey), Event::ConfirmCutover).is_err());
    }

    #[test]
    fn operators_choose_rotation_or_reenable_only_where_it_applies() {
        for step in Step::ALL {
            let set = transition(Active(step), Event::SetRotation);
            assert_eq!(set.is_ok(), step == Step::AwaitingOperator, "{step:?}");
            let reenable = transition(Active(step), Event::Reenable);
            assert_eq!(reenable.is_ok(), step == Step::DeleteKey, "{step:?}");
        }
        assert_eq!(
            transition(Active(Step::AwaitingOperator), Event::SetRotation),
            Ok(Active(Step::Rotate))
        );
        assert_eq!(
            transition(Active(Step::DeleteKey), Event::Reenable),
            Ok(Active(Step::Reenable))
        );
    }

    #[test]
    fn terminal_states_accept_nothing_and_cancel_closes_the_rest() {
        let events = [
            Event::Triaged(Path::RamKeyInUse),
            Event::StepDone(Path::RamKeyInUse),
            Event::Halted(Reason::OwnerUnknown),
            Event::Retry,
            Event::Cancel,
            Event::Undone,
        ];
        for terminal in [Resolved, Cancelled] {
            for event in events {
                assert!(transition(terminal, event).is_err());
            }
        }
        assert_eq!(
            transition(Active(Step::Audit), Event::Cancel),
            Ok(Active(Step::Cancelling))
        );
        assert_eq!(
            transition(NeedsAttention(Reason::AccountKey), Event::Cancel),
            Ok(Active(Step::Cancelling))
        );
        assert!(transition(Active(Step::Cancelling), Event::Cancel).is_err());
        assert_eq!(
            transition(Active(Step::Cancelling), Event::Undone),
            Ok(Cancelled)
        );
        // Only the cancel step ends that way, whatever the path or the lack of one.
        for step in Step::ALL.into_iter().filter(|s| *s != Step::Cancelling) {
            assert!(transition(Active(step), Event::Undone).is_err());
        }
    }

    #[test]
    fn states_round_trip_through_their_stored_form() {
        let mut states: Vec<IncidentState> = Step::ALL.iter().map(|s| Active(*s)).collect();
        states.extend([Resolved, Cancelled]);
        assert_eq!(
            transition(NeedsAttention(Reason::Reenabled), Event::Retry),
            Ok(Active(Step::DisableOldKey))
        );
        for reason in [
            Reason::AccountKey,
            Reason::StsKey,
            Reason::OwnerUnknown,
            Reason::PolicyLimit,
            Reason::SecondKey,
            Reason::StepFailed(Step::Revoke),
            Reason::ApprovalTimedOut(Step::DeleteKey),
            Reason::ProtectedIdentity,
            Reason::AttackerArtefacts,
            Reason::UnknownAccount(Step::Triage),
        ] {
            states.push(NeedsAttention(reason));
        }
        for state in states {
            let (reason, resume) = match state {
                NeedsAttention(r) => (Some(r.as_str()), r.resume_step().map(Step::as_str)),
                _ => (None, None),
            };
            assert_eq!(
                IncidentState::parse(state.as_str(), reason, resume),
                Some(state)
            );
        }
        assert_eq!(IncidentState::parse("triage", None, None), None);
        for path in PATHS {
            assert_eq!(Path::parse(path.as_str()), Some(path));
        }
        for step in Step::ALL {
            assert_eq!(Step::parse(step.as_str()), Some(step));
        }
        assert_eq!(IncidentState::parse("needs_attention", None, None), None);
    }
}
