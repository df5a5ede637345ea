//! Approvals: a step listed in `approvals.steps` runs only once an operator has approved it
//! for this incident. Without an approval it waits (until `approvals.deadline`, after which
//! it proceeds or goes to a person, per `approvals.on_deadline`).

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::context::{StepContext, StepError, StepResult};
use crate::config::OnDeadline;
use crate::domain::{Reason, Step};
use crate::store::IncidentUpdate;

/// Where a step's approval is kept in the findings.
pub fn finding_key(step: Step) -> String {
    crate::domain::explain::approval_key(step)
}

/// `None` when the step may run now; otherwise what to do instead.
pub(super) async fn gate(ctx: &mut StepContext<'_>) -> Result<Option<StepResult>, StepError> {
    let config = &ctx.inner.config;
    if !config.approvals.contains(&ctx.step) {
        return Ok(None);
    }
    let key = finding_key(ctx.step);
    let record = ctx
        .incident
        .findings
        .get(&key)
        .cloned()
        .unwrap_or(Value::Null);
    if record.get("granted_at").is_some() {
        return Ok(None);
    }
    let now = Utc::now();
    let requested: DateTime<Utc> = record
        .get("requested_at")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or(now);
    let due = config
        .approval_deadline
        .map(|d| requested + chrono::Duration::from_std(d).unwrap_or_default());
    let waiting = json!({"requested_at": requested, "deadline": due});
    if record.get("requested_at").is_none() {
        let then = if ctx.dry_run() {
            "approve to let it run; in dry run it would only record its calls"
        } else {
            "approve to let it run"
        };
        tracing::info!(incident.id = ctx.incident.id.0, step = ctx.step.as_str(), deadline = ?due,
            "waiting for an operator's approval of the {} step ({then})", ctx.step.as_str());
    }
    let Some(due) = due else {
        // Approval wakes the step at once; this only bounds how long it sleeps unasked.
        return Ok(Some(
            StepResult::wait_until(now + chrono::Duration::hours(24)).finding(&key, waiting),
        ));
    };
    if now < due {
        return Ok(Some(StepResult::wait_until(due).finding(&key, waiting)));
    }
    match config.on_deadline {
        OnDeadline::NeedsAttention => Ok(Some(
            StepResult::halted(Reason::ApprovalTimedOut(ctx.step)).finding(&key, waiting),
        )),
        OnDeadline::Proceed => {
            let granted = json!({"requested_at": requested, "deadline": due, "granted_at": now,
                "by": "deadline"});
            let update = IncidentUpdate {
                findings: vec![(key, granted)],
                ..IncidentUpdate::default()
            };
            ctx.inner
                .store
                .record(ctx.lease, update, Vec::new())
                .await?;
            Ok(None)
        }
    }
}
