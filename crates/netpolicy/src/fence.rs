//! The network fence: an AccessKey's network access restriction policy (IMS 2019-08-15),
//! the document akguard writes to limit a leaked key to its workload's networks, and how a
//! policy judges a caller's address.

use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::Cidr;

/// The networks a key's workload calls from: public addresses, and private ones per VPC.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Networks {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cidrs: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vpcs: Vec<VpcNetworks>,
}

/// The private addresses of one VPC.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VpcNetworks {
    pub id: String,
    pub cidrs: Vec<String>,
}

impl Networks {
    pub fn is_empty(&self) -> bool {
        self.cidrs.is_empty() && self.vpcs.is_empty()
    }

    /// The networks for a person: `203.0.113.0/24, vpc-1 (172.16.0.0/16)`.
    pub fn describe(&self) -> String {
        let mut parts = self.cidrs.clone();
        parts.extend(
            self.vpcs
                .iter()
                .map(|v| format!("{} ({})", v.id, v.cidrs.join(", "))),
        );
        parts.join(", ")
    }
}

/// Where a fence's networks came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FenceSource {
    /// The user's `[[containment.fence]]` entry.
    Configured,
    /// `audit.known_cidrs`.
    KnownCidrs,
}

/// Whether a policy is enforced. Alibaba spells it `Active` / `Inactive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PolicyStatus {
    Active,
    Inactive,
}

/// One statement: `ClassicWhiteList` (calls over the internet) or `VPCWhiteList` (calls
/// from the VPC named by `Value`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    #[serde(rename = "Type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(rename = "IPList")]
    pub ip_list: Vec<String>,
}

const CLASSIC: &str = "ClassicWhiteList";
const VPC: &str = "VPCWhiteList";

/// The `AccessKeyPolicy` JSON string Set/GetAccessKeyPolicy carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AccessKeyPolicy {
    /// Alibaba's own example omits it; `SetAccessKeyPolicy` documents 1.
    #[serde(default = "version_one")]
    pub version: u32,
    pub status: PolicyStatus,
    pub statements: Vec<Statement>,
}

fn version_one() -> u32 {
    1
}

/// A caller as a network policy sees it: its address, and the VPC it calls from, if any.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub address: IpAddr,
    pub vpc: Option<&'a str>,
}

impl AccessKeyPolicy {
    /// There is no delete call: this document is what "no policy" is.
    pub fn none() -> Self {
        Self {
            version: 1,
            status: PolicyStatus::Inactive,
            statements: Vec::new(),
        }
    }

    /// An enforced policy allowing calls from `networks` only.
    pub fn fence(networks: &Networks) -> Self {
        let mut statements = Vec::new();
        if !networks.cidrs.is_empty() {
            statements.push(Statement {
                kind: CLASSIC.into(),
                value: None,
                ip_list: networks.cidrs.clone(),
            });
        }
        statements.extend(networks.vpcs.iter().map(|vpc| Statement {
            kind: VPC.into(),
            value: Some(vpc.id.clone()),
            ip_list: vpc.cidrs.clone(),
        }));
        Self {
            version: 1,
            status: PolicyStatus::Active,
            statements,
        }
    }

    /// Reads a stored policy; an empty or absent string is no policy.
    pub fn parse(raw: Option<&str>) -> Result<Self, serde_json::Error> {
        match raw.map(str::trim).filter(|r| !r.is_empty()) {
            Some(raw) => serde_json::from_str(raw),
            None => Ok(Self::none()),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Inactive with no statements: the same as never having had a policy.
    pub fn is_none(&self) -> bool {
        self.status == PolicyStatus::Inactive && self.statements.is_empty()
    }

    /// Whether a call from `origin` may use the key. An inactive policy restricts nothing; an
    /// active one admits only addresses listed for the caller's network (the internet, or
    /// its VPC).
    pub fn permits(&self, origin: Origin<'_>) -> bool {
        if self.status == PolicyStatus::Inactive {
            return true;
        }
        self.statements
            .iter()
            .filter(|s| match origin.vpc {
                None => s.kind == CLASSIC,
                Some(vpc) => s.kind == VPC && s.value.as_deref() == Some(vpc),
            })
            .flat_map(|s| &s.ip_list)
            .filter_map(|c| c.parse::<Cidr>().ok())
            .any(|c| c.contains(origin.address))
    }
}

/// Two stored policies are the same when they parse to the same document, whatever the
/// spacing, key order or a missing `Version`.
pub fn same_policy(a: Option<&str>, b: Option<&str>) -> bool {
    match (AccessKeyPolicy::parse(a), AccessKeyPolicy::parse(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(address: &str, vpc: Option<&'static str>) -> Origin<'static> {
        Origin {
            address: address.parse().unwrap(),
            vpc,
        }
    }

    fn networks() -> Networks {
        Networks {
            cidrs: vec!["203.0.113.0/24".into()],
            vpcs: vec![VpcNetworks {
                id: "vpc-ci".into(),
                cidrs: vec!["172.16.0.0/16".into()],
            }],
        }
    }

    #[test]
    fn a_fence_admits_its_networks_and_refuses_the_rest() {
        let fence = AccessKeyPolicy::fence(&networks());
        assert!(fence.permits(origin("203.0.113.9", None)));
        assert!(!fence.permits(origin("45.134.26.19", None)));
        assert!(fence.permits(origin("172.16.3.4", Some("vpc-ci"))));
        // A private address counts only from its own VPC, and not over the internet.
        assert!(!fence.permits(origin("172.16.3.4", Some("vpc-other"))));
        assert!(!fence.permits(origin("172.16.3.4", None)));
    }

    #[test]
    fn the_documented_shape_is_what_a_fence_serialises_to() {
        let json: serde_json::Value =
            serde_json::from_str(&AccessKeyPolicy::fence(&networks()).to_json()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"Version": 1, "Status": "Active", "Statements": [
                {"Type": "ClassicWhiteList", "IPList": ["203.0.113.0/24"]},
                {"Type": "VPCWhiteList", "Value": "vpc-ci", "IPList": ["172.16.0.0/16"]}]})
        );
    }

    #[test]
    fn no_policy_and_an_inactive_one_restrict_nothing() {
        let none = AccessKeyPolicy::parse(None).unwrap();
        assert!(none.is_none());
        assert!(none.permits(origin("45.134.26.19", None)));
        // Alibaba's own GetAccessKeyPolicy example: inactive, with statements, no Version.
        let example = r#"{"Status":"Inactive","Statements":[{"Value":"AllowAllVPC","Type":"VPCWhiteList","IPList":["::/0","0.0.0.0/0"]}]}"#;
        let parsed = AccessKeyPolicy::parse(Some(example)).unwrap();
        assert!(!parsed.is_none());
        assert!(parsed.permits(origin("45.134.26.19", None)));
        assert!(same_policy(
            Some(r#"{ "Statements": [], "Status": "Inactive", "Version": 1 }"#),
            Some(""),
        ));
        assert!(!same_policy(Some(example), None));
    }
}
