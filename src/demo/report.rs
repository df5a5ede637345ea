//! What the demo prints, as pure functions of the status API's answers: a line per step and
//! the closing summary.

use chrono::{DateTime, Utc};
use serde_json::Value;

use akguard::domain::audit::ChainReport;
use akguard::escape::terminal;

/// `[+  1.234s]`: time since the leak was reported.
fn elapsed(since: DateTime<Utc>, at: DateTime<Utc>) -> String {
    let ms = (at - since).num_milliseconds().max(0);
    format!("[+{:>3}.{:03}s]", ms / 1000, ms % 1000)
}

/// The line for an audit event, if it is a step ending; `incident` is read after the event,
/// so it holds the step's findings.
pub fn step_line(event: &Value, incident: &Value, reported_at: DateTime<Utc>) -> Option<String> {
    if event["action"] != "incident.transition" {
        return None;
    }
    let at: DateTime<Utc> = event["at"].as_str()?.parse().ok()?;
    let from = event["detail"]["from"].as_str()?;
    let to = event["detail"]["to"].as_str()?;
    Some(line(
        reported_at,
        at,
        label(from),
        &describe(from, to, incident),
    ))
}

/// `[+  0.281s]  revoke           what the step did`.
/// Everything after the time may quote the cloud or a sender, so it is escaped.
pub fn line(reported_at: DateTime<Utc>, at: DateTime<Utc>, step: &str, what: &str) -> String {
    let (step, what) = (terminal(step), terminal(what));
    format!("{}  {step:<16} {what}", elapsed(reported_at, at))
}

/// The step a state stands for, as the narration names it.
fn label(state: &str) -> &str {
    match state {
        "new" => "triage",
        "enforce_mfa" => "mfa",
        "awaiting_cutover" => "cutover",
        other => other,
    }
}

fn describe(from: &str, to: &str, incident: &Value) -> String {
    let f = &incident["findings"];
    let text = |v: &Value| v.as_str().unwrap_or("?").to_owned();
    match (from, to) {
        (_, "needs_attention") => format!(
            "stopped for a person ({}): {}",
            text(&incident["reason"]),
            text(&incident["explanation"])
        ),
        ("new", _) => {
            let t = &f["triage"];
            format!(
                "{} key of RAM user {}, {}, {}: contain, then rotate",
                text(&t["key_status"]).to_lowercase(),
                text(&t["user_name"]),
                text(&t["usage"]).replace('_', " "),
                if t["rotatable"] == true {
                    "rotatable"
                } else {
                    "not rotatable by akguard"
                }
            )
        }
        ("revoke", _) => format!(
            "Deny policy {} attached to {} and read back: CONTAINED after {} ms",
            text(&f["revoke"]["policy"]),
            text(&f["revoke"]["user_name"]),
            incident["time_to_containment_ms"]
        ),
        ("enforce_mfa", _) => format!(
            "MFA now required for {} ({} console users checked)",
            names(&f["mfa"]["mfa_now_required"]),
            f["mfa"]["console_users"]
        ),
        ("audit", _) => format!("ActionTrail: {}", text(&f["audit_summary"])),
        ("billing", _) => text(&f["billing_summary"]),
        ("rotate", _) => format!(
            "new key {} delivered to KMS secret {}",
            text(&f["rotation"]["new_access_key_id"]),
            text(&f["rotation"]["sink"]["secret_name"])
        ),
        ("awaiting_cutover", _) => format!(
            "the workload uses the new key; the old one quiet since {}",
            text(&f["cutover"]["old_key_last_used"])
        ),
        ("disable_old_key", _) => format!(
            "old key {} disabled and verified",
            text(&f["disable_old_key"]["access_key_id"])
        ),
        ("delete_key", _) => format!(
            "old key {} deleted, Deny policy detached: {to}",
            text(&f["delete_key"]["access_key_id"])
        ),
        (_, to) => format!("done, now {to}"),
    }
}

fn names(list: &Value) -> String {
    let names: Vec<&str> = list
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    if names.is_empty() {
        "nobody new".into()
    } else {
        names.join(", ")
    }
}

/// The closing summary.
pub fn summary(incident: &Value, linked: &[Value], chain: &ChainReport) -> String {
    let f = &incident["findings"];
    let mut out = String::new();
    let mut row = |label: &str, value: String| {
        out.push_str(&format!("  {label:<22}{}\n", terminal(&value)));
    };
    let state = incident["state"].as_str().unwrap_or("?");
    row("incident", format!("{} {state}", incident["id"]));
    row(
        "time to containment",
        match incident["time_to_containment_ms"].as_i64() {
            Some(ms) => format!("{ms} ms"),
            None => "not contained".into(),
        },
    );
    row("MFA now required", names(&f["mfa"]["mfa_now_required"]));
    row("suspicious IPs", suspicious_ips(&f["audit"]["source_ips"]));
    row(
        "resources created",
        resources(&f["audit"]["resources_created"]),
    );
    row(
        "resources deleted",
        resources(&f["audit"]["resources_deleted"]),
    );
    row("billing flags", billing_flags(&f["billing"]["products"]));
    row(
        "rotated to key",
        match f["rotation"]["new_access_key_id"].as_str() {
            Some(key) if f["delete_key"]["deleted"] == true => {
                format!("{key} (the leaked key is disabled and deleted)")
            }
            Some(key) => format!("{key} (the leaked key still exists)"),
            None => "none".into(),
        },
    );
    row(
        "audit chain",
        match chain.reason() {
            None => format!("verified, {} rows", chain.rows),
            Some(reason) => format!("BROKEN: {reason}"),
        },
    );
    for other in linked {
        row(
            "linked incident",
            format!(
                "{}: key {} of {} created by the attacker, now {}",
                other["id"],
                other["access_key_id"].as_str().unwrap_or("?"),
                other["user_name"].as_str().unwrap_or("?"),
                other["state"].as_str().unwrap_or("?")
            ),
        );
    }
    out
}

fn suspicious_ips(ips: &Value) -> String {
    let listed: Vec<String> = ips
        .as_array()
        .into_iter()
        .flatten()
        .filter(|ip| ip["known"] == false)
        .map(|ip| {
            let calls = ip["calls"].as_u64().unwrap_or(0);
            let plural = if calls == 1 { "" } else { "s" };
            format!(
                "{} ({calls} call{plural})",
                ip["ip"].as_str().unwrap_or("?")
            )
        })
        .collect();
    joined_or_none(&listed, ", ")
}

fn resources(changes: &Value) -> String {
    let listed: Vec<String> = changes["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let kind = r["kind"].as_str().unwrap_or("?");
            let kind = kind.rsplit("::").next().unwrap_or(kind);
            let ids = names(&r["ids"]);
            format!("{kind} {ids} ({})", r["region"].as_str().unwrap_or("?"))
        })
        .collect();
    joined_or_none(&listed, "; ")
}

fn billing_flags(products: &Value) -> String {
    let flagged: Vec<String> = products
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| {
            let code = p["product_code"].as_str().unwrap_or("?");
            match p["flag"].as_str()? {
                "increase" => Some(format!(
                    "{code} +{}%",
                    p["change_percent"].as_str().unwrap_or("?")
                )),
                "new_product" => Some(format!("{code} (new this cycle)")),
                _ => None,
            }
        })
        .collect();
    joined_or_none(&flagged, ", ")
}

fn joined_or_none(items: &[String], separator: &str) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(separator)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn incident() -> Value {
        json!({
            "id": 1, "state": "resolved", "time_to_containment_ms": 280,
            "findings": {
                "triage": {"key_status": "Active", "user_name": "ci-deployer", "usage": "in_use", "rotatable": true},
                "revoke": {"policy": "akguard-deny-high-risk", "user_name": "ci-deployer"},
                "mfa": {"mfa_now_required": ["alice", "bob"], "console_users": 4},
                "audit": {
                    "source_ips": [
                        {"ip": "45.134.26.19", "calls": 8, "known": false},
                        {"ip": "185.220.101.47", "calls": 1, "known": false},
                        {"ip": "10.0.0.5", "calls": 1, "known": true}],
                    "resources_created": {"items": [
                        {"kind": "ACS::ECS::Instance", "ids": ["i-1", "i-2"], "region": "ap-southeast-1"}]},
                    "resources_deleted": {"items": []}},
                "billing": {"products": [
                    {"product_code": "ecs", "flag": "increase", "change_percent": "12592.3"},
                    {"product_code": "eip", "flag": "new_product", "change_percent": null},
                    {"product_code": "oss", "flag": "none", "change_percent": "17.8"}]},
                "rotation": {"new_access_key_id": "LTAI5tNew"},
                "delete_key": {"deleted": true, "access_key_id": "LTAI5tOld"}
            }
        })
    }

    #[test]
    fn the_summary_names_what_was_found_and_done() {
        let linked = [
            json!({"id": 2, "access_key_id": "LTAI5tBackdoor", "user_name": "svc-backup", "state": "awaiting_operator"}),
        ];
        let text = summary(
            &incident(),
            &linked,
            &ChainReport {
                rows: 95,
                head: "ab".repeat(32),
                faults: Vec::new(),
            },
        );
        for expected in [
            "280 ms",
            "alice, bob",
            "45.134.26.19 (8 calls), 185.220.101.47 (1 call)",
            "Instance i-1, i-2 (ap-southeast-1)",
            "ecs +12592.3%, eip (new this cycle)",
            "LTAI5tNew (the leaked key is disabled and deleted)",
            "verified, 95 rows",
            "2: key LTAI5tBackdoor of svc-backup created by the attacker, now awaiting_operator",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
        assert!(
            !text.contains("10.0.0.5"),
            "a known address is not suspicious:\n{text}"
        );
        assert!(text.contains("resources deleted     none"), "{text}");
    }

    #[test]
    fn a_step_line_shows_elapsed_time_and_what_the_step_did() {
        let reported: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        let event = json!({"action": "incident.transition", "at": "2026-11-28T12:00:00.281Z",
            "detail": {"from": "revoke", "to": "enforce_mfa"}});
        let line = step_line(&event, &incident(), reported).unwrap();
        assert_eq!(
            line,
            "[+  0.281s]  revoke           Deny policy akguard-deny-high-risk attached to \
             ci-deployer and read back: CONTAINED after 280 ms"
        );
        let other = json!({"action": "cloud.call", "at": "2026-11-28T12:00:00.1Z", "detail": {}});
        assert_eq!(step_line(&other, &incident(), reported), None);
    }

    #[test]
    fn hostile_text_from_the_api_reaches_the_terminal_escaped() {
        use crate::hostile::hostile_strings;
        use akguard::domain::text::is_unsafe;
        let reported: DateTime<Utc> = "2026-11-28T12:00:00Z".parse().unwrap();
        for raw in hostile_strings() {
            let mut hostile = incident();
            for path in [
                "/findings/triage/user_name",
                "/findings/revoke/policy",
                "/findings/audit/source_ips/0/ip",
                "/findings/audit/resources_created/items/0/kind",
                "/findings/audit/resources_created/items/0/region",
                "/findings/billing/products/0/product_code",
                "/findings/rotation/new_access_key_id",
            ] {
                *hostile
                    .pointer_mut(path)
                    .unwrap_or_else(|| panic!("{path}")) = json!(raw);
            }
            hostile["findings"]["mfa"]["mfa_now_required"] = json!([raw]);
            hostile["reason"] = json!(raw);
            hostile["explanation"] = json!(raw);
            let linked = [json!({"id": 2, "access_key_id": raw, "user_name": raw, "state": raw})];
            let chain = ChainReport {
                rows: 1,
                head: "ab".repeat(32),
                faults: Vec::new(),
            };
            let text = summary(&hostile, &linked, &chain);
            // One line per row, each ended by the summary's own newline.
            assert_eq!(
                text.matches('\n').count(),
                10,
                "{raw:?} added a line:\n{text}"
            );
            let raw_left = |text: &str| text.chars().any(|c| c != '\n' && is_unsafe(c));
            assert!(!raw_left(&text), "{raw:?} reached the terminal raw");
            for (from, to) in [
                ("new", "revoke"),
                ("revoke", "needs_attention"),
                ("enforce_mfa", "audit"),
            ] {
                let event = json!({"action": "incident.transition", "at": "2026-11-28T12:00:01Z",
                    "detail": {"from": from, "to": to}});
                let line = step_line(&event, &hostile, reported).unwrap();
                assert!(
                    !line.chars().any(is_unsafe),
                    "{raw:?} reached the terminal raw"
                );
            }
        }
    }

    #[test]
    fn a_stop_for_a_person_says_why() {
        let mut stuck = incident();
        stuck["reason"] = json!("step_failed");
        stuck["explanation"] = json!("NoPermission on AttachPolicyToUser");
        let event = json!({"action": "incident.transition", "at": "2026-11-28T12:00:01Z",
            "detail": {"from": "revoke", "to": "needs_attention"}});
        let line = step_line(&event, &stuck, "2026-11-28T12:00:00Z".parse().unwrap()).unwrap();
        assert!(
            line.ends_with(
                "stopped for a person (step_failed): NoPermission on AttachPolicyToUser"
            ),
            "{line}"
        );
    }
}
