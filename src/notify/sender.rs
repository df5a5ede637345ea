//! The sender: leases due outbox rows (safe with several processes, like the worker's
//! incidents), delivers each (a chat channel's `opened` notices due at once as one digest,
//! see `digest`), and records the verdicts under the leases. It runs beside the worker and
//! never holds it up: a failing channel only delays its own rows.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::NotifyError;
use super::channel::{self, Answer};
use super::digest;
use super::message::{self, Message};
use crate::cloud::retry::unit_sample;
use crate::config::{Channel, ChannelKind, NotifyConfig};
use crate::domain::notice::NoticeKind;
use crate::monitoring::record;
use crate::store::{OutboxItem, OutboxVerdict, Store};

/// Long enough for one request with its timeout; an abandoned row is retried after it.
const LEASE: Duration = Duration::from_secs(60);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often an idle sender looks for retries coming due; a commit that may have written
/// outbox rows wakes it at once.
const POLL: Duration = Duration::from_millis(500);
/// Rows claimed at once: during a burst, one claim and one settling commit per 64 notices, and
/// a chat channel's `opened` notices among them as one digest.
const BATCH: u32 = 64;
/// How long a shutdown waits for sends in flight before cutting them short.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

pub struct Sender {
    store: Arc<dyn Store>,
    channels: HashMap<String, Channel>,
    config: NotifyConfig,
    client: reqwest::Client,
    owner: String,
}

pub fn client() -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(NotifyError::Client)
}

impl Sender {
    pub fn new(store: Arc<dyn Store>, config: NotifyConfig) -> Result<Self, NotifyError> {
        Ok(Self {
            store,
            channels: config
                .channels
                .iter()
                .map(|c| (c.name.clone(), c.clone()))
                .collect(),
            config,
            client: client()?,
            owner: format!(
                "notify-{}-{}",
                std::process::id(),
                crate::cloud::sign::fresh_nonce()
            ),
        })
    }

    pub async fn run(self, shutdown: CancellationToken) {
        let this = Arc::new(self);
        let mut commits = this.store.commits();
        while !shutdown.is_cancelled() {
            // Only commits after this claim began are news.
            commits.borrow_and_update();
            let claimed = this
                .store
                .claim_outbox(&this.owner, Utc::now(), LEASE, BATCH)
                .await;
            let items = match claimed {
                Ok(items) => items,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot claim notifications");
                    Vec::new()
                }
            };
            let idle = items.is_empty();
            let mut sends = JoinSet::new();
            for group in this.gather(items.iter().cloned()) {
                let this = this.clone();
                sends.spawn(async move { this.deliver_all(group).await });
            }
            let mut settled = Vec::with_capacity(items.len());
            let mut finished = Box::pin(async {
                while let Some(joined) = sends.join_next().await {
                    settled.extend(joined.into_iter().flatten());
                }
            });
            let interrupted = tokio::select! {
                () = &mut finished => false,
                () = shutdown.cancelled() => {
                    tokio::time::timeout(SHUTDOWN_WAIT, &mut finished).await.is_err()
                }
            };
            drop(finished);
            // One commit for the batch: a commit per message would compete with intake for
            // the database's single writer.
            this.settle(&settled).await;
            if interrupted {
                sends.abort_all();
                this.release(&items).await;
                return;
            }
            if idle {
                tokio::select! {
                    () = shutdown.cancelled() => {}
                    () = tokio::time::sleep(POLL) => {}
                    Ok(()) = commits.changed() => {}
                }
            }
        }
    }

    /// Gives back the rows of sends cut short by a shutdown, due now, so a restarted
    /// process sends them at once instead of after the lease. A row already settled is left
    /// alone (the write is fenced on its lease); one the platform took without the answer
    /// being recorded is sent again: delivery is at least once.
    async fn release(&self, items: &[OutboxItem]) {
        let now = Utc::now();
        let verdict = OutboxVerdict::Retry {
            at: now,
            error: "interrupted by a shutdown".into(),
        };
        let given_back: Vec<_> = items
            .iter()
            .map(|item| (item.clone(), verdict.clone()))
            .collect();
        if let Err(err) = self.store.settle_outbox_all(&given_back, now).await {
            tracing::warn!(error = %err, "cannot give back notifications; their leases will expire");
        }
    }

    /// Records the verdicts of a batch under their leases.
    async fn settle(&self, settled: &[(OutboxItem, OutboxVerdict)]) {
        match self.store.settle_outbox_all(settled, Utc::now()).await {
            Ok(kept) => {
                for ((item, _), kept) in settled.iter().zip(kept) {
                    if !kept {
                        tracing::info!(
                            channel = %item.channel,
                            "notification lease lost; its new holder decides"
                        );
                    }
                }
            }
            Err(err) => tracing::warn!(error = %err, "cannot record notifications' outcomes"),
        }
    }

    /// The claimed items as sends: the notices a chat channel digests, together when there
    /// are several (in claim order); every other item alone.
    fn gather(&self, items: impl IntoIterator<Item = OutboxItem>) -> Vec<Vec<OutboxItem>> {
        let mut groups: Vec<Vec<OutboxItem>> = Vec::new();
        let mut digest_of: HashMap<String, usize> = HashMap::new();
        for item in items {
            let digested = self
                .channels
                .get(&item.channel)
                .is_some_and(|c| digest::digests(c, item.kind));
            if digested {
                if let Some(&group) = digest_of.get(&item.channel)
                    && groups[group].len() < digest::MAX_LINES
                {
                    groups[group].push(item);
                    continue;
                }
                digest_of.insert(item.channel.clone(), groups.len());
            }
            groups.push(vec![item]);
        }
        groups
    }

    /// Sends a group of [`gather`](Self::gather) and says what became of each item.
    async fn deliver_all(&self, group: Vec<OutboxItem>) -> Vec<(OutboxItem, OutboxVerdict)> {
        let verdicts = match group.as_slice() {
            [item] => vec![(item.clone(), self.attempt(item).await)],
            _ => self.attempt_digest(group).await,
        };
        for (item, verdict) in &verdicts {
            self.note(item, verdict);
        }
        verdicts
    }

    /// Counts and logs what became of one item; the caller records the verdict.
    fn note(&self, item: &OutboxItem, verdict: &OutboxVerdict) {
        // Rows of a channel no longer configured are counted together: labels carry only
        // configured names.
        let channel = match self.channels.contains_key(&item.channel) {
            true => item.channel.as_str(),
            false => "unconfigured",
        };
        let outcome = match &verdict {
            OutboxVerdict::Sent => "sent",
            OutboxVerdict::Retry { .. } => "retry",
            OutboxVerdict::Failed { .. } => "failed",
        };
        record::notification_delivery(channel, outcome);
        match &verdict {
            OutboxVerdict::Failed { error } => tracing::warn!(
                incident.id = %item.incident,
                channel = %item.channel,
                event = item.kind.as_str(),
                attempt = item.attempts,
                error = %error,
                "notification failed; giving up"
            ),
            _ => tracing::info!(
                incident.id = %item.incident,
                channel = %item.channel,
                event = item.kind.as_str(),
                attempt = item.attempts,
                outcome,
                "notification"
            ),
        }
    }

    async fn attempt(&self, item: &OutboxItem) -> OutboxVerdict {
        let Some(channel) = self.channels.get(&item.channel) else {
            return OutboxVerdict::Failed {
                error: "the channel is no longer configured".into(),
            };
        };
        let incident = match self.store.get_incident(item.incident).await {
            Ok(Some(found)) => found.incident,
            Ok(None) => {
                return OutboxVerdict::Failed {
                    error: "the incident is gone".into(),
                };
            }
            Err(err) => return self.retry(item, format!("cannot read the incident: {err}")),
        };
        let message =
            message::compose(channel, &incident, item.kind, &item.detail, &item.dedup_key);
        let answer = send(&self.client, channel, &message).await;
        self.verdict(item, answer)
    }

    /// One digest for items of one channel (see `gather`), their incidents read at once;
    /// each item's verdict is the digest's, but for an item whose incident is gone.
    async fn attempt_digest(&self, items: Vec<OutboxItem>) -> Vec<(OutboxItem, OutboxVerdict)> {
        let mut verdicts = Vec::with_capacity(items.len());
        let ids: Vec<_> = items.iter().map(|item| item.incident).collect();
        let mut found: HashMap<_, _> = match self.store.get_incidents(&ids).await {
            Ok(found) => found
                .into_iter()
                .map(|s| (s.incident.id, s.incident))
                .collect(),
            Err(err) => {
                let error = format!("cannot read the incidents: {err}");
                return items
                    .into_iter()
                    .map(|item| {
                        let verdict = self.retry(&item, error.clone());
                        (item, verdict)
                    })
                    .collect();
            }
        };
        let mut listed = Vec::with_capacity(items.len());
        for item in items {
            match found.remove(&item.incident) {
                Some(incident) => listed.push((item, incident)),
                None => verdicts.push((
                    item,
                    OutboxVerdict::Failed {
                        error: "the incident is gone".into(),
                    },
                )),
            }
        }
        // `gather` digests only configured channels.
        let Some(channel) = listed
            .first()
            .and_then(|(i, _)| self.channels.get(&i.channel))
        else {
            return verdicts;
        };
        let message = match listed.as_slice() {
            [(item, incident)] => {
                message::compose(channel, incident, item.kind, &item.detail, &item.dedup_key)
            }
            _ => {
                let opened: Vec<_> = listed.iter().map(|(i, inc)| (inc, &i.detail)).collect();
                digest::compose(channel, &opened)
            }
        };
        let answer = send(&self.client, channel, &message).await;
        for (item, _) in listed {
            let verdict = self.verdict(&item, answer.clone());
            verdicts.push((item, verdict));
        }
        verdicts
    }

    /// What a platform's answer to `item`'s message makes of the item.
    fn verdict(&self, item: &OutboxItem, answer: Answer) -> OutboxVerdict {
        match answer {
            Answer::Accepted => OutboxVerdict::Sent,
            Answer::Skipped => OutboxVerdict::Failed {
                error: "this kind of channel takes no such event".into(),
            },
            Answer::Refused(error) if item.attempts >= self.config.refused_attempts => {
                OutboxVerdict::Failed { error }
            }
            Answer::Refused(error) | Answer::Unavailable(error) => self.retry(item, error),
        }
    }

    fn retry(&self, item: &OutboxItem, error: String) -> OutboxVerdict {
        if item.attempts >= self.config.retry.max_attempts {
            return OutboxVerdict::Failed { error };
        }
        let wait = self.config.retry.delay(item.attempts, unit_sample(), None);
        // Full jitter may draw zero; a floor keeps a failing channel from spinning.
        let wait = wait.max(self.config.retry.base / 2);
        OutboxVerdict::Retry {
            at: Utc::now() + chrono::Duration::from_std(wait).unwrap_or_default(),
            error,
        }
    }
}

/// Sends `message` on `channel` once; what the platform answered, scrubbed of the channel's
/// credentials (a receiver may echo its URL).
pub async fn send(client: &reqwest::Client, channel: &Channel, message: &Message) -> Answer {
    let Some(request) = channel::prepare(channel, message, Utc::now()) else {
        return Answer::Skipped;
    };
    let mut builder = client.post(request.url).body(request.body);
    for (name, value) in request.headers {
        builder = builder.header(name, value);
    }
    let answer = match builder.send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            channel::judge(channel.kind, status, &body)
        }
        Err(err) => Answer::Unavailable(describe(&err)),
    };
    match answer {
        Answer::Refused(error) => Answer::Refused(scrub(channel, error)),
        Answer::Unavailable(error) => Answer::Unavailable(scrub(channel, error)),
        other => other,
    }
}

/// `akguard notify test --channel NAME`: one test message, sent now.
pub async fn send_test(config: &NotifyConfig, name: &str) -> Result<(), NotifyError> {
    let channel = config
        .channels
        .iter()
        .find(|c| c.name == name)
        .ok_or_else(|| NotifyError::UnknownChannel(name.to_owned()))?;
    let client = client()?;
    let test = message::test_message(channel);
    let mut answer = send(&client, channel, &test).await;
    if channel.kind == ChannelKind::Pagerduty && answer == Answer::Accepted {
        // A test page must not stay open on someone's phone: resolve it at once.
        let resolve = Message {
            kind: NoticeKind::Resolved,
            ..test
        };
        answer = send(&client, channel, &resolve).await;
    }
    match answer {
        Answer::Accepted => Ok(()),
        Answer::Refused(error) | Answer::Unavailable(error) => Err(NotifyError::NotDelivered {
            channel: name.to_owned(),
            error,
        }),
        Answer::Skipped => Err(NotifyError::NotDelivered {
            channel: name.to_owned(),
            error: "this kind of channel takes no test message".into(),
        }),
    }
}

/// A transport error without its URL, which carries the robot's token.
fn describe(err: &reqwest::Error) -> String {
    let kind = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "cannot connect"
    } else {
        "request failed"
    };
    let mut cause = std::error::Error::source(err);
    let mut detail = String::new();
    while let Some(c) = cause {
        detail = c.to_string();
        cause = c.source();
    }
    match detail.is_empty() {
        true => kind.to_owned(),
        false => format!("{kind}: {detail}"),
    }
}

/// Removes the channel's secret and its URL's path and query from `error`.
fn scrub(channel: &Channel, mut error: String) -> String {
    let secret = channel::secret(channel);
    let mut hidden: Vec<String> = vec![channel.url.path().to_owned()];
    hidden.extend(channel.url.query_pairs().map(|(_, v)| v.into_owned()));
    if !secret.is_empty() {
        hidden.push(secret.to_owned());
    }
    for value in hidden.into_iter().filter(|v| v.len() >= 4) {
        error = error.replace(&value, "[redacted]");
    }
    error
}
