//! ActionTrail (2020-07-06): what a key did, and who it belongs to.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::join_ids;
use crate::cloud::parse::{field, integer, items, text};
use crate::cloud::product::Product;
use crate::cloud::ratelimit::Priority;
use crate::cloud::sign::timestamp;
use crate::cloud::{Called, CloudClient, CloudError, Request};

/// The most `LookupEvents` returns per page.
const PAGE: &str = "50";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountType {
    RootAccount,
    RamUser,
    Other,
}

/// ActionTrail's view of a key: its owner and its last use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastUsedInfo {
    pub account_id: Option<String>,
    pub account_type: AccountType,
    pub user_name: Option<String>,
    pub used_at: Option<DateTime<Utc>>,
    pub service_name: Option<String>,
}

/// One page of an account's events.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountPage {
    pub events: Vec<Value>,
    /// The next page's token; `None` on the last page.
    pub next: Option<String>,
}

impl CloudClient {
    /// Every event made with `access_key_id` in `region` between `start` and `end`, newest
    /// first, following `NextToken` through all pages.
    pub async fn lookup_events(
        &self,
        access_key_id: &str,
        region: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> Result<Called<Vec<Value>>, CloudError> {
        let mut events = Vec::new();
        let mut ids = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let request = self
                .lookup_request(Some(access_key_id), region, start, end, PAGE)
                .param_opt("NextToken", token.take());
            let page = self.call(request).await?;
            events.extend(items(&page.value, "Events", "Event").into_iter().cloned());
            ids.push(page.request_id.clone());
            token = text(&page.value, &["NextToken"]);
            if token.is_none() {
                return Ok(Called {
                    request_id: join_ids(&ids),
                    value: events,
                });
            }
        }
    }

    /// The key's newest calls in `region` between `start` and `end`: one page, no more.
    pub async fn recent_events(
        &self,
        access_key_id: &str,
        region: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        priority: Priority,
    ) -> Result<Called<Vec<Value>>, CloudError> {
        let request = self
            .lookup_request(Some(access_key_id), region, start, end, PAGE)
            .priority(priority);
        let page = self.call(request).await?;
        let events = items(&page.value, "Events", "Event")
            .into_iter()
            .cloned()
            .collect();
        Ok(page.map(|_| events))
    }

    /// One page of every event in the account in `region` between `start` and `end`, newest
    /// first: `LookupEvents` with no lookup attribute. The token, if any, names the next page.
    pub async fn account_events_page(
        &self,
        region: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        token: Option<String>,
    ) -> Result<Called<AccountPage>, CloudError> {
        let request = self
            .lookup_request(None, region, start, end, PAGE)
            .param_opt("NextToken", token);
        let page = self.call(request).await?;
        let events = items(&page.value, "Events", "Event")
            .into_iter()
            .cloned()
            .collect();
        let next = text(&page.value, &["NextToken"]);
        Ok(page.map(|_| AccountPage { events, next }))
    }

    /// `access_key_id`: only that key's events (ActionTrail's `EventAccessKeyId` filter).
    fn lookup_request(
        &self,
        access_key_id: Option<&str>,
        region: &str,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        max_results: &str,
    ) -> Request {
        let mut request = Request::new(Product::ActionTrail, "LookupEvents")
            .param("RegionId", region)
            .param("StartTime", timestamp(start))
            .param("EndTime", timestamp(end))
            .param_opt(
                "LookupAttribute.1.Key",
                access_key_id.map(|_| "EventAccessKeyId"),
            )
            .param_opt("LookupAttribute.1.Value", access_key_id)
            .param("MaxResults", max_results)
            .priority(Priority::Forensics);
        request.endpoint = Some(self.actiontrail_endpoint(region));
        request
    }

    pub async fn access_key_last_used_info(
        &self,
        access_key_id: &str,
        priority: Priority,
    ) -> Result<Called<LastUsedInfo>, CloudError> {
        let request = Request::new(Product::ActionTrail, "GetAccessKeyLastUsedInfo")
            .param("AccessKey", access_key_id)
            .priority(priority);
        let called = self.call(request).await?;
        let v = &called.value;
        let info = LastUsedInfo {
            account_id: text(v, &["AccountId", "OwnerId"]),
            account_type: match text(v, &["AccountType"]).as_deref() {
                Some("root-account") => AccountType::RootAccount,
                Some("ram-user") => AccountType::RamUser,
                _ => AccountType::Other,
            },
            user_name: text(v, &["UserName"]),
            used_at: integer(v, "UsedTimestamp")
                .filter(|ms| *ms > 0)
                .and_then(DateTime::from_timestamp_millis),
            service_name: field(v, "ServiceName")
                .and_then(Value::as_str)
                .map(str::to_owned),
        };
        Ok(called.map(|_| info))
    }
}
