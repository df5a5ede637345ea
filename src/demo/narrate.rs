//! The demo's voice: it sends the leak report, follows the incident through the status API
//! and prints one line per step, then the summary.

use std::path::Path;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::DemoError;
use super::{report, setup};
use akguard::domain::audit::ChainReport;
use akguard::intake::{SIGNATURE_HEADER, TIMESTAMP_HEADER};

/// States in which the incident stops moving on its own.
const AT_REST: &[&str] = &[
    "resolved",
    "cancelled",
    "needs_attention",
    "awaiting_operator",
];

/// Prints the step lines of the audit events after the first `seen`; returns how many events
/// the log holds.
fn print_steps(audit: &Value, incident: &Value, seen: usize, sent_at: DateTime<Utc>) -> usize {
    let events = audit["events"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for event in events.iter().skip(seen) {
        if let Some(line) = report::step_line(event, incident, sent_at) {
            println!("{line}");
        }
    }
    events.len()
}

/// How the demo's incident ended up.
pub struct Outcome {
    pub incident_id: i64,
    pub incident: Value,
    /// Incidents akguard opened from what the audit found (keys the attacker created).
    pub linked: Vec<Value>,
}

impl Outcome {
    pub fn resolved(&self) -> bool {
        self.incident["state"] == "resolved"
    }
}

pub struct Follow<'a> {
    pub client: &'a reqwest::Client,
    pub base: &'a str,
    pub token: &'a str,
}

impl Follow<'_> {
    /// Reports the leak, then prints each step as the audit log records it.
    pub async fn run(
        &self,
        webhook_secret: &str,
        patience: Duration,
    ) -> Result<Outcome, DemoError> {
        let sent_at = Utc::now();
        let id = self.report(webhook_secret, sent_at).await?;
        let deadline = tokio::time::Instant::now() + patience;
        let mut seen = 0;
        loop {
            // The audit log first: the incident read after it holds every listed step's findings.
            let audit = self.get(&format!("/v1/incidents/{id}/audit")).await?;
            let incident = self.get(&format!("/v1/incidents/{id}")).await?;
            seen = print_steps(&audit, &incident, seen, sent_at);
            let state = incident["state"].as_str().unwrap_or_default();
            if AT_REST.contains(&state) {
                // The last steps may have committed between the two reads above: read the log
                // once more, now that the incident is at rest and holds all their findings.
                let audit = self.get(&format!("/v1/incidents/{id}/audit")).await?;
                print_steps(&audit, &incident, seen, sent_at);
                let linked = self.linked(id).await?;
                return Ok(Outcome {
                    incident_id: id,
                    incident,
                    linked,
                });
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(DemoError::Unexpected(format!(
                    "incident {id} is still in `{state}` after {} s",
                    patience.as_secs()
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends the signed report to the generic webhook; returns the incident's id.
    async fn report(&self, secret: &str, now: DateTime<Utc>) -> Result<i64, DemoError> {
        let (body, timestamp, signature) = setup::notification(secret, now);
        let answer = self
            .client
            .post(format!("{}/v1/notifications/generic", self.base))
            .header("content-type", "application/json")
            .header(TIMESTAMP_HEADER, timestamp)
            .header(SIGNATURE_HEADER, signature)
            .body(body)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        match body["incident_id"].as_i64() {
            Some(id) if status == reqwest::StatusCode::ACCEPTED => {
                let what = format!(
                    "leak of {} ({}) reported to the webhook, HMAC-signed: durable as incident {id}",
                    setup::LEAKED_KEY,
                    setup::LEAKED_USER
                );
                println!("{}", report::line(now, Utc::now(), "intake", &what));
                Ok(id)
            }
            _ => Err(DemoError::Unexpected(format!(
                "the webhook answered {status}: {body}"
            ))),
        }
    }

    async fn get(&self, path: &str) -> Result<Value, DemoError> {
        let answer = self
            .client
            .get(format!("{}{path}", self.base))
            .bearer_auth(self.token)
            .send()
            .await?;
        let status = answer.status();
        let body: Value = answer.json().await?;
        if status.is_success() {
            Ok(body)
        } else {
            Err(DemoError::Unexpected(format!(
                "GET {path}: {status} {body}"
            )))
        }
    }

    async fn linked(&self, id: i64) -> Result<Vec<Value>, DemoError> {
        let list = self.get("/v1/incidents?limit=200").await?;
        Ok(list["incidents"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|i| i["parent_incident_id"] == id)
            .cloned()
            .collect())
    }
}

pub fn banner(emulator_url: &str, base: &str, scratch: &Path) {
    println!("akguard demo: a leaked AccessKey in an emulated Alibaba Cloud account");
    println!(
        "  emulator  {emulator_url} (a CI user's key leaked to GitHub, in use by an attacker)"
    );
    println!(
        "  akguard   {base} (database in {}, removed on exit)",
        scratch.display()
    );
    println!();
}

pub fn summary(outcome: &Outcome, chain: &ChainReport) {
    println!();
    println!("Summary");
    print!(
        "{}",
        report::summary(&outcome.incident, &outcome.linked, chain)
    );
}

pub fn interrupted() {
    println!("interrupted before the incident came to rest; stopping");
}

pub fn still_running(base: &str, emulator_url: &str, id: i64, secrets: &setup::Secrets) {
    let token = &secrets.viewer_token;
    println!();
    println!("akguard keeps running. The status API, with this demo's viewer token:");
    println!("  export TOKEN={token}");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {base}/v1/incidents/{id}");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {base}/v1/incidents/{id}/audit");
    println!("  curl -H \"Authorization: Bearer $TOKEN\" {base}/v1/incidents");
    println!("The console in a browser: {base}/incidents/{id}");
    println!(
        "  sign in with this demo's operator token: {}",
        secrets.operator_token
    );
    println!("The emulated account as it stands now: curl {emulator_url}/_emulator/state");
    println!("Press Ctrl-C to stop; the demo's database goes with it.");
}
