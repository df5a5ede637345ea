//! `akguard incidents watch`: the live event stream (`GET /v1/events`) as one line per event.
//! A dropped connection is resumed with the last event's id, so nothing is missed or shown
//! twice; only a refusal (a bad token, a bad cursor) ends the command.

use std::time::Duration;

use serde_json::{Value, json};

use super::client::{ApiClient, ClientError};
use crate::escape;

/// First and longest wait before reconnecting.
const RECONNECT_FIRST: Duration = Duration::from_secs(1);
const RECONNECT_MAX: Duration = Duration::from_secs(30);

/// What `watch` prints and from where.
pub struct WatchOptions {
    /// The cursor to start after (an event `id`); none starts now.
    pub after: Option<String>,
    /// Only this incident's events.
    pub incident: Option<i64>,
    pub json: bool,
}

/// One Server-Sent Event as the API sends it.
#[derive(Debug, PartialEq)]
struct Frame {
    id: Option<String>,
    event: String,
    data: String,
}

/// Splits a Server-Sent Events byte stream into events, across chunk boundaries (a chunk
/// may end inside a line, or inside a character).
#[derive(Default)]
struct Parser {
    pending: Vec<u8>,
    id: Option<String>,
    event: Option<String>,
    data: Vec<String>,
}

impl Parser {
    fn push(&mut self, chunk: &[u8]) -> Vec<Frame> {
        self.pending.extend_from_slice(chunk);
        let mut frames = Vec::new();
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let line = String::from_utf8_lossy(&line);
            let line = line.trim_end_matches(['\n', '\r']);
            if line.is_empty() {
                if !self.data.is_empty() {
                    frames.push(Frame {
                        id: self.id.take(),
                        event: self.event.take().unwrap_or_else(|| "message".into()),
                        data: std::mem::take(&mut self.data).join("\n"),
                    });
                }
                self.id = None;
                self.event = None;
                continue;
            }
            // A comment (the keep-alive) has no field name.
            let Some((field, value)) = line.split_once(':').filter(|(f, _)| !f.is_empty()) else {
                continue;
            };
            let value = value.strip_prefix(' ').unwrap_or(value).to_owned();
            match field {
                "id" => self.id = Some(value),
                "event" => self.event = Some(value),
                "data" => self.data.push(value),
                _ => {}
            }
        }
        frames
    }
}

/// Follows the stream until a refusal or the process is interrupted.
pub async fn watch(client: &ApiClient, options: WatchOptions) -> Result<(), ClientError> {
    let mut cursor = options.after.clone();
    let mut wait = RECONNECT_FIRST;
    loop {
        let ended = match client.open_events(cursor.as_deref()).await {
            Ok(mut response) => {
                let mut parser = Parser::default();
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            for frame in parser.push(&chunk) {
                                if let Some(id) = &frame.id {
                                    cursor = Some(id.clone());
                                }
                                print_frame(&frame, &options);
                                wait = RECONNECT_FIRST;
                            }
                        }
                        Ok(None) => break "the API closed the stream".to_owned(),
                        Err(err) => break format!("the stream broke: {err}"),
                    }
                }
            }
            Err(err) if retryable(&err) => err.to_string(),
            Err(err) => return Err(err),
        };
        eprintln!(
            "{}; reconnecting in {} s",
            escape::terminal(&ended),
            wait.as_secs()
        );
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(RECONNECT_MAX);
    }
}

/// A daemon restarting, a proxy in between, or the stream cap: worth trying again. A
/// refused token or cursor stays refused.
fn retryable(err: &ClientError) -> bool {
    match err {
        ClientError::Unreachable { .. } => true,
        ClientError::Api { status, .. } => {
            status.is_server_error() || *status == reqwest::StatusCode::TOO_MANY_REQUESTS
        }
        _ => false,
    }
}

fn print_frame(frame: &Frame, options: &WatchOptions) {
    let data: Value = serde_json::from_str(&frame.data).unwrap_or(Value::Null);
    if options
        .incident
        .is_some_and(|id| data["incident_id"].as_i64() != Some(id))
    {
        return;
    }
    if options.json {
        let line = json!({"id": frame.id, "event": frame.event, "data": data});
        println!("{}", escape::json_line(&line));
    } else {
        println!("{}", escape::terminal(&line(&frame.event, &data)));
    }
}

/// `AT  #INCIDENT  what happened  (who)`.
fn line(event: &str, data: &Value) -> String {
    let text = |v: &Value| v.as_str().unwrap_or("-").to_owned();
    let incident = data["incident_id"]
        .as_i64()
        .map_or_else(|| "-".to_owned(), |id| format!("#{id}"));
    let what = match event {
        "transition" => {
            let detail = &data["detail"];
            let mut what = format!("{} -> {}", text(&detail["from"]), text(&detail["to"]));
            if let Some(reason) = detail["reason"].as_str() {
                what.push_str(&format!(" ({reason})"));
            }
            format!("{what}  by {}", text(&data["actor"]))
        }
        "notification" => {
            let mut what = format!(
                "notification {} via {}: {}",
                text(&data["event"]),
                text(&data["channel"]),
                text(&data["state"])
            );
            if let Some(error) = data["error"].as_str() {
                what.push_str(&format!(" ({error})"));
            }
            what
        }
        _ => format!("{}  by {}", text(&data["action"]), text(&data["actor"])),
    };
    format!("{}  {incident}  {what}", text(&data["at"]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_split_across_chunks_and_comments_skipped() {
        let mut parser = Parser::default();
        let stream =
            ": keep-alive\n\nid: 4.0\nevent: transition\ndata: {\"a\":\r\ndata: \"é\"}\n\n";
        let bytes = stream.as_bytes();
        let mut frames = Vec::new();
        // One byte at a time: every boundary, the middle of `é` included.
        for byte in bytes {
            frames.extend(parser.push(std::slice::from_ref(byte)));
        }
        assert_eq!(
            frames,
            vec![Frame {
                id: Some("4.0".into()),
                event: "transition".into(),
                data: "{\"a\":\n\"é\"}".into(),
            }]
        );
    }

    #[test]
    fn only_a_refusal_ends_the_watch() {
        let api = |status| ClientError::Api {
            status,
            message: String::new(),
        };
        assert!(retryable(&api(reqwest::StatusCode::SERVICE_UNAVAILABLE)));
        assert!(retryable(&api(reqwest::StatusCode::TOO_MANY_REQUESTS)));
        assert!(!retryable(&api(reqwest::StatusCode::UNAUTHORIZED)));
        assert!(!retryable(&api(reqwest::StatusCode::BAD_REQUEST)));
    }

    #[test]
    fn a_line_says_what_happened_to_which_incident() {
        let transition = json!({"incident_id": 7, "at": "T", "actor": "worker:a",
            "action": "incident.transition",
            "detail": {"from": "triaging", "to": "needs_attention", "reason": "step_failed"}});
        assert_eq!(
            line("transition", &transition),
            "T  #7  triaging -> needs_attention (step_failed)  by worker:a"
        );
        let sent = json!({"incident_id": 7, "at": "T", "channel": "slack", "event": "contained",
            "state": "failed", "error": "HTTP 500"});
        assert_eq!(
            line("notification", &sent),
            "T  #7  notification contained via slack: failed (HTTP 500)"
        );
        let audit = json!({"incident_id": null, "at": "T", "actor": "system",
            "action": "audit.anchor"});
        assert_eq!(line("audit", &audit), "T  -  audit.anchor  by system");
    }
}
