//! Serde helpers: amounts as decimal strings.

/// Amounts travel as decimal strings, which no JSON reader rounds.
pub(super) mod amount_text {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::money::Amount;

    pub fn serialize<S: Serializer>(amount: &Amount, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(amount)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Amount, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Amount::parse(&raw).ok_or_else(|| D::Error::custom(format!("not an amount: {raw:?}")))
    }
}

pub(super) mod optional_amount_text {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serializer};

    use crate::domain::money::Amount;

    pub fn serialize<S: Serializer>(
        amount: &Option<Amount>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match amount {
            Some(amount) => serializer.collect_str(amount),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Amount>, D::Error> {
        Option::<String>::deserialize(deserializer)?
            .map(|raw| {
                Amount::parse(&raw)
                    .ok_or_else(|| D::Error::custom(format!("not an amount: {raw:?}")))
            })
            .transpose()
    }
}
