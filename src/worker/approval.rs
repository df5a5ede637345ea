//! Approvals: a step listed in `approvals.steps` runs only once an operator has approved it
//! for this incident. Without an approval it waits (until `approvals.deadline`, after which
//! it proceeds or goes to a person, per `approvals.on_deadline`).

use chrono::Utc;

use super::context::{StepContext, StepError, StepResult};
use crate::config::OnDeadline;
use crate::domain::findings::Approval;
use crate::domain::{Finding, FindingsPatch, Reason};
use crate::store::{IncidentUpdate, ScheduleChange};

/// `None` when the step may run now; otherwise what to do instead.
pub(super) async fn gate(ctx: &mut StepContext<'_>) -> Result<Option<StepResult>, StepError> {
    let config = &ctx.inner.config;
    if !config.approvals.contains(&ctx.step) {
        return Ok(None);
    }
    let record = ctx.incident.findings.approvals.get(ctx.step);
    if record.is_some_and(Approval::is_granted) {
        return Ok(None);
    }
    let now = Utc::now();
    let asked = record.and_then(|r| r.requested_at);
    let requested = asked.unwrap_or(now);
    let due = config
        .approval_deadline
        .map(|d| requested + chrono::Duration::from_std(d).unwrap_or_default());
    let waiting = Finding::Approval(ctx.step, Approval::waiting(requested, due));
    if asked.is_none() {
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
            StepResult::wait_until(now + chrono::Duration::hours(24)).finding(waiting),
        ));
    };
    if now < due {
        return Ok(Some(StepResult::wait_until(due).finding(waiting)));
    }
    match config.on_deadline {
        OnDeadline::NeedsAttention => Ok(Some(
            StepResult::halted(Reason::ApprovalTimedOut(ctx.step)).finding(waiting),
        )),
        OnDeadline::Proceed => {
            let granted = Approval::waiting(requested, Some(due)).granted(now, "deadline".into());
            let update = IncidentUpdate {
                findings: FindingsPatch::one(Finding::Approval(ctx.step, granted)),
                ..IncidentUpdate::default()
            };
            ctx.commit(update, ScheduleChange::default(), Vec::new())
                .await?;
            Ok(None)
        }
    }
}
