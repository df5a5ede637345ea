//! Readiness: what `/readyz` and `/v1/status` report — the database, the audit chain,
//! akguard's own credentials (a cached `GetCallerIdentity`, refreshed in the background, never
//! per probe) and the Security Center poller's last success, for the home account and, under
//! `accounts`, for each account. Another account failing (a role that cannot be assumed)
//! degrades that account only: the daemon stays ready for the rest.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::cloud::accounts::{Account, Accounts};
use crate::store::{AuditGate, Store};

/// The longest the database may take to answer (SQLite: to grant its write lock) before it
/// counts as down.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The poller is stale after this many intervals without a successful poll: three missed
/// polls plus one interval of margin for a slow one.
const STALE_INTERVALS: u32 = 4;

/// The shared, cheap-to-read verdicts the probes show.
#[derive(Clone)]
pub struct Readiness {
    /// One per account, the home account first; empty without credentials.
    accounts: Arc<Vec<AccountWatch>>,
}

struct AccountWatch {
    account: Arc<Account>,
    credentials: Mutex<Credentials>,
    poller: Option<PollerWatch>,
}

enum Credentials {
    Pending {
        tried: String,
    },
    Ok {
        tried: String,
        arn: String,
        at: DateTime<Utc>,
    },
    Failing {
        tried: String,
        error: String,
        at: DateTime<Utc>,
    },
}

struct PollerWatch {
    stale_after: Duration,
    /// Monotonic: a stale poller is judged by elapsed time, whatever the wall clock does.
    last_success: Mutex<(Instant, Option<DateTime<Utc>>)>,
    last_error: Mutex<Option<String>>,
}

/// One check as shown: `ok`, `degraded`, `failing`, `pending`, `disabled` or
/// `not_configured`.
struct Check {
    name: &'static str,
    status: &'static str,
    reason: Option<String>,
    detail: Value,
}

impl Check {
    fn passes(&self) -> bool {
        matches!(
            self.status,
            "ok" | "degraded" | "disabled" | "not_configured"
        )
    }

    /// `{"status": "ok", "reason": null, ...detail}`.
    fn to_json(&self) -> Value {
        let mut check = json!({"status": self.status, "reason": self.reason});
        if let (Some(check), Value::Object(detail)) = (check.as_object_mut(), &self.detail) {
            check.extend(detail.clone());
        }
        check
    }
}

/// Every check's verdict, and whether all of them pass.
pub struct Report {
    checks: Vec<Check>,
}

impl Report {
    pub fn ready(&self) -> bool {
        self.checks.iter().all(Check::passes)
    }

    /// The failing checks' reasons, one sentence each.
    pub fn reasons(&self) -> String {
        self.checks
            .iter()
            .filter(|c| !c.passes())
            .map(|c| format!("{}: {}", c.name, c.reason.as_deref().unwrap_or(c.status)))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// `{"database": {"status": "ok", "reason": null, ...}, ...}`.
    pub fn to_json(&self) -> Value {
        let mut out = serde_json::Map::new();
        for c in &self.checks {
            out.insert(c.name.to_owned(), c.to_json());
        }
        Value::Object(out)
    }
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Readiness {
    /// `accounts` is `None` without credentials; `poll_interval` is `None` with the poller off.
    pub fn new(accounts: Option<&Accounts>, poll_interval: Option<Duration>) -> Self {
        let watch = |account: &Arc<Account>| AccountWatch {
            credentials: Mutex::new(Credentials::Pending {
                tried: account.client.credentials_label(),
            }),
            poller: poll_interval.map(|interval| PollerWatch {
                stale_after: interval * STALE_INTERVALS,
                last_success: Mutex::new((Instant::now(), None)),
                last_error: Mutex::new(None),
            }),
            account: account.clone(),
        };
        let accounts = accounts.map_or_else(Vec::new, |a| a.all().iter().map(watch).collect());
        Self {
            accounts: Arc::new(accounts),
        }
    }

    /// Asks STS who akguard is in account `index` now and every `every` until `shutdown`.
    pub async fn refresh_credentials(
        self,
        index: usize,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let Some(watch) = self.accounts.get(index) else {
            return;
        };
        let client = watch.account.client.clone();
        loop {
            let tried = client.credentials_label();
            let answer = tokio::select! {
                () = shutdown.cancelled() => return,
                answer = client.caller_identity() => answer,
            };
            let at = Utc::now();
            crate::monitoring::record::credentials_checked(
                client.metrics_account(),
                answer.is_ok(),
            );
            let verdict = match answer {
                Ok(called) => Credentials::Ok {
                    tried,
                    arn: called.value.arn.unwrap_or_default(),
                    at,
                },
                Err(err) => {
                    tracing::warn!(account = %watch.account.label(), credentials = %tried,
                        error = %err, "readiness: STS GetCallerIdentity failed");
                    Credentials::Failing {
                        tried,
                        error: err.to_string(),
                        at,
                    }
                }
            };
            *watch.credentials.lock().expect("credentials verdict lock") = verdict;
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Called by account `index`'s poller after each whole poll.
    pub fn poll_finished(&self, index: usize, error: Option<String>) {
        let Some(watch) = self.accounts.get(index).and_then(|a| a.poller.as_ref()) else {
            return;
        };
        if error.is_none() {
            *watch.last_success.lock().expect("poller lock") = (Instant::now(), Some(Utc::now()));
        }
        *watch.last_error.lock().expect("poller lock") = error;
    }

    /// Runs the checks: the database now, the rest from their cached verdicts.
    pub async fn report(&self, store: &dyn Store, audit: &AuditGate) -> Report {
        let database = match tokio::time::timeout(DATABASE_TIMEOUT, store.ping()).await {
            Ok(Ok(())) => ("ok", None),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "readiness check: database unreachable");
                ("failing", Some("database unreachable".to_owned()))
            }
            Err(_) => (
                "failing",
                Some(format!(
                    "database did not answer within {} s",
                    DATABASE_TIMEOUT.as_secs()
                )),
            ),
        };
        let chain = audit.last().0.reason();
        let mut checks = vec![
            Check {
                name: "database",
                status: database.0,
                reason: database.1,
                detail: json!({"backend": store.backend()}),
            },
            Check {
                name: "audit_chain",
                status: if chain.is_none() { "ok" } else { "failing" },
                reason: chain.map(|r| format!("the audit chain is broken: {r}")),
                detail: Value::Null,
            },
            self.credentials_check(self.accounts.first()),
            poller_check(self.accounts.first().map(|a| a.poller.as_ref())),
        ];
        if self.accounts.len() > 1 {
            checks.push(self.accounts_check());
        }
        Report { checks }
    }

    /// Every account's credentials and poller: `degraded` (still ready) when another
    /// account's fail, since each account's work goes on without the others.
    fn accounts_check(&self) -> Check {
        let mut detail = serde_json::Map::new();
        let mut failing = Vec::new();
        for watch in self.accounts.iter() {
            let credentials = self.credentials_check(Some(watch));
            let poller = poller_check(Some(watch.poller.as_ref()));
            let label = watch.account.label();
            let bad: Vec<&Check> = [&credentials, &poller]
                .into_iter()
                .filter(|c| !c.passes())
                .collect();
            let status = if bad.is_empty() { "ok" } else { "failing" };
            if !bad.is_empty() {
                let why: Vec<String> = bad
                    .iter()
                    .map(|c| c.reason.clone().unwrap_or_else(|| c.status.to_owned()))
                    .collect();
                failing.push(format!("account {label}: {}", why.join("; ")));
            }
            detail.insert(
                label,
                json!({
                    "status": status,
                    "home": watch.account.is_home(),
                    "credentials": credentials.to_json(),
                    "security_center": poller.to_json(),
                }),
            );
        }
        Check {
            name: "accounts",
            status: if failing.is_empty() { "ok" } else { "degraded" },
            reason: (!failing.is_empty()).then(|| failing.join("; ")),
            detail: json!({ "accounts": detail }),
        }
    }

    fn credentials_check(&self, watch: Option<&AccountWatch>) -> Check {
        let Some(watch) = watch else {
            return Check {
                name: "credentials",
                status: "not_configured",
                reason: Some("no Alibaba Cloud credentials are configured: incidents are recorded, none is remediated".to_owned()),
                detail: json!({}),
            };
        };
        let (status, reason, detail) = match &*watch.credentials.lock().expect("credentials lock") {
            Credentials::Pending { tried } => (
                "pending",
                Some(format!(
                    "STS GetCallerIdentity with {tried} has not answered yet"
                )),
                json!({"credentials": tried}),
            ),
            Credentials::Ok { tried, arn, at } => (
                "ok",
                None,
                json!({"credentials": tried, "arn": arn, "checked_at": rfc3339(*at)}),
            ),
            Credentials::Failing { tried, error, at } => (
                "failing",
                Some(format!(
                    "STS GetCallerIdentity with {tried} failed: {error}"
                )),
                json!({"credentials": tried, "checked_at": rfc3339(*at)}),
            ),
        };
        Check {
            name: "credentials",
            status,
            reason,
            detail,
        }
    }
}

/// The Security Center poller's check: `None` when there is no account, `Some(None)` when
/// the poller is off.
fn poller_check(watch: Option<Option<&PollerWatch>>) -> Check {
    let Some(watch) = watch.flatten() else {
        return Check {
            name: "security_center",
            status: "disabled",
            reason: None,
            detail: json!({}),
        };
    };
    let (since, last) = *watch.last_success.lock().expect("poller lock");
    let error = watch.last_error.lock().expect("poller lock").clone();
    let stale = since.elapsed() > watch.stale_after;
    let reason = stale.then(|| {
        let when = last.map_or("no poll has succeeded yet".to_owned(), |at| {
            format!("the last successful poll was at {}", rfc3339(at))
        });
        let error = error
            .as_deref()
            .map_or(String::new(), |e| format!("; last error: {e}"));
        format!(
            "the Security Center poller is stale ({when}, allowed {} s){error}",
            watch.stale_after.as_secs()
        )
    });
    Check {
        name: "security_center",
        status: if stale { "failing" } else { "ok" },
        reason,
        detail: json!({
            "last_success": last.map(rfc3339),
            "last_error": error,
            "stale_after_secs": watch.stale_after.as_secs(),
        }),
    }
}
