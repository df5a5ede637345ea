//! The emulated products, told apart by the `Version` parameter, and dispatch to their actions.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::auth::Caller;
use super::error::ApiError;
use super::params::Params;
use super::scenario::Scenario;
use super::{actiontrail, bss, ims, ims_policy, kms, ram, ram_attach, ram_policy, sas, sts};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Product {
    Ram,
    Ims,
    Sts,
    ActionTrail,
    Bss,
    Kms,
    Sas,
}

/// What an action handler gets: the account to read or change, the request and its signer.
pub(crate) struct Call<'a> {
    pub world: &'a mut Scenario,
    pub params: &'a Params,
    pub caller: &'a Caller,
    pub now: DateTime<Utc>,
}

impl Product {
    pub(crate) fn from_version(version: &str) -> Option<Self> {
        Some(match version {
            "2015-05-01" => Self::Ram,
            "2019-08-15" => Self::Ims,
            "2015-04-01" => Self::Sts,
            "2020-07-06" => Self::ActionTrail,
            "2017-12-14" => Self::Bss,
            "2016-01-20" => Self::Kms,
            "2018-12-03" => Self::Sas,
            _ => return None,
        })
    }

    /// The short name the call log and `fail_next.product` use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Ram => "ram",
            Self::Ims => "ims",
            Self::Sts => "sts",
            Self::ActionTrail => "actiontrail",
            Self::Bss => "bss",
            Self::Kms => "kms",
            Self::Sas => "sas",
        }
    }

    /// The `HostId` of error bodies: the product's default endpoint.
    pub(crate) fn host(self) -> &'static str {
        match self {
            Self::Ram => "ram.aliyuncs.com",
            Self::Ims => "ims.aliyuncs.com",
            Self::Sts => "sts.aliyuncs.com",
            Self::ActionTrail => "actiontrail.cn-hangzhou.aliyuncs.com",
            Self::Bss => "business.aliyuncs.com",
            Self::Kms => "kms.cn-hangzhou.aliyuncs.com",
            Self::Sas => "tds.cn-shanghai.aliyuncs.com",
        }
    }

    /// The product code in `Recommend` links and the service name ActionTrail reports.
    pub(crate) fn code(self) -> &'static str {
        match self {
            Self::Ram => "Ram",
            Self::Ims => "Ims",
            Self::Sts => "Sts",
            Self::ActionTrail => "Actiontrail",
            Self::Bss => "BssOpenApi",
            Self::Kms => "Kms",
            Self::Sas => "Sas",
        }
    }

    pub(crate) fn knows(self, action: &str) -> bool {
        let actions: &[&str] = match self {
            Self::Ram if ram_policy::ACTIONS.contains(&action) => return true,
            Self::Ram if ram_attach::ACTIONS.contains(&action) => return true,
            Self::Ram => ram::ACTIONS,
            Self::Ims if ims_policy::ACTIONS.contains(&action) => return true,
            Self::Ims => ims::ACTIONS,
            Self::Sts => sts::ACTIONS,
            Self::ActionTrail => actiontrail::ACTIONS,
            Self::Bss => bss::ACTIONS,
            Self::Kms => kms::ACTIONS,
            Self::Sas => sas::ACTIONS,
        };
        actions.contains(&action)
    }

    /// Under restrictive protection a leaked key may call no RAM or IMS action; Alibaba's list
    /// also names high-risk ECS actions, a product the emulator does not have. Every other
    /// action stays open, as Alibaba warns.
    pub(crate) fn blocks_leaked_key(self) -> bool {
        matches!(self, Self::Ram | Self::Ims)
    }

    pub(crate) fn handle(self, action: &str, call: &mut Call) -> Result<Value, ApiError> {
        match self {
            Self::Ram if ram_policy::ACTIONS.contains(&action) => ram_policy::handle(action, call),
            Self::Ram if ram_attach::ACTIONS.contains(&action) => ram_attach::handle(action, call),
            Self::Ram => ram::handle(action, call),
            Self::Ims if ims_policy::ACTIONS.contains(&action) => ims_policy::handle(action, call),
            Self::Ims => ims::handle(action, call),
            Self::Sts => sts::handle(action, call),
            Self::ActionTrail => actiontrail::handle(action, call),
            Self::Bss => bss::handle(action, call),
            Self::Kms => kms::handle(action, call),
            Self::Sas => sas::handle(action, call),
        }
    }
}

/// The answer for an action the product does not have.
pub(crate) fn unknown_action() -> ApiError {
    ApiError::not_found(
        "InvalidAction.NotFound",
        "Specified api is not found, please check your url and method.",
    )
}
