//! ActionTrail (2020-07-06): `LookupEvents` over the scenario's trail, and
//! `GetAccessKeyLastUsedInfo`, which maps a key to its owner.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::error::ApiError;
use super::params::Params;
use super::product::{Call, unknown_action};
use super::state::Owner;
use super::when::{format_time, parse_time};

pub(crate) const ACTIONS: &[&str] = &["LookupEvents", "GetAccessKeyLastUsedInfo"];

const DEFAULT_PAGE: usize = 20;
const MAX_PAGE: usize = 50;

/// Lookup keys ActionTrail documents (plus `SourceIpAddress`, which the SKILL uses).
const LOOKUP_KEYS: &[&str] = &[
    "EventAccessKeyId",
    "EventName",
    "User",
    "SourceIpAddress",
    "EventRW",
    "EventId",
    "ServiceName",
    "ResourceType",
    "ResourceName",
];

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "LookupEvents" => lookup_events(call),
        "GetAccessKeyLastUsedInfo" => last_used_info(call),
        _ => Err(unknown_action()),
    }
}

fn time_param(params: &Params, name: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    params
        .get(name)
        .map(|t| {
            parse_time(t).ok_or_else(|| ApiError::invalid(name, "expected YYYY-MM-DDThh:mm:ssZ"))
        })
        .transpose()
}

fn text<'a>(event: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter().try_fold(event, |v, key| v.get(key))?.as_str()
}

fn matches(event: &Value, key: &str, value: &str) -> bool {
    let resources = event.get("referencedResources").and_then(Value::as_object);
    match key {
        "EventAccessKeyId" => text(event, &["userIdentity", "accessKeyId"]) == Some(value),
        "User" => text(event, &["userIdentity", "userName"]) == Some(value),
        "EventName" => text(event, &["eventName"]) == Some(value),
        "SourceIpAddress" => text(event, &["sourceIpAddress"]) == Some(value),
        "EventRW" => text(event, &["eventRW"]) == Some(value),
        "EventId" => text(event, &["eventId"]) == Some(value),
        "ServiceName" => text(event, &["serviceName"]) == Some(value),
        "ResourceType" => {
            text(event, &["resourceType"]) == Some(value)
                || resources.is_some_and(|r| r.contains_key(value))
        }
        "ResourceName" => {
            text(event, &["resourceName"]).is_some_and(|n| n.contains(value))
                || resources.is_some_and(|r| {
                    r.values()
                        .filter_map(Value::as_array)
                        .flatten()
                        .any(|v| v.as_str() == Some(value))
                })
        }
        _ => false,
    }
}

fn lookup_events(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let start = time_param(params, "StartTime")?.unwrap_or(call.now - TimeDelta::days(7));
    let end = time_param(params, "EndTime")?.unwrap_or(call.now);
    if start > end {
        return Err(ApiError::invalid("StartTime", "must not be after EndTime"));
    }
    let page_size = match params.int::<usize>("MaxResults")? {
        None | Some(0) => DEFAULT_PAGE,
        Some(n) if n <= MAX_PAGE => n,
        Some(_) => return Err(ApiError::invalid("MaxResults", "must be at most 50")),
    };
    let backward = match params.get("Direction") {
        None | Some("BACKWARD") => true,
        Some("FORWARD") => false,
        Some(_) => {
            return Err(ApiError::invalid(
                "Direction",
                "must be FORWARD or BACKWARD",
            ));
        }
    };
    if params.get("LookupAttribute.2.Key").is_some() {
        return Err(ApiError::invalid(
            "LookupAttribute",
            "only one lookup attribute is allowed",
        ));
    }
    let filter = match (
        params.get("LookupAttribute.1.Key"),
        params.get("LookupAttribute.1.Value"),
    ) {
        (None, None) => None,
        (Some(key), Some(value)) if LOOKUP_KEYS.contains(&key) => Some((key, value)),
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "LookupAttribute.1.Key",
                "unknown lookup key",
            ));
        }
        (Some(_), None) => return Err(ApiError::missing("LookupAttribute.1.Value")),
        (None, Some(_)) => return Err(ApiError::missing("LookupAttribute.1.Key")),
    };
    // Events are regional: a request naming a region sees only that region's events.
    let region = params.get("RegionId");
    let mut found: Vec<(DateTime<Utc>, &str, &Value)> = call
        .world
        .events
        .iter()
        .filter_map(|e| {
            Some((
                parse_time(text(e, &["eventTime"])?)?,
                text(e, &["eventId"]).unwrap_or(""),
                e,
            ))
        })
        .filter(|(at, _, _)| *at >= start && *at <= end)
        .filter(|(_, _, e)| region.is_none_or(|r| text(e, &["acsRegion"]) == Some(r)))
        .filter(|(_, _, e)| filter.is_none_or(|(k, v)| matches(e, k, v)))
        .collect();
    found.sort_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
    if backward {
        found.reverse();
    }
    let offset = match params.get("NextToken") {
        None => 0,
        Some(token) => URL_SAFE_NO_PAD
            .decode(token)
            .ok()
            .and_then(|raw| String::from_utf8(raw).ok()?.parse::<usize>().ok())
            .filter(|o| *o <= found.len())
            .ok_or_else(|| ApiError::invalid("NextToken", "not a token this API returned"))?,
    };
    let stop = (offset + page_size).min(found.len());
    let events: Vec<Value> = found[offset..stop]
        .iter()
        .map(|(_, _, e)| (*e).clone())
        .collect();
    let mut body = json!({
        "StartTime": format_time(start),
        "EndTime": format_time(end),
        "Events": events,
    });
    if stop < found.len() {
        body["NextToken"] = URL_SAFE_NO_PAD.encode(stop.to_string()).into();
    }
    Ok(body)
}

fn last_used_info(call: &mut Call) -> Result<Value, ApiError> {
    let id = call.params.required("AccessKey")?;
    let uid = call.world.account.uid.clone();
    let (owner, key) = call.world.find_key(id).ok_or_else(|| {
        ApiError::not_found(
            "EntityNotExist.AccessKey",
            format!("The access key does not exist: {id}."),
        )
    })?;
    let (account_type, user_name, owner_id) = match owner {
        Owner::Root => ("root-account", "root".to_string(), uid.clone()),
        Owner::User(user) => ("ram-user", user.name.clone(), user.user_id()),
    };
    let mut body = json!({
        "AccessKeyId": key.id,
        "AccountId": uid,
        "OwnerId": owner_id,
        "AccountType": account_type,
        "UserName": user_name,
        "Source": "ManagementEvent",
        "Detail": "",
    });
    if let Some(at) = key.last_used {
        body["UsedTimestamp"] = at.at(call.now).timestamp_millis().into();
        let service = key.last_used_service.clone().unwrap_or_default();
        body["ServiceName"] = service.clone().into();
        body["ServiceNameEn"] = service.into();
    }
    Ok(body)
}
