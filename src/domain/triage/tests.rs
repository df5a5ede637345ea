//! The triage table, row by row.

use super::*;
use crate::domain::Reason;

const DAY: i64 = 86_400;

fn at(secs_from_now: i64) -> DateTime<Utc> {
    now() + chrono::Duration::seconds(secs_from_now)
}

fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-06-30T12:00:00Z")
        .unwrap()
        .to_utc()
}

fn used(secs_from_now: i64, source: &str) -> TrailUse {
    TrailUse {
        at: at(secs_from_now),
        source: Some(source.to_owned()),
    }
}

/// Judges with a 30-day window and `10.0.0.0/8` known.
fn judge(detected: i64, last_used: Option<i64>, trail: &Trail) -> Verdict {
    judge_window(30 * DAY, detected, last_used, trail)
}

fn judge_window(window: i64, detected: i64, last_used: Option<i64>, trail: &Trail) -> Verdict {
    let known = ["10.0.0.0/8".parse().unwrap()];
    judge_usage(&Facts {
        now: now(),
        detected_at: at(detected),
        window: Duration::from_secs(window as u64),
        last_used: last_used.map(at),
        trail,
        known_cidrs: &known,
    })
}

fn decided(usage: Usage) -> Verdict {
    Verdict::Decided(usage)
}

#[test]
fn use_before_detection_is_judged_from_the_last_use_alone() {
    let none = Trail::default();
    // (detected, last used) relative to now, in seconds.
    let rows = [
        (-300, None, Usage::Unused),
        (-300, Some(-DAY), Usage::InUse),
        (-300, Some(-300 - 30 * DAY), Usage::InUse),
        (-300, Some(-301 - 30 * DAY), Usage::Unused),
        (-300, Some(-240 * DAY), Usage::Unused),
        (-DAY, Some(-2 * DAY), Usage::InUse),
        (-DAY, Some(-40 * DAY), Usage::Unused),
    ];
    for (detected, last, usage) in rows {
        assert_eq!(
            judge(detected, last, &none),
            decided(usage),
            "detected {detected}, last used {last:?}"
        );
    }
}

#[test]
fn unused_needs_a_window_that_is_current_and_within_actiontrail_retention() {
    let none = Trail::default();
    // Detected longer ago than the window: use since then is not covered by "before".
    assert_eq!(
        judge_window(3600, -2 * 3600, None, &none),
        decided(Usage::Unknown)
    );
    assert_eq!(
        judge_window(3600, -2 * 3600, Some(-100 * DAY), &none),
        decided(Usage::Unknown)
    );
    assert_eq!(
        judge_window(3600, -1800, Some(-100 * DAY), &none),
        decided(Usage::Unused)
    );
    // A 120-day window reaches past the 90 days ActionTrail keeps.
    assert_eq!(
        judge_window(120 * DAY, -300, None, &none),
        decided(Usage::Unknown)
    );
    assert_eq!(
        judge_window(89 * DAY, -300, None, &none),
        decided(Usage::Unused)
    );
    // Use inside the window still shows a workload, however long the window.
    assert_eq!(
        judge_window(120 * DAY, -300, Some(-100 * DAY), &none),
        decided(Usage::InUse)
    );
}

#[test]
fn use_after_detection_asks_actiontrail_before_then_after() {
    let detected = -DAY;
    let last = Some(-420);
    assert_eq!(
        judge(detected, last, &Trail::default()),
        Verdict::Look(Side::Before)
    );
    // Any call in the window before detection: in use, without looking further.
    let before_in_window = Trail {
        before: Some(vec![used(-2 * DAY, "45.134.26.19")]),
        after: None,
    };
    assert_eq!(
        judge(detected, last, &before_in_window),
        decided(Usage::InUse)
    );
    let quiet_before = Trail {
        before: Some(vec![used(-60 * DAY, "203.0.113.9")]),
        after: None,
    };
    assert_eq!(
        judge(detected, last, &quiet_before),
        Verdict::Look(Side::After)
    );
}

#[test]
fn use_after_detection_counts_only_from_the_workloads_addresses() {
    let detected = -DAY;
    let last = Some(-420);
    let trail = |after: Vec<TrailUse>| Trail {
        before: Some(vec![used(-60 * DAY, "203.0.113.9")]),
        after: Some(after),
    };
    let rows = [
        // From a known network.
        (vec![used(-420, "10.0.8.14")], Usage::InUse),
        // From an address the key used before detection.
        (vec![used(-420, "203.0.113.9")], Usage::InUse),
        // The workload and someone else: the workload depends on it.
        (
            vec![used(-500, "45.134.26.19"), used(-420, "10.1.2.3")],
            Usage::InUse,
        ),
        // Only from elsewhere: perhaps the attacker; a person decides.
        (vec![used(-420, "45.134.26.19")], Usage::Unattributed),
        (
            vec![TrailUse {
                at: at(-420),
                source: None,
            }],
            Usage::Unattributed,
        ),
        // Last-used data says "after", ActionTrail has not caught up: nobody to attribute.
        (vec![], Usage::Unattributed),
    ];
    for (after, usage) in rows {
        let shown = format!("{after:?}");
        assert_eq!(
            judge(detected, last, &trail(after)),
            decided(usage),
            "{shown}"
        );
    }
    // A service name matches only itself, never a CIDR.
    let service = Trail {
        before: Some(vec![used(-60 * DAY, "ecs.aliyuncs.com")]),
        after: Some(vec![used(-420, "ecs.aliyuncs.com")]),
    };
    assert_eq!(judge(detected, last, &service), decided(Usage::InUse));
}

#[test]
fn a_stale_or_future_detection_time_never_makes_a_used_key_unused() {
    // The clamp bounds detection to [receipt - max age, receipt]; whatever it yields, a
    // key used 7 minutes ago is never "unused".
    for detected in [-DAY, -3600, -60, 0] {
        for trail in [
            Trail::default(),
            Trail {
                before: Some(vec![]),
                after: Some(vec![]),
            },
        ] {
            let verdict = judge(detected, Some(-420), &trail);
            assert_ne!(verdict, decided(Usage::Unused), "detected {detected}");
        }
    }
}

#[test]
fn trail_spans_stay_within_retention_and_meet_at_detection() {
    let (start, end) = trail_span(Side::Before, now(), at(-DAY));
    assert_eq!(end, at(-DAY));
    assert_eq!(start, at(-90 * DAY));
    let (start, end) = trail_span(Side::After, now(), at(-DAY));
    assert_eq!((start, end), (at(-DAY), now()));
}

#[test]
fn only_an_unused_key_not_yet_being_disabled_goes_back_to_triage() {
    use IncidentState::*;
    let (old, new) = (at(-DAY), at(-10));
    let unused = Some(Path::RamKeyUnused);
    assert!(retriages(Active(Step::DisableKey), unused, false, old, new));
    // Not later than what triage judged on.
    assert!(!retriages(
        Active(Step::DisableKey),
        unused,
        false,
        new,
        old
    ));
    assert!(!retriages(
        Active(Step::DisableKey),
        unused,
        false,
        new,
        new
    ));
    // A worker holds it, or the disable has begun.
    assert!(!retriages(Active(Step::DisableKey), unused, true, old, new));
    // Any other state: the report is only a sighting.
    let others = Step::ALL
        .into_iter()
        .filter(|s| *s != Step::DisableKey)
        .map(Active)
        .chain([
            NeedsAttention(Reason::OwnerUnknown),
            NeedsAttention(Reason::ProtectedIdentity),
            Resolved,
            Cancelled,
        ]);
    for state in others {
        for path in Path::ALL.map(Some).into_iter().chain([None]) {
            assert!(!retriages(state, path, false, old, new), "{state:?}");
        }
    }
    for path in Path::ALL.into_iter().filter(|p| *p != Path::RamKeyUnused) {
        assert!(!retriages(
            Active(Step::DisableKey),
            Some(path),
            false,
            old,
            new
        ));
    }
}

#[test]
fn verdicts_round_trip_and_only_the_undecided_ones_ask_a_person() {
    for usage in [
        Usage::InUse,
        Usage::Unused,
        Usage::Unattributed,
        Usage::Unknown,
    ] {
        assert_eq!(Usage::parse(usage.as_str()), Some(usage));
        assert_eq!(
            usage.caveat().is_some(),
            matches!(usage, Usage::Unattributed | Usage::Unknown)
        );
        assert_eq!(
            serde_json::to_value(usage).unwrap(),
            serde_json::json!(usage.as_str())
        );
    }
}
