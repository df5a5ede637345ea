//! Money: exact decimal amounts, so floats never decide whether a bill changed.

use std::fmt;

/// A money amount, exact to 1/10000 of the currency unit. BSS sends amounts both as JSON
/// numbers and as strings; floats must not decide whether a bill changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Amount(i64);

const SCALE: i64 = 10_000;

impl Amount {
    pub fn from_ten_thousandths(units: i64) -> Self {
        Self(units)
    }

    pub fn ten_thousandths(self) -> i64 {
        self.0
    }

    /// Parses `-12.34`, `"10000.00"` or `1e3`-free decimal text; extra digits are truncated.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        let (negative, digits) = match raw.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, raw.strip_prefix('+').unwrap_or(raw)),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        if whole.is_empty() && fraction.is_empty()
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole: i64 = if whole.is_empty() {
            0
        } else {
            whole.parse().ok()?
        };
        let mut frac_units = 0i64;
        for (i, digit) in fraction.bytes().take(4).enumerate() {
            frac_units += i64::from(digit - b'0') * 10i64.pow(3 - i as u32);
        }
        let units = whole.checked_mul(SCALE)?.checked_add(frac_units)?;
        Some(Self(if negative { -units } else { units }))
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:04}", abs / SCALE as u64, abs % SCALE as u64)
    }
}

impl std::ops::Add for Amount {
    type Output = Amount;
    fn add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_exact() {
        assert_eq!(Amount::parse("10000.00").unwrap().to_string(), "10000.0000");
        assert_eq!(
            Amount::parse("-12.345").unwrap().ten_thousandths(),
            -123_450
        );
        assert_eq!(Amount::parse("0.1").unwrap().ten_thousandths(), 1000);
        assert_eq!(Amount::parse(".5").unwrap().ten_thousandths(), 5000);
        assert!(Amount::parse("abc").is_none() && Amount::parse("").is_none());
        assert!(
            Amount::parse("0.1").unwrap() + Amount::parse("0.2").unwrap()
                == Amount::parse("0.3").unwrap()
        );
    }
}
