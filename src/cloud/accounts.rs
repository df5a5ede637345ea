//! The accounts akguard acts in: the home account (its own identity's, `[alibaba]`) first,
//! then every `[[alibaba.accounts]]` entry, each with a client of its own (credentials,
//! endpoints, rate limits) and the names its account-wide state is kept under.

use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Serialize};

use super::client::{ClientOptions, CloudClient};

/// How an account's Security Center leak records are read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakPolling {
    /// With the account's own assumed role.
    #[default]
    Role,
    /// By the home account, a resource directory's management account, naming this member
    /// in `ResourceDirectoryAccountId`.
    ResourceDirectory,
}

/// One `[[alibaba.accounts]]` entry, validated.
#[derive(Debug)]
pub struct AccountOptions {
    pub account_id: String,
    pub polling: LeakPolling,
    pub client: ClientOptions,
}

/// One account and the client that acts in it.
pub struct Account {
    /// Configured for the others; the home account's is learned from STS at start.
    id: OnceLock<String>,
    home: bool,
    pub client: Arc<CloudClient>,
    pub polling: LeakPolling,
}

impl Account {
    pub fn home(client: Arc<CloudClient>) -> Self {
        Self {
            id: OnceLock::new(),
            home: true,
            client,
            polling: LeakPolling::Role,
        }
    }

    pub fn other(id: String, client: Arc<CloudClient>, polling: LeakPolling) -> Self {
        Self {
            id: OnceLock::from(id),
            home: false,
            client,
            polling,
        }
    }

    /// The account id, once known.
    pub fn id(&self) -> Option<&str> {
        self.id.get().map(String::as_str)
    }

    /// Records the home account's id as STS names it; set once.
    pub fn learn_id(&self, id: &str) {
        let _ = self.id.set(id.to_owned());
    }

    pub fn is_home(&self) -> bool {
        self.home
    }

    /// What logs, metrics and `/readyz` call it: its id, or `home` until that is known.
    pub fn label(&self) -> String {
        self.id().unwrap_or("home").to_owned()
    }

    /// The key its account-wide state is stored under: empty for the home account (whose
    /// rows predate other accounts), the account id for the others.
    pub fn store_key(&self) -> &str {
        match self.home {
            true => "",
            false => self.id().unwrap_or_default(),
        }
    }

    /// `name` for the home account, `name:<id>` for another: its singleton job or mark.
    pub fn scoped(&self, name: &str) -> String {
        match self.store_key() {
            "" => name.to_owned(),
            key => format!("{name}:{key}"),
        }
    }
}

/// Every account, the home account first.
#[derive(Clone)]
pub struct Accounts(Arc<Vec<Arc<Account>>>);

impl Accounts {
    pub fn new(home: Account, others: Vec<Account>) -> Self {
        let mut all = vec![Arc::new(home)];
        all.extend(others.into_iter().map(Arc::new));
        Self(Arc::new(all))
    }

    pub fn home(&self) -> &Arc<Account> {
        &self.0[0]
    }

    pub fn all(&self) -> &[Arc<Account>] {
        &self.0
    }

    /// The place in [`Accounts::all`] of the account a notification naming `account_id`
    /// belongs to; `None` when akguard knows no such account, so nothing may be called for it.
    /// Naming none, or the home account's id, it is the home account's; so is any id while
    /// the home account's is not yet known and no other account is configured (a
    /// single-account deployment).
    pub fn route(&self, account_id: Option<&str>) -> Option<usize> {
        let Some(wanted) = account_id.map(str::trim).filter(|a| !a.is_empty()) else {
            return Some(0);
        };
        if let Some(found) = self.0.iter().position(|a| a.id() == Some(wanted)) {
            return Some(found);
        }
        match (self.home().id(), self.0.len()) {
            (None, 1) => Some(0),
            _ => None,
        }
    }
}
