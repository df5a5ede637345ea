//! The console's HTML, built as strings: every text akguard did not write passes through
//! `html`, and attribute values are quoted, so hostile names or explanations stay text.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::session::Session;
use super::text::Lang;
use crate::escape::html;
use crate::http::views::{AuditEvent, IncidentView, NotificationView, Status};

/// What every page has around its content.
pub struct Frame<'a> {
    pub lang: Lang,
    pub title: &'a str,
    pub session: Option<&'a Session>,
    /// Where the page's path is, for the language switch to come back to.
    pub here: &'a str,
    /// The event stream cursor to follow from, on pages that update live.
    pub cursor: Option<String>,
}

pub fn layout(frame: &Frame<'_>, body: &str) -> String {
    let lang = frame.lang;
    let mut out = String::with_capacity(body.len() + 2048);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · akguard</title><link rel=\"stylesheet\" href=\"/console/console.css\">",
        lang.code(),
        html(frame.title)
    );
    if frame.cursor.is_some() {
        out.push_str("<script src=\"/console/console.js\" defer></script>");
    }
    out.push_str("</head><body><header><strong>akguard</strong> <nav>");
    if let Some(session) = frame.session {
        let _ = write!(
            out,
            "<a href=\"/\">{}</a> <a href=\"/status\">{}</a> <span>{} <b>{}</b> ({})</span> \
             <form method=\"post\" action=\"/sign-out\" class=\"inline\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">{}</button></form> ",
            lang.t("incidents"),
            lang.t("status"),
            lang.t("signed_in_as"),
            html(&session.name),
            session.role.as_str(),
            html(&session.csrf),
            lang.t("sign_out"),
        );
    }
    let _ = write!(
        out,
        "<a href=\"/lang?to={}&amp;back={}\" hreflang=\"{}\">{}</a></nav></header>",
        lang.other().code(),
        html(&encode(frame.here)),
        lang.other().code(),
        lang.t("language"),
    );
    match &frame.cursor {
        Some(cursor) => {
            let _ = write!(
                out,
                "<main id=\"live\" data-events-after=\"{}\">",
                html(cursor)
            );
        }
        None => out.push_str("<main>"),
    }
    let _ = writeln!(
        out,
        "<h1>{}</h1>{body}</main></body></html>",
        html(frame.title)
    );
    out
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

pub fn sign_in(lang: Lang, message: Option<&str>) -> String {
    let mut out = String::new();
    if let Some(message) = message {
        let _ = write!(
            out,
            "<p class=\"error\" role=\"alert\">{}</p>",
            html(message)
        );
    }
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/sign-in\"><label>{} \
         <input type=\"password\" name=\"token\" autocomplete=\"off\" required></label> \
         <button type=\"submit\">{}</button></form>",
        lang.t("token"),
        lang.t("sign_in")
    );
    out
}

/// The key id with all but its last 6 characters hidden, as notifications show it.
pub fn masked(key: &str) -> String {
    crate::notify::shown_key(key, false)
}

pub fn duration_ms(ms: i64) -> String {
    let s = ms / 1000;
    match s {
        ..60 => format!("{}.{:01} s", s, (ms % 1000) / 100),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn age(since: &str, now: DateTime<Utc>) -> String {
    DateTime::parse_from_rfc3339(since).map_or_else(
        |_| String::new(),
        |t| duration_ms((now - t.with_timezone(&Utc)).num_milliseconds().max(0)),
    )
}

/// One row of the incident list.
pub struct Row {
    pub incident: IncidentView,
    pub source: Option<String>,
}

pub fn list(lang: Lang, rows: &[Row], state: Option<&str>, mine: bool) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<form method=\"get\" action=\"/\" class=\"filters\"><select name=\"state\">\
         <option value=\"\">{}</option>",
        lang.t("all_states")
    );
    for name in crate::domain::IncidentState::NAMES {
        let selected = if state == Some(name) { " selected" } else { "" };
        let _ = write!(out, "<option{selected}>{name}</option>");
    }
    let _ = write!(
        out,
        "</select> <label><input type=\"checkbox\" name=\"waiting\" value=\"operator\"{}> {}\
         </label> <button type=\"submit\">{}</button></form>",
        if mine { " checked" } else { "" },
        lang.t("waiting_for_me"),
        lang.t("filter"),
    );
    let _ = write!(
        out,
        "<table id=\"incidents\"><thead><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        lang.t("key"),
        lang.t("owner"),
        lang.t("source"),
        lang.t("state"),
        lang.t("age"),
        lang.t("containment"),
    );
    let now = Utc::now();
    for row in rows {
        let i = &row.incident;
        let owner = i
            .user_name
            .as_deref()
            .or(i.account_name.as_deref())
            .or(i.account_id.as_deref())
            .unwrap_or("");
        let _ = write!(
            out,
            "<tr data-incident=\"{id}\" data-state=\"{state}\"><td><a href=\"/incidents/{id}\">{id}</a></td>\
             <td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"state-{state}\">{state}</td>\
             <td>{}</td><td>{}</td></tr>",
            html(&masked(&i.access_key_id)),
            html(owner),
            html(row.source.as_deref().unwrap_or("")),
            age(&i.created_at, now),
            i.time_to_containment_ms
                .map(duration_ms)
                .unwrap_or_default(),
            id = i.id,
            state = i.state,
        );
    }
    out.push_str("</tbody></table>");
    if rows.is_empty() {
        let _ = write!(out, "<p>{}</p>", lang.t("none"));
    }
    out
}

/// Everything on an incident's page but its actions.
pub struct Detail<'a> {
    pub incident: &'a IncidentView,
    pub audit: &'a [AuditEvent],
    pub notifications: &'a [NotificationView],
    /// The actions the state allows this session, with whether each needs a reason.
    pub actions: &'a [(&'static str, bool)],
}

pub fn incident(lang: Lang, d: &Detail<'_>) -> String {
    let i = d.incident;
    let mut out = String::new();
    let _ = write!(
        out,
        "<p class=\"summary\"><span id=\"state\" class=\"state-{state}\">{state}</span> \
         <code>{}</code> {} · <a href=\"/incidents/{id}/report.md\">{}</a></p>",
        html(&masked(&i.access_key_id)),
        html(
            i.user_name
                .as_deref()
                .or(i.account_name.as_deref())
                .unwrap_or("")
        ),
        lang.t("report"),
        state = i.state,
        id = i.id,
    );
    if let Some(ms) = i.time_to_containment_ms {
        let _ = write!(
            out,
            "<p>{}: <b id=\"containment\">{}</b></p>",
            lang.t("containment"),
            duration_ms(ms)
        );
    }
    if let Some(explanation) = &i.explanation {
        let _ = write!(
            out,
            "<section><h2>{}</h2><p class=\"explanation\">{}</p></section>",
            lang.t("explanation"),
            html(explanation)
        );
    }
    if !d.actions.is_empty() {
        let _ = write!(
            out,
            "<section id=\"actions\"><h2>{}</h2>",
            lang.t("actions")
        );
        for (action, _) in d.actions {
            let _ = write!(
                out,
                "<a class=\"button\" data-action=\"{action}\" \
                 href=\"/incidents/{}/actions/{action}\">{action}</a> ",
                i.id
            );
        }
        out.push_str("</section>");
    }
    let findings = serde_json::to_value(&i.findings).unwrap_or_default();
    if let Some(billing) = findings.get("billing") {
        let _ = write!(out, "<section><h2>{}</h2>", lang.t("billing"));
        billing_chart(lang, billing, &mut out);
        out.push_str("</section>");
    }
    let _ = write!(out, "<section><h2>{}</h2>", lang.t("findings"));
    if let Some(map) = findings.as_object() {
        for (name, value) in map {
            let _ = write!(out, "<h3>{}</h3>", html(name));
            table(value, &mut out);
        }
    }
    out.push_str("</section>");
    let _ = write!(
        out,
        "<section><h2>{}</h2><table id=\"timeline\"><thead><tr><th>{}</th><th>{}</th>\
         <th>{}</th><th>{}</th></tr></thead><tbody>",
        lang.t("timeline"),
        lang.t("at"),
        lang.t("actor"),
        lang.t("action"),
        lang.t("detail")
    );
    for event in d.audit {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            event.at.format("%Y-%m-%d %H:%M:%S"),
            html(&event.actor),
            html(&event.action),
            html(&event.detail.to_string())
        );
    }
    let _ = write!(
        out,
        "</tbody></table></section><section><h2>{}</h2><table><thead><tr><th>{}</th>\
         <th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr></thead><tbody>",
        lang.t("notifications"),
        lang.t("channel"),
        lang.t("event"),
        lang.t("state"),
        lang.t("attempts"),
        lang.t("error")
    );
    for n in d.notifications {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            html(&n.channel),
            html(&n.event),
            html(&n.state),
            n.attempts,
            html(n.last_error.as_deref().unwrap_or(""))
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// A JSON value as nested tables: objects as key/value rows, lists of objects as one row
/// each under their keys' headings.
fn table(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            out.push_str("<table class=\"kv\"><tbody>");
            for (k, v) in map {
                let _ = write!(out, "<tr><th>{}</th><td>", html(k));
                table(v, out);
                out.push_str("</td></tr>");
            }
            out.push_str("</tbody></table>");
        }
        Value::Array(items) if items.iter().all(Value::is_object) && !items.is_empty() => {
            let mut keys: Vec<&String> = Vec::new();
            for item in items.iter().filter_map(Value::as_object) {
                for k in item.keys() {
                    if !keys.contains(&k) {
                        keys.push(k);
                    }
                }
            }
            out.push_str("<table><thead><tr>");
            for k in &keys {
                let _ = write!(out, "<th>{}</th>", html(k));
            }
            out.push_str("</tr></thead><tbody>");
            for item in items {
                out.push_str("<tr>");
                for k in &keys {
                    out.push_str("<td>");
                    table(&item[k.as_str()], out);
                    out.push_str("</td>");
                }
                out.push_str("</tr>");
            }
            out.push_str("</tbody></table>");
        }
        Value::Array(items) => {
            let texts: Vec<String> = items.iter().map(scalar).collect();
            out.push_str(&html(&texts.join(", ")));
        }
        other => out.push_str(&html(&scalar(other))),
    }
}

fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Per product, this cycle's spend against the previous cycle's pro-rata share, as SVG
/// bars; flagged products are marked.
fn billing_chart(lang: Lang, billing: &Value, out: &mut String) {
    let products = billing["products"].as_array().cloned().unwrap_or_default();
    let amount = |v: &Value| {
        v.as_str()
            .and_then(|s| s.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    let max = products
        .iter()
        .flat_map(|p| [amount(&p["month_to_date"]), amount(&p["previous_pro_rata"])])
        .fold(0.0_f64, f64::max);
    const ROW: usize = 34;
    const LABEL: f64 = 230.0;
    const WIDTH: f64 = 300.0;
    let height = products.len() * ROW + 24;
    let _ = write!(
        out,
        "<svg class=\"billing\" role=\"img\" viewBox=\"0 0 780 {height}\" width=\"780\" \
         height=\"{height}\"><title>{}</title>\
         <rect class=\"current\" x=\"{LABEL}\" y=\"2\" width=\"10\" height=\"10\"/>\
         <text x=\"{}\" y=\"11\">{}</text>\
         <rect class=\"previous\" x=\"{}\" y=\"2\" width=\"10\" height=\"10\"/>\
         <text x=\"{}\" y=\"11\">{}</text>",
        lang.t("billing"),
        LABEL + 14.0,
        lang.t("current"),
        LABEL + 120.0,
        LABEL + 134.0,
        lang.t("previous"),
    );
    for (n, p) in products.iter().enumerate() {
        let y = 24 + n * ROW;
        let flagged = p["flag"].as_str().is_some_and(|f| f != "none");
        let name = p["product_name"]
            .as_str()
            .or(p["product_code"].as_str())
            .unwrap_or("");
        // The label column is fixed: a long name is cut (the table below has it whole).
        let name: String = name.chars().take(28).collect();
        let scale = |v: f64| if max > 0.0 { v / max * WIDTH } else { 0.0 };
        let current = amount(&p["month_to_date"]);
        let previous = amount(&p["previous_pro_rata"]);
        let _ = write!(
            out,
            "<g class=\"{}\"><text x=\"0\" y=\"{}\">{}{}</text>\
             <rect class=\"current\" x=\"{LABEL}\" y=\"{y}\" width=\"{:.1}\" height=\"13\"/>\
             <rect class=\"previous\" x=\"{LABEL}\" y=\"{}\" width=\"{:.1}\" height=\"13\"/>\
             <text x=\"{:.1}\" y=\"{}\">{}</text></g>",
            if flagged { "flagged" } else { "product" },
            y + 18,
            if flagged { "⚠ " } else { "" },
            html(&name),
            scale(current),
            y + 14,
            scale(previous),
            LABEL + scale(current.max(previous)) + 6.0,
            y + 18,
            html(&format!(
                "{} / {}{}",
                scalar(&p["month_to_date"]),
                scalar(&p["previous_pro_rata"]),
                if flagged {
                    format!(" ({})", lang.t("flagged"))
                } else {
                    String::new()
                }
            )),
        );
    }
    out.push_str("</svg>");
}

pub fn confirm(lang: Lang, id: i64, action: &str, needs_reason: bool, session: &Session) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<form method=\"post\" action=\"/incidents/{id}/actions/{action}\" id=\"confirm\">\
         <p>{} <b>{action}</b> · #{id}</p>\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirm\" value=\"yes\">",
        lang.t("confirm_q"),
        html(&session.csrf),
    );
    if needs_reason {
        let _ = write!(
            out,
            "<p><label>{} <input type=\"text\" name=\"reason\" required></label></p>",
            lang.t("reason")
        );
    }
    let _ = write!(
        out,
        "<button type=\"submit\">{}</button> <a href=\"/incidents/{id}\">{}</a></form>",
        lang.t("confirm"),
        lang.t("back")
    );
    out
}

pub fn status(lang: Lang, status: &Status, backlog: usize) -> String {
    let chain = &status.audit_chain;
    let mut out = format!(
        "<table class=\"kv\"><tbody><tr><th>{}</th><td>{}</td></tr>\
         <tr><th>{}</th><td>{}</td></tr>\
         <tr><th>{}</th><td id=\"chain\">{} · {} rows · <code>{}</code></td></tr>\
         <tr><th>{}</th><td>{}</td></tr></tbody></table><h2>{}</h2>",
        lang.t("version"),
        html(status.version),
        lang.t("database"),
        html(status.database.backend),
        lang.t("chain"),
        if chain.intact {
            lang.t("intact")
        } else {
            lang.t("broken")
        },
        chain.rows,
        html(&chain.head),
        lang.t("backlog"),
        backlog,
        lang.t("checks"),
    );
    table(&status.checks, &mut out);
    grid(
        &mut out,
        "replicas",
        lang.t("replicas"),
        &[
            lang.t("replica_id"),
            lang.t("host"),
            lang.t("version"),
            lang.t("started"),
            lang.t("heartbeat"),
        ],
        status.replicas.iter().map(|r| {
            vec![
                format!("<code>{}</code>", html(&r.id)),
                html(&r.host),
                html(&r.version),
                html(&r.started_at),
                html(&r.last_heartbeat),
            ]
        }),
    );
    grid(
        &mut out,
        "jobs",
        lang.t("jobs"),
        &[lang.t("job"), lang.t("holder"), lang.t("lease_until")],
        status.singleton_jobs.iter().map(|j| {
            vec![
                html(&j.name),
                format!("<code>{}</code>", html(&j.holder)),
                html(&j.lease_expires_at),
            ]
        }),
    );
    out
}

/// A headed table with one row per item; `rows` hold cells already escaped.
fn grid(
    out: &mut String,
    id: &str,
    heading: &str,
    columns: &[&str],
    rows: impl Iterator<Item = Vec<String>>,
) {
    let _ = write!(out, "<h2>{heading}</h2><table id=\"{id}\"><thead><tr>");
    for column in columns {
        let _ = write!(out, "<th>{column}</th>");
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

pub fn message(text: &str, back: &str, lang: Lang) -> String {
    format!(
        "<p class=\"result\" role=\"status\">{}</p><p><a href=\"{}\">{}</a></p>",
        html(text),
        html(back),
        lang.t("back")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The shared corpus of hostile strings (tests/fixtures/hostile_strings.json).
    fn hostile() -> Vec<String> {
        let corpus: Value =
            serde_json::from_str(include_str!("../../../tests/fixtures/hostile_strings.json"))
                .unwrap();
        let mut all: Vec<String> = corpus["strings"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|s| s.as_str().map(str::to_owned))
            .collect();
        for r in corpus["repeated"].as_array().into_iter().flatten() {
            all.push(
                r["unit"]
                    .as_str()
                    .unwrap()
                    .repeat(r["times"].as_u64().unwrap() as usize),
            );
        }
        all
    }

    /// Every tag in `rendered` is one the renderer writes: no text became markup.
    fn assert_inert(rendered: &str) {
        const OURS: [&str; 13] = [
            "table", "tbody", "thead", "tr", "th", "td", "p", "a", "svg", "title", "rect", "text",
            "g",
        ];
        for (at, _) in rendered.match_indices('<') {
            let tag: String = rendered[at + 1..]
                .trim_start_matches('/')
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            assert!(OURS.contains(&tag.as_str()), "<{tag} in {rendered:.300}");
        }
    }

    #[test]
    fn hostile_text_in_findings_billing_and_messages_stays_text() {
        for s in hostile() {
            let findings = serde_json::json!({
                "audit": {"items": [{"name": s, "user_name": s}], s.clone(): s},
                "products": [{"product_code": s, "product_name": s, "month_to_date": s,
                    "previous_pro_rata": "1", "flag": "increase"}],
            });
            let mut out = String::new();
            table(&findings, &mut out);
            billing_chart(Lang::Ja, &findings, &mut out);
            out.push_str(&message(&s, "/", Lang::En));
            assert_inert(&out);
            for forbidden in ['<', '>', '"'] {
                if s.contains(forbidden) {
                    assert!(!out.contains(&s), "{s:?} was written unescaped");
                }
            }
        }
    }
}
