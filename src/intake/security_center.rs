//! The Security Center poller: Alibaba's own leak records, fed into the same intake as
//! webhooks, so one record id never makes two incidents.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio_util::sync::CancellationToken;

use super::{IntakeError, IntakeQueue, intake_outcome};
use crate::cloud::accounts::{Account, LeakPolling};
use crate::cloud::api::{LeakDetail, LeakRecord};
use crate::cloud::{CloudClient, CloudError};
use crate::domain::text::{self as free_text, Rule};
use crate::domain::{AccessKeyId, LeakNotification, OwnerType, Signal};
use crate::singleton::{SECURITY_CENTER, keep};
use crate::store::{Delivery, IntakeOutcome, Store, StoreError};

/// The source name of records from Security Center (reserved: no webhook may use it).
pub const SOURCE: &str = "sas";
const MARK: &str = "security_center";
const PAGE_SIZE: u32 = 100;

#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

/// What one poll found.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct PollReport {
    pub records: usize,
    pub created: usize,
}

/// Polls one account's records.
pub struct SecurityCenterPoller {
    /// The account whose records are read, and where its incidents will act.
    pub account: Arc<Account>,
    /// Who reads them: the account's own client, or the home account's (a resource
    /// directory's management account) naming the account in `ResourceDirectoryAccountId`.
    pub reader: Arc<CloudClient>,
    pub store: Arc<dyn Store>,
    pub queue: IntakeQueue,
    pub interval: Duration,
    pub overlap: Duration,
    /// Told of each poll's outcome, so a stale poller makes akguard (or, for another
    /// account, that account) unready.
    pub readiness: crate::readiness::Readiness,
    /// The account's place among the accounts, as readiness knows it.
    pub index: usize,
    /// This replica's id: the poll runs on whichever replica holds its singleton job.
    pub replica: String,
    /// How long the job's lease outlives the holder's last renewal, beyond one interval.
    pub lease: Duration,
}

/// What one round of the poller did.
enum Round {
    Polled(PollReport),
    /// Another replica holds the job and polls for the fleet.
    HeldElsewhere,
}

impl SecurityCenterPoller {
    /// Polls now and then every `interval` until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!(
            account = %self.account.label(),
            interval_secs = self.interval.as_secs(),
            "Security Center poller started"
        );
        let mut held = None;
        loop {
            // Abandoning a poll half way is safe: each record is durable or not, and the
            // mark moves only after a whole poll.
            let result = tokio::select! {
                () = shutdown.cancelled() => break,
                result = self.round(&mut held) => result,
            };
            // The holder's live lease vouches for the fleet's poller; a replica that is not
            // the holder counts it as its own fresh poll.
            self.readiness
                .poll_finished(self.index, result.as_ref().err().map(ToString::to_string));
            match result {
                Ok(Round::Polled(report)) => {
                    crate::monitoring::record::poll_succeeded(Utc::now());
                    if report.records > 0 {
                        tracing::info!(
                            account = %self.account.label(),
                            records = report.records,
                            created = report.created,
                            "Security Center leak records polled"
                        );
                    } else {
                        tracing::debug!("no new Security Center leak records");
                    }
                }
                Ok(Round::HeldElsewhere) => {
                    tracing::debug!("another replica holds the Security Center poll")
                }
                Err(err) => {
                    tracing::warn!(account = %self.account.label(), error = %err,
                        "Security Center poll failed; will try again")
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep(self.interval) => {}
            }
        }
        // Another replica may take the poll over at once rather than after the lease.
        if let Some(lease) = held
            && let Err(err) = self.store.release_job(&lease).await
        {
            tracing::warn!(error = %err, "cannot release the Security Center poll's lease");
        }
    }

    /// Takes (or keeps) the poll's singleton job and polls while holding it.
    async fn round(&self, held: &mut Option<crate::store::JobLease>) -> Result<Round, PollError> {
        let lease_for = self.interval + self.lease;
        let lease = self
            .store
            .acquire_job(
                &self.account.scoped(SECURITY_CENTER),
                &self.replica,
                Utc::now(),
                lease_for,
            )
            .await?;
        *held = lease.clone();
        let Some(lease) = lease else {
            return Ok(Round::HeldElsewhere);
        };
        tokio::select! {
            report = self.poll_once() => Ok(Round::Polled(report?)),
            lost = keep(self.store.as_ref(), &lease, lease_for) => {
                *held = None;
                Err(lost.into())
            }
        }
    }

    /// Reads every pending record discovered since the last mark (less the overlap) and
    /// records each; the mark advances only once all of them are durable.
    pub async fn poll_once(&self) -> Result<PollReport, PollError> {
        let mark: i64 = self
            .store
            .mark(&self.account.scoped(MARK))
            .await?
            .and_then(|m| m.parse().ok())
            .unwrap_or(0);
        let since = (mark - self.overlap.as_millis() as i64).max(0);
        let mut report = PollReport::default();
        let mut newest = mark;
        let mut page = 1;
        loop {
            let listed = self
                .reader
                .describe_access_key_leak_list(since, page, PAGE_SIZE, self.member())
                .await?
                .value;
            for record in &listed.records {
                if let Some(at) = record.discovered_at {
                    newest = newest.max(at.timestamp_millis());
                }
                report.records += 1;
                if let IntakeOutcome::Created(_) = self.record(record).await? {
                    report.created += 1;
                }
            }
            let seen = (page as usize - 1) * PAGE_SIZE as usize + listed.records.len();
            if listed.records.is_empty() || seen as i64 >= listed.total {
                break;
            }
            page += 1;
        }
        if newest > mark {
            self.store
                .set_mark(&self.account.scoped(MARK), &newest.to_string())
                .await?;
        }
        Ok(report)
    }

    /// The account named in `ResourceDirectoryAccountId`, when the home account reads for it.
    fn member(&self) -> Option<&str> {
        match self.account.polling {
            LeakPolling::ResourceDirectory => self.account.id(),
            LeakPolling::Role => None,
        }
    }

    async fn record(&self, record: &LeakRecord) -> Result<IntakeOutcome, PollError> {
        let Ok(access_key_id) = AccessKeyId::parse(&record.access_key_id) else {
            tracing::warn!(
                record.id = record.id,
                "Security Center record names no valid AccessKey ID; skipped"
            );
            crate::monitoring::record::intake(SOURCE, "malformed");
            return Ok(IntakeOutcome::Ignored);
        };
        // The detail names the file; without it the list's URL still locates the leak.
        let detail = match self
            .reader
            .describe_access_key_leak_detail(record.id, self.member())
            .await
        {
            Ok(detail) => Some(detail.value),
            Err(err) => {
                tracing::warn!(record.id = record.id, error = %err, "leak detail unavailable");
                None
            }
        };
        let mut notification = leak_notification(access_key_id, record, detail);
        notification.account_id = self.account.id().map(str::to_owned);
        let delivery = Delivery {
            source: SOURCE.into(),
            format: "security_center",
            // Record ids are the account's own: another account may use the same one.
            delivery_id: self.account.scoped(&record.id.to_string()),
            received_at: Utc::now(),
            body_sha256: record.raw_sha256.clone(),
            actor: "poller:security_center".into(),
            signal: Signal::Leak(notification),
            parent: None,
        };
        let outcome = self.queue.submit(delivery).await;
        crate::monitoring::record::intake(SOURCE, intake_outcome(&outcome));
        Ok(outcome?)
    }
}

/// The record id in a delivery id of this source: `<id>`, or `<id>:<account id>` for an
/// account other than the home one (see `Account::scoped`).
pub fn record_id(delivery_id: &str) -> Option<i64> {
    delivery_id.split(':').next()?.parse().ok()
}

/// What a leak record of `access_key_id` (and its detail, when it could be read) reports.
pub fn leak_notification(
    access_key_id: AccessKeyId,
    record: &LeakRecord,
    detail: Option<LeakDetail>,
) -> LeakNotification {
    let kept = |field, rule, raw: &str| kept(record.id, field, rule, raw);
    let urls = match detail {
        Some(detail) => vec![detail.file_url, detail.repo_url, record.url.clone()],
        None => vec![record.url.clone()],
    };
    LeakNotification {
        access_key_id,
        account_id: None,
        account_name: record
            .account_name
            .as_deref()
            .and_then(|name| kept("account_name", free_text::name, name)),
        owner_type: match record.user_type.as_deref() {
            Some("master") => Some(OwnerType::Account),
            Some("ram") => Some(OwnerType::RamUser),
            _ => None,
        },
        user_name: None,
        leak_url: urls
            .into_iter()
            .flatten()
            .find_map(|url| kept("leak_url", free_text::https_url, &url)),
        detected_at: record.discovered_at,
        stated_detected_at: None,
        event_id: Some(record.id.to_string()),
    }
}

/// Alibaba's record is evidence and is never refused: a field that breaks the rules of
/// [`free_text`] is left out, and the log says which (never what it held).
fn kept(record_id: i64, field: &'static str, rule: Rule, raw: &str) -> Option<String> {
    rule(field, raw)
        .inspect_err(|err| {
            tracing::warn!(record.id = record_id, error = %err, "Security Center record field left out")
        })
        .ok()
}
