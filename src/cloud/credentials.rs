//! akguard's own Alibaba Cloud credentials: static keys, an ECS instance RAM role, and
//! optionally an `AssumeRole` on top, each refreshed before it expires.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::sync::Mutex;

use super::error::{CloudError, ErrorClass};
use super::parse::text;
use super::product::Product;
use super::retry::{RetryPolicy, unit_sample};
use super::transport::Transport;

/// One usable set of credentials.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub access_key_secret: SecretString,
    pub security_token: Option<SecretString>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// Where a role session's credentials stand, for a read deciding whether to wait for them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Ready,
    Fetching,
    Missing,
}

/// Where the first credentials come from.
#[derive(Debug, Clone)]
pub enum BaseSource {
    Static(Credentials),
    /// The ECS metadata service; `role` is discovered when `None`.
    EcsRamRole {
        metadata_url: String,
        role: Option<String>,
    },
}

/// An `AssumeRole` made with the base credentials, e.g. to act in another account.
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: String,
    pub duration: Duration,
    pub sts_endpoint: String,
}

struct Cached {
    credentials: Credentials,
    refresh_at: Option<DateTime<Utc>>,
}

/// One cache slot, locked while its credentials are fetched.
type Slot = Arc<Mutex<Option<Cached>>>;

/// Hands out current credentials, fetching new ones ahead of expiry.
pub struct CredentialProvider {
    base: BaseSource,
    assume: Option<AssumeRole>,
    transport: Arc<Transport>,
    base_cache: Mutex<Option<Cached>>,
    /// The assumed role's credentials per session name: the account-wide session and one
    /// per incident, each fetched (and refreshed) on its own.
    sessions: std::sync::Mutex<HashMap<String, Slot>>,
}

/// Refresh when this share of the lifetime is left, at most five minutes before expiry.
fn refresh_time(fetched: DateTime<Utc>, expires: Option<DateTime<Utc>>) -> Option<DateTime<Utc>> {
    let expires = expires?;
    let lifetime = expires - fetched;
    let margin = (lifetime / 4).min(chrono::Duration::minutes(5));
    Some(expires - margin)
}

impl CredentialProvider {
    pub fn new(base: BaseSource, assume: Option<AssumeRole>, transport: Arc<Transport>) -> Self {
        Self {
            base,
            assume,
            transport,
            base_cache: Mutex::new(None),
            sessions: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Credentials to sign the next request with: with an `AssumeRole`, those of `session`
    /// (a role session name such as `akguard-42`), or of the account-wide session when `None`.
    pub async fn current(&self, session: Option<&str>) -> Result<Credentials, CloudError> {
        let base = self.cached(&self.base_cache, || self.fetch_base()).await?;
        let current = match &self.assume {
            None => base,
            Some(assume) => {
                let name = session.unwrap_or(&assume.session_name);
                let slot = self.session_slot(name);
                self.cached(&slot, || self.assume_role(assume, name, &base))
                    .await?
            }
        };
        if let Some(at) = current.expires_at {
            crate::monitoring::record::credentials_expire(at);
        }
        Ok(current)
    }

    /// Whether `session`'s credentials are at hand, being fetched, or still to be fetched.
    /// Without an `AssumeRole` every session signs with the base credentials: at hand.
    pub fn held(&self, session: &str) -> Held {
        if self.assume.is_none() {
            return Held::Ready;
        }
        let Some(slot) = self.lock_sessions().get(session).cloned() else {
            return Held::Missing;
        };
        let now = Utc::now();
        match slot.try_lock() {
            Err(_) => Held::Fetching,
            Ok(cached)
                if cached
                    .as_ref()
                    .is_some_and(|c| c.refresh_at.is_none_or(|at| now < at)) =>
            {
                Held::Ready
            }
            Ok(_) => Held::Missing,
        }
    }

    /// The AccessKey IDs in use: the base key's and, with an `AssumeRole`, the role's in the
    /// account-wide session and in every other session held now. A session still being
    /// assumed is not waited for: its key did not exist when the incident's key was reported.
    pub async fn key_ids(&self) -> Result<Vec<String>, CloudError> {
        let base = self.cached(&self.base_cache, || self.fetch_base()).await?;
        let mut ids = vec![base.access_key_id];
        let current = self.current(None).await?;
        // A slot being fetched is skipped rather than waited for: a self-protection check
        // must not stall behind another session's AssumeRole.
        let slots: Vec<Slot> = self.lock_sessions().values().cloned().collect();
        for slot in slots {
            if let Ok(guard) = slot.try_lock()
                && let Some(cached) = &*guard
            {
                ids.push(cached.credentials.access_key_id.clone());
            }
        }
        ids.push(current.access_key_id);
        let mut seen = HashSet::new();
        ids.retain(|id| seen.insert(id.clone()));
        Ok(ids)
    }

    fn lock_sessions(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // Only a map of slots: one left by a panicking holder is still consistent.
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The slot of session `name`, made on first use. Slots no caller holds and whose
    /// credentials are due for refresh are dropped then, so one per incident does not pile up.
    fn session_slot(&self, name: &str) -> Slot {
        let mut sessions = self.lock_sessions();
        if let Some(slot) = sessions.get(name) {
            return slot.clone();
        }
        let now = Utc::now();
        sessions.retain(|_, slot| {
            Arc::strong_count(slot) > 1
                || slot.try_lock().map_or(true, |cached| {
                    cached
                        .as_ref()
                        .is_some_and(|c| c.refresh_at.is_none_or(|at| now < at))
                })
        });
        let slot = Slot::default();
        sessions.insert(name.to_owned(), slot.clone());
        slot
    }

    /// Which credentials these are, for a person reading a failure: the AccessKey ID (never
    /// the secret), the ECS RAM role, and the role assumed on top.
    pub fn describe(&self) -> String {
        let base = match &self.base {
            BaseSource::Static(c) => format!("AccessKey {}", c.access_key_id),
            BaseSource::EcsRamRole { role: Some(r), .. } => format!("ECS RAM role {r}"),
            BaseSource::EcsRamRole { role: None, .. } => "the ECS instance's RAM role".into(),
        };
        match &self.assume {
            Some(assume) => format!("role {} assumed with {base}", assume.role_arn),
            None => base,
        }
    }

    /// Forgets temporary credentials the server refused, so the next call fetches anew.
    pub async fn invalidate(&self) {
        self.lock_sessions().clear();
        if !matches!(self.base, BaseSource::Static(_)) {
            *self.base_cache.lock().await = None;
        }
    }

    async fn cached<F, Fut>(
        &self,
        cache: &Mutex<Option<Cached>>,
        fetch: F,
    ) -> Result<Credentials, CloudError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Credentials, CloudError>>,
    {
        let mut cache = cache.lock().await;
        let now = Utc::now();
        if let Some(entry) = cache.as_ref()
            && entry.refresh_at.is_none_or(|at| now < at)
        {
            return Ok(entry.credentials.clone());
        }
        let credentials = fetch().await?;
        let refresh_at = refresh_time(now, credentials.expires_at);
        if credentials.expires_at.is_some() {
            tracing::info!(
                access_key_id = %credentials.access_key_id,
                expires_at = ?credentials.expires_at,
                "obtained temporary credentials"
            );
        }
        *cache = Some(Cached {
            credentials: credentials.clone(),
            refresh_at,
        });
        Ok(credentials)
    }

    /// The base credentials; a metadata service that fails transiently is asked again with
    /// backoff, then the failure is left to the caller's own (durable) retry.
    async fn fetch_base(&self) -> Result<Credentials, CloudError> {
        match &self.base {
            BaseSource::Static(credentials) => Ok(credentials.clone()),
            BaseSource::EcsRamRole { metadata_url, role } => {
                with_backoff(|| {
                    self.transport
                        .ecs_role_credentials(metadata_url, role.as_deref())
                })
                .await
            }
        }
    }

    async fn assume_role(
        &self,
        assume: &AssumeRole,
        session: &str,
        base: &Credentials,
    ) -> Result<Credentials, CloudError> {
        let params = vec![
            ("RoleArn".to_owned(), assume.role_arn.clone()),
            ("RoleSessionName".to_owned(), session.to_owned()),
            (
                "DurationSeconds".to_owned(),
                assume.duration.as_secs().to_string(),
            ),
        ];
        // AssumeRole only issues temporary credentials: repeating it is harmless.
        let called = with_backoff(|| async {
            self.transport
                .send(
                    &assume.sts_endpoint,
                    Product::Sts,
                    "AssumeRole",
                    &params,
                    base,
                )
                .await
                .map_err(|err| match err.class() {
                    ErrorClass::Retryable => {
                        CloudError::CredentialsPending(format!("AssumeRole failed: {err}"))
                    }
                    _ => CloudError::Credentials(format!("AssumeRole failed: {err}")),
                })
        })
        .await?;
        parse_temporary(called.value.get("Credentials").unwrap_or(&Value::Null)).ok_or_else(|| {
            CloudError::Credentials("AssumeRole returned no usable credentials".into())
        })
    }
}

/// Runs `fetch` until it succeeds, fails for good, or has failed transiently
/// [`RetryPolicy::CALL`]'s attempts; the transient failure then stays transient, so the step
/// that needed the credentials is retried later rather than given up.
async fn with_backoff<T, F, Fut>(mut fetch: F) -> Result<T, CloudError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CloudError>>,
{
    let mut attempt = 1;
    loop {
        match fetch().await {
            Err(err)
                if err.class() == ErrorClass::Retryable
                    && attempt < RetryPolicy::CALL.max_attempts =>
            {
                let delay = RetryPolicy::CALL.delay(attempt, unit_sample(), err.retry_after());
                tracing::warn!(attempt, error = %err, "fetching credentials failed; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Reads `{AccessKeyId, AccessKeySecret, SecurityToken, Expiration}` (STS and the metadata
/// service share this shape).
pub(super) fn parse_temporary(value: &Value) -> Option<Credentials> {
    let expires_at = text(value, &["Expiration"])
        .and_then(|e| DateTime::parse_from_rfc3339(&e).ok())
        .map(|e| e.with_timezone(&Utc));
    Some(Credentials {
        access_key_id: text(value, &["AccessKeyId"])?,
        access_key_secret: SecretString::from(text(value, &["AccessKeySecret"])?),
        security_token: text(value, &["SecurityToken"]).map(SecretString::from),
        expires_at,
    })
}

impl Credentials {
    pub(super) fn secret(&self) -> &str {
        self.access_key_secret.expose_secret()
    }

    pub(super) fn token(&self) -> Option<&str> {
        self.security_token.as_ref().map(|t| t.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_credentials_refresh_ahead_of_expiry() {
        let fetched = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let hour = fetched + chrono::Duration::hours(1);
        assert_eq!(
            refresh_time(fetched, Some(hour)),
            Some(hour - chrono::Duration::minutes(5))
        );
        let short = fetched + chrono::Duration::seconds(20);
        assert_eq!(
            refresh_time(fetched, Some(short)),
            Some(short - chrono::Duration::seconds(5))
        );
        assert_eq!(refresh_time(fetched, None), None);
    }

    #[test]
    fn debug_output_never_shows_the_secret() {
        let c = Credentials {
            access_key_id: "LTAI5tDEBUG".into(),
            access_key_secret: SecretString::from("very-secret-value"),
            security_token: Some(SecretString::from("token-value")),
            expires_at: None,
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("very-secret-value") && !shown.contains("token-value"));
    }
}
