//! The runbook's "in use or not" question, judged on use before the leak was detected so
//! that the attacker's own calls cannot make a dead key look alive.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// What last-used data says about a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// Used within the window before detection: a workload depends on it.
    InUse,
    /// Never used, or last used longer ago than the window before detection.
    Unused,
    /// The last use came after detection (perhaps the attacker's): whether the key was in use
    /// must be decided from calls made before detection.
    NeedsEvidence,
}

/// Judges a key from its last use. `window` is `triage.in_use_window`.
pub fn judge_usage(
    last_used: Option<DateTime<Utc>>,
    detected_at: DateTime<Utc>,
    window: Duration,
) -> Usage {
    let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
    match last_used {
        None => Usage::Unused,
        Some(at) if at > detected_at => Usage::NeedsEvidence,
        Some(at) if detected_at - at <= window => Usage::InUse,
        Some(_) => Usage::Unused,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_is_judged_before_detection() {
        let detected = DateTime::parse_from_rfc3339("2026-06-30T12:00:00Z")
            .unwrap()
            .to_utc();
        let window = Duration::from_secs(30 * 86_400);
        let ago = |days| Some(detected - chrono::Duration::days(days));
        assert_eq!(judge_usage(None, detected, window), Usage::Unused);
        assert_eq!(judge_usage(ago(1), detected, window), Usage::InUse);
        assert_eq!(judge_usage(ago(30), detected, window), Usage::InUse);
        assert_eq!(judge_usage(ago(31), detected, window), Usage::Unused);
        assert_eq!(judge_usage(ago(240), detected, window), Usage::Unused);
        // A call after detection proves nothing about the workload.
        let after = Some(detected + chrono::Duration::minutes(5));
        assert_eq!(judge_usage(after, detected, window), Usage::NeedsEvidence);
    }
}
