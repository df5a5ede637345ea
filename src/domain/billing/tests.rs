//! Unit tests of the billing comparison.

use super::*;

fn charge(code: &str, amount: &str) -> ProductCharge {
    ProductCharge {
        product_code: code.to_owned(),
        product_name: None,
        amount: Amount::parse(amount).unwrap(),
    }
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn amount(text: &str) -> Amount {
    Amount::parse(text).unwrap()
}

/// 9 of June's 30 days have passed: 30 %.
fn june_10th() -> DateTime<Utc> {
    at("2024-06-10T00:00:00Z")
}

fn only(findings: &BillingFindings) -> &ProductComparison {
    assert_eq!(findings.products.len(), 1);
    &findings.products[0]
}

#[test]
fn previous_spend_is_taken_pro_rata_on_the_10th_of_a_30_day_month() {
    let findings = BillingFindings::compare(
        &[charge("ecs", "93.00")],
        &[charge("ecs", "310.00")],
        None,
        None,
        june_10th(),
        50,
    );
    assert_eq!(
        (
            findings.current_cycle.as_str(),
            findings.previous_cycle.as_str()
        ),
        ("2024-06", "2024-05")
    );
    assert_eq!(findings.elapsed_percent, "30.0");
    let ecs = only(&findings);
    assert_eq!(ecs.previous_pro_rata, amount("93"));
    assert_eq!(ecs.change_percent.as_deref(), Some("0.0"));
    assert_eq!(ecs.flag, ChargeFlag::None);
    assert_eq!(findings.previous_pro_rata_total, amount("93"));
    assert_eq!(findings.flagged(), 0);
}

#[test]
fn a_product_absent_or_free_last_cycle_is_new() {
    let findings = BillingFindings::compare(
        &[
            charge("eip", "402.00"),
            charge("sms", "0.05"),
            charge("cdn", "0"),
        ],
        &[charge("sms", "0"), charge("cdn", "0")],
        None,
        None,
        june_10th(),
        50,
    );
    let flags: Vec<(&str, ChargeFlag, Option<&str>)> = findings
        .products
        .iter()
        .map(|p| (p.product_code.as_str(), p.flag, p.change_percent.as_deref()))
        .collect();
    // Any spend on a product never used before is suspect, however small.
    assert_eq!(
        flags,
        [
            ("eip", ChargeFlag::NewProduct, None),
            ("sms", ChargeFlag::NewProduct, None),
            ("cdn", ChargeFlag::None, None),
        ]
    );
    assert_eq!(findings.flags, 2);
}

#[test]
fn an_increase_just_over_the_threshold_is_flagged_and_one_just_under_is_not() {
    // Pro rata 93.0000; 50 % more is 139.5000.
    let compare = |now: &str| {
        BillingFindings::compare(
            &[charge("ecs", now)],
            &[charge("ecs", "310")],
            None,
            None,
            june_10th(),
            50,
        )
    };
    let at_threshold = compare("139.5000");
    assert_eq!(only(&at_threshold).flag, ChargeFlag::None);
    assert_eq!(only(&at_threshold).change_percent.as_deref(), Some("50.0"));
    let over = compare("139.5001");
    assert_eq!(only(&over).flag, ChargeFlag::Increase);
    assert_eq!(over.flagged(), 1);
}

#[test]
fn increases_within_the_noise_floor_are_not_flagged() {
    // Pro rata 0.3000: +333 % is still only one unit of currency.
    let compare = |now: &str| {
        BillingFindings::compare(
            &[charge("oss", now)],
            &[charge("oss", "1.00")],
            None,
            None,
            june_10th(),
            50,
        )
    };
    let at_floor = compare("1.3000");
    assert_eq!(only(&at_floor).change_percent.as_deref(), Some("333.3"));
    assert_eq!(only(&at_floor).flag, ChargeFlag::None);
    assert_eq!(only(&compare("1.3001")).flag, ChargeFlag::Increase);
}

#[test]
fn products_that_disappeared_are_listed_unflagged() {
    let findings = BillingFindings::compare(
        &[],
        &[ProductCharge {
            product_name: Some("Content Delivery Network".into()),
            ..charge("cdn", "31.00")
        }],
        None,
        None,
        june_10th(),
        50,
    );
    let cdn = only(&findings);
    assert_eq!(
        cdn.product_name.as_deref(),
        Some("Content Delivery Network")
    );
    assert_eq!(cdn.month_to_date, Amount::default());
    assert_eq!(cdn.change_percent.as_deref(), Some("-100.0"));
    assert_eq!(cdn.flag, ChargeFlag::None);
}

#[test]
fn a_negative_balance_is_reported_as_overdrawn() {
    let findings = BillingFindings::compare(
        &[charge("ecs", "93")],
        &[charge("ecs", "310")],
        Some(amount("-35210.44")),
        Some("CNY".into()),
        june_10th(),
        50,
    );
    assert_eq!(findings.balance, Some(amount("-35210.44")));
    assert!(
        findings
            .summary()
            .contains("; balance -35210.4400 CNY, overdrawn;")
    );
    let stored = serde_json::to_value(&findings).unwrap();
    assert_eq!(stored["balance"], "-35210.4400");
}

#[test]
fn february_of_a_leap_year_has_29_days() {
    // 14.5 of 29 days: exactly half.
    let compare =
        |now: &str| BillingFindings::compare(&[], &[charge("ecs", "100")], None, None, at(now), 50);
    let leap = compare("2024-02-15T12:00:00Z");
    assert_eq!(
        (leap.current_cycle.as_str(), leap.previous_cycle.as_str()),
        ("2024-02", "2024-01")
    );
    assert_eq!(leap.elapsed_percent, "50.0");
    assert_eq!(leap.previous_pro_rata_total, amount("50"));
    // 14.5 of 28 days.
    let common = compare("2023-02-15T12:00:00Z");
    assert_eq!(common.elapsed_percent, "51.8");
    assert_eq!(common.previous_pro_rata_total, amount("51.7857"));
    let january = compare("2024-01-31T23:59:59Z");
    assert_eq!(january.previous_cycle, "2023-12");
}

#[test]
fn the_leaked_in_use_bill_flags_the_gpu_spend_and_the_new_elastic_ips() {
    let named = |code: &str, name: &str, amount: &str| ProductCharge {
        product_name: Some(name.to_owned()),
        ..charge(code, amount)
    };
    let findings = BillingFindings::compare(
        &[
            named("ecs", "Elastic Compute Service", "48213.77"),
            named("oss", "Object Storage Service", "35.9"),
            named("cdn", "Content Delivery Network", "12.3"),
            named("eip", "Elastic IP Address", "402.0"),
        ],
        &[
            named("ecs", "Elastic Compute Service", "412.55"),
            named("oss", "Object Storage Service", "33.1"),
            named("cdn", "Content Delivery Network", "11.8"),
        ],
        Some(amount("-35210.44")),
        Some("CNY".into()),
        // Late in the month, when OSS and CDN are on last month's pace.
        at("2024-06-28T00:00:00Z"),
        50,
    );
    assert_eq!(findings.flags, 2);
    assert_eq!(findings.month_to_date_total, amount("48663.97"));
    assert_eq!(findings.previous_cycle_total, amount("457.45"));
    assert_eq!(
        findings.summary(),
        "2024-06: 2 of 4 products flagged (ecs +12885.3%, eip new); month to date \
         48663.9700 CNY against 411.7050 pro rata (457.4500 in 2024-05); balance \
         -35210.4400 CNY, overdrawn; bills lag usage by about a day"
    );
}

#[test]
fn repeated_product_codes_are_summed() {
    let findings = BillingFindings::compare(
        &[charge("ecs", "10.5"), charge("ecs", "20.25")],
        &[charge("ecs", "100")],
        None,
        None,
        june_10th(),
        50,
    );
    assert_eq!(only(&findings).month_to_date, amount("30.75"));
}

#[test]
fn findings_survive_a_json_round_trip_with_amounts_as_strings() {
    let findings = BillingFindings::compare(
        &[charge("ecs", "48213.5"), charge("eip", "402")],
        &[charge("ecs", "412.55")],
        Some(amount("10000.00")),
        Some("CNY".into()),
        june_10th(),
        50,
    );
    let stored = serde_json::to_value(&findings).unwrap();
    assert_eq!(stored["products"][0]["month_to_date"], "48213.5000");
    assert_eq!(stored["products"][0]["flag"], "increase");
    assert_eq!(stored["products"][1]["flag"], "new_product");
    assert_eq!(
        stored["products"][1]["change_percent"],
        serde_json::Value::Null
    );
    assert_eq!(stored["month_to_date_total"], "48615.5000");
    assert_eq!(stored["note"], BILLING_LAG_NOTE);
    let back: BillingFindings = serde_json::from_value(stored).unwrap();
    assert_eq!(back, findings);

    let mut unknown_balance = serde_json::to_value(&findings).unwrap();
    unknown_balance["balance"] = serde_json::Value::Null;
    let back: BillingFindings = serde_json::from_value(unknown_balance).unwrap();
    assert_eq!(back.balance, None);
    let mut garbled = serde_json::to_value(&findings).unwrap();
    garbled["month_to_date_total"] = "lots".into();
    assert!(serde_json::from_value::<BillingFindings>(garbled).is_err());
}
