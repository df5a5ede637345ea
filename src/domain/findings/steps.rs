//! The record each step keeps in the findings. Field names are the JSON the API has always
//! shown; a field a step did not learn is left out.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::fence::{FenceSource, Networks};
use crate::domain::triage::Usage;
use crate::domain::undo::NotUndone;
use crate::domain::{AccessKeyId, IncidentId, OwnerType, Path, Step};

/// Whose key it is and whether a workload uses it. Which fields are set depends on the owner:
/// an STS key has only `owner_type`; an unproven owner has `why` (and the claimed owner).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Triage {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_type: Option<OwnerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    /// `Active` or `Inactive`, as the key list showed it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_keys: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stated_detected_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_before_detection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<UsageEvidence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rotatable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<Path>,
    /// A chain incident: the incident whose leaked key created this key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_incident: Option<IncidentId>,
    /// The owner a report named that the key list did not confirm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_owner: Option<String>,
    /// Why no owner could be proven.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// What ActionTrail showed of the key's use around the detection time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageEvidence {
    /// `None`: the side before detection was not looked at.
    pub used_before_detection: Option<bool>,
    pub sources_before_detection: Option<Vec<String>>,
    pub sources_after_detection: Option<Vec<String>>,
    pub actiontrail_lookups: u32,
}

/// A protected identity stopped the incident: nothing was changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtectedStop {
    pub access_key_id: AccessKeyId,
    /// akguard's own credentials, not a `protect.*` entry.
    pub own_credentials: bool,
    pub listed: bool,
    pub step: Step,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_name: Option<String>,
    /// The change a step was about to make when the guard refused it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_change_to: Option<String>,
}

/// Whether a change was read back. A dry run makes no change, so there is nothing to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    Yes,
    SkippedInDryRun,
}

const SKIPPED_IN_DRY_RUN: &str = "skipped in dry run";

impl Serialize for Verified {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Yes => s.serialize_bool(true),
            Self::SkippedInDryRun => s.serialize_str(SKIPPED_IN_DRY_RUN),
        }
    }
}

impl<'de> Deserialize<'de> for Verified {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Stored {
            Flag(bool),
            Text(String),
        }
        match Stored::deserialize(d)? {
            Stored::Flag(true) => Ok(Self::Yes),
            Stored::Text(t) if t == SKIPPED_IN_DRY_RUN => Ok(Self::SkippedInDryRun),
            _ => Err(serde::de::Error::custom(
                "verified is true or \"skipped in dry run\"",
            )),
        }
    }
}

/// The Deny policy attached to the key's user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revoke {
    pub policy: String,
    pub user_name: String,
    /// The stored policy differed and a new version was made the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_version: Option<bool>,
    /// Why attaching failed (the user's policy limit).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

/// The leaked key limited to its workload's networks, beside the Deny policy; or why it
/// was not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fence {
    pub access_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub networks: Option<Networks>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<FenceSource>,
    /// The key's policy before the fence, exactly as IMS returned it: what a cancel restores.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
    /// Why no fence was set (an STS key: network policies do not apply to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_fenced: Option<String>,
}

/// The leaked key disabled (`disable_key`, or `disable_old_key` after a rotation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disable {
    pub user_name: String,
    pub access_key_id: String,
    /// Starts the grace period before deletion.
    pub disabled_at: DateTime<Utc>,
    /// Set when the key was already gone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<Verified>,
}

/// MFA required of console users without a device; a new password of the key's own user.
/// A sweep fills the counts; an incident an earlier sweep covered names only its own user.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mfa {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub covered_by_sweep_started_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_checked: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_users: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_now_required: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mfa_already_required: Option<Vec<String>>,
    #[serde(default)]
    pub password_reset_required: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub protected_skipped: Option<Vec<String>>,
    /// Users the sweep gave up on after its retries; a person should look at them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users_failed: Option<Vec<String>>,
    pub dry_run: bool,
}

/// The console logons of the users the leaked key created.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackerLogins {
    pub users: Vec<Logon>,
    pub dry_run: bool,
}

/// One created user's console logon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Logon {
    pub user_name: String,
    pub console_logon: LogonState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_principal_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogonState {
    /// Switched off by this incident and read back.
    Disabled,
    AlreadyDisabled,
    /// A dry run: it would have been switched off.
    WouldDisable,
    /// The user has no console logon.
    None,
    UserDeleted,
}

/// A chain incident's checklist: what the attacker created, for the person who cleans up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackerArtefacts {
    pub created_by_incident: IncidentId,
    pub parent_access_key_id: Option<AccessKeyId>,
    pub items: Vec<String>,
    pub console_logons: Vec<Logon>,
}

/// Where a rotated key is delivered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RotationSink {
    Kms { secret_name: String },
    File { path: String },
}

/// The new key and its delivery, or the other key that stopped the rotation. Written first
/// as the intent (the time, the sink) before the key exists, so a retry can tell its own key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rotation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub create_intent_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<RotationSink>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_access_key_id: Option<String>,
    /// The KMS secret version holding the new key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovered_after_interruption: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dry_run: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_key_created: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_key_status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appeared_after_detection: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_key_disabled: Option<bool>,
}

/// The last look at whether the workload moved to the new key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutover {
    pub new_key_last_used: Option<DateTime<Utc>>,
    pub old_key_last_used: Option<DateTime<Utc>>,
    pub new_key_in_use: bool,
    pub old_key_quiet: bool,
    pub checked_at: DateTime<Utc>,
}

/// The leaked key's deletion, or (while `grace_until` is ahead) the wait for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deletion {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace_until: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_key_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deny_policy_detached: Option<bool>,
    /// Security Center leak records marked handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_center_records_closed: Option<Vec<String>>,
}

/// The disabled key given back because an operator asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reenable {
    pub access_key_id: String,
    pub reenabled_at: DateTime<Utc>,
}

/// What a cancel put back, and what it could not.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cancel {
    pub undone: Vec<String>,
    pub not_undone: Vec<NotUndone>,
    pub dry_run: bool,
}

/// An approval a step waits for, and once given, who gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    #[serde(default)]
    pub requested_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub deadline: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<DateTime<Utc>>,
    /// `operator:NAME`, or `deadline` when `approvals.on_deadline = "proceed"` let it run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<String>,
}

impl Approval {
    pub fn waiting(requested_at: DateTime<Utc>, deadline: Option<DateTime<Utc>>) -> Self {
        Self {
            requested_at: Some(requested_at),
            deadline,
            granted_at: None,
            by: None,
        }
    }

    pub fn is_granted(&self) -> bool {
        self.granted_at.is_some()
    }

    /// This request, granted now by `by`.
    pub fn granted(&self, at: DateTime<Utc>, by: String) -> Self {
        Self {
            granted_at: Some(at),
            by: Some(by),
            ..self.clone()
        }
    }
}
