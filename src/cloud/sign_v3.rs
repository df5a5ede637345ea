//! The V3 OpenAPI signature (`ACS3-HMAC-SHA256`), as a pure function: the caller supplies the
//! date and nonce, so tests can pin them to Alibaba's worked example.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::sign::percent_encode;

/// The algorithm name that opens the string to sign and the `Authorization` header.
pub const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// What one V3-signed RPC request carries besides the credentials.
pub struct V3Request<'a> {
    pub method: &'a str,
    /// `host[:port]`, exactly as the `host` header will carry it.
    pub host: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub content_type: Option<&'a str>,
    /// `x-acs-date`, UTC `YYYY-MM-DDThh:mm:ssZ`.
    pub date: &'a str,
    pub nonce: &'a str,
    /// STS credentials' token, sent (and signed) as `x-acs-security-token`.
    pub security_token: Option<&'a str>,
}

/// The headers to send, `Authorization` last; the string to sign is kept to compare with the
/// one a `SignatureDoesNotMatch` quotes.
pub struct SignedV3 {
    pub headers: Vec<(&'static str, String)>,
    pub string_to_sign: String,
}

/// Lowercase hex SHA-256, as `x-acs-content-sha256` and the string to sign want it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every header that takes part in the signature, sorted by name (the canonical order).
fn signed_headers(request: &V3Request<'_>) -> Vec<(&'static str, String)> {
    let mut headers = vec![
        ("host", request.host.to_owned()),
        ("x-acs-action", request.action.to_owned()),
        ("x-acs-content-sha256", sha256_hex(request.body)),
        ("x-acs-date", request.date.to_owned()),
        ("x-acs-signature-nonce", request.nonce.to_owned()),
        ("x-acs-version", request.version.to_owned()),
    ];
    if let Some(content_type) = request.content_type {
        headers.push(("content-type", content_type.to_owned()));
    }
    if let Some(token) = request.security_token {
        headers.push(("x-acs-security-token", token.to_owned()));
    }
    headers.sort_by_key(|(name, _)| *name);
    headers
}

/// `METHOD\n/\nquery\nheaders\nsigned-names\nbody-hash`; RPC APIs always use the path `/`.
pub fn canonical_request(request: &V3Request<'_>) -> String {
    let mut query: Vec<(String, String)> = request
        .query
        .iter()
        .map(|(k, v)| (percent_encode(k), percent_encode(v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let headers = signed_headers(request);
    let canonical_headers: String = headers
        .iter()
        .map(|(name, value)| format!("{name}:{}\n", value.trim()))
        .collect();
    let names = headers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(";");
    format!(
        "{}\n/\n{query}\n{canonical_headers}\n{names}\n{}",
        request.method,
        sha256_hex(request.body)
    )
}

/// `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request.
pub fn string_to_sign(canonical_request: &str) -> String {
    format!("{ALGORITHM}\n{}", sha256_hex(canonical_request.as_bytes()))
}

/// Signs `request`: the signed headers plus `Authorization`, keyed by the bare secret (V3 has
/// no trailing `&`, unlike V1).
pub fn sign(access_key_id: &str, secret: &str, request: &V3Request<'_>) -> SignedV3 {
    let string_to_sign = string_to_sign(&canonical_request(request));
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(string_to_sign.as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let mut headers = signed_headers(request);
    let names = headers
        .iter()
        .map(|(n, _)| *n)
        .collect::<Vec<_>>()
        .join(";");
    headers.push((
        "authorization",
        format!(
            "{ALGORITHM} Credential={access_key_id},SignedHeaders={names},Signature={signature}"
        ),
    ));
    SignedV3 {
        headers,
        string_to_sign,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// "V3 request structure and signature": ECS RunInstances, worked example.
    fn run_instances(query: &[(String, String)]) -> V3Request<'_> {
        V3Request {
            method: "POST",
            host: "ecs.cn-shanghai.aliyuncs.com",
            action: "RunInstances",
            version: "2014-05-26",
            query,
            body: b"",
            content_type: None,
            date: "2023-10-26T10:22:32Z",
            nonce: "3156853299f313e23d1673dc12e1703d",
            security_token: None,
        }
    }

    fn example_query() -> Vec<(String, String)> {
        // Deliberately unsorted: the canonical form sorts.
        vec![
            ("RegionId".into(), "cn-shanghai".into()),
            (
                "ImageId".into(),
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd".into(),
            ),
        ]
    }

    #[test]
    fn run_instances_matches_the_official_v3_example() {
        let query = example_query();
        let request = run_instances(&query);
        let canonical = canonical_request(&request);
        assert_eq!(
            canonical,
            format!(
                "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
                 host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\n\
                 x-acs-content-sha256:{EMPTY_SHA256}\nx-acs-date:2023-10-26T10:22:32Z\n\
                 x-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\nx-acs-version:2014-05-26\n\n\
                 host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n\
                 {EMPTY_SHA256}"
            )
        );
        assert_eq!(
            string_to_sign(&canonical),
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        let signed = sign("YourAccessKeyId", "YourAccessKeySecret", &request);
        assert_eq!(
            signed.headers.last().unwrap(),
            &(
                "authorization",
                "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders=host;x-acs-action;\
                 x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
                 Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
                    .to_owned()
            )
        );
    }

    #[test]
    fn a_form_body_and_an_sts_token_are_signed() {
        let body = b"UserName=alice";
        let request = V3Request {
            body,
            content_type: Some("application/x-www-form-urlencoded"),
            security_token: Some("CAIS token"),
            ..run_instances(&[])
        };
        let signed = sign("STS.id", "secret", &request);
        let names: Vec<&str> = signed.headers.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "content-type",
                "host",
                "x-acs-action",
                "x-acs-content-sha256",
                "x-acs-date",
                "x-acs-security-token",
                "x-acs-signature-nonce",
                "x-acs-version",
                "authorization",
            ]
        );
        assert!(
            signed
                .headers
                .contains(&("x-acs-content-sha256", sha256_hex(body)))
        );
        assert!(signed.headers[8].1.contains(
            "SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;\
             x-acs-security-token;x-acs-signature-nonce;x-acs-version,"
        ));
        let tampered = V3Request {
            body: b"UserName=mallory",
            ..request
        };
        assert_ne!(
            sign("STS.id", "secret", &tampered).string_to_sign,
            signed.string_to_sign
        );
    }
}
