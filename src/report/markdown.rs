//! The report as Markdown. Every value that came from outside akguard's own code (names,
//! ids, addresses, the cloud's messages, the operator's words) goes through the Markdown
//! escaper, so none of it can add a heading, a link, a list item or a mention.

use std::fmt::Write;

use chrono::{DateTime, SecondsFormat, Utc};

use super::words::Words;
use super::{Report, Summary};
use crate::escape::{markdown as esc, markdown_link};

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn opt_time(t: Option<DateTime<Utc>>, words: &Words) -> String {
    t.map(time).unwrap_or_else(|| words.not_yet.to_owned())
}

fn opt(text: Option<&str>) -> String {
    text.map(esc).unwrap_or_else(|| "-".to_owned())
}

pub fn markdown(report: &Report) -> String {
    let w = Words::of(report.language);
    let mut out = String::new();
    let s = &report.summary;
    let _ = writeln!(out, "# {} {}\n", w.title, s.incident_id);
    summary(&mut out, s, w);
    let _ = writeln!(out, "\n## {}\n", w.timeline);
    for e in &report.timeline {
        let _ = writeln!(
            out,
            "- {} {} ({}): {}",
            time(e.at),
            esc(&e.actor),
            esc(&e.action),
            esc(&e.what)
        );
    }
    let c = &report.containment;
    let _ = writeln!(out, "\n## {}\n", w.containment);
    let _ = writeln!(out, "- **{}**: {}", w.method, c.method);
    if let Some(policy) = &c.policy {
        let _ = writeln!(out, "- **{}**: {}", w.deny_policy, esc(policy));
    }
    if let Some(user) = &c.user_name {
        let _ = writeln!(out, "- **{}**: {}", w.ram_user, esc(user));
    }
    let _ = writeln!(out, "- **{}**: {}", w.verification, c.verification);
    if let (Some(networks), Some(verified)) = (&c.network_fence, c.network_fence_verification) {
        let _ = writeln!(
            out,
            "- **{}**: {} ({verified})",
            w.network_fence,
            esc(networks)
        );
    }
    let _ = writeln!(
        out,
        "- **{}**: {}",
        w.contained,
        opt_time(c.contained_at, w)
    );
    let _ = writeln!(
        out,
        "- **{}**: {}",
        w.key_deleted,
        opt_time(c.key_deleted_at, w)
    );
    forensics(&mut out, report, w);
    billing(&mut out, report, w);
    let _ = writeln!(out, "\n## {}\n", w.actions);
    if report.actions.is_empty() {
        let _ = writeln!(out, "- {}", w.none);
    }
    for a in &report.actions {
        let _ = writeln!(
            out,
            "- {} {}: {} {} → {} (RequestId {})",
            time(a.at),
            esc(&a.actor),
            esc(&a.action),
            opt(a.target.as_deref()),
            opt(a.outcome.as_deref()),
            opt(a.request_id.as_deref())
        );
    }
    let _ = writeln!(out, "\n## {}\n", w.open_items);
    for item in &report.items {
        let _ = writeln!(out, "- [ ] {}", w.open_item(item, esc));
    }
    out
}

fn summary(out: &mut String, s: &Summary, w: &Words) {
    let _ = writeln!(out, "## {}\n", w.summary);
    if s.dry_run {
        let _ = writeln!(out, "**{}**\n", w.dry_run);
    }
    let _ = writeln!(out, "- **{}**: {}", w.key, esc(&s.access_key_id));
    let _ = writeln!(
        out,
        "- **{}**: {} {}",
        w.owner,
        s.owner_type,
        opt(s.user_name.as_deref())
    );
    let _ = writeln!(out, "- **{}**: {}", w.account, opt(s.account_id.as_deref()));
    let _ = writeln!(out, "- **{}**: {}", w.source, opt(s.source.as_deref()));
    let leak = s
        .leak_url
        .as_deref()
        .map(|url| markdown_link(url, url))
        .unwrap_or_else(|| "-".to_owned());
    let _ = writeln!(out, "- **{}**: {leak}", w.leak_url);
    let reason = s.reason.map(|r| format!(" ({r})")).unwrap_or_default();
    let _ = writeln!(out, "- **{}**: {}{reason}", w.state, s.state);
    if let Some(parent) = s.parent_incident_id {
        let _ = writeln!(out, "- **{}**: {parent}", w.parent);
    }
    let _ = writeln!(out, "- **{}**: {}", w.detected, time(s.detected_at));
    let _ = writeln!(
        out,
        "- **{}**: {}",
        w.contained,
        opt_time(s.contained_at, w)
    );
    if let Some(ms) = s.time_to_containment_ms {
        let _ = writeln!(
            out,
            "- **{}**: {:.1} s",
            w.time_to_containment,
            ms as f64 / 1000.0
        );
    }
    let _ = writeln!(out, "- **{}**: {}", w.resolved, opt_time(s.resolved_at, w));
    if s.resolved_at.is_none() && s.closed_at.is_some() {
        let _ = writeln!(out, "- **{}**: {}", w.closed, opt_time(s.closed_at, w));
    }
}

fn forensics(out: &mut String, report: &Report, w: &Words) {
    let _ = writeln!(out, "\n## {}\n", w.forensics);
    let Some(f) = &report.forensics else {
        let _ = writeln!(out, "{}", w.not_yet);
        return;
    };
    // Counts only: akguard's own words.
    let _ = writeln!(out, "{}\n", f.summary);
    let _ = writeln!(out, "### {}\n", w.source_ips);
    list(
        out,
        w,
        f.source_ips.iter().map(|ip| {
            let known = if ip.known { w.known } else { w.unknown };
            let country = ip.country.as_deref().map(esc);
            let country = country.as_deref().unwrap_or(w.country_unknown);
            format!(
                "{}: {known}, {} {}, {country}",
                esc(&ip.ip),
                ip.calls,
                w.calls
            )
        }),
    );
    let _ = writeln!(out, "\n### {}\n", w.resources_created);
    list(
        out,
        w,
        f.resources_created.iter().map(|r| {
            format!(
                "{} {} ({}, {}, {})",
                esc(&r.kind),
                esc(&r.ids.join(", ")),
                esc(&r.event_name),
                opt(r.region.as_deref()),
                r.time.map(time).unwrap_or_default()
            )
        }),
    );
    let _ = writeln!(out, "\n### {}\n", w.users_created);
    list(
        out,
        w,
        f.users_created.iter().map(|u| {
            format!(
                "{} ({})",
                opt(u.user_name.as_deref()),
                u.time.map(time).unwrap_or_default()
            )
        }),
    );
    let _ = writeln!(out, "\n### {}\n", w.keys_created);
    list(
        out,
        w,
        f.keys_created.iter().map(|k| {
            format!(
                "{} / {} ({})",
                opt(k.access_key_id.as_deref()),
                opt(k.user_name.as_deref()),
                k.time.map(time).unwrap_or_default()
            )
        }),
    );
    let _ = writeln!(out, "\n### {}\n", w.denied);
    list(
        out,
        w,
        f.denied_attempts.iter().map(|d| {
            format!(
                "{} {} {} ({})",
                esc(&d.name),
                opt(d.source_ip.as_deref()),
                opt(d.error_code.as_deref()),
                d.time.map(time).unwrap_or_default()
            )
        }),
    );
    if f.refused_by_leak_protection > 0 {
        let _ = writeln!(
            out,
            "\n{}",
            w.protection(f.refused_by_leak_protection, f.succeeded_calls)
        );
    }
}

fn list(out: &mut String, w: &Words, lines: impl Iterator<Item = String>) {
    let mut any = false;
    for line in lines {
        any = true;
        let _ = writeln!(out, "- {line}");
    }
    if !any {
        let _ = writeln!(out, "- {}", w.none);
    }
}

fn billing(out: &mut String, report: &Report, w: &Words) {
    let _ = writeln!(out, "\n## {}\n", w.billing);
    let Some(b) = &report.billing else {
        let _ = writeln!(out, "{}", w.not_yet);
        return;
    };
    let _ = writeln!(out, "{}\n", esc(&b.summary));
    let _ = writeln!(
        out,
        "| {} | {} ({}) | {} | {} ({}) | {} | {} |",
        w.product,
        w.this_cycle,
        b.current_cycle,
        w.previous_pro_rata,
        w.previous_cycle,
        b.previous_cycle,
        w.change,
        w.flag
    );
    let _ = writeln!(out, "|---|---:|---:|---:|---:|---|");
    for p in &b.products {
        let flag = serde_json::to_value(p.flag).unwrap_or_default();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} |",
            esc(p.product_name.as_deref().unwrap_or(&p.product_code)),
            p.month_to_date,
            p.previous_pro_rata,
            p.previous_cycle_total,
            p.change_percent.as_deref().unwrap_or("-"),
            flag.as_str().unwrap_or_default()
        );
    }
}
