//! What akguard changed in the cloud, recorded with each call's result, and what undoing an
//! incident takes. A cancel decides from these records alone: a change whose success was
//! never recorded is reported, not guessed at.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::AuditRecord;

/// A change a mutating call makes, stored in its `cloud.intent` and `cloud.call` rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    AttachPolicy {
        user: String,
        policy: String,
    },
    DetachPolicy {
        user: String,
        policy: String,
    },
    /// An AccessKey's status (`Active`, `Inactive`) set, from what it was.
    KeyStatus {
        user: String,
        access_key_id: String,
        from: String,
        to: String,
    },
    DeleteKey {
        user: String,
        access_key_id: String,
    },
    /// A console logon (IMS `Status`: `Active`, `Inactive`) set, from what it was.
    LoginStatus {
        user: String,
        user_principal_name: String,
        from: String,
        to: String,
    },
    /// An AccessKey's network access restriction policy (the JSON string IMS holds)
    /// replaced, from what it was.
    AccessKeyPolicy {
        user_principal_name: String,
        access_key_id: String,
        from: String,
        to: String,
    },
}

impl Change {
    /// The Alibaba Cloud API that makes the change.
    pub fn api(&self) -> &'static str {
        match self {
            Self::AttachPolicy { .. } => "AttachPolicyToUser",
            Self::DetachPolicy { .. } => "DetachPolicyFromUser",
            Self::KeyStatus { .. } => "UpdateAccessKey",
            Self::DeleteKey { .. } => "DeleteAccessKey",
            Self::LoginStatus { .. } => "UpdateLoginProfile",
            Self::AccessKeyPolicy { .. } => "SetAccessKeyPolicy",
        }
    }

    /// What the call acts on, as the audit log names it.
    pub fn target(&self) -> &str {
        match self {
            Self::AttachPolicy { user, .. } | Self::DetachPolicy { user, .. } => user,
            Self::KeyStatus { access_key_id, .. }
            | Self::DeleteKey { access_key_id, .. }
            | Self::AccessKeyPolicy { access_key_id, .. } => access_key_id,
            Self::LoginStatus {
                user_principal_name,
                ..
            } => user_principal_name,
        }
    }

    /// The change, for a person.
    pub fn describe(&self) -> String {
        match self {
            Self::AttachPolicy { user, policy } => format!("attach {policy} to {user}"),
            Self::DetachPolicy { user, policy } => format!("detach {policy} from {user}"),
            Self::KeyStatus {
                user,
                access_key_id,
                to,
                ..
            } => format!("set {user}'s key {access_key_id} to {to}"),
            Self::DeleteKey {
                user,
                access_key_id,
            } => format!("delete {user}'s key {access_key_id}"),
            Self::LoginStatus { user, to, .. } => {
                format!("set {user}'s console logon to {to}")
            }
            Self::AccessKeyPolicy {
                access_key_id, to, ..
            } => format!("set the network access policy of key {access_key_id} to {to}"),
        }
    }
}

/// A change a cancel leaves in place, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NotUndone {
    pub api: String,
    pub target: String,
    pub why: String,
}

/// What cancelling an incident undoes, and what it cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct UndoPlan {
    /// The changes that put things back, in the order to make them.
    pub undo: Vec<Change>,
    pub cannot: Vec<NotUndone>,
}

impl UndoPlan {
    pub fn undo_described(&self) -> Vec<String> {
        self.undo.iter().map(Change::describe).collect()
    }
}

const NEVER_RECORDED: &str = "its result was never recorded (akguard stopped during the call): \
                              check by hand whether it took effect";
const UNCERTAIN: &str = "its answer was lost or a server error: it may have taken effect, \
                         check by hand";

/// Net state of one thing akguard changed: how it was first, how akguard left it.
struct Net {
    change: Change,
    first: String,
    last: String,
}

/// Reads an incident's audit rows and plans the undo of every change a recorded call result
/// shows was applied. The cancel step's own calls are left out, so the plan is the same
/// however often the cancel runs.
pub fn plan(records: &[AuditRecord]) -> UndoPlan {
    // Calls whose effect is unknown, by idempotency token: a later definite result of the
    // same call (a retry) settles them.
    let mut unknown: BTreeMap<String, NotUndone> = BTreeMap::new();
    let mut policies: BTreeMap<(String, String), bool> = BTreeMap::new();
    let mut net: BTreeMap<String, Net> = BTreeMap::new();
    let mut deleted: Vec<String> = Vec::new();
    let mut cannot = Vec::new();
    for record in records {
        let detail = record.detail();
        if detail["step"] == "cancelling" {
            continue;
        }
        let text = |k: &str| detail[k].as_str().unwrap_or_default().to_owned();
        let unsure = |why: &str| NotUndone {
            api: text("api"),
            target: text("target"),
            why: why.into(),
        };
        let token = text("idempotency_token");
        match record.action.as_str() {
            "cloud.intent" => {
                unknown.insert(token, unsure(NEVER_RECORDED));
            }
            // A step read the cloud and found the change of an unrecorded call in effect.
            "cloud.reconciled" => {
                unknown.remove(&token);
                if let Ok(change) = serde_json::from_value::<Change>(detail["change"].clone()) {
                    fold(change, &mut policies, &mut net, &mut deleted);
                }
            }
            "cloud.call" => {
                if detail["may_have_acted"] == true {
                    unknown.insert(token, unsure(UNCERTAIN));
                    continue;
                }
                unknown.remove(&token);
                if detail["outcome"] != "applied" {
                    continue;
                }
                match serde_json::from_value::<Change>(detail["change"].clone()) {
                    Ok(change) => fold(change, &mut policies, &mut net, &mut deleted),
                    Err(_) => cannot.push(not_undone(&text("api"), &text("target"))),
                }
            }
            _ => {}
        }
    }
    cannot.extend(unknown.into_values());
    let mut undo: Vec<Change> = policies
        .into_iter()
        .filter(|(_, attached)| *attached)
        .map(|((user, policy), _)| Change::DetachPolicy { user, policy })
        .collect();
    for state in net.into_values() {
        if state.first == state.last {
            continue;
        }
        if deleted.iter().any(|key| key == state.change.target()) {
            // The deletion is already listed among what cannot be undone.
            continue;
        }
        undo.push(reversed(state));
    }
    for key in &deleted {
        cannot.push(NotUndone {
            api: "DeleteAccessKey".into(),
            target: key.clone(),
            why: "a deleted key cannot be restored".into(),
        });
    }
    UndoPlan { undo, cannot }
}

fn fold(
    change: Change,
    policies: &mut BTreeMap<(String, String), bool>,
    net: &mut BTreeMap<String, Net>,
    deleted: &mut Vec<String>,
) {
    let (from, to) = match &change {
        Change::AttachPolicy { user, policy } => {
            policies.insert((user.clone(), policy.clone()), true);
            return;
        }
        Change::DetachPolicy { user, policy } => {
            policies.insert((user.clone(), policy.clone()), false);
            return;
        }
        Change::DeleteKey { access_key_id, .. } => {
            deleted.push(access_key_id.clone());
            return;
        }
        Change::KeyStatus { from, to, .. }
        | Change::LoginStatus { from, to, .. }
        | Change::AccessKeyPolicy { from, to, .. } => (from.clone(), to.clone()),
    };
    let key = format!("{}:{}", change.api(), change.target());
    net.entry(key)
        .and_modify(|n| n.last = to.clone())
        .or_insert(Net {
            change,
            first: from,
            last: to,
        });
}

fn reversed(state: Net) -> Change {
    match state.change {
        Change::KeyStatus {
            user,
            access_key_id,
            ..
        } => Change::KeyStatus {
            user,
            access_key_id,
            from: state.last,
            to: state.first,
        },
        Change::LoginStatus {
            user,
            user_principal_name,
            ..
        } => Change::LoginStatus {
            user,
            user_principal_name,
            from: state.last,
            to: state.first,
        },
        Change::AccessKeyPolicy {
            user_principal_name,
            access_key_id,
            ..
        } => Change::AccessKeyPolicy {
            user_principal_name,
            access_key_id,
            from: state.last,
            to: state.first,
        },
        other => other,
    }
}

/// Why a recorded change without an undo stays.
fn not_undone(api: &str, target: &str) -> NotUndone {
    let why = match api {
        "CreatePolicy" | "CreatePolicyVersion" => {
            "the Deny policy stays defined; detached, it restricts nobody"
        }
        "UpdateLoginProfile" => {
            "MFA at next logon and the password reset stay required: they only add protection"
        }
        "CreateAccessKey" => "the new key stays: its workload may already use it",
        "DeleteAccessKey" => "a deleted key cannot be restored",
        "PutSecretValue" | "CreateSecret" => "the delivered key stays in the secret",
        "ModifyAccessKeyLeakDeal" => "Security Center's leak record stays marked handled",
        _ => "akguard has no undo for this call",
    };
    NotUndone {
        api: api.into(),
        target: target.into(),
        why: why.into(),
    }
}

/// `plan`'s lists for a person: what will be undone and what stays.
pub fn summary(plan: &UndoPlan) -> Value {
    serde_json::json!({
        "will_undo": plan.undo_described(),
        "cannot_undo": plan.cannot,
    })
}

#[cfg(test)]
mod tests;
