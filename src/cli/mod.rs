//! The commands for people: `akguard incidents ...` reads and acts on incidents through a
//! running daemon's API, with the caller's own token.

mod client;
mod render;
mod watch;

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use serde_json::{Value, json};

pub use client::{ApiClient, ClientError, Endpoint};

use crate::escape;

/// Where the API is and the token to use. Flags win over the environment.
#[derive(Debug, Args)]
pub struct Connection {
    /// The daemon's base URL [env: AKGUARD_URL; default: http://127.0.0.1:8080]
    #[arg(long, value_name = "URL", global = true)]
    url: Option<String>,
    /// A file holding the API token [default: the AKGUARD_TOKEN environment variable]
    #[arg(long, value_name = "FILE", global = true)]
    token_file: Option<PathBuf>,
}

impl Connection {
    /// A client for the API these flags and the environment name.
    pub fn client(&self) -> Result<ApiClient, ClientError> {
        ApiClient::new(Endpoint::resolve(
            self.url.as_deref(),
            self.token_file.as_deref(),
        )?)
    }
}

#[derive(Debug, Subcommand)]
pub enum IncidentsCommand {
    /// List incidents, newest first: id, key (masked), owner, state, what it waits for, age
    List {
        /// Only incidents in this state (e.g. needs_attention, awaiting_operator, resolved)
        #[arg(long, value_name = "STATE")]
        state: Option<String>,
        /// Only incidents waiting for an approval, or for an operator's action
        #[arg(long, value_name = "WHAT")]
        waiting: Option<Waiting>,
        /// How many incidents, 1 to 200
        #[arg(long, value_name = "N", default_value_t = 50)]
        limit: u32,
        /// Start after this incident id (the `more:` hint of the previous page)
        #[arg(long, value_name = "ID")]
        cursor: Option<u64>,
        /// Print the rows as JSON
        #[arg(long)]
        json: bool,
    },
    /// Show one incident: key, owner, times, what it waits for, notifications
    Show {
        id: u64,
        /// Print the API's JSON, findings and sightings included
        #[arg(long)]
        json: bool,
    },
    /// Print an incident's audit trail, oldest first
    Audit {
        id: u64,
        /// Print the API's JSON
        #[arg(long)]
        json: bool,
    },
    /// Follow what happens live, one line per transition, audit row and notification
    /// (the API's event stream); a dropped connection resumes where it stopped
    Watch {
        /// Start after this event id (the `id` of a `--json` line) instead of now
        #[arg(long, value_name = "ID")]
        after: Option<String>,
        /// Only this incident's events
        #[arg(long, value_name = "ID")]
        incident: Option<i64>,
        /// One JSON object per line: the event's `id`, `event` and `data`
        #[arg(long)]
        json: bool,
    },
    /// Act on an incident as an operator (the token needs the operator role)
    #[command(after_help = "Examples:\n  \
        akguard incidents act 12 approve\n  \
        akguard incidents act 12 cancel --reason \"test key, not a leak\"\n  \
        akguard incidents act 12 set-rotation --set sink=kms --set secret_name=acme/ci/accesskey\n  \
        akguard incidents act 12 set-rotation --set rotatable=false")]
    Act {
        id: u64,
        action: Action,
        /// Why (required by cancel; kept in the audit log)
        #[arg(long, value_name = "TEXT")]
        reason: Option<String>,
        /// A field of the action's body; `true` and `false` are booleans (repeatable)
        #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_field)]
        fields: Vec<(String, Value)>,
    },
}

/// `akguard report`'s languages: those of `GET /v1/incidents/{id}/report`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Language {
    En,
    Ja,
}

/// `--waiting`: the API's `waiting` filter.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Waiting {
    /// A step waits for an operator's approval (or its approval timed out)
    Approval,
    /// needs_attention or awaiting_operator: a person must act
    Operator,
}

impl Waiting {
    fn name(self) -> &'static str {
        match self {
            Self::Approval => "approval",
            Self::Operator => "operator",
        }
    }
}

/// The operator actions of `POST /v1/incidents/{id}/actions/{action}`.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Action {
    /// Let the step waiting for approval run
    Approve,
    /// Resume the step that stopped
    Retry,
    /// The workload has moved to the new key (or the key was rotated by hand)
    ConfirmCutover,
    /// Name a rotation sink (--set sink=kms|file ...), or --set rotatable=false
    SetRotation,
    /// Re-enable the disabled key during the grace period
    Reenable,
    /// A false positive: undo akguard's changes and close (needs --reason)
    Cancel,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Self::Approve => "approve",
            Self::Retry => "retry",
            Self::ConfirmCutover => "confirm-cutover",
            Self::SetRotation => "set-rotation",
            Self::Reenable => "reenable",
            Self::Cancel => "cancel",
        }
    }
}

fn parse_field(raw: &str) -> Result<(String, Value), String> {
    let (key, value) = raw
        .split_once('=')
        .filter(|(key, _)| !key.is_empty())
        .ok_or_else(|| format!("expected KEY=VALUE, got {raw:?}"))?;
    let value = match value {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        text => Value::String(text.to_owned()),
    };
    Ok((key.to_owned(), value))
}

/// Runs one `incidents` command and prints its answer on stdout.
pub async fn incidents(
    connection: &Connection,
    command: IncidentsCommand,
) -> Result<(), ClientError> {
    let client = connection.client()?;
    match command {
        IncidentsCommand::List {
            state,
            waiting,
            limit,
            cursor,
            json,
        } => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("limit", &limit.to_string());
            if let Some(state) = &state {
                query.append_pair("state", state);
            }
            if let Some(waiting) = waiting {
                query.append_pair("waiting", waiting.name());
            }
            if let Some(cursor) = cursor {
                query.append_pair("cursor", &cursor.to_string());
            }
            let page = client
                .get_json(&format!("/v1/incidents?{}", query.finish()))
                .await?;
            let now = chrono::Utc::now();
            let rows: Vec<render::Row> = page["incidents"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default()
                .iter()
                .map(|incident| render::Row::of(incident, now))
                .collect();
            if json {
                let rows: Vec<Value> = rows.iter().map(render::Row::to_json).collect();
                println!("{}", escape::json(&json!(rows)));
            } else {
                print!("{}", render::table(&rows));
            }
            if let Some(next) = page["next_cursor"].as_str() {
                eprintln!("more: --cursor {}", escape::terminal(next));
            }
        }
        IncidentsCommand::Show { id, json } => {
            let view = client.get_json(&format!("/v1/incidents/{id}")).await?;
            if json {
                println!("{}", escape::json(&view));
            } else {
                print!("{}", render::incident(&view, chrono::Utc::now()));
            }
        }
        IncidentsCommand::Audit { id, json } => {
            let body = client
                .get_json(&format!("/v1/incidents/{id}/audit"))
                .await?;
            if json {
                println!("{}", escape::json(&body));
            } else {
                print!("{}", render::audit(&body));
            }
        }
        IncidentsCommand::Watch {
            after,
            incident,
            json,
        } => {
            let options = watch::WatchOptions {
                after,
                incident,
                json,
            };
            watch::watch(&client, options).await?;
        }
        IncidentsCommand::Act {
            id,
            action,
            reason,
            fields,
        } => {
            let mut body: serde_json::Map<String, Value> = fields.into_iter().collect();
            if let Some(reason) = reason {
                body.insert("reason".into(), Value::String(reason));
            }
            let path = format!("/v1/incidents/{id}/actions/{}", action.name());
            let view = client.post_json(&path, &Value::Object(body)).await?;
            print!("{}", render::acted(action.name(), &view));
        }
    }
    Ok(())
}

/// Prints an incident's report (`GET /v1/incidents/{id}/report`): Markdown, or its JSON.
pub async fn report(
    connection: &Connection,
    id: u64,
    language: Language,
    json: bool,
) -> Result<(), ClientError> {
    let client = connection.client()?;
    let lang = match language {
        Language::En => "en",
        Language::Ja => "ja",
    };
    let path = format!("/v1/incidents/{id}/report?lang={lang}");
    if json {
        let body = client.get_json(&format!("{path}&format=json")).await?;
        println!("{}", escape::json(&body));
    } else {
        // Line by line: the report's own line breaks stay, any other control character is
        // shown, not sent to the terminal.
        for line in client.get_text(&path).await?.lines() {
            println!("{}", escape::terminal(line));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_takes_key_value_pairs_with_booleans() {
        assert_eq!(
            parse_field("sink=kms").unwrap(),
            ("sink".into(), json!("kms"))
        );
        assert_eq!(
            parse_field("force=true").unwrap(),
            ("force".into(), json!(true))
        );
        assert_eq!(
            parse_field("path=/a=b").unwrap(),
            ("path".into(), json!("/a=b"))
        );
        assert!(parse_field("novalue").is_err());
        assert!(parse_field("=x").is_err());
    }
}
