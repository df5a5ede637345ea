//! Every shipped scenario loads, validates and resolves.

use std::path::Path;

use super::super::clock::Clock;
use super::super::scenario::Scenario;
use super::super::state::Shared;

#[test]
fn every_shipped_scenario_loads() {
    // The scenarios ship at the repository's top level, two folders above this crate.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/scenarios");
    let mut loaded = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let scenario =
                Scenario::from_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            Shared::load(scenario, Clock::system())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            loaded.push(path.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    loaded.sort();
    for expected in ["leaked-in-use.json", "leaked-unused.json", "two-keys.json"] {
        assert!(
            loaded.iter().any(|l| l == expected),
            "{expected} is missing from {loaded:?}"
        );
    }
}

#[test]
fn a_scenario_with_a_dangling_reference_is_refused() {
    let json = r#"{"account": {"uid": "1", "name": "a"},
        "users": [{"name": "u", "policies": [{"name": "Missing", "type": "Custom"}]}]}"#;
    let err = Scenario::from_json(json).unwrap_err().to_string();
    assert!(err.contains("Missing"), "{err}");
    let typo = r#"{"account": {"uid": "1", "name": "a"}, "userz": []}"#;
    assert!(Scenario::from_json(typo).is_err());
}
