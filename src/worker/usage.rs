//! The cloud half of the in-use rule: last-used data first, then ActionTrail on whichever
//! side of the detection time the pure rule (`domain::triage`) asks about.
//!
//! Containment waits on this, so look-ups are few: one page (the newest 50 calls) per region
//! and side, the side after detection only when the side before did not already show use,
//! and the regions in turn until one settles it.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use crate::cloud::ratelimit::Priority;
use crate::domain::triage::{
    Facts, Side, Trail, TrailUse, Usage, Verdict, judge_usage, trail_span,
};

/// What triage decided, with what it saw, for the findings.
pub(super) struct Judged {
    pub usage: Usage,
    pub evidence: Value,
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
        match judge_usage(&facts(ctx, now, last_used, &trail)) {
            Verdict::Decided(usage) => break usage,
            Verdict::Look(side) => {
                let (uses, calls) = look(ctx, side, now, &trail).await?;
                lookups += calls;
                match side {
                    Side::Before => trail.before = Some(uses),
                    Side::After => trail.after = Some(uses),
                }
            }
        }
    };
    let sources = |uses: &Option<Vec<TrailUse>>| -> Option<Vec<String>> {
        uses.as_ref().map(|u| {
            let mut s: Vec<String> = u.iter().filter_map(|u| u.source.clone()).collect();
            s.sort_unstable();
            s.dedup();
            s
        })
    };
    let evidence = json!({
        "used_before_detection": trail.before.as_ref().map(|b| b.iter().any(|u| {
            u.at >= ctx.incident.detected_at - window(ctx)
        })),
        "sources_before_detection": sources(&trail.before),
        "sources_after_detection": sources(&trail.after),
        "actiontrail_lookups": lookups,
    });
    Ok(Judged { usage, evidence })
}

/// One page of the key's calls on `side`, region by region. Before detection, the first
/// region with a call inside the window settles "in use"; after detection, the first with
/// a call from a known network does.
async fn look(
    ctx: &mut StepContext<'_>,
    side: Side,
    now: DateTime<Utc>,
    trail: &Trail,
) -> Result<(Vec<TrailUse>, usize), StepError> {
    let client = ctx.inner.client.clone();
    let key = ctx.incident.access_key_id.as_str().to_owned();
    let (start, end) = trail_span(side, now, ctx.incident.detected_at);
    let window_start = ctx.incident.detected_at - window(ctx);
    let mut uses = Vec::new();
    let mut calls = 0;
    for region in ctx.inner.config.regions.clone() {
        let page = client.recent_events(&key, &region, start, end, Priority::Containment);
        let events = ctx.read("LookupEvents", &region, page).await?;
        calls += 1;
        uses.extend(events.iter().filter_map(trail_use));
        let settled = match side {
            Side::Before => uses.iter().any(|u| u.at >= window_start),
            Side::After => uses.iter().any(|u| {
                u.source.as_deref().is_some_and(|s| {
                    s.parse()
                        .is_ok_and(|ip| ctx.inner.config.known_cidrs.iter().any(|c| c.contains(ip)))
                        || trail
                            .before
                            .iter()
                            .flatten()
                            .any(|b| b.source.as_deref() == Some(s))
                })
            }),
        };
        if settled {
            break;
        }
    }
    Ok((uses, calls))
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

fn window(ctx: &StepContext<'_>) -> chrono::Duration {
    chrono::Duration::from_std(ctx.inner.config.in_use_window).unwrap_or(chrono::Duration::MAX)
}
