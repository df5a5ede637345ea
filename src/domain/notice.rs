//! Which transitions people are told about: the notice kinds, their severity, their dedup
//! keys, and which configured channel takes which notice. Pure: the store calls it inside
//! the transaction that records the transition, so a notice exists exactly when its cause does.

use serde::{Deserialize, Serialize};

use super::{IncidentId, IncidentState, Step};

/// From this many failed tries of one step, people hear that it keeps failing.
pub const FAILING_AFTER: u32 = 3;

/// What a notice is about. The names are the `events = [...]` of a channel's configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    Opened,
    /// An incident opened for a key another incident's key created: the attacker's.
    ChainOpened,
    Contained,
    /// `needs_attention`, `awaiting_operator`, or an approval requested.
    NeedsPerson,
    StepFailing,
    Resolved,
    Cancelled,
    /// Sent only by `akguard notify test`, never stored.
    Test,
}

impl NoticeKind {
    pub const ALL: [NoticeKind; 7] = [
        Self::Opened,
        Self::ChainOpened,
        Self::Contained,
        Self::NeedsPerson,
        Self::StepFailing,
        Self::Resolved,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::ChainOpened => "chain_opened",
            Self::Contained => "contained",
            Self::NeedsPerson => "needs_person",
            Self::StepFailing => "step_failing",
            Self::Resolved => "resolved",
            Self::Cancelled => "cancelled",
            Self::Test => "test",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    pub fn severity(self) -> Severity {
        match self {
            Self::ChainOpened | Self::NeedsPerson => Severity::Critical,
            Self::Opened | Self::StepFailing => Severity::Warning,
            Self::Contained | Self::Resolved | Self::Cancelled | Self::Test => Severity::Info,
        }
    }
}

/// How urgent a notice is; a channel takes those at or above its `min_severity`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Info => "info",
            Self::Warning => "warning",
            Self::Critical => "critical",
        }
    }
}

/// One notice to send, with the facts of the moment it was caused (the incident may have
/// moved on by the time it is sent).
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    pub kind: NoticeKind,
    pub detail: serde_json::Value,
}

impl Notice {
    fn new(kind: NoticeKind, detail: serde_json::Value) -> Self {
        Self { kind, detail }
    }
}

impl Notice {
    /// The same notice of the same incident is sent once per channel, however often its
    /// cause recurs or is replayed: `incident-<id>-<event>`, and for a person's attention or
    /// a failing step what it is about (`incident-7-needs_person-approval_rotate`), so that a
    /// second, different call for a person is not swallowed by the first.
    pub fn dedup_key(&self, incident: IncidentId) -> String {
        let text = |k: &str| self.detail.get(k).and_then(|v| v.as_str());
        let about = match self.kind {
            NoticeKind::NeedsPerson => text("approval")
                .map(|step| format!("approval_{step}"))
                .or_else(|| {
                    text("reason").map(|reason| match text("step") {
                        Some(step) => format!("{reason}_{step}"),
                        None => reason.to_owned(),
                    })
                })
                .or_else(|| text("state").map(str::to_owned)),
            NoticeKind::StepFailing => text("step").map(str::to_owned),
            _ => None,
        };
        match about {
            Some(about) => format!("incident-{incident}-{}-{about}", self.kind.as_str()),
            None => format!("incident-{incident}-{}", self.kind.as_str()),
        }
    }
}

/// A transition as the store saw it inside its transaction.
#[derive(Debug, Clone, Default)]
pub struct Change {
    /// `None` for an incident being opened.
    pub before: Option<IncidentState>,
    pub after: Option<IncidentState>,
    /// For an opening: the notification's source and the parent incident, if any.
    pub source: Option<String>,
    pub parent: Option<IncidentId>,
    /// Containment was recorded now, for the first time; with the time it took.
    pub contained_in_ms: Option<i64>,
    /// A step now waits for an operator's approval it did not wait for before.
    pub approval_requested: Option<Step>,
    /// The failed tries of the current step, when this change sets them.
    pub step_attempts: Option<u32>,
    /// The error this change records, kept with the notice (the incident's moves on).
    pub last_error: Option<String>,
}

/// The notices a change causes, in the order they happened.
pub fn notices(change: &Change) -> Vec<Notice> {
    use serde_json::json;
    let mut out = Vec::new();
    if change.before.is_none() {
        let kind = match change.parent {
            Some(_) => NoticeKind::ChainOpened,
            None => NoticeKind::Opened,
        };
        out.push(Notice::new(
            kind,
            json!({"source": change.source, "parent_incident_id": change.parent.map(|p| p.0)}),
        ));
    }
    if let Some(ms) = change.contained_in_ms {
        out.push(Notice::new(
            NoticeKind::Contained,
            json!({"time_to_containment_ms": ms}),
        ));
    }
    let moved = change.after.filter(|after| Some(*after) != change.before);
    if let Some(step) = change.approval_requested {
        out.push(Notice::new(
            NoticeKind::NeedsPerson,
            json!({"state": change.after.or(change.before).map(|s| s.as_str()),
                   "approval": step.as_str()}),
        ));
    }
    match moved {
        Some(state @ IncidentState::NeedsAttention(reason)) => out.push(Notice::new(
            NoticeKind::NeedsPerson,
            json!({"state": state.as_str(), "reason": reason.as_str(),
                   "step": reason.resume_step().map(Step::as_str)}),
        )),
        Some(state @ IncidentState::Active(Step::AwaitingOperator)) => out.push(Notice::new(
            NoticeKind::NeedsPerson,
            json!({"state": state.as_str()}),
        )),
        Some(IncidentState::Resolved) => out.push(Notice::new(NoticeKind::Resolved, json!({}))),
        Some(IncidentState::Cancelled) => out.push(Notice::new(NoticeKind::Cancelled, json!({}))),
        _ => {}
    }
    let failing_step = change.before.and_then(IncidentState::current_step);
    if let (Some(n), Some(step)) = (change.step_attempts, failing_step)
        && n >= FAILING_AFTER
        && moved.is_none()
    {
        out.push(Notice::new(
            NoticeKind::StepFailing,
            json!({"step": step.as_str(), "attempts": n, "error": change.last_error}),
        ));
    }
    out
}

/// What a person is asked to do for a `needs_person` notice: the operator action, if one
/// exists (some reasons need the console, not akguard).
pub fn action_for(detail: &serde_json::Value) -> Option<&'static str> {
    if detail.get("approval").and_then(|a| a.as_str()).is_some() {
        return Some("approve");
    }
    match detail.get("state").and_then(|s| s.as_str()) {
        Some("awaiting_operator") => Some("confirm-cutover"),
        Some("needs_attention") => match detail.get("reason").and_then(|r| r.as_str()) {
            Some("approval_timed_out") => Some("approve"),
            Some("account_key" | "sts_key") => None,
            _ => Some("retry"),
        },
        _ => None,
    }
}

/// The explanation of a `needs_person` notice, from its stored facts; `dry_run` for an
/// incident where nothing was really changed.
pub fn explanation_for(detail: &serde_json::Value, dry_run: bool) -> Option<String> {
    let state = detail.get("state").and_then(|s| s.as_str())?;
    if let Some(step) = detail.get("approval").and_then(|a| a.as_str()) {
        return Some(format!(
            "The {step} step waits for an operator's approval before it runs."
        ));
    }
    let reason = detail.get("reason").and_then(|r| r.as_str());
    let step = detail
        .get("step")
        .and_then(|s| s.as_str())
        .and_then(Step::parse);
    let parsed = IncidentState::parse(
        state,
        reason,
        step.map(Step::as_str).filter(|_| reason.is_some()),
    )?;
    parsed.explanation(dry_run)
}

/// A configured channel as routing sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub channel: String,
    pub events: Vec<NoticeKind>,
    pub min_severity: Severity,
}

impl Route {
    pub fn takes(&self, kind: NoticeKind) -> bool {
        self.events.contains(&kind) && kind.severity() >= self.min_severity
    }
}

/// One outbox row to insert.
#[derive(Debug, Clone, PartialEq)]
pub struct Outgoing {
    pub channel: String,
    pub kind: NoticeKind,
    pub dedup_key: String,
    pub detail: serde_json::Value,
}

/// The outbox rows for `incident`'s `notices`: one per notice and channel that takes it.
pub fn route(routes: &[Route], incident: IncidentId, notices: &[Notice]) -> Vec<Outgoing> {
    notices
        .iter()
        .flat_map(|notice| {
            routes
                .iter()
                .filter(|r| r.takes(notice.kind))
                .map(|r| Outgoing {
                    channel: r.channel.clone(),
                    kind: notice.kind,
                    dedup_key: notice.dedup_key(incident),
                    detail: notice.detail.clone(),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Reason;

    fn kinds(change: &Change) -> Vec<NoticeKind> {
        notices(change).into_iter().map(|n| n.kind).collect()
    }

    #[test]
    fn an_opening_is_opened_or_chain_opened() {
        let open = Change {
            after: Some(IncidentState::Active(Step::Triage)),
            source: Some("generic".into()),
            ..Change::default()
        };
        assert_eq!(kinds(&open), [NoticeKind::Opened]);
        let chain = Change {
            parent: Some(IncidentId(3)),
            ..open
        };
        assert_eq!(kinds(&chain), [NoticeKind::ChainOpened]);
    }

    #[test]
    fn transitions_map_to_their_notices() {
        let cases = [
            (
                IncidentState::Active(Step::Revoke),
                IncidentState::NeedsAttention(Reason::PolicyLimit),
                vec![NoticeKind::NeedsPerson],
            ),
            (
                IncidentState::Active(Step::Billing),
                IncidentState::Active(Step::AwaitingOperator),
                vec![NoticeKind::NeedsPerson],
            ),
            (
                IncidentState::Active(Step::DeleteKey),
                IncidentState::Resolved,
                vec![NoticeKind::Resolved],
            ),
            (
                IncidentState::Active(Step::Cancelling),
                IncidentState::Cancelled,
                vec![NoticeKind::Cancelled],
            ),
            (
                IncidentState::Active(Step::Audit),
                IncidentState::Active(Step::Billing),
                vec![],
            ),
        ];
        for (before, after, expected) in cases {
            let change = Change {
                before: Some(before),
                after: Some(after),
                ..Change::default()
            };
            assert_eq!(kinds(&change), expected, "{before} -> {after}");
        }
    }

    #[test]
    fn containment_approvals_and_repeated_failures_are_noticed() {
        let change = Change {
            before: Some(IncidentState::Active(Step::Revoke)),
            after: Some(IncidentState::Active(Step::EnforceMfa)),
            contained_in_ms: Some(1200),
            ..Change::default()
        };
        assert_eq!(kinds(&change), [NoticeKind::Contained]);
        let approval = Change {
            before: Some(IncidentState::Active(Step::Rotate)),
            approval_requested: Some(Step::Rotate),
            ..Change::default()
        };
        let notice = &notices(&approval)[0];
        assert_eq!(notice.kind, NoticeKind::NeedsPerson);
        assert_eq!(action_for(&notice.detail), Some("approve"));
        let failing = |n| Change {
            before: Some(IncidentState::Active(Step::Audit)),
            step_attempts: Some(n),
            ..Change::default()
        };
        assert!(kinds(&failing(FAILING_AFTER - 1)).is_empty());
        assert_eq!(kinds(&failing(FAILING_AFTER)), [NoticeKind::StepFailing]);
    }

    #[test]
    fn routes_filter_by_event_and_severity_with_one_key_per_incident_and_event() {
        let routes = [
            Route {
                channel: "all".into(),
                events: NoticeKind::ALL.to_vec(),
                min_severity: Severity::Info,
            },
            Route {
                channel: "pager".into(),
                events: NoticeKind::ALL.to_vec(),
                min_severity: Severity::Critical,
            },
        ];
        let notices = [
            Notice::new(NoticeKind::Opened, serde_json::json!({})),
            Notice::new(NoticeKind::NeedsPerson, serde_json::json!({})),
        ];
        let rows = route(&routes, IncidentId(7), &notices);
        let got: Vec<_> = rows
            .iter()
            .map(|r| (r.channel.as_str(), r.dedup_key.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                ("all", "incident-7-opened"),
                ("all", "incident-7-needs_person"),
                ("pager", "incident-7-needs_person"),
            ]
        );
    }

    #[test]
    fn a_second_different_call_for_a_person_has_its_own_key() {
        let halted = |reason: Reason| Change {
            before: Some(IncidentState::Active(Step::Audit)),
            after: Some(IncidentState::NeedsAttention(reason)),
            ..Change::default()
        };
        let key = |change: Change| notices(&change)[0].dedup_key(IncidentId(4));
        assert_eq!(
            key(halted(Reason::StepFailed(Step::Audit))),
            "incident-4-needs_person-step_failed_audit"
        );
        assert_eq!(
            key(halted(Reason::PolicyLimit)),
            "incident-4-needs_person-policy_limit"
        );
        let waiting = Change {
            before: Some(IncidentState::Active(Step::Billing)),
            after: Some(IncidentState::Active(Step::AwaitingOperator)),
            ..Change::default()
        };
        assert_eq!(key(waiting), "incident-4-needs_person-awaiting_operator");
    }

    #[test]
    fn each_reason_names_an_action_or_none() {
        let detail =
            |reason: &str| serde_json::json!({"state": "needs_attention", "reason": reason});
        assert_eq!(action_for(&detail("step_failed")), Some("retry"));
        assert_eq!(action_for(&detail("account_key")), None);
        assert_eq!(
            action_for(&serde_json::json!({"state": "awaiting_operator"})),
            Some("confirm-cutover")
        );
    }
}
