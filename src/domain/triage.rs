//! The runbook's "in use or not" question, safe on both sides of the detection time: use
//! before detection shows a workload; use after it counts only when it comes from where the
//! workload runs, and use nobody can attribute is contained as in use and left to a person.
//! A key is judged unused only when every fact needed to say so is at hand.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::cidr::Cidr;
use super::machine::{IncidentState, Path, Step};

/// How far back ActionTrail `LookupEvents` answers.
pub const ACTIONTRAIL_RETENTION: Duration = Duration::from_secs(90 * 86_400);

/// What triage concluded about a key's use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// A workload depends on the key: contain it, never disable it outright.
    InUse,
    /// Nothing used the key for the whole window, up to now: disable it.
    Unused,
    /// Used after detection, but not from the workload's networks nor from the addresses
    /// it used before: perhaps the attacker. Contained as in use; a person decides.
    Unattributed,
    /// The window to judge lies beyond what the data covers. Contained as in use; a person
    /// decides.
    Unknown,
}

impl Usage {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InUse => "in_use",
            Self::Unused => "unused",
            Self::Unattributed => "unattributed",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        [Self::InUse, Self::Unused, Self::Unattributed, Self::Unknown]
            .into_iter()
            .find(|u| u.as_str() == raw)
    }

    /// Why a person must decide, for the verdicts that leave it to one.
    pub fn caveat(self) -> Option<&'static str> {
        match self {
            Self::Unattributed => Some(
                "Triage could not attribute the key's use after detection: none of it came from \
                 audit.known_cidrs or from the addresses the key used before detection, so it \
                 may be the attacker's. akguard contained the key as in use (Deny policy, MFA, \
                 audit) rather than disabling it, so that no workload breaks. A person must \
                 decide: read findings.triage and findings.audit, then rotate the key or, if \
                 nothing legitimate uses it, disable it.",
            ),
            Self::Unknown => Some(
                "Triage could not tell whether a workload uses this key: the window to judge \
                 (triage.in_use_window before detection) reaches further back than ActionTrail \
                 keeps events (90 days), or the detection time is older than that window. \
                 akguard contained the key as in use (Deny policy, MFA, audit) rather than \
                 disabling it. A person must decide whether a workload uses it.",
            ),
            Self::InUse | Self::Unused => None,
        }
    }
}

/// One call made with the key, as ActionTrail recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailUse {
    pub at: DateTime<Utc>,
    /// `sourceIpAddress`: an address, or a service name such as `ecs.aliyuncs.com`.
    pub source: Option<String>,
}

/// ActionTrail's record of the key on either side of detection; each side is `None` until
/// the rule asks for it, so that the common cases cost one look-up.
#[derive(Debug, Clone, Default)]
pub struct Trail {
    /// Calls before detection, newest first, within ActionTrail's retention.
    pub before: Option<Vec<TrailUse>>,
    /// Calls from detection until now.
    pub after: Option<Vec<TrailUse>>,
}

/// Which side of the detection time the rule needs ActionTrail to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Before,
    After,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Decided(Usage),
    /// Look this side up in ActionTrail and judge again.
    Look(Side),
}

/// Everything the rule weighs.
pub struct Facts<'a> {
    pub now: DateTime<Utc>,
    /// The detection time after the intake clamp: never later than receipt.
    pub detected_at: DateTime<Utc>,
    /// `triage.in_use_window`.
    pub window: Duration,
    /// The last use IMS or ActionTrail reports.
    pub last_used: Option<DateTime<Utc>>,
    pub trail: &'a Trail,
    /// `audit.known_cidrs`: where the workload runs.
    pub known_cidrs: &'a [Cidr],
}

/// The rule (the README's triage table). Pure: the caller looks up what it asks for.
pub fn judge_usage(facts: &Facts<'_>) -> Verdict {
    let window_start = facts.detected_at - span(facts.window);
    match facts.last_used {
        Some(at) if at > facts.detected_at => after_detection(facts, window_start),
        Some(at) if at >= window_start => Verdict::Decided(Usage::InUse),
        // Unused needs the whole window, up to now, to be known and quiet.
        _ if facts.now - facts.detected_at > span(facts.window) => Verdict::Decided(Usage::Unknown),
        _ if window_start < facts.now - span(ACTIONTRAIL_RETENTION) => {
            Verdict::Decided(Usage::Unknown)
        }
        _ => Verdict::Decided(Usage::Unused),
    }
}

/// The key was used after detection: whose use was it?
fn after_detection(facts: &Facts<'_>, window_start: DateTime<Utc>) -> Verdict {
    let Some(before) = &facts.trail.before else {
        return Verdict::Look(Side::Before);
    };
    if before
        .iter()
        .any(|u| u.at >= window_start && u.at <= facts.detected_at)
    {
        return Verdict::Decided(Usage::InUse);
    }
    let Some(after) = &facts.trail.after else {
        return Verdict::Look(Side::After);
    };
    let seen_before = |source: &str| before.iter().any(|u| u.source.as_deref() == Some(source));
    let attributable = after.iter().filter_map(|u| u.source.as_deref()).any(|s| {
        seen_before(s)
            || s.parse()
                .is_ok_and(|ip| facts.known_cidrs.iter().any(|c| c.contains(ip)))
    });
    Verdict::Decided(if attributable {
        Usage::InUse
    } else {
        Usage::Unattributed
    })
}

/// The span ActionTrail is asked about for `side`, clipped to its retention.
pub fn trail_span(
    side: Side,
    now: DateTime<Utc>,
    detected_at: DateTime<Utc>,
) -> (DateTime<Utc>, DateTime<Utc>) {
    match side {
        Side::Before => {
            let oldest = now - span(ACTIONTRAIL_RETENTION);
            (oldest.min(detected_at), detected_at)
        }
        Side::After => (detected_at, now.max(detected_at)),
    }
}

/// Whether a later report of an open incident's key sends it back to triage. Only an
/// incident judged unused whose key akguard has not started to disable goes back, and only
/// for a report detected later than the time it was judged on: re-triage can then only turn
/// "disable" into "contain as in use", never undo a containment or skip a Deny policy.
/// `busy`: a worker holds the incident now, or has recorded its intent to disable the key.
pub fn retriages(
    state: IncidentState,
    path: Option<Path>,
    busy: bool,
    judged_on: DateTime<Utc>,
    reported: DateTime<Utc>,
) -> bool {
    state == IncidentState::Active(Step::DisableKey)
        && path == Some(Path::RamKeyUnused)
        && !busy
        && reported > judged_on
}

fn span(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

#[cfg(test)]
mod tests;
