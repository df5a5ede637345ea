//! `alibaba.signature_version` end to end: the daemon contains a leak against the emulator
//! with either signature, and the emulator saw every call signed the way configured.

use crate::cloud_support::{LEAKED_KEY, calls, emulator};
use crate::helpers::run_cli_with_env;
use crate::remediation::{daemon_with, report, settled};

/// Runs a full containment of `leaked-in-use.json` with `config` and `env`, and checks that
/// every call akguard made was signed with `version` and none was refused for its signature.
async fn contain_signing_with(version: &str, config: &str, env: &[(&'static str, &str)]) {
    let (url, _emulator) = emulator("leaked-in-use.json", |_| {}).await;
    let app = daemon_with(&url, config, env).await;
    let id = report(&app, LEAKED_KEY, 25).await;
    let incident = app.wait_for_incident(id, "settled", settled).await;
    assert_eq!(incident["state"], "awaiting_operator", "{incident:#}");
    assert_eq!(incident["findings"]["revoke"]["verified"], true);
    assert!(incident["time_to_containment_ms"].as_i64().is_some());

    let calls = calls(&url).await;
    let products: std::collections::BTreeSet<&str> =
        calls.iter().filter_map(|c| c["product"].as_str()).collect();
    for product in ["ram", "actiontrail", "bss"] {
        assert!(
            products.contains(product),
            "{product} not called: {products:?}"
        );
    }
    for call in &calls {
        assert_eq!(call["signature"], version, "{call:#}");
        assert_ne!(call["code"], "SignatureDoesNotMatch", "{call:#}");
        assert_ne!(call["code"], "IncompleteSignature", "{call:#}");
    }
}

#[tokio::test]
async fn a_daemon_signing_v3_contains_a_leak_end_to_end() {
    contain_signing_with("v3", "[alibaba]\nsignature_version = \"v3\"\n", &[]).await;
}

#[tokio::test]
async fn a_daemon_signs_v3_by_default() {
    contain_signing_with("v3", "", &[]).await;
}

#[tokio::test]
async fn a_daemon_signing_v1_still_contains_a_leak_end_to_end() {
    contain_signing_with("v1", "", &[("AKGUARD__ALIBABA__SIGNATURE_VERSION", "v1")]).await;
}

#[test]
fn an_unknown_signature_version_is_refused_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("v2.toml");
    std::fs::write(&config, "[alibaba]\nsignature_version = \"v2\"\n").unwrap();
    let (status, stdout, stderr) = run_cli_with_env(&["check-config"], &config, &[]);
    assert!(!status.success(), "v2 was accepted:\n{stdout}");
    assert!(stderr.contains("alibaba.signature_version"), "{stderr}");
}
