//! Prometheus metrics: the process's recorder, the counts read from the store at each
//! scrape, and the text `/metrics` answers with.

#[cfg(test)]
mod deploy_tests;
pub mod record;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tokio_util::sync::CancellationToken;

use crate::domain::IncidentState;
use crate::store::Store;

/// How often histograms fold their recent samples in, so memory stays bounded when no one
/// scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
/// A scrape shows the database's counts only if it answers within this; otherwise the
/// last ones.
const STORE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
#[error("cannot set up the metrics recorder: {0}")]
pub struct MonitoringError(#[from] BuildError);

/// The recorder is process-wide: the first daemon built in a process installs it and any
/// later one (the demo's, a test's) shares it.
static RECORDER: Mutex<Option<PrometheusHandle>> = Mutex::new(None);

fn install() -> Result<PrometheusHandle, MonitoringError> {
    let mut installed = RECORDER.lock().expect("metrics recorder lock");
    if let Some(handle) = &*installed {
        return Ok(handle.clone());
    }
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in record::BUCKETS {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).to_owned()), buckets)?;
    }
    let handle = builder.install_recorder()?;
    record::describe();
    *installed = Some(handle.clone());
    Ok(handle)
}

/// What `/metrics` renders, and who may read it.
pub struct Exporter {
    handle: PrometheusHandle,
    store: Arc<dyn Store>,
    /// SHA-256 of the token a scraper must present, if one is configured.
    token: Option<[u8; 32]>,
    /// Channels whose pending count was shown: one that empties must show 0, not vanish
    /// with its last count.
    channels: Mutex<BTreeSet<String>>,
}

impl Exporter {
    /// Installs the recorder (once per process). `channels` are the configured channel names.
    pub fn new(
        store: Arc<dyn Store>,
        token: Option<&SecretString>,
        channels: impl IntoIterator<Item = String>,
    ) -> Result<Self, MonitoringError> {
        Ok(Self {
            handle: install()?,
            store,
            token: token.map(|t| Sha256::digest(t.expose_secret().trim().as_bytes()).into()),
            channels: Mutex::new(channels.into_iter().collect()),
        })
    }

    pub fn needs_token(&self) -> bool {
        self.token.is_some()
    }

    /// Whether `presented` is the configured token; digests are compared in constant time,
    /// so neither the token's content nor its length shows in the timing.
    pub fn accepts(&self, presented: &str) -> bool {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        self.token
            .is_some_and(|token| bool::from(token.ct_eq(&digest)))
    }

    /// The exposition text, with the database's counts read now.
    pub async fn render(&self) -> String {
        match tokio::time::timeout(STORE_TIMEOUT, self.refresh_counts()).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "metrics: cannot read counts from the database")
            }
            Err(_) => tracing::warn!(
                timeout_secs = STORE_TIMEOUT.as_secs(),
                "metrics: the database did not answer in time; showing the last counts"
            ),
        }
        self.handle.render()
    }

    async fn refresh_counts(&self) -> Result<(), crate::store::StoreError> {
        let tally = self.store.tally().await?;
        for state in IncidentState::NAMES {
            let count = tally
                .incidents_by_state
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n);
            record::incidents(state, count);
        }
        record::awaiting_approval(tally.awaiting_approval);
        let mut channels = self.channels.lock().expect("metrics channel lock");
        channels.extend(tally.pending_by_channel.iter().map(|(c, _)| c.clone()));
        for channel in channels.iter() {
            let count = tally
                .pending_by_channel
                .iter()
                .find(|(c, _)| c == channel)
                .map_or(0, |(_, n)| *n);
            record::pending(channel, count);
        }
        Ok(())
    }

    /// Folds histogram samples in every few seconds until `shutdown`.
    pub async fn upkeep(self: Arc<Self>, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(UPKEEP_EVERY) => self.handle.run_upkeep(),
            }
        }
    }
}
