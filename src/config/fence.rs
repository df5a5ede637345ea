//! `[containment]`: the network fence, which limits a leaked key in use to its workload's
//! networks while the Deny policy stays attached.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use super::error::Errors;
use crate::domain::Cidr;
use crate::domain::fence::{FenceSource, Networks, VpcNetworks};

#[derive(Debug, Deserialize, Serialize)]
pub struct ContainmentSettings {
    pub network_fence: FenceMode,
    /// Per-user networks, ahead of `audit.known_cidrs`.
    #[serde(default)]
    pub fence: Vec<FenceEntry>,
}

/// `off`: never fence. `configured`: fence where `containment.fence` or `audit.known_cidrs`
/// names networks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceMode {
    Off,
    Configured,
}

/// One `[[containment.fence]]` entry.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct FenceEntry {
    pub user: String,
    #[serde(default)]
    pub cidrs: Vec<String>,
    pub vpc: Option<VpcEntry>,
}

#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct VpcEntry {
    pub id: String,
    #[serde(default)]
    pub cidrs: Vec<String>,
}

/// The fence settings, validated.
#[derive(Debug, Clone, Default)]
pub struct FenceConfig {
    pub enabled: bool,
    users: Vec<(String, Networks)>,
    known: Networks,
}

impl FenceConfig {
    /// The networks to limit `user`'s key to, in the documented order; `None` when fencing
    /// is off or nothing is configured.
    pub fn networks_for(&self, user: &str) -> Option<(Networks, FenceSource)> {
        if !self.enabled {
            return None;
        }
        if let Some((_, networks)) = self.users.iter().find(|(u, _)| u == user) {
            return Some((networks.clone(), FenceSource::Configured));
        }
        (!self.known.is_empty()).then(|| (self.known.clone(), FenceSource::KnownCidrs))
    }
}

/// Checks every entry, naming the one at fault; `known_cidrs` are already valid blocks.
pub(super) fn validate(
    settings: &ContainmentSettings,
    known_cidrs: &[String],
    errors: &mut Errors,
) -> FenceConfig {
    let mut users: Vec<(String, Networks)> = Vec::new();
    for (i, entry) in settings.fence.iter().enumerate() {
        let key = |field: &str| format!("containment.fence[{i}].{field}");
        let user = entry.user.trim();
        if user.is_empty() {
            errors.push(ConfigError::invalid(
                key("user"),
                "a RAM user name is required",
            ));
            continue;
        }
        if users.iter().any(|(u, _)| u == user) {
            errors.push(ConfigError::invalid(
                key("user"),
                format!("`{user}` is listed twice; give each user one entry"),
            ));
            continue;
        }
        let mut ok = cidrs_valid(&key("cidrs"), &entry.cidrs, errors);
        let vpcs = match &entry.vpc {
            Some(vpc) => {
                if !vpc.id.starts_with("vpc-") {
                    errors.push(ConfigError::invalid(
                        key("vpc.id"),
                        format!("`{}` is not a VPC id (vpc-...)", vpc.id),
                    ));
                    ok = false;
                }
                if vpc.cidrs.is_empty() {
                    errors.push(ConfigError::invalid(
                        key("vpc.cidrs"),
                        format!(
                            "VPC {} has no CIDR blocks: list the private addresses the \
                             workload calls from",
                            vpc.id
                        ),
                    ));
                    ok = false;
                }
                ok &= cidrs_valid(&key("vpc.cidrs"), &vpc.cidrs, errors);
                vec![VpcNetworks {
                    id: vpc.id.clone(),
                    cidrs: trimmed(&vpc.cidrs),
                }]
            }
            None => Vec::new(),
        };
        if entry.cidrs.is_empty() && entry.vpc.is_none() {
            errors.push(ConfigError::invalid(
                key("cidrs"),
                format!(
                    "the fence for `{user}` lists no networks: a fence with none would cut \
                     off the workload too"
                ),
            ));
            ok = false;
        }
        if ok {
            let networks = Networks {
                cidrs: trimmed(&entry.cidrs),
                vpcs,
            };
            users.push((user.to_owned(), networks));
        }
    }
    FenceConfig {
        enabled: settings.network_fence != FenceMode::Off,
        users,
        known: Networks {
            cidrs: trimmed(known_cidrs),
            vpcs: Vec::new(),
        },
    }
}

fn trimmed(list: &[String]) -> Vec<String> {
    list.iter().map(|c| c.trim().to_owned()).collect()
}

fn cidrs_valid(key: &str, cidrs: &[String], errors: &mut Errors) -> bool {
    let mut ok = true;
    for c in cidrs {
        if c.parse::<Cidr>().is_err() {
            errors.push(ConfigError::invalid(
                key,
                format!("`{c}` is not a CIDR block"),
            ));
            ok = false;
        }
    }
    ok
}
