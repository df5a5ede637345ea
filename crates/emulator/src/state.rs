//! The live state: the emulated account (kept in the scenario schema, so `/_emulator/state` is
//! a plain serialization) plus what the gateway remembers: spent nonces, the call log,
//! rate-limit windows and metadata-service tokens.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use serde::Serialize;

use super::clock::Clock;
use super::error::{ApiError, EmulatorError};
use super::ids;
use super::scenario::{AccessKey, Scenario, User};
use super::when::{When, format_time, resolve_cycle};

/// Everything the server's handlers share.
pub(crate) struct Shared {
    pub clock: Clock,
    inner: Mutex<Inner>,
}

/// State changed under one lock, so each request sees and leaves a consistent account.
pub(crate) struct Inner {
    pub world: Scenario,
    /// `(AccessKeyId, SignatureNonce)` → when it was spent.
    pub nonces: HashMap<(String, String), DateTime<Utc>>,
    pub calls: Vec<CallRecord>,
    /// Recent `LookupEvents` calls per account uid, for the 2-per-second quota (quotas are
    /// the account's).
    pub lookup_windows: HashMap<String, VecDeque<DateTime<Utc>>>,
    /// Metadata-service session tokens → expiry.
    pub metadata_tokens: HashMap<String, DateTime<Utc>>,
}

/// One request to `/`, as `GET /_emulator/calls` lists it.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct CallRecord {
    pub seq: u64,
    /// When the request arrived, to the microsecond.
    pub at: String,
    /// When the answer left, after the configured latency: with `at`, what the call cost,
    /// so a benchmark can tell the caller's own time between calls from the emulator's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answered_at: Option<String>,
    pub version: Option<String>,
    pub product: Option<&'static str>,
    pub action: Option<String>,
    pub access_key_id: Option<String>,
    pub nonce: Option<String>,
    pub timestamp: Option<String>,
    pub method: String,
    /// `v1` or `v3`: which signature scheme the request used.
    pub signature: &'static str,
    pub status: u16,
    pub code: Option<String>,
    /// The uid of the account that answered: the home account's, or a member's.
    pub account: String,
    pub params: BTreeMap<String, String>,
}

impl Shared {
    /// Validates the scenario and fixes its relative times against `clock`.
    pub(crate) fn load(mut world: Scenario, clock: Clock) -> Result<Self, EmulatorError> {
        world.validate()?;
        resolve(&mut world, clock.now());
        Ok(Self {
            clock,
            inner: Mutex::new(Inner {
                world,
                nonces: HashMap::new(),
                calls: Vec::new(),
                lookup_windows: HashMap::new(),
                metadata_tokens: HashMap::new(),
            }),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked mid-update leaves at worst one odd entry; serving on beats
        // failing every later request.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// Resolves every offset to an instant and fills derived ids.
fn resolve(world: &mut Scenario, now: DateTime<Utc>) {
    let fix = |w: &mut When| w.resolve(now);
    let fix_opt = |w: &mut Option<When>| {
        if let Some(w) = w {
            w.resolve(now);
        }
    };
    let fix_key = |k: &mut AccessKey| {
        k.create_date.resolve(now);
        if let Some(w) = &mut k.last_used {
            w.resolve(now);
        }
    };
    world.account.access_keys.iter_mut().for_each(fix_key);
    for user in &mut world.users {
        user.id.get_or_insert_with(|| ids::numeric_id(&user.name));
        fix(&mut user.create_date);
        fix_opt(&mut user.update_date);
        fix_opt(&mut user.last_login_date);
        if let Some(profile) = &mut user.login_profile {
            fix(&mut profile.create_date);
        }
        user.policies
            .iter_mut()
            .for_each(|p| fix(&mut p.attach_date));
        user.access_keys.iter_mut().for_each(fix_key);
    }
    for policy in &mut world.policies {
        fix(&mut policy.create_date);
        fix_opt(&mut policy.update_date);
        policy
            .versions
            .iter_mut()
            .for_each(|v| fix(&mut v.create_date));
    }
    for role in &mut world.roles {
        let arn = role.arn.clone();
        role.role_id.get_or_insert_with(|| ids::numeric_id(&arn));
    }
    for event in &mut world.events {
        let time = event.get("eventTime").and_then(|t| t.as_str());
        if let Some(at) = time.and_then(|t| When::parse(t).ok()) {
            event["eventTime"] = format_time(at.at(now)).into();
        }
    }
    let overview = std::mem::take(&mut world.billing.overview);
    world.billing.overview = overview
        .into_iter()
        .map(|(cycle, items)| (resolve_cycle(&cycle, now).unwrap_or(cycle), items))
        .collect();
    for secret in &mut world.secrets {
        fix(&mut secret.create_date);
        secret
            .versions
            .iter_mut()
            .for_each(|v| fix(&mut v.create_date));
    }
    for leak in &mut world.leaks {
        fix(&mut leak.gmt_modified);
        fix_opt(&mut leak.gmt_create);
        fix_opt(&mut leak.deal_time);
        fix_opt(&mut leak.whitelist_time);
        fix_opt(&mut leak.github_file_update_time);
    }
    world
        .temporary_credentials
        .iter_mut()
        .for_each(|c| fix(&mut c.expiration));
    for member in &mut world.members {
        resolve(member, now);
    }
}

/// Whose key it is.
pub(crate) enum Owner<'a> {
    Root,
    User(&'a User),
}

impl Scenario {
    pub(crate) fn find_key(&self, id: &str) -> Option<(Owner<'_>, &AccessKey)> {
        if let Some(key) = self.account.access_keys.iter().find(|k| k.id == id) {
            return Some((Owner::Root, key));
        }
        self.users.iter().find_map(|user| {
            let key = user.access_keys.iter().find(|k| k.id == id)?;
            Some((Owner::User(user), key))
        })
    }

    pub(crate) fn key_mut(&mut self, id: &str) -> Option<&mut AccessKey> {
        self.account
            .access_keys
            .iter_mut()
            .chain(self.users.iter_mut().flat_map(|u| u.access_keys.iter_mut()))
            .find(|k| k.id == id)
    }

    pub(crate) fn user(&self, name: &str) -> Result<&User, ApiError> {
        self.users
            .iter()
            .find(|u| u.name == name)
            .ok_or_else(|| ApiError::no_such_user(name))
    }

    pub(crate) fn user_mut(&mut self, name: &str) -> Result<&mut User, ApiError> {
        self.users
            .iter_mut()
            .find(|u| u.name == name)
            .ok_or_else(|| ApiError::no_such_user(name))
    }

    /// `alice@acme.onaliyun.com`, with the account alias or, lacking one, the uid.
    pub(crate) fn principal_name(&self, user: &User) -> String {
        let domain = self.account.alias.as_deref().unwrap_or(&self.account.uid);
        format!("{}@{domain}.onaliyun.com", user.name)
    }
}

impl User {
    pub(crate) fn user_id(&self) -> String {
        self.id
            .clone()
            .unwrap_or_else(|| ids::numeric_id(&self.name))
    }
}
