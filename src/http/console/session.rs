//! Console sign-ins: an API token exchanged for a session held by this process.
//!
//! Sessions live in memory. The `Store` trait and its backends are being reworked
//! (PostgreSQL) and the console must not widen them meanwhile; the cost is that a restart
//! signs everyone out and that replicas behind one address need sticky routing until the
//! sessions move to a table. Only a SHA-256 of each session id is kept, as a table would.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use axum::http::HeaderMap;
use axum::http::header::COOKIE;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ApiToken, ConsoleConfig, Role};

pub const SESSION_COOKIE: &str = "akguard_session";
pub const LANG_COOKIE: &str = "akguard_lang";
/// Sessions held at once; signing in beyond it drops the expired ones, then the oldest.
const MAX_SESSIONS: usize = 10_000;

/// One signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    /// The token's configured name, which the audit log shows.
    pub name: String,
    pub role: Role,
    /// The synchroniser token every form of this session carries.
    pub csrf: String,
    expires: Instant,
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
    live: Mutex<HashMap<[u8; 32], Session>>,
}

impl Sessions {
    pub fn new(config: ConsoleConfig) -> Self {
        Self {
            config,
            live: Mutex::default(),
        }
    }

    /// A new session for `token`; returns the cookie value, known only to the browser.
    pub fn open(&self, token: &ApiToken) -> String {
        let id = random();
        let now = Instant::now();
        let session = Session {
            name: token.name.clone(),
            role: token.role,
            csrf: random(),
            expires: now + self.config.session_ttl,
        };
        let mut live = self.lock();
        if live.len() >= MAX_SESSIONS {
            live.retain(|_, s| s.expires > now);
        }
        if live.len() >= MAX_SESSIONS
            && let Some(oldest) = live.iter().min_by_key(|(_, s)| s.expires).map(|(k, _)| *k)
        {
            live.remove(&oldest);
        }
        live.insert(digest(&id), session);
        id
    }

    /// The live session the request's cookie names.
    pub fn find(&self, headers: &HeaderMap) -> Option<Session> {
        let id = cookie(headers, SESSION_COOKIE)?;
        let key = digest(id);
        let mut live = self.lock();
        match live.get(&key) {
            Some(session) if session.expires > Instant::now() => Some(session.clone()),
            Some(_) => {
                live.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn close(&self, headers: &HeaderMap) {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.lock().remove(&digest(id));
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], Session>> {
        self.live.lock().unwrap_or_else(|e| e.into_inner())
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
