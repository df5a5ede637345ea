//! Console sign-ins: an API token exchanged for a session kept in the database, so every
//! replica on it honours a sign-in made on any of them.
//!
//! The store keeps only a SHA-256 of each session's secret, the token's name and role, and
//! the expiry. The CSRF token is derived from the secret, which only the browser holds, so
//! reading the table is not enough to act as a session.

use std::sync::Arc;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use chrono::Utc;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ApiToken, ConsoleConfig, Role};
use crate::store::{ConsoleSession, Store, StoreError};

pub const SESSION_COOKIE: &str = "akguard_session";
pub const LANG_COOKIE: &str = "akguard_lang";
/// Keeps the CSRF token apart from the stored digest of the same secret.
const CSRF_CONTEXT: &str = "akguard console csrf\0";

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token's configured name, which the audit log shows.
    pub name: String,
    pub role: Role,
    /// The synchroniser token every form of this session carries.
    pub csrf: String,
}

impl Session {
    /// Whether `presented` is this session's CSRF token, in constant time.
    pub fn csrf_matches(&self, presented: &str) -> bool {
        self.csrf.len() == presented.len()
            && bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

pub struct Sessions {
    pub config: ConsoleConfig,
    store: Arc<dyn Store>,
}

impl Sessions {
    pub fn new(config: ConsoleConfig, store: Arc<dyn Store>) -> Self {
        Self { config, store }
    }

    /// A new session for `token`; returns the cookie value, known only to the browser.
    pub async fn open(&self, token: &ApiToken) -> Result<String, StoreError> {
        let secret = random();
        let now = Utc::now();
        let ttl =
            chrono::Duration::from_std(self.config.session_ttl).unwrap_or(chrono::Duration::MAX);
        let session = ConsoleSession {
            secret_sha256: hex::encode(digest(&secret)),
            token_name: token.name.clone(),
            role: token.role.as_str().to_owned(),
            expires_at: now
                .checked_add_signed(ttl)
                .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
        };
        self.store.open_session(&session, now).await?;
        Ok(secret)
    }

    /// The live session the request's cookie names.
    pub async fn find(&self, headers: &HeaderMap) -> Result<Option<Session>, StoreError> {
        let Some(secret) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let key = hex::encode(digest(secret));
        let Some(stored) = self.store.find_session(&key, Utc::now()).await? else {
            return Ok(None);
        };
        // A role this build does not know (written by a newer one) grants nothing.
        Ok(Role::parse(&stored.role).map(|role| Session {
            name: stored.token_name,
            role,
            csrf: hex::encode(digest(&format!("{CSRF_CONTEXT}{secret}"))),
        }))
    }

    /// Ends the request's session on every replica.
    pub async fn close(&self, headers: &HeaderMap) -> Result<(), StoreError> {
        match cookie(headers, SESSION_COOKIE) {
            Some(secret) => self.store.close_session(&hex::encode(digest(secret))).await,
            None => Ok(()),
        }
    }

    /// The `Set-Cookie` value for a session id; `None` clears it.
    pub fn set_cookie(&self, id: Option<&str>) -> String {
        let secure = if self.config.secure_cookies {
            "; Secure"
        } else {
            ""
        };
        let (value, age) = match id {
            Some(id) => (id, self.config.session_ttl.as_secs()),
            None => ("", 0),
        };
        format!(
            "{SESSION_COOKIE}={value}; Path=/; Max-Age={age}; HttpOnly; SameSite=Strict{secure}"
        )
    }
}

/// A cookie's value from the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The configured token whose digest matches `presented`; every entry is compared, so timing
/// does not reveal which one matched.
pub fn token_for<'a>(tokens: &'a [ApiToken], presented: &str) -> Option<&'a ApiToken> {
    let wanted = digest(presented.trim());
    let mut found = None;
    for token in tokens {
        if bool::from(token.sha256.ct_eq(&wanted)) {
            found = Some(token);
        }
    }
    found
}

fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn random() -> String {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf).expect("the operating system provides randomness");
    hex::encode(buf)
}
