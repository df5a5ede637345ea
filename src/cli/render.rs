//! What the `incidents` commands print, made from the API's JSON. Every value the API returns
//! is foreign text (names, URLs, errors quoting the cloud), so each passes through the terminal
//! escaper; JSON output goes through the JSON one.

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::domain::notice::action_for;
use crate::escape;
use crate::notify::shown_key;

/// One line of `incidents list`, unescaped.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub id: i64,
    /// Masked but for its last 6 characters, as notifications show it.
    pub key: String,
    pub owner: String,
    pub state: String,
    pub waiting_for: String,
    pub age_secs: Option<i64>,
}

impl Row {
    pub fn of(incident: &Value, now: DateTime<Utc>) -> Self {
        Self {
            id: incident["id"].as_i64().unwrap_or_default(),
            key: shown_key(text(&incident["access_key_id"]), false),
            owner: owner(incident),
            state: state(incident),
            waiting_for: waiting_for(incident).unwrap_or_else(|| "-".into()),
            age_secs: time(&incident["created_at"]).map(|t| (now - t).num_seconds()),
        }
    }

    pub fn to_json(&self) -> Value {
        json!({"id": self.id, "key": self.key, "owner": self.owner, "state": self.state,
               "waiting_for": self.waiting_for, "age_secs": self.age_secs})
    }
}

/// The rows as an aligned table with a header.
pub fn table(rows: &[Row]) -> String {
    let header = ["ID", "KEY", "OWNER", "STATE", "WAITING FOR", "AGE"].map(String::from);
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|row| {
            [
                row.id.to_string(),
                escape::terminal(&row.key).into_owned(),
                escape::terminal(&row.owner).into_owned(),
                escape::terminal(&row.state).into_owned(),
                escape::terminal(&row.waiting_for).into_owned(),
                row.age_secs.map_or_else(|| "-".into(), age),
            ]
        })
        .collect();
    let lines: Vec<&[String; 6]> = std::iter::once(&header).chain(&cells).collect();
    let mut widths = [0; 6];
    for line in &lines {
        for (width, cell) in widths.iter_mut().zip(line.iter()) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for line in lines {
        let mut text = String::new();
        for (cell, width) in line.iter().zip(widths) {
            text.push_str(&pad(cell, width));
            text.push_str("  ");
        }
        out.push_str(text.trim_end());
        out.push('\n');
    }
    out
}

/// `incidents show`: the fields a person acts on, the explanation, and the notifications.
pub fn incident(view: &Value, now: DateTime<Utc>) -> String {
    let mut out = format!(
        "incident {}  {}\n",
        view["id"],
        escape::terminal(&state(view))
    );
    let when = |field: &str| {
        time(&view[field]).map(|t| {
            format!(
                "{}  ({} ago)",
                text(&view[field]),
                age((now - t).num_seconds())
            )
        })
    };
    let account = match (view["account_name"].as_str(), view["account_id"].as_str()) {
        (Some(name), Some(id)) => Some(format!("{name} ({id})")),
        (name, id) => name.or(id).map(str::to_owned),
    };
    let contained = view["time_to_containment_ms"]
        .as_i64()
        .map(|ms| format!("{}  ({ms} ms after detection)", text(&view["contained_at"])));
    let fields = [
        ("key", view["access_key_id"].as_str().map(str::to_owned)),
        ("account", account),
        ("owner", Some(owner(view)).filter(|o| o != "-")),
        ("leak", view["leak_url"].as_str().map(str::to_owned)),
        ("detected", when("detected_at")),
        ("contained", contained),
        ("closed", when("closed_at")),
        ("waiting for", waiting_for(view)),
        (
            "dry run",
            view["dry_run"]
                .as_bool()
                .filter(|d| *d)
                .map(|_| "yes: nothing was changed".into()),
        ),
        (
            "chain of",
            view["parent_incident_id"]
                .as_i64()
                .map(|p| format!("incident {p} (this key was created by its leaked key)")),
        ),
        ("next attempt", when("next_attempt_at")),
        ("last error", view["last_error"].as_str().map(str::to_owned)),
    ];
    for (label, value) in fields {
        if let Some(value) = value {
            out.push_str(&format!("  {label:<13}{}\n", escape::terminal(&value)));
        }
    }
    if let Some(explanation) = view["explanation"].as_str() {
        // Explanations hold checklists: each of their lines is a line, escaped and indented.
        out.push('\n');
        for line in explanation.lines() {
            out.push_str(&format!("  {}\n", escape::terminal(line)));
        }
    }
    let notifications = view["notifications"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if !notifications.is_empty() {
        out.push_str("\nnotifications\n");
        for n in notifications {
            let mut line = format!(
                "  {}  {}  {} after {} attempt(s)",
                text(&n["channel"]),
                text(&n["event"]),
                text(&n["state"]),
                n["attempts"]
            );
            if let Some(error) = n["last_error"].as_str() {
                line.push_str(&format!(": {error}"));
            }
            out.push_str(&format!("{}\n", escape::terminal(&line)));
        }
    }
    let sightings = view["sightings"].as_array().map_or(0, Vec::len);
    out.push_str(&format!(
        "\n{sightings} sighting(s); `incidents audit {}` for the trail, `--json` for the findings\n",
        view["id"]
    ));
    out
}

/// `incidents audit`: one line per event, its detail as one line of JSON.
pub fn audit(body: &Value) -> String {
    let events = body["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let widest = |field: &str| {
        events
            .iter()
            .map(|e| escape::terminal(text(&e[field])).chars().count())
            .max()
            .unwrap_or(0)
    };
    let (actor_width, action_width) = (widest("actor"), widest("action"));
    let mut out = String::new();
    for event in events {
        let detail = serde_json::to_string(&event["detail"]).unwrap_or_default();
        out.push_str(&format!(
            "{}  {}  {}  {}\n",
            escape::terminal(text(&event["at"])),
            pad(&escape::terminal(text(&event["actor"])), actor_width),
            pad(&escape::terminal(text(&event["action"])), action_width),
            escape::terminal(&detail),
        ));
    }
    out
}

/// What `incidents act` prints: the incident's state now, and for a cancel what it undoes.
pub fn acted(action: &str, view: &Value) -> String {
    let mut out = format!(
        "incident {}: {action} accepted; now {}\n",
        view["id"],
        escape::terminal(&state(view))
    );
    if let Some(waiting) = waiting_for(view) {
        out.push_str(&format!("  waiting for {}\n", escape::terminal(&waiting)));
    }
    let plan = &view["cancel"];
    for (field, heading) in [("will_undo", "will undo"), ("cannot_undo", "cannot undo")] {
        for item in plan[field]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let item = match item {
                Value::String(s) => s.clone(),
                other => format!(
                    "{}: {} ({})",
                    text(&other["api"]),
                    text(&other["target"]),
                    text(&other["why"])
                ),
            };
            out.push_str(&format!("  {heading}: {}\n", escape::terminal(&item)));
        }
    }
    out
}

/// The state, with the reason when it needs attention (`needs_attention (step_failed)`).
fn state(incident: &Value) -> String {
    let state = text(&incident["state"]);
    match incident["reason"].as_str() {
        Some(reason) => format!("{state} ({reason})"),
        None => state.to_owned(),
    }
}

/// Who owns the key: the RAM user, else the kind of owner.
fn owner(incident: &Value) -> String {
    incident["user_name"]
        .as_str()
        .or(incident["owner_type"].as_str())
        .unwrap_or("-")
        .to_owned()
}

/// What a person is asked for, with the action that gives it, as notifications word it:
/// `approval: rotate`, `operator: retry`, or `operator: console` when only the Alibaba
/// console can help.
fn waiting_for(incident: &Value) -> Option<String> {
    if let Some(step) = incident["waiting_for"]["approval"].as_str() {
        return Some(format!("approval: {step}"));
    }
    let state = text(&incident["state"]);
    if !matches!(state, "needs_attention" | "awaiting_operator") {
        return None;
    }
    let detail = json!({"state": state, "reason": incident["reason"]});
    Some(format!(
        "operator: {}",
        action_for(&detail).unwrap_or("console")
    ))
}

/// `cell` and spaces up to `width` characters (format's own width stops at 65,535).
fn pad(cell: &str, width: usize) -> String {
    let missing = width.saturating_sub(cell.chars().count());
    format!("{cell}{}", " ".repeat(missing))
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("-")
}

fn time(value: &Value) -> Option<DateTime<Utc>> {
    let parsed = DateTime::parse_from_rfc3339(value.as_str()?).ok()?;
    Some(parsed.with_timezone(&Utc))
}

/// `45s`, `12m`, `5h`, `3d`: enough to tell a fresh incident from a forgotten one.
fn age(secs: i64) -> String {
    match secs.max(0) {
        s @ 0..60 => format!("{s}s"),
        s @ 60..3600 => format!("{}m", s / 60),
        s @ 3600..172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

#[cfg(test)]
mod tests;
