//! The shared corpus of hostile strings (tests/fixtures/hostile_strings.json), for the tests
//! of every intake check and every renderer.

use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    strings: Vec<String>,
    repeated: Vec<Repeated>,
}

#[derive(Deserialize)]
struct Repeated {
    unit: String,
    times: usize,
}

/// Every string of the corpus, the repeated ones expanded.
pub fn hostile_strings() -> Vec<String> {
    let corpus: Corpus =
        serde_json::from_str(include_str!("../tests/fixtures/hostile_strings.json"))
            .expect("the hostile-string corpus is valid JSON");
    let repeated = corpus.repeated.iter().map(|r| r.unit.repeat(r.times));
    corpus.strings.into_iter().chain(repeated).collect()
}
