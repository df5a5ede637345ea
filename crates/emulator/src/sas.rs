//! Security Center (2018-12-03): the AccessKey leak records, their GitHub details, and
//! closing a record.

use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::error::ApiError;
use super::product::{Call, unknown_action};
use super::scenario::{LeakRecord, Scenario};
use super::when::When;

pub(crate) const ACTIONS: &[&str] = &[
    "DescribeAccesskeyLeakList",
    "DescribeAccessKeyLeakDetail",
    "ModifyAccessKeyLeakDeal",
];

const DEAL_TYPES: [&str; 3] = ["manual", "disable", "add-whitelist"];

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "DescribeAccesskeyLeakList" => list(call),
        "DescribeAccessKeyLeakDetail" => detail(call),
        "ModifyAccessKeyLeakDeal" => deal(call),
        _ => Err(unknown_action()),
    }
}

/// Security Center's answer for an id it does not hold (per the SKILL: `-106`).
fn data_not_exist() -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "-106", "data not exist")
}

fn millis(when: Option<When>, now: DateTime<Utc>) -> i64 {
    when.map_or(0, |w| w.at(now).timestamp_millis())
}

/// `2026-11-28 12:00:00`, the format of `DealTime`.
fn deal_time(record: &LeakRecord, now: DateTime<Utc>) -> String {
    record
        .deal_time
        .map(|w| w.at(now).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// The account whose records are read: a member named by `ResourceDirectoryAccountId`
/// (the resource directory's management account reads its members'), else the caller's.
fn directory<'a>(call: &'a Call<'_>) -> Result<&'a Scenario, ApiError> {
    match call.params.get("ResourceDirectoryAccountId") {
        None => Ok(call.world),
        Some(uid) if uid == call.world.account.uid => Ok(call.world),
        Some(uid) => call.world.member(uid).ok_or_else(|| {
            ApiError::invalid(
                "ResourceDirectoryAccountId",
                "is not a member of this resource directory",
            )
        }),
    }
}

fn list(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let page: usize = params.int("CurrentPage")?.unwrap_or(1);
    let page_size: usize = params.int("PageSize")?.unwrap_or(20);
    if page == 0 || !(1..=100).contains(&page_size) {
        return Err(ApiError::invalid(
            "PageSize",
            "CurrentPage starts at 1; PageSize is 1 to 100",
        ));
    }
    // The SKILL sends `ak:<id>`; the SDK documents the bare id. Both find the key.
    let query = params
        .get("Query")
        .map(|q| q.strip_prefix("ak:").unwrap_or(q));
    let start_ts: Option<i64> = params.int("StartTs")?;
    let status = match params.get("Status") {
        None => None,
        Some("pending") => Some("pending"),
        Some("dealed" | "dealt") => Some("dealed"),
        Some(_) => return Err(ApiError::invalid("Status", "must be pending or dealed")),
    };
    let now = call.now;
    let leaks = &directory(call)?.leaks;
    let mut found: Vec<&LeakRecord> = leaks
        .iter()
        .filter(|l| query.is_none_or(|q| l.access_key_id == q))
        .filter(|l| start_ts.is_none_or(|ts| l.gmt_modified.at(now).timestamp_millis() > ts))
        .filter(|l| status.is_none_or(|s| l.status == s))
        .collect();
    found.sort_by_key(|l| std::cmp::Reverse((l.gmt_modified.at(now), l.id)));
    let records: Vec<Value> = found
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|l| {
            json!({
                "Id": l.id,
                "AccesskeyId": l.access_key_id,
                "AliUserName": l.ali_user_name,
                "UserType": l.user_type,
                "Type": "AccessKey",
                "Asset": "Cloud Platform",
                "Url": l.url,
                "GmtModified": l.gmt_modified.at(now).timestamp_millis(),
                "Status": l.status,
                "DealType": l.deal_type,
                "DealTime": deal_time(l, now),
            })
        })
        .collect();
    Ok(json!({
        "TotalCount": found.len(),
        "CurrentPage": page,
        "PageSize": page_size,
        "AkLeakCount": leaks.iter().filter(|l| l.status == "pending").count(),
        "GmtLast": leaks.iter().map(|l| l.gmt_modified.at(now).timestamp_millis()).max().unwrap_or(0),
        "AccessKeyLeakList": records,
    }))
}

fn detail(call: &mut Call) -> Result<Value, ApiError> {
    let id: i64 = call
        .params
        .int("Id")?
        .ok_or_else(|| ApiError::missing("Id"))?;
    let now = call.now;
    let l = directory(call)?
        .leaks
        .iter()
        .find(|l| l.id == id)
        .ok_or_else(data_not_exist)?;
    Ok(json!({
        "AccesskeyId": l.access_key_id,
        "Type": "AccessKey",
        "Asset": "Cloud Platform",
        "GithubRepoUrl": l.github_repo_url,
        "GithubRepoName": l.github_repo_name,
        "GithubFileUrl": l.github_file_url,
        "GithubFileName": l.github_file_name,
        "GithubFileType": l.github_file_type,
        "GithubFileUpdateTime": l.github_file_update_time
            .map(|w| w.at(now).format("%Y-%m-%dT%H:%M:%S").to_string())
            .unwrap_or_default(),
        "GithubUser": l.github_user,
        "GithubUserPicUrl": l.github_user_pic_url,
        "Code": l.code,
        "Source": l.source,
        "GmtCreate": millis(l.gmt_create.or(Some(l.gmt_modified)), now),
        "GmtModified": millis(Some(l.gmt_modified), now),
        "TokenValid": l.token_valid,
        "WhitelistStatus": l.whitelist_status,
        "WhitelistTime": millis(l.whitelist_time, now),
        "DealType": l.deal_type,
        "DealTime": deal_time(l, now),
        "Remark": l.remark,
    }))
}

fn deal(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let mut ids: Vec<i64> = Vec::new();
    if let Some(id) = params.int("Id")? {
        ids.push(id);
    }
    for raw in params.list("IdList") {
        ids.push(
            raw.parse()
                .map_err(|_| ApiError::invalid("IdList", "expected integers"))?,
        );
    }
    if ids.is_empty() {
        return Err(ApiError::missing("Id"));
    }
    let kind = params.required("Type")?;
    if !DEAL_TYPES.contains(&kind) {
        return Err(ApiError::invalid(
            "Type",
            "must be manual, disable or add-whitelist",
        ));
    }
    // All or nothing: an unknown id changes no record.
    if !ids
        .iter()
        .all(|id| call.world.leaks.iter().any(|l| l.id == *id))
    {
        return Err(data_not_exist());
    }
    let now = When::At(call.now);
    for leak in call.world.leaks.iter_mut().filter(|l| ids.contains(&l.id)) {
        leak.status = "dealed".into();
        leak.deal_type = kind.to_string();
        leak.deal_time = Some(now);
        if let Some(remark) = params.get("Remark") {
            leak.remark = remark.to_string();
        }
        if kind == "add-whitelist" {
            leak.whitelist_status = "yes".into();
            leak.whitelist_time = Some(now);
        }
    }
    Ok(json!({}))
}
