//! Wiring: settings in, a bound listener and a running daemon out.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::audit_watch;
use crate::cloud::accounts::{Account, AccountOptions, Accounts, LeakPolling};
use crate::cloud::ratelimit::{ApiClass, FleetSlot, LedgerError, SlotLedger};
use crate::cloud::{ClientOptions, CloudClient, CloudError};
use crate::config::{ConfigError, ServerLimits, Settings};
use crate::http::{self, AppState};
use crate::intake::security_center::SecurityCenterPoller;
use crate::intake::{Intake, IntakeQueue};
use crate::monitoring::{Exporter, MonitoringError};
use crate::notify::{NotifyError, Sender};
use crate::readiness::Readiness;
use crate::replicas::ReplicaIdentity;
use crate::store::{self, AuditGate, SlotOutcome, SlotTake, Store, StoreError};
use crate::worker::Worker;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error(transparent)]
    Notify(#[from] NotifyError),
    #[error(transparent)]
    Monitoring(#[from] MonitoringError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(String),
}

/// A daemon that is bound and migrated, ready to run.
pub struct App {
    listener: TcpListener,
    router: axum::Router,
    writer: JoinHandle<()>,
    /// One per account.
    pollers: Vec<SecurityCenterPoller>,
    /// The credentials checks to refresh in the background (one per account), with their
    /// period.
    credentials_check: Option<(Readiness, usize, Duration)>,
    worker: Option<Worker>,
    sender: Option<Sender>,
    /// The recorder's upkeep runs while the daemon does.
    exporter: Option<Arc<Exporter>>,
    /// `/metrics` on its own address (`metrics.listen`).
    metrics_server: Option<(TcpListener, axum::Router)>,
    store: Arc<dyn Store>,
    audit: AuditGate,
    shutdown_grace: Duration,
    limits: ServerLimits,
    /// Ends the event streams when shutdown begins.
    streams_end: CancellationToken,
    /// This daemon among the replicas on the database.
    replica: ReplicaIdentity,
}

impl App {
    /// Validates settings, opens and migrates the store, and binds (port 0 allowed).
    pub async fn build(settings: &Settings) -> Result<Self, AppError> {
        let runtime = settings.validate()?;
        for warning in runtime.warnings() {
            tracing::warn!(setting = %warning.setting, "{}", warning.message);
        }
        let routes = runtime
            .notify
            .channels
            .iter()
            .map(|c| c.route.clone())
            .collect();
        let store = store::open_with_routes(
            &settings.database.url,
            settings.database.max_connections,
            routes,
        )
        .await?;
        store.migrate().await?;
        let audit = audit_watch::check_at_start(store.as_ref()).await?;
        let replica = ReplicaIdentity::new(settings, &runtime.remediation.policy_document);
        replica.register(store.as_ref()).await?;
        tracing::info!(replica.id = %replica.id, replica.host = %replica.host, "replica registered");
        let wake = Arc::new(tokio::sync::Notify::new());
        let (queue, writer) = IntakeQueue::start(
            store.clone(),
            audit.clone(),
            settings.intake.max_batch,
            wake.clone(),
            runtime.max_detection_age,
        );
        let accounts = match runtime.cloud {
            Some(home) => Some(build_accounts(&store, home, runtime.accounts)?),
            None => None,
        };
        let sinks = runtime.remediation.sinks.clone();
        let job_lease = runtime.remediation.lease;
        let worker = match &accounts {
            Some(accounts) if runtime.remediation.workers > 0 => Some(Worker::new(
                store.clone(),
                accounts.clone(),
                runtime.remediation,
                runtime.step_retry,
                wake.clone(),
                audit.clone(),
                replica.clone(),
            )),
            None => None,
            _ => {
                tracing::info!("remediation.workers = 0: this process records incidents only");
                None
            }
        };
        let readiness = Readiness::new(
            accounts.as_ref(),
            accounts.as_ref().and(runtime.security_center_interval),
        );
        let pollers = match (runtime.security_center_interval, &accounts) {
            (Some(interval), Some(accounts)) => accounts
                .all()
                .iter()
                .enumerate()
                .map(|(index, account)| SecurityCenterPoller {
                    reader: match account.polling {
                        LeakPolling::Role => account.client.clone(),
                        LeakPolling::ResourceDirectory => accounts.home().client.clone(),
                    },
                    account: account.clone(),
                    store: store.clone(),
                    queue: queue.clone(),
                    interval,
                    overlap: Duration::from_secs(settings.intake.security_center.overlap_secs),
                    readiness: readiness.clone(),
                    index,
                    replica: replica.id.clone(),
                    lease: job_lease,
                })
                .collect(),
            _ => Vec::new(),
        };
        let exporter = match &runtime.metrics {
            Some(metrics) => Some(Arc::new(Exporter::new(
                store.clone(),
                metrics.token.as_ref(),
                runtime.notify.channels.iter().map(|c| c.name.clone()),
            )?)),
            None => None,
        };
        let sender = match runtime.notify.channels.is_empty() {
            true => None,
            false => Some(Sender::new(store.clone(), runtime.notify)?),
        };
        let intake = Intake::new(runtime.sources, settings.intake.hmac_window_secs, queue);
        let streams_end = CancellationToken::new();
        let state = AppState {
            store: store.clone(),
            wake,
            intake: Arc::new(intake),
            tokens: runtime.tokens.into(),
            max_body_bytes: settings.intake.max_body_bytes,
            sinks: Arc::new(sinks),
            audit: audit.clone(),
            readiness: readiness.clone(),
            events: http::EventHub::new(runtime.events, streams_end.clone()),
            console: runtime
                .console
                .map(|c| Arc::new(http::Sessions::new(c, store.clone()))),
            replica: replica.id.clone().into(),
        };
        let request_timeout = Duration::from_secs(settings.server.request_timeout_secs);
        let separate = runtime.metrics.as_ref().and_then(|m| m.listen);
        let router = http::router(
            state,
            &runtime.server,
            request_timeout,
            exporter.clone().filter(|_| separate.is_none()),
        );
        let metrics_server = match (separate, &exporter) {
            (Some(addr), Some(exporter)) => {
                let listener = TcpListener::bind(addr)
                    .await
                    .map_err(|source| AppError::Bind { addr, source })?;
                let router =
                    http::metrics_router(exporter.clone(), &runtime.server, request_timeout);
                Some((listener, router))
            }
            _ => None,
        };
        let listener =
            TcpListener::bind(runtime.listen)
                .await
                .map_err(|source| AppError::Bind {
                    addr: runtime.listen,
                    source,
                })?;
        Ok(Self {
            listener,
            router,
            writer,
            pollers,
            credentials_check: accounts.map(|accounts| {
                (
                    readiness,
                    accounts.all().len(),
                    runtime.server.readiness_refresh,
                )
            }),
            worker,
            sender,
            exporter,
            metrics_server,
            store,
            audit,
            shutdown_grace: Duration::from_secs(settings.server.shutdown_grace_secs),
            limits: runtime.server,
            streams_end,
            replica,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .expect("a bound TCP listener has a local address")
    }

    /// Serves until `shutdown` fires, then stops accepting, lets in-flight requests finish
    /// within the grace period, and drains the intake writer.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), AppError> {
        let addr = self.local_addr();
        tracing::info!(addr = %addr, "listening");
        let pollers: Vec<_> = self
            .pollers
            .into_iter()
            .map(|p| tokio::spawn(p.run(shutdown.clone())))
            .collect();
        if let Some((readiness, accounts, every)) = self.credentials_check {
            for index in 0..accounts {
                let check = readiness
                    .clone()
                    .refresh_credentials(index, every, shutdown.clone());
                tokio::spawn(check);
            }
        }
        let worker = self.worker.map(|w| tokio::spawn(w.run(shutdown.clone())));
        // Rows a send cut short stay leased until their lease expires, then go again.
        let sender = self.sender.map(|s| tokio::spawn(s.run(shutdown.clone())));
        if let Some(exporter) = self.exporter {
            tokio::spawn(exporter.upkeep(shutdown.clone()));
        }
        if let Some((listener, router)) = self.metrics_server {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(addr = %addr, "metrics listening");
            }
            tokio::spawn(http::serve(listener, router, self.limits, shutdown.clone()));
        }
        let heartbeat = tokio::spawn(self.replica.heartbeat(self.store.clone(), shutdown.clone()));
        tokio::spawn(audit_watch::recheck(
            self.store,
            self.audit,
            shutdown.clone(),
        ));
        let signal = shutdown.clone();
        let mut server = tokio::spawn(http::serve(self.listener, self.router, self.limits, signal));
        // Biased: once shutdown fires, a server that has already wound down must still
        // fall through to the drain below.
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {}
            result = &mut server => return join_result(result),
        }
        // Event streams never finish by themselves; the drain below waits for them.
        self.streams_end.cancel();
        tracing::info!(
            grace_secs = self.shutdown_grace.as_secs(),
            "shutting down; finishing in-flight requests"
        );
        match tokio::time::timeout(self.shutdown_grace, &mut server).await {
            Ok(result) => join_result(result)?,
            Err(_) => {
                tracing::warn!(
                    "in-flight requests did not finish within the grace period; dropping them"
                );
                server.abort();
            }
        }
        let deadline = tokio::time::Instant::now() + self.shutdown_grace;
        for poller in pollers {
            if tokio::time::timeout_at(deadline, poller).await.is_err() {
                tracing::warn!("the Security Center pollers did not stop within the grace period");
                break;
            }
        }
        // A step cut short here is safe: its lease expires and another worker redoes it.
        if let Some(worker) = worker
            && tokio::time::timeout(self.shutdown_grace, worker)
                .await
                .is_err()
        {
            tracing::warn!("workers did not finish their steps within the grace period");
        }
        if let Some(sender) = sender
            && tokio::time::timeout(self.shutdown_grace, sender)
                .await
                .is_err()
        {
            tracing::warn!("notifications in flight did not finish within the grace period");
        }
        // The router and the poller held the last queue handles, so the writer now drains.
        if tokio::time::timeout(self.shutdown_grace, self.writer)
            .await
            .is_err()
        {
            tracing::warn!("the intake writer did not drain within the grace period");
        }
        // Waited for, so the replica's row is gone before the process is.
        let _ = tokio::time::timeout(self.shutdown_grace, heartbeat).await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// The home account's client and each other account's, every one drawing its calls from its
/// own account's quotas in the fleet's schedule.
fn build_accounts(
    store: &Arc<dyn Store>,
    home: ClientOptions,
    others: Vec<AccountOptions>,
) -> Result<Accounts, CloudError> {
    let client = |options: ClientOptions, quota: String| {
        let ledger = Arc::new(StoreLedger::new(store.clone(), quota));
        CloudClient::with_ledger(options, ledger).map(Arc::new)
    };
    let quota = quota_account(&home);
    let home = Account::home(client(home, quota)?);
    let others = others
        .into_iter()
        .map(|o| {
            let c = client(o.client, o.account_id.clone())?;
            Ok(Account::other(o.account_id, c, o.polling))
        })
        .collect::<Result<Vec<_>, CloudError>>()?;
    Ok(Accounts::new(home, others))
}

/// The account whose quotas the client's calls draw on: the assumed role's account, else that
/// of the base credentials (`self`; replicas on one database must share it).
fn quota_account(options: &ClientOptions) -> String {
    options
        .assume_role
        .as_ref()
        .and_then(|(arn, _, _)| arn.split(':').nth(3))
        .filter(|account| !account.is_empty())
        .unwrap_or("self")
        .to_owned()
}

/// The fleet's rate-limit schedule, kept in the store every replica shares.
pub struct StoreLedger {
    store: Arc<dyn Store>,
    account: String,
}

impl StoreLedger {
    /// The schedule of `account`'s quotas in `store`.
    pub fn new(store: Arc<dyn Store>, account: String) -> Self {
        Self { store, account }
    }
}

#[async_trait]
impl SlotLedger for StoreLedger {
    async fn take(
        &self,
        class: ApiClass,
        interval: Duration,
        within: Option<Duration>,
    ) -> Result<FleetSlot, LedgerError> {
        let take = SlotTake {
            account: &self.account,
            class: class.as_str(),
            interval,
            within,
            now: chrono::Utc::now(),
        };
        match self.store.take_rate_slot(&take).await {
            Ok(SlotOutcome::Granted(at)) => Ok(FleetSlot::At(at)),
            Ok(SlotOutcome::Busy { next_free }) => Ok(FleetSlot::Busy { next_free }),
            Err(err) => Err(LedgerError(err.to_string())),
        }
    }
}

fn join_result(result: Result<(), tokio::task::JoinError>) -> Result<(), AppError> {
    result.map_err(|join| AppError::Serve(join.to_string()))
}
