//! Billing: this cycle's charges against the last one's, pro rata, and the balance.

use std::collections::BTreeMap;

use chrono::Utc;

use super::context::{StepContext, StepError, StepResult};
use crate::cloud::api::BillItem;
use crate::domain::billing::{BillingFindings, ProductCharge, billing_cycles};
use crate::domain::{Amount, Finding};

pub(super) async fn run(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let client = ctx.client.clone();
    let now = Utc::now();
    let (current_cycle, previous_cycle) = billing_cycles(now);
    // Three independent reads at once: a step's time is that of its slowest read, not the sum.
    let (current, previous, balance) = tokio::join!(
        ctx.read(
            "QueryBillOverview",
            &current_cycle,
            client.query_bill_overview(&current_cycle),
        ),
        ctx.read(
            "QueryBillOverview",
            &previous_cycle,
            client.query_bill_overview(&previous_cycle),
        ),
        ctx.read(
            "QueryAccountBalance",
            "account",
            client.query_account_balance(),
        ),
    );
    let (current, previous) = (current?, previous?);
    // Some account types may not query the balance; the bill still tells the story.
    let balance = match balance {
        Ok(balance) => Some(balance),
        Err(StepError::Cloud(err)) if err.class() == crate::cloud::ErrorClass::Fatal => None,
        Err(err) => return Err(err),
    };
    let currency = balance
        .as_ref()
        .and_then(|b| b.currency.clone())
        .or_else(|| current.iter().find_map(|i| i.currency.clone()));
    let findings = BillingFindings::compare(
        &charges(&current),
        &charges(&previous),
        balance.map(|b| b.available_amount),
        currency,
        now,
        ctx.inner.config.increase_threshold_percent,
    );
    Ok(StepResult::default().finding(Finding::Billing(Box::new(findings))))
}

/// Sums bill lines per product.
fn charges(items: &[BillItem]) -> Vec<ProductCharge> {
    let mut by_code: BTreeMap<&str, (Option<String>, Amount)> = BTreeMap::new();
    for item in items {
        let entry = by_code
            .entry(&item.product_code)
            .or_insert((item.product_name.clone(), Amount::default()));
        entry.1 = entry.1 + item.pretax_amount;
    }
    by_code
        .into_iter()
        .map(|(code, (name, amount))| ProductCharge {
            product_code: code.to_owned(),
            product_name: name,
            amount,
        })
        .collect()
}
