//! BSS OpenAPI (2017-12-14): the bill overview per billing cycle and the account balance,
//! inside BSS's `Code`/`Success`/`Data` envelope.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::error::ApiError;
use super::product::{Call, unknown_action};

pub(crate) const ACTIONS: &[&str] = &["QueryBillOverview", "QueryAccountBalance"];

pub(crate) fn handle(action: &str, call: &mut Call) -> Result<Value, ApiError> {
    match action {
        "QueryBillOverview" => query_bill_overview(call),
        "QueryAccountBalance" => query_account_balance(call),
        _ => Err(unknown_action()),
    }
}

fn envelope(data: Value) -> Value {
    json!({ "Code": "Success", "Message": "Successful!", "Success": true, "Data": data })
}

fn query_bill_overview(call: &mut Call) -> Result<Value, ApiError> {
    let params = call.params;
    let cycle = params.required("BillingCycle")?;
    let well_formed =
        cycle.len() == 7 && NaiveDate::parse_from_str(&format!("{cycle}-01"), "%Y-%m-%d").is_ok();
    if !well_formed {
        return Err(ApiError::invalid("BillingCycle", "expected YYYY-MM"));
    }
    let billing = &call.world.billing;
    // Optional filters compare against the item's field of the same name.
    let filters: Vec<(&str, &str)> = ["ProductCode", "ProductType", "SubscriptionType"]
        .into_iter()
        .filter_map(|name| Some((name, params.get(name)?)))
        .collect();
    let items: Vec<Value> = billing
        .overview
        .get(cycle)
        .into_iter()
        .flatten()
        .filter(|item| {
            filters
                .iter()
                .all(|(name, want)| item.get(*name).and_then(Value::as_str) == Some(want))
        })
        .map(|item| Value::Object(item.clone()))
        .collect();
    Ok(envelope(json!({
        "BillingCycle": cycle,
        "AccountID": call.world.account.uid,
        "AccountName": billing.account_name.as_deref().unwrap_or(&call.world.account.name),
        "Items": { "Item": items },
    })))
}

fn query_account_balance(call: &mut Call) -> Result<Value, ApiError> {
    let b = &call.world.billing.balance;
    Ok(envelope(json!({
        "AvailableAmount": b.available_amount,
        "AvailableCashAmount": b.available_cash_amount,
        "CreditAmount": b.credit_amount,
        "MybankCreditAmount": b.mybank_credit_amount,
        "QuotaLimit": b.quota_limit,
        "Currency": b.currency,
    })))
}
