//! BSS OpenAPI (2017-12-14): the bill and the balance, as exact amounts.

use crate::cloud::parse::{amount, field, items, text};
use crate::cloud::product::Product;
use crate::cloud::{Called, CloudClient, CloudError, Request};
use crate::domain::Amount;

/// One line of a bill overview.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillItem {
    pub product_code: String,
    pub product_name: Option<String>,
    pub subscription_type: Option<String>,
    pub pretax_amount: Amount,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalance {
    pub available_amount: Amount,
    pub currency: Option<String>,
}

impl CloudClient {
    /// The bill overview for `billing_cycle` (`YYYY-MM`).
    pub async fn query_bill_overview(
        &self,
        billing_cycle: &str,
    ) -> Result<Called<Vec<BillItem>>, CloudError> {
        let request =
            Request::new(Product::Bss, "QueryBillOverview").param("BillingCycle", billing_cycle);
        let called = self.call(request).await?;
        let data = field(&called.value, "Data").cloned().unwrap_or_default();
        let bill = items(&data, "Items", "Item")
            .into_iter()
            .filter_map(|item| {
                Some(BillItem {
                    product_code: text(item, &["ProductCode"])?,
                    product_name: text(item, &["ProductName"]),
                    subscription_type: text(item, &["SubscriptionType"]),
                    pretax_amount: amount(item, "PretaxAmount").unwrap_or_default(),
                    currency: text(item, &["Currency"]),
                })
            })
            .collect();
        Ok(called.map(|_| bill))
    }

    pub async fn query_account_balance(&self) -> Result<Called<AccountBalance>, CloudError> {
        let called = self
            .call(Request::new(Product::Bss, "QueryAccountBalance"))
            .await?;
        let data = field(&called.value, "Data").cloned().unwrap_or_default();
        let balance = AccountBalance {
            available_amount: amount(&data, "AvailableAmount").ok_or_else(|| {
                CloudError::Decode {
                    action: "QueryAccountBalance".into(),
                    message: "no AvailableAmount in the answer".into(),
                    request_id: Some(called.request_id.clone()),
                }
            })?,
            currency: text(&data, &["Currency"]),
        };
        Ok(called.map(|_| balance))
    }
}
