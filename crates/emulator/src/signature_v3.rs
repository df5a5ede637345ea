//! Verification of the V3 signature (`ACS3-HMAC-SHA256`), written from the documented
//! algorithm and independent of the client's signer: the canonical request is rebuilt from
//! what arrived (raw query, the headers the request says it signed, the body's own hash).

use std::collections::BTreeMap;

use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::error::ApiError;
use super::signature::percent_encode;

const ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// The common headers every V3 request carries, mapped to the V1 parameter each replaces so
/// the gateway's later checks (timestamp window, nonce, call log) read one name.
const COMMON: [(&str, &str); 4] = [
    ("x-acs-action", "Action"),
    ("x-acs-version", "Version"),
    ("x-acs-date", "Timestamp"),
    ("x-acs-signature-nonce", "SignatureNonce"),
];

/// What a V3 request carries for its signature.
#[derive(Debug, Clone)]
pub(crate) struct V3Request {
    authorization: String,
    /// Lowercase names; repeated headers joined by `,` in arrival order, values trimmed.
    headers: BTreeMap<String, String>,
    raw_query: String,
    body_sha256: String,
}

/// `Authorization: ACS3-HMAC-SHA256 Credential=…,SignedHeaders=…,Signature=…`, taken apart.
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn incomplete() -> ApiError {
    ApiError::bad_request(
        "IncompleteSignature",
        "The request signature does not conform to Aliyun standards.",
    )
}

impl V3Request {
    /// `Some` when the request is V3-signed, i.e. its `Authorization` names an ACS3 scheme.
    pub(crate) fn from_http(headers: &HeaderMap, query: Option<&str>, body: &[u8]) -> Option<Self> {
        let authorization = headers.get("authorization")?.to_str().ok()?;
        if !authorization.starts_with("ACS3-") {
            return None;
        }
        let mut map: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in headers {
            let value = String::from_utf8_lossy(value.as_bytes()).trim().to_string();
            map.entry(name.as_str().to_ascii_lowercase())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(&value);
                })
                .or_insert(value);
        }
        Some(Self {
            authorization: authorization.to_string(),
            headers: map,
            raw_query: query.unwrap_or_default().to_string(),
            body_sha256: hex::encode(Sha256::digest(body)),
        })
    }

    #[cfg(test)]
    pub(crate) fn from_parts(
        authorization: &str,
        headers: &[(&str, &str)],
        query: &str,
        body: &[u8],
    ) -> Self {
        Self {
            authorization: authorization.to_string(),
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
                .collect(),
            raw_query: query.to_string(),
            body_sha256: hex::encode(Sha256::digest(body)),
        }
    }

    /// The V1 names of what the headers carry (action, version, date, nonce, key id, token),
    /// for the checks both schemes share. A missing header stays missing, to be named later.
    pub(crate) fn common_params(&self) -> Vec<(&'static str, String)> {
        let mut out: Vec<(&'static str, String)> = COMMON
            .iter()
            .filter_map(|(header, param)| self.headers.get(*header).map(|v| (*param, v.clone())))
            .collect();
        if let Ok(auth) = self.parse() {
            out.push(("AccessKeyId", auth.credential.to_string()));
        }
        if let Some(token) = self.headers.get("x-acs-security-token") {
            out.push(("SecurityToken", token.clone()));
        }
        out
    }

    /// The shape checks made before any key is looked up: a well-formed `Authorization` that
    /// signs `host`, `content-type` when present and every `x-acs-*` header, every common
    /// header present, and a body hash that matches the body.
    pub(crate) fn check_common(&self) -> Result<(), ApiError> {
        let auth = self.parse()?;
        for (header, _) in COMMON.iter().chain(&[("x-acs-content-sha256", "")]) {
            if !self.headers.contains_key(*header) {
                return Err(ApiError::missing(header));
            }
        }
        let must_sign = self.headers.keys().filter(|name| {
            name.starts_with("x-acs-") || matches!(name.as_str(), "host" | "content-type")
        });
        for name in must_sign {
            if !auth.signed_headers.contains(&name.as_str()) {
                return Err(incomplete());
            }
        }
        if self.headers.get("x-acs-content-sha256") != Some(&self.body_sha256) {
            return Err(ApiError::bad_request(
                "SignatureDoesNotMatch",
                "The x-acs-content-sha256 header does not match the request body.",
            ));
        }
        Ok(())
    }

    fn parse(&self) -> Result<Authorization<'_>, ApiError> {
        let rest = self
            .authorization
            .strip_prefix(ALGORITHM)
            .and_then(|r| r.strip_prefix(' '))
            .ok_or_else(incomplete)?;
        let mut fields = BTreeMap::new();
        for part in rest.split(',') {
            let (name, value) = part.trim().split_once('=').ok_or_else(incomplete)?;
            fields.insert(name, value);
        }
        let field = |name: &str| fields.get(name).copied().filter(|v| !v.is_empty());
        match (
            field("Credential"),
            field("SignedHeaders"),
            field("Signature"),
        ) {
            (Some(credential), Some(signed), Some(signature)) if fields.len() == 3 => {
                Ok(Authorization {
                    credential,
                    signed_headers: signed.split(';').collect(),
                    signature,
                })
            }
            _ => Err(incomplete()),
        }
    }

    /// The canonical request as the server rebuilds it for `method`.
    pub(crate) fn canonical_request(&self, method: &str) -> Result<String, ApiError> {
        let auth = self.parse()?;
        let mut query: Vec<(String, String)> = form_urlencoded::parse(self.raw_query.as_bytes())
            .map(|(k, v)| (percent_encode(&k), percent_encode(&v)))
            .collect();
        query.sort();
        let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut names: Vec<&str> = auth.signed_headers.clone();
        names.sort_unstable();
        let mut headers = String::new();
        for name in &names {
            let value = self.headers.get(*name).map(String::as_str).unwrap_or("");
            headers.push_str(&format!("{name}:{value}\n"));
        }
        Ok(format!(
            "{method}\n/\n{}\n{headers}\n{}\n{}",
            query.join("&"),
            names.join(";"),
            self.body_sha256
        ))
    }

    /// `ACS3-HMAC-SHA256\n` + hex SHA-256 of the canonical request: what a
    /// `SignatureDoesNotMatch` quotes (a hash, so it echoes no parameter).
    pub(crate) fn string_to_sign(&self, method: &str) -> Result<String, ApiError> {
        let canonical = self.canonical_request(method)?;
        Ok(format!(
            "{ALGORITHM}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        ))
    }

    /// Whether the hex signature is HMAC-SHA256 of the string to sign under the bare secret;
    /// constant time (`verify_slice`).
    pub(crate) fn verify(&self, secret: &str, method: &str) -> Result<(), ApiError> {
        let auth = self.parse()?;
        let string_to_sign = self.string_to_sign(method)?;
        let matches = hex::decode(auth.signature).is_ok_and(|presented| {
            Hmac::<Sha256>::new_from_slice(secret.as_bytes()).is_ok_and(|mut mac| {
                mac.update(string_to_sign.as_bytes());
                mac.verify_slice(&presented).is_ok()
            })
        });
        if matches {
            Ok(())
        } else {
            Err(ApiError::bad_request(
                "SignatureDoesNotMatch",
                format!(
                    "Specified signature is not matched with our calculation. server string to sign is:{string_to_sign}"
                ),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const SIGNED: &str =
        "host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version";

    /// The documentation's RunInstances example, as it arrives.
    fn run_instances(signature: &str) -> V3Request {
        V3Request::from_parts(
            &format!(
                "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,SignedHeaders={SIGNED},Signature={signature}"
            ),
            &[
                ("host", "ecs.cn-shanghai.aliyuncs.com"),
                ("x-acs-action", "RunInstances"),
                ("x-acs-version", "2014-05-26"),
                ("x-acs-date", "2023-10-26T10:22:32Z"),
                ("x-acs-signature-nonce", "3156853299f313e23d1673dc12e1703d"),
                ("x-acs-content-sha256", EMPTY),
                ("accept", "application/json"),
            ],
            "ImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai",
            b"",
        )
    }

    const OFFICIAL: &str = "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0";

    #[test]
    fn the_official_example_verifies_and_its_string_to_sign_is_the_documented_one() {
        let request = run_instances(OFFICIAL);
        request.check_common().unwrap();
        assert_eq!(
            request.string_to_sign("POST").unwrap(),
            "ACS3-HMAC-SHA256\n7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        request.verify("YourAccessKeySecret", "POST").unwrap();
    }

    #[test]
    fn a_changed_signature_secret_method_or_query_does_not_match() {
        let flipped = format!("16{}", &OFFICIAL[2..]);
        let code = |r: Result<(), ApiError>| r.unwrap_err().code;
        assert_eq!(
            code(run_instances(&flipped).verify("YourAccessKeySecret", "POST")),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            code(run_instances(OFFICIAL).verify("OtherSecret", "POST")),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            code(run_instances(OFFICIAL).verify("YourAccessKeySecret", "GET")),
            "SignatureDoesNotMatch"
        );
        let mut tampered = run_instances(OFFICIAL);
        tampered.raw_query = tampered.raw_query.replace("shanghai", "beijing");
        assert_eq!(
            code(tampered.verify("YourAccessKeySecret", "POST")),
            "SignatureDoesNotMatch"
        );
        assert_eq!(
            code(run_instances("not hex").verify("YourAccessKeySecret", "POST")),
            "SignatureDoesNotMatch"
        );
    }

    #[test]
    fn a_malformed_authorization_or_an_unsigned_acs_header_is_incomplete() {
        for authorization in [
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,Signature=abc".to_string(),
            format!("ACS3-HMAC-SM3 Credential=YourAccessKeyId,SignedHeaders={SIGNED},Signature=ab"),
            format!("ACS3-HMAC-SHA256 Credential=,SignedHeaders={SIGNED},Signature=ab"),
        ] {
            let mut request = run_instances(OFFICIAL);
            request.authorization = authorization;
            assert_eq!(
                request.check_common().unwrap_err().code,
                "IncompleteSignature"
            );
        }
        let mut request = run_instances(OFFICIAL);
        request
            .headers
            .insert("x-acs-security-token".into(), "unsigned".into());
        assert_eq!(
            request.check_common().unwrap_err().code,
            "IncompleteSignature"
        );
    }

    #[test]
    fn a_body_that_is_not_the_hashed_one_is_refused() {
        let mut request = run_instances(OFFICIAL);
        request.body_sha256 = hex::encode(Sha256::digest(b"UserName=mallory"));
        assert_eq!(
            request.check_common().unwrap_err().code,
            "SignatureDoesNotMatch"
        );
    }

    #[test]
    fn the_common_headers_are_read_under_their_v1_names() {
        let params = run_instances(OFFICIAL).common_params();
        for expected in [
            ("Action", "RunInstances"),
            ("Version", "2014-05-26"),
            ("Timestamp", "2023-10-26T10:22:32Z"),
            ("SignatureNonce", "3156853299f313e23d1673dc12e1703d"),
            ("AccessKeyId", "YourAccessKeyId"),
        ] {
            assert!(
                params.contains(&(expected.0, expected.1.to_string())),
                "{expected:?}"
            );
        }
    }
}
