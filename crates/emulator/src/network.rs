//! Network access restriction policies on permanent AccessKeys: where a simulated call
//! comes from, and whether the key's policy (else the account's) lets it through.

use std::net::{IpAddr, Ipv4Addr};

use axum::http::HeaderMap;

use super::error::ApiError;
use super::scenario::Scenario;
use akguard_netpolicy::fence::{AccessKeyPolicy, Origin};

/// The emulator listens on loopback; a test or the demo names the address a call is to be
/// taken as coming from (the workload's, the attacker's) in this header.
pub const SOURCE_IP_HEADER: &str = "x-emulator-source-ip";
/// The VPC a simulated call comes from; absent means over the internet.
pub const SOURCE_VPC_HEADER: &str = "x-emulator-source-vpc";

/// Where a call comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Source {
    pub address: IpAddr,
    pub vpc: Option<String>,
}

impl Default for Source {
    fn default() -> Self {
        Self {
            address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            vpc: None,
        }
    }
}

impl Source {
    pub(crate) fn from_headers(headers: &HeaderMap) -> Self {
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        Self {
            address: header(SOURCE_IP_HEADER)
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            vpc: header(SOURCE_VPC_HEADER).map(str::to_owned),
        }
    }
}

/// Whether `key_id` may be used from `source`. A key's own policy takes precedence over the
/// account's unless it is "no policy"; neither applies to STS credentials, which are not
/// scenario keys. The error is the emulator's choice: Alibaba's documents do not give the
/// code a refused call gets.
pub(crate) fn admit(world: &Scenario, key_id: &str, source: &Source) -> Result<(), ApiError> {
    let Some((_, key)) = world.find_key(key_id) else {
        return Ok(());
    };
    let parse = |raw: &Option<String>| AccessKeyPolicy::parse(raw.as_deref()).ok();
    let policy = parse(&key.network_policy)
        .filter(|p| !p.is_none())
        .or_else(|| parse(&world.account.network_policy));
    let origin = Origin {
        address: source.address,
        vpc: source.vpc.as_deref(),
    };
    match policy {
        Some(policy) if !policy.permits(origin) => Err(ApiError::forbidden(
            "Forbidden.AccessKeyNetworkPolicy",
            format!(
                "The network access policy of this AccessKey does not allow calls from {}.",
                source.address
            ),
        )),
        _ => Ok(()),
    }
}

/// Checks a policy document `SetAccessKeyPolicy` was given, as its page describes it:
/// `Statements` a list (maybe empty, never null), `ClassicWhiteList` without `Value`,
/// `VPCWhiteList` with one, every `IPList` entry an address or CIDR block.
pub(crate) fn validate(raw: &str) -> Result<(), ApiError> {
    let invalid = |why: &str| {
        ApiError::bad_request(
            "InvalidParameter.AccessKeyPolicy",
            format!("The parameter AccessKeyPolicy is invalid: {why}."),
        )
    };
    let policy: AccessKeyPolicy =
        serde_json::from_str(raw).map_err(|_| invalid("not a policy document"))?;
    for statement in &policy.statements {
        match (statement.kind.as_str(), &statement.value) {
            ("ClassicWhiteList", None) => {}
            ("ClassicWhiteList", Some(_)) => {
                return Err(invalid("ClassicWhiteList takes no Value"));
            }
            ("VPCWhiteList", Some(_)) => {}
            ("VPCWhiteList", None) => return Err(invalid("VPCWhiteList needs a Value")),
            _ => return Err(invalid("unknown statement Type")),
        }
        if statement
            .ip_list
            .iter()
            .any(|c| c.parse::<akguard_netpolicy::Cidr>().is_err())
        {
            return Err(invalid(
                "IPList holds an entry that is not an address or CIDR",
            ));
        }
    }
    Ok(())
}
