//! Billing: whether this month's charges look like someone else is spending the money.

use std::cmp::Reverse;
use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Days, Months, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use super::money::Amount;
use amounts::{amount_text, optional_amount_text};

mod amounts;

/// Increases of at most this much, in ten-thousandths of the bill's currency (1.0000), are
/// noise whatever their percentage: a few cents doubling early in the month is not abuse.
pub const NOISE_FLOOR_TEN_THOUSANDTHS: i64 = 10_000;

/// Stored with every comparison, because a quiet bill is easy to over-read.
pub const BILLING_LAG_NOTE: &str = "BSS bills lag actual usage by about 24 hours and leave out \
     unsettled pay-as-you-go usage, so the absence of flags is not proof that the key was not \
     abused.";

/// One product's charge in a billing cycle (the caller maps BSS `QueryBillOverview` items to
/// this; items of the same product code are summed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductCharge {
    pub product_code: String,
    pub product_name: Option<String>,
    pub amount: Amount,
}

/// This cycle's charges against the previous cycle's, stored as JSON on the incident.
/// Amounts are decimal strings such as `"48213.5000"`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BillingFindings {
    /// `YYYY-MM` of the cycle containing the comparison time (UTC calendar).
    pub current_cycle: String,
    pub previous_cycle: String,
    /// How much of the current cycle had passed, in percent with one decimal.
    pub elapsed_percent: String,
    pub threshold_percent: u32,
    /// Flagged products first, then by month-to-date spend, largest first.
    pub products: Vec<ProductComparison>,
    #[serde(with = "amount_text")]
    pub month_to_date_total: Amount,
    #[serde(with = "amount_text")]
    pub previous_cycle_total: Amount,
    #[serde(with = "amount_text")]
    pub previous_pro_rata_total: Amount,
    /// The available amount, when known; negative when the account is overdrawn.
    #[serde(default, with = "optional_amount_text")]
    pub balance: Option<Amount>,
    pub currency: Option<String>,
    /// Products flagged.
    pub flags: usize,
    pub note: String,
}

/// One product's month-to-date spend against the same share of the previous cycle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProductComparison {
    pub product_code: String,
    pub product_name: Option<String>,
    #[serde(with = "amount_text")]
    pub month_to_date: Amount,
    #[serde(with = "amount_text")]
    pub previous_cycle_total: Amount,
    /// The previous cycle's total times the elapsed share of the current cycle.
    #[serde(with = "amount_text")]
    pub previous_pro_rata: Amount,
    /// Change against `previous_pro_rata` with one decimal (`"12.5"`, `"-100.0"`); none when
    /// that figure is not positive.
    pub change_percent: Option<String>,
    pub flag: ChargeFlag,
}

/// Why a product's charge looks unexpected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeFlag {
    None,
    /// Nothing (or nothing positive) last cycle, a charge now.
    NewProduct,
    /// Above the threshold percentage and the noise floor over the pro-rata figure.
    Increase,
}

impl BillingFindings {
    /// Compares `current` (month to date, for the cycle containing `now`) with `previous` (the
    /// whole previous cycle) pro rata: each product's previous total times the elapsed share of
    /// the current month. Flags products that are new, and increases of more than
    /// `threshold_percent` over the pro-rata figure that also exceed the noise floor.
    pub fn compare(
        current: &[ProductCharge],
        previous: &[ProductCharge],
        balance: Option<Amount>,
        currency: Option<String>,
        now: DateTime<Utc>,
        threshold_percent: u32,
    ) -> Self {
        let (current_cycle, previous_cycle) = billing_cycles(now);
        let (elapsed, length) = elapsed_in_month(now);
        let current = by_product(current);
        let previous = by_product(previous);
        let mut codes: Vec<&str> = current.keys().chain(previous.keys()).copied().collect();
        codes.sort_unstable();
        codes.dedup();

        let mut products: Vec<ProductComparison> = codes
            .into_iter()
            .map(|code| {
                let (name, month_to_date) = current.get(code).cloned().unwrap_or_default();
                let (previous_name, previous_total) =
                    previous.get(code).cloned().unwrap_or_default();
                let previous_pro_rata = pro_rata(previous_total, elapsed, length);
                ProductComparison {
                    product_code: code.to_owned(),
                    product_name: name.or(previous_name).map(str::to_owned),
                    month_to_date,
                    previous_cycle_total: previous_total,
                    previous_pro_rata,
                    change_percent: change_percent(month_to_date, previous_pro_rata),
                    flag: flag(
                        month_to_date,
                        previous_total,
                        previous_pro_rata,
                        threshold_percent,
                    ),
                }
            })
            .collect();
        products.sort_by(|a, b| {
            let key =
                |p: &ProductComparison| (p.flag == ChargeFlag::None, Reverse(p.month_to_date));
            key(a)
                .cmp(&key(b))
                .then_with(|| a.product_code.cmp(&b.product_code))
        });

        let previous_cycle_total = sum(previous.values().map(|(_, amount)| *amount));
        let flags = products
            .iter()
            .filter(|p| p.flag != ChargeFlag::None)
            .count();
        BillingFindings {
            current_cycle,
            previous_cycle,
            elapsed_percent: tenths(divide_rounded(
                i128::from(elapsed) * 1000,
                i128::from(length),
            )),
            threshold_percent,
            month_to_date_total: sum(current.values().map(|(_, amount)| *amount)),
            previous_cycle_total,
            previous_pro_rata_total: pro_rata(previous_cycle_total, elapsed, length),
            products,
            balance,
            currency,
            flags,
            note: BILLING_LAG_NOTE.to_owned(),
        }
    }

    /// Products flagged as unexpected.
    pub fn flagged(&self) -> usize {
        self.products
            .iter()
            .filter(|p| p.flag != ChargeFlag::None)
            .count()
    }

    /// One line for humans, e.g. "2024-06: 2 of 4 products flagged (ecs +12885.3%, eip new);
    /// month to date 48663.9700 CNY against 411.7050 pro rata (457.4500 in 2024-05); balance
    /// -35210.4400 CNY, overdrawn; bills lag usage by about a day".
    pub fn summary(&self) -> String {
        let currency = self
            .currency
            .as_deref()
            .map(|c| format!(" {c}"))
            .unwrap_or_default();
        let flagged: Vec<String> = self
            .products
            .iter()
            .filter_map(|p| match p.flag {
                ChargeFlag::None => None,
                ChargeFlag::NewProduct => Some(format!("{} new", p.product_code)),
                ChargeFlag::Increase => Some(match &p.change_percent {
                    Some(change) => format!("{} +{change}%", p.product_code),
                    None => format!("{} up", p.product_code),
                }),
            })
            .collect();
        let flags = if flagged.is_empty() {
            format!("no unexpected charges in {} products", self.products.len())
        } else {
            format!(
                "{} of {} products flagged ({})",
                flagged.len(),
                self.products.len(),
                flagged.join(", ")
            )
        };
        let balance = match self.balance {
            Some(b) if b.ten_thousandths() < 0 => format!("; balance {b}{currency}, overdrawn"),
            Some(b) => format!("; balance {b}{currency}"),
            None => String::new(),
        };
        format!(
            "{}: {flags}; month to date {}{currency} against {} pro rata ({} in {}){balance}; \
             bills lag usage by about a day",
            self.current_cycle,
            self.month_to_date_total,
            self.previous_pro_rata_total,
            self.previous_cycle_total,
            self.previous_cycle,
        )
    }
}

/// The `YYYY-MM` billing cycles to compare at `now`: the one containing it, and the one before.
pub fn billing_cycles(now: DateTime<Utc>) -> (String, String) {
    let start = month_start(now);
    let previous = start - Months::new(1);
    (
        start.format("%Y-%m").to_string(),
        previous.format("%Y-%m").to_string(),
    )
}

fn month_start(now: DateTime<Utc>) -> NaiveDate {
    now.date_naive() - Days::new(u64::from(now.day0()))
}

/// Milliseconds since the start of `now`'s month, and the month's real length.
fn elapsed_in_month(now: DateTime<Utc>) -> (i64, i64) {
    let start = month_start(now);
    let end = start + Months::new(1);
    let start_at = start.and_time(chrono::NaiveTime::MIN).and_utc();
    let elapsed = (now - start_at).num_milliseconds();
    let length = (end - start).num_milliseconds();
    (elapsed, length)
}

/// Product code → (name, total), summing repeated codes.
fn by_product(charges: &[ProductCharge]) -> BTreeMap<&str, (Option<&str>, Amount)> {
    let mut products: BTreeMap<&str, (Option<&str>, Amount)> = BTreeMap::new();
    for charge in charges {
        let entry = products.entry(charge.product_code.as_str()).or_default();
        entry.0 = entry.0.or(charge.product_name.as_deref());
        entry.1 = entry.1 + charge.amount;
    }
    products
}

fn sum(amounts: impl Iterator<Item = Amount>) -> Amount {
    amounts.fold(Amount::default(), |total, amount| total + amount)
}

fn pro_rata(amount: Amount, elapsed: i64, length: i64) -> Amount {
    let units = divide_rounded(
        i128::from(amount.ten_thousandths()) * i128::from(elapsed),
        i128::from(length),
    );
    // |units| <= |amount| because elapsed <= length, so this always fits.
    Amount::from_ten_thousandths(i64::try_from(units).unwrap_or(i64::MAX))
}

fn change_percent(now: Amount, before: Amount) -> Option<String> {
    let before = i128::from(before.ten_thousandths());
    if before <= 0 {
        return None;
    }
    let change = i128::from(now.ten_thousandths()) - before;
    Some(tenths(divide_rounded(change * 1000, before)))
}

fn flag(
    month_to_date: Amount,
    previous_total: Amount,
    pro_rata: Amount,
    threshold: u32,
) -> ChargeFlag {
    let now = i128::from(month_to_date.ten_thousandths());
    let expected = i128::from(pro_rata.ten_thousandths());
    if previous_total.ten_thousandths() <= 0 {
        return if now > 0 {
            ChargeFlag::NewProduct
        } else {
            ChargeFlag::None
        };
    }
    let increase = now - expected;
    // Integer comparison: increase / expected > threshold / 100, exactly.
    if increase > i128::from(NOISE_FLOOR_TEN_THOUSANDTHS)
        && increase * 100 > expected * i128::from(threshold)
    {
        ChargeFlag::Increase
    } else {
        ChargeFlag::None
    }
}

/// `numerator / denominator` rounded half up; `denominator` is positive.
fn divide_rounded(numerator: i128, denominator: i128) -> i128 {
    (2 * numerator + denominator).div_euclid(2 * denominator)
}

/// Tenths as a one-decimal string: 1234 → "123.4", -5 → "-0.5".
fn tenths(value: i128) -> String {
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    format!("{sign}{}.{}", abs / 10, abs % 10)
}

#[cfg(test)]
mod tests;
