//! Request parameters, merged from the query string and the form body as the gateway merges
//! them, with typed accessors that answer the gateway's parameter errors.

use std::collections::BTreeMap;
use std::str::FromStr;

use super::error::ApiError;

/// Parameter names the call log never shows: credentials and secret material.
const REDACTED: [&str; 3] = ["Signature", "SecurityToken", "SecretData"];

#[derive(Clone, Debug, Default)]
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    /// Query first, then body; a name in both keeps the body's value.
    pub(crate) fn merge(query: Option<&str>, body: &[u8]) -> Self {
        let mut map = BTreeMap::new();
        if let Some(query) = query {
            map.extend(form_urlencoded::parse(query.as_bytes()).into_owned());
        }
        map.extend(form_urlencoded::parse(body).into_owned());
        Self(map)
    }

    #[cfg(test)]
    pub(crate) fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        Self(
            pairs
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// These values under these names, replacing any the request carried (a V3 request's
    /// headers win over its parameters).
    pub(crate) fn with(&self, pairs: Vec<(&str, String)>) -> Self {
        let mut map = self.0.clone();
        map.extend(pairs.into_iter().map(|(k, v)| (k.to_string(), v)));
        Self(map)
    }

    pub(crate) fn all(&self) -> &BTreeMap<String, String> {
        &self.0
    }

    /// A present, non-empty value; the gateway treats an empty value as missing.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    pub(crate) fn required(&self, name: &str) -> Result<&str, ApiError> {
        self.get(name).ok_or_else(|| ApiError::missing(name))
    }

    /// `true`/`false` in any case (the Python SDK sends `True`/`False`).
    pub(crate) fn bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        self.get(name)
            .map(|v| match v.to_ascii_lowercase().as_str() {
                "true" => Ok(true),
                "false" => Ok(false),
                _ => Err(ApiError::invalid(name, "expected true or false")),
            })
            .transpose()
    }

    /// Integers are strict: anything but digits (and a sign) is `InvalidParameter`.
    pub(crate) fn int<T: FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid(name, "expected an integer"))
            })
            .transpose()
    }

    /// `Prefix.1`, `Prefix.2`, ... up to the first gap, as the SDKs flatten lists.
    pub(crate) fn list(&self, prefix: &str) -> Vec<&str> {
        (1..)
            .map_while(|i| self.get(&format!("{prefix}.{i}")))
            .collect()
    }

    /// What the call log records.
    pub(crate) fn loggable(&self) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter(|(k, _)| !REDACTED.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}
