//! The cloud half of the in-use rule: last-used data first, then ActionTrail on whichever
//! side of the detection time the pure rule (`domain::triage`) asks about.
//!
//! Containment waits on this, so look-ups are few: one page (the newest 50 calls) per region
//! and side, the side after detection only when the side before did not already show use,
//! and the regions in turn until one settles it.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::context::{StepContext, StepError};
use crate::cloud::ratelimit::Priority;
use crate::domain::findings::UsageEvidence;
use crate::domain::triage::{
    Facts, Side, Trail, TrailUse, Usage, Verdict, judge_usage, trail_span,
};

/// What triage decided, with what it saw, for the findings.
pub(super) struct Judged {
    pub usage: Usage,
    pub evidence: UsageEvidence,
}

/// The verdict from last-used data alone, or `None` when only ActionTrail could tell: for
/// keys whose verdict is informative only (the account's own), not worth a look-up.
pub(super) fn from_last_use(
    ctx: &StepContext<'_>,
    last_used: Option<DateTime<Utc>>,
) -> Option<Usage> {
    match judge_usage(&facts(ctx, Utc::now(), last_used, &Trail::default())) {
        Verdict::Decided(usage) => Some(usage),
        Verdict::Look(_) => None,
    }
}

pub(super) async fn judge(
    ctx: &mut StepContext<'_>,
    last_used: Option<DateTime<Utc>>,
) -> Result<Judged, StepError> {
    let now = Utc::now();
    let mut trail = Trail::default();
    let mut lookups = 0;
    let usage = loop {
        let side = match judge_usage(&facts(ctx, now, last_used, &trail)) {
            Verdict::Decided(usage) => break usage,
            Verdict::Look(side) => side,
        };
        // Region by region, stopping at the first that shows the workload: the rule itself
        // says when, judging the partial trail.
        let mut uses = Vec::new();
        for region in ctx.inner.config.regions.clone() {
            uses.extend(page(ctx, side, now, &region).await?);
            lookups += 1;
            let partial = with_side(&trail, side, uses.clone());
            let verdict = judge_usage(&facts(ctx, now, last_used, &partial));
            if verdict == Verdict::Decided(Usage::InUse) {
                break;
            }
        }
        trail = with_side(&trail, side, uses);
    };
    let sources = |uses: &Option<Vec<TrailUse>>| -> Option<Vec<String>> {
        uses.as_ref().map(|u| {
            let mut s: Vec<String> = u.iter().filter_map(|u| u.source.clone()).collect();
            s.sort_unstable();
            s.dedup();
            s
        })
    };
    let window_start = ctx.incident.detected_at
        - chrono::Duration::from_std(ctx.inner.config.in_use_window)
            .unwrap_or(chrono::Duration::MAX);
    let evidence = UsageEvidence {
        used_before_detection: trail
            .before
            .as_ref()
            .map(|b| b.iter().any(|u| u.at >= window_start)),
        sources_before_detection: sources(&trail.before),
        sources_after_detection: sources(&trail.after),
        actiontrail_lookups: lookups,
    };
    Ok(Judged { usage, evidence })
}

/// The key's newest calls (one page) in `region` on `side` of the detection time.
async fn page(
    ctx: &mut StepContext<'_>,
    side: Side,
    now: DateTime<Utc>,
    region: &str,
) -> Result<Vec<TrailUse>, StepError> {
    let client = ctx.client.clone();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let (start, end) = trail_span(side, now, ctx.incident.detected_at);
    let page = client.recent_events(&key, region, start, end, Priority::Containment);
    let events = ctx.read("LookupEvents", region, page).await?;
    Ok(events.iter().filter_map(trail_use).collect())
}

fn with_side(trail: &Trail, side: Side, uses: Vec<TrailUse>) -> Trail {
    let mut trail = trail.clone();
    match side {
        Side::Before => trail.before = Some(uses),
        Side::After => trail.after = Some(uses),
    }
    trail
}

fn facts<'a>(
    ctx: &'a StepContext<'_>,
    now: DateTime<Utc>,
    last_used: Option<DateTime<Utc>>,
    trail: &'a Trail,
) -> Facts<'a> {
    Facts {
        now,
        detected_at: ctx.incident.detected_at,
        window: ctx.inner.config.in_use_window,
        last_used,
        trail,
        known_cidrs: &ctx.inner.config.known_cidrs,
    }
}

fn trail_use(event: &Value) -> Option<TrailUse> {
    let at = event.get("eventTime")?.as_str()?.parse().ok()?;
    let source = event
        .get("sourceIpAddress")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned);
    Some(TrailUse { at, source })
}
