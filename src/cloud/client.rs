//! The client every remediation step calls through: credentials, rate limits, and the short
//! retries that are safe at this layer (reads, and writes the server provably refused).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;

use super::credentials::{AssumeRole, BaseSource, CredentialProvider, Credentials, Held};
use super::error::{CloudError, ErrorClass};
use super::product::Product;
use super::ratelimit::{ApiClass, Priority, RateLimiter, SlotLedger};
use super::retry::{RetryPolicy, unit_sample};
use super::signed::SignatureVersion;
use super::transport::{Called, Transport};
use crate::monitoring::record;

tokio::task_local! {
    /// Holds the sending of calls made within its scope until it reads `true`.
    static SEND_GATE: watch::Receiver<bool>;
}

/// Runs `call` (calls on this client) with every send held until `gate` reads `true`, while
/// the calls wait for their rate-limit slots meanwhile: a caller that must make something
/// durable before the call is sent (its intent) does so during the wait, not before it. A
/// gate dropped before it opens holds the calls for good; the caller then drops them too.
pub async fn held_until<F: Future>(gate: watch::Receiver<bool>, call: F) -> F::Output {
    SEND_GATE.scope(gate, call).await
}

/// Everything needed to build a client, already validated.
#[derive(Debug)]
pub struct ClientOptions {
    pub base: BaseSource,
    /// Role ARN, session name and duration for an `AssumeRole` on top of `base`.
    pub assume_role: Option<(String, String, Duration)>,
    pub endpoints: HashMap<Product, String>,
    /// ActionTrail is regional: when no endpoint was configured for it, each region's
    /// public endpoint is used instead of `endpoints[ActionTrail]`.
    pub regional_actiontrail: bool,
    pub connect_timeout: Duration,
    pub timeout: Duration,
    pub signature_version: SignatureVersion,
    pub rates: Vec<(ApiClass, f64)>,
}

/// One API call to make.
pub struct Request {
    pub product: Product,
    /// Overrides the product's endpoint (a regional one).
    pub endpoint: Option<String>,
    pub action: &'static str,
    pub params: Vec<(String, String)>,
    pub class: ApiClass,
    pub priority: Priority,
}

impl Request {
    pub fn new(product: Product, action: &'static str) -> Self {
        let class = match product {
            Product::ActionTrail if action == "LookupEvents" => ApiClass::LookupEvents,
            Product::Ims if action == "SetAccessKeyPolicy" => ApiClass::AccessKeyPolicy,
            Product::Ram | Product::Ims if !is_read(action) => ApiClass::RamWrite,
            _ => ApiClass::Other,
        };
        Self {
            product,
            endpoint: None,
            action,
            params: Vec::new(),
            class,
            priority: Priority::Normal,
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<String>) -> Self {
        self.params.push((name.to_owned(), value.into()));
        self
    }

    pub fn param_opt(self, name: &str, value: Option<impl Into<String>>) -> Self {
        match value {
            Some(value) => self.param(name, value),
            None => self,
        }
    }

    pub fn priority(mut self, priority: Priority) -> Self {
        self.priority = priority;
        self
    }
}

/// Reads change nothing, so repeating one is always safe; every other action is a write.
fn is_read(action: &str) -> bool {
    ["Get", "List", "Describe", "Query", "Lookup"]
        .iter()
        .any(|prefix| action.starts_with(prefix))
}

/// An Alibaba Cloud OpenAPI client acting in one account. Clones made with
/// [`CloudClient::in_session`] share its credentials cache, endpoints and rate limits.
pub struct CloudClient {
    core: Arc<Core>,
    /// The role session this client's changes are made in (its reads too, once the session
    /// is at hand: see `signing`); `None`: the account-wide one.
    session: Option<String>,
}

struct Core {
    /// The account's id as metrics name it: the assumed role's, else `home`.
    account: String,
    transport: Arc<Transport>,
    credentials: CredentialProvider,
    endpoints: HashMap<Product, String>,
    regional_actiontrail: bool,
    limiter: RateLimiter,
}

impl CloudClient {
    pub fn new(options: ClientOptions) -> Result<Self, CloudError> {
        Self::build(options, None)
    }

    /// A client that draws its calls from the fleet's schedule in `ledger` as well as its own.
    pub fn with_ledger(
        options: ClientOptions,
        ledger: Arc<dyn SlotLedger>,
    ) -> Result<Self, CloudError> {
        Self::build(options, Some(ledger))
    }

    fn build(
        options: ClientOptions,
        ledger: Option<Arc<dyn SlotLedger>>,
    ) -> Result<Self, CloudError> {
        let transport = Arc::new(Transport::new(
            options.connect_timeout,
            options.timeout,
            options.signature_version,
        )?);
        let endpoint = |product: Product| {
            options
                .endpoints
                .get(&product)
                .cloned()
                .ok_or(CloudError::Endpoint {
                    product: product.name(),
                    url: String::new(),
                })
        };
        let assume = match options.assume_role {
            Some((role_arn, session_name, duration)) => Some(AssumeRole {
                role_arn,
                session_name,
                duration,
                sts_endpoint: endpoint(Product::Sts)?,
            }),
            None => None,
        };
        for product in Product::ALL {
            endpoint(product)?;
        }
        let limiter = RateLimiter::new(&options.rates);
        let account = assume
            .as_ref()
            .and_then(|a| a.role_arn.split(':').nth(3))
            .filter(|id| !id.is_empty())
            .unwrap_or("home")
            .to_owned();
        let core = Core {
            account,
            credentials: CredentialProvider::new(options.base, assume, transport.clone()),
            transport,
            endpoints: options.endpoints,
            regional_actiontrail: options.regional_actiontrail,
            limiter: match ledger {
                Some(ledger) => limiter.shared(ledger),
                None => limiter,
            },
        };
        Ok(Self {
            core: Arc::new(core),
            session: None,
        })
    }

    /// This client acting in role session `name` (with an `AssumeRole`; the same client
    /// without one), so the account's ActionTrail names the incident behind each change.
    pub fn in_session(&self, name: String) -> Self {
        Self {
            core: self.core.clone(),
            session: Some(name),
        }
    }

    /// The account as metrics name it: the assumed role's account id, else `home`.
    pub fn metrics_account(&self) -> &str {
        &self.core.account
    }

    pub(super) fn credentials(&self) -> &CredentialProvider {
        &self.core.credentials
    }

    /// The credentials to sign `action` with. Anything but a read waits for this client's
    /// own role session, so the account's ActionTrail ties every change to its incident. A
    /// read signs with that session once it is at hand; until then with the account-wide
    /// session (held since readiness) while the session is assumed beside it, so an
    /// incident's first reads do not wait on its `AssumeRole`. A failed assumption is left
    /// to the first change, which fetches again and fails as it would have.
    async fn signing(&self, action: &str) -> Result<Credentials, CloudError> {
        let provider = &self.core.credentials;
        let session = self.session.as_deref();
        let Some(name) = session.filter(|_| is_read(action)) else {
            return provider.current(session).await;
        };
        match provider.held(name) {
            Held::Ready => provider.current(session).await,
            Held::Fetching => provider.current(None).await,
            Held::Missing => {
                let core = self.core.clone();
                let name = name.to_owned();
                tokio::spawn(async move {
                    if let Err(err) = core.credentials.current(Some(&name)).await {
                        tracing::warn!(session = %name, error = %err,
                            "assuming the role session ahead of its changes failed; its first change tries again");
                    }
                });
                provider.current(None).await
            }
        }
    }

    /// The ActionTrail endpoint that stores `region`'s events.
    pub fn actiontrail_endpoint(&self, region: &str) -> String {
        if self.core.regional_actiontrail {
            Product::ActionTrail.default_endpoint(region)
        } else {
            self.core.endpoints[&Product::ActionTrail].clone()
        }
    }

    /// Makes the call. A read is retried on any transient failure; a write only when the
    /// answer proves the server did not act (throttling, a stale token), since a write whose
    /// outcome is unknown must be reconciled by its step before it is sent again. Each
    /// attempt is freshly signed; a wait longer than [`RetryPolicy::CALL`] allows is left to
    /// the step's durable retry.
    pub async fn call(&self, request: Request) -> Result<Called<Value>, CloudError> {
        let endpoint = request
            .endpoint
            .as_ref()
            .unwrap_or(&self.core.endpoints[&request.product]);
        let policy = RetryPolicy::CALL;
        let mut attempt = 1;
        loop {
            let queued = std::time::Instant::now();
            // Credentials and the gate are awaited within the slot: a call they hold past its
            // slot's allowance takes another rather than crowding the next slot's call.
            let ready = || async {
                let credentials = self.signing(request.action).await?;
                if let Ok(mut gate) = SEND_GATE.try_with(watch::Receiver::clone)
                    && gate.wait_for(|open| *open).await.is_err()
                {
                    std::future::pending::<()>().await;
                }
                Ok(credentials)
            };
            let credentials = self
                .core
                .limiter
                .acquire_ready(request.class, request.priority, ready)
                .await?;
            record::rate_limit_wait(&self.core.account, request.class.as_str(), queued.elapsed());
            let result = self
                .core
                .transport
                .send(
                    endpoint,
                    request.product,
                    request.action,
                    &request.params,
                    &credentials,
                )
                .await;
            let err = match result {
                Ok(called) => return Ok(called),
                Err(err) => err,
            };
            let stale_token = err
                .code()
                .is_some_and(|c| c.starts_with("InvalidSecurityToken"));
            if stale_token {
                self.core.credentials.invalidate().await;
            }
            let retryable = err.refused_before_acting()
                || (is_read(request.action) && err.class() == ErrorClass::Retryable);
            let patient = err.retry_after().is_some_and(|after| after > policy.cap);
            if !retryable || patient || attempt >= policy.max_attempts {
                return Err(err);
            }
            let delay = policy.delay(attempt, unit_sample(), err.retry_after());
            tracing::warn!(
                action = request.action,
                attempt,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "retrying Alibaba Cloud call"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }
}
