//! A request signed with the configured scheme, ready for the transport: V1 puts the
//! protocol in the signed form, V3 in signed `x-acs-*` headers beside the form.

use chrono::Utc;
use reqwest::header::HeaderValue;
use serde::{Deserialize, Serialize};

use super::credentials::Credentials;
use super::error::CloudError;
use super::product::Product;
use super::sign;
use super::sign_v3::{self, V3Request};

/// Which OpenAPI signature requests carry (`alibaba.signature_version`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureVersion {
    /// `HMAC-SHA1`, parameters `SignatureMethod`/`SignatureVersion=1.0`.
    V1,
    /// `ACS3-HMAC-SHA256`, `x-acs-*` headers and `Authorization`.
    V3,
}

/// The only body akguard sends.
pub(super) const FORM: &str = "application/x-www-form-urlencoded";

/// A request ready to send: its extra headers, its form body, the string it signed, and the
/// values an error message must not echo.
pub(super) struct Prepared {
    pub headers: Vec<(&'static str, HeaderValue)>,
    pub body: String,
    pub string_to_sign: String,
    pub values: Vec<(String, String)>,
}

/// The V1 request: protocol parameters beside the API's, all in the signed form body.
pub(super) fn prepare_v1(
    product: Product,
    action: &str,
    params: &[(String, String)],
    credentials: &Credentials,
) -> Prepared {
    let mut all: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), product.version().into()),
        ("Format".into(), "JSON".into()),
        ("AccessKeyId".into(), credentials.access_key_id.clone()),
        ("SignatureMethod".into(), "HMAC-SHA1".into()),
        ("SignatureVersion".into(), "1.0".into()),
        ("SignatureNonce".into(), sign::fresh_nonce()),
        ("Timestamp".into(), sign::timestamp(Utc::now())),
    ];
    if let Some(token) = credentials.token() {
        all.push(("SecurityToken".into(), token.to_owned()));
    }
    all.extend(params.iter().cloned());
    let signature = sign::signature(credentials.secret(), "POST", &all);
    let body = form(
        all.iter()
            .chain(std::iter::once(&("Signature".to_owned(), signature))),
    );
    Prepared {
        headers: Vec::new(),
        body,
        string_to_sign: sign::string_to_sign("POST", &all),
        values: all,
    }
}

/// The V3 request: the API's parameters in the form body (hashed into the signature), the
/// protocol in `x-acs-*` headers, the STS token in `x-acs-security-token`.
pub(super) fn prepare_v3(
    url: &str,
    product: Product,
    action: &str,
    params: &[(String, String)],
    credentials: &Credentials,
) -> Result<Prepared, CloudError> {
    let bad_endpoint = || CloudError::Endpoint {
        product: product.name(),
        url: url.to_owned(),
    };
    // The host exactly as reqwest will send it: the port only when not the scheme's default.
    let parsed = reqwest::Url::parse(url).map_err(|_| bad_endpoint())?;
    let host = match (parsed.host_str(), parsed.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return Err(bad_endpoint()),
    };
    let body = form(params.iter());
    let date = sign::timestamp(Utc::now());
    let nonce = sign::fresh_nonce();
    let signed = sign_v3::sign(
        &credentials.access_key_id,
        credentials.secret(),
        &V3Request {
            method: "POST",
            host: &host,
            action,
            version: product.version(),
            query: &[],
            body: body.as_bytes(),
            content_type: Some(FORM),
            date: &date,
            nonce: &nonce,
            security_token: credentials.token(),
        },
    );
    let mut values = params.to_vec();
    if let Some(token) = credentials.token() {
        values.push(("x-acs-security-token".into(), token.to_owned()));
    }
    let headers = signed
        .headers
        .into_iter()
        // reqwest sets content-type from the call above, and `host` from the URL.
        .filter(|(name, _)| !matches!(*name, "content-type" | "host"))
        .map(|(name, value)| {
            // Only the credentials come from outside; the value itself is never quoted.
            HeaderValue::from_str(&value)
                .map(|value| (name, value))
                .map_err(|_| {
                    CloudError::Credentials(format!("{name} cannot be sent as a header value"))
                })
        })
        .collect::<Result<_, _>>()?;
    Ok(Prepared {
        headers,
        body,
        string_to_sign: signed.string_to_sign,
        values,
    })
}

fn form<'a>(pairs: impl Iterator<Item = &'a (String, String)>) -> String {
    pairs
        .map(|(k, v)| format!("{}={}", sign::percent_encode(k), sign::percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}
