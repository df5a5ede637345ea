//! Which keys exist, judged against the typed settings themselves: unknown keys with the
//! likely intended one, and secrets written in the file.
//!
//! The known keys are never listed by hand. The merged layers are deserialized into
//! `Settings` (serde drops any field the structs lack) and serialized back to JSON; a key is
//! known when that JSON holds it. A field added to any settings struct is therefore known at
//! once, including inside maps (`intake.sources.<name>.*`) and lists (`rotation.users[]`),
//! whose elements are in the JSON exactly as they were loaded. The one rule this relies on:
//! every settings field serializes under the name it is read by (no `skip_serializing`,
//! no `alias`), as `check-config`'s output needs anyway.
//!
//! Secrets are found the same way: a field serialized with `serialize_secret` shows as
//! `[redacted]`, and such a key written in the file is refused, naming its variable.

use std::fmt;

use config::{Value, ValueKind};
use serde_json::Value as Json;

use super::error::{ConfigError, Errors};

/// What `serialize_secret` writes for a secret that is set.
const REDACTED: &str = "[redacted]";
/// Prefix and separator of the environment variables.
pub(super) const ENV_PREFIX: &str = "AKGUARD__";

/// One step into the settings tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Segment {
    Key(String),
    Index(usize),
}

/// A setting's place, printed as `rotation.users[1].sink`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct KeyPath(pub Vec<Segment>);

impl KeyPath {
    /// The path at which serde failed.
    pub fn from_serde(path: &serde_path_to_error::Path) -> Self {
        use serde_path_to_error::Segment as At;
        Self(
            path.iter()
                .filter_map(|segment| match segment {
                    At::Seq { index } => Some(Segment::Index(*index)),
                    At::Map { key } | At::Enum { variant: key } => Some(Segment::Key(key.clone())),
                    At::Unknown => None,
                })
                .collect(),
        )
    }

    /// The path named by an `AKGUARD__SECTION__KEY` variable (names are case-insensitive).
    pub fn from_env(var: &str) -> Option<Self> {
        let rest = var.strip_prefix(ENV_PREFIX)?;
        Some(Self(
            rest.split("__")
                .map(|s| Segment::Key(s.to_ascii_lowercase()))
                .collect(),
        ))
    }

    /// The environment variable that sets this key; `None` inside a list.
    pub fn env_var(&self) -> Option<String> {
        let mut var = ENV_PREFIX.trim_end_matches('_').to_owned();
        for segment in &self.0 {
            let Segment::Key(key) = segment else {
                return None;
            };
            var.push_str("__");
            var.push_str(&key.to_ascii_uppercase());
        }
        Some(var)
    }

    pub fn child(&self, segment: Segment) -> Self {
        let mut path = self.clone();
        path.0.push(segment);
        path
    }

    pub fn parent(&self) -> Option<Self> {
        let (_, parent) = self.0.split_last()?;
        Some(Self(parent.to_vec()))
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if i == 0 => write!(f, "{key}")?,
                Segment::Key(key) => write!(f, ".{key}")?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

/// A layer's keys checked against `known`, the loaded settings as JSON. `origin` names the
/// layer in messages; secrets are refused only where `secrets_allowed` is false (the file).
/// `dropped` lists the list elements that could not be read, which `known` lacks.
pub(super) fn check_layer(
    layer: &config::Map<String, Value>,
    known: &Json,
    origin: &str,
    secrets_allowed: bool,
    dropped: &[(KeyPath, usize)],
    errors: &mut Errors,
) {
    let check = Check {
        root: known,
        origin,
        secrets_allowed,
        dropped,
    };
    check.table(&KeyPath::default(), layer, known, errors);
}

struct Check<'a> {
    root: &'a Json,
    origin: &'a str,
    secrets_allowed: bool,
    dropped: &'a [(KeyPath, usize)],
}

impl Check<'_> {
    fn table(
        &self,
        path: &KeyPath,
        table: &config::Map<String, Value>,
        known: &Json,
        errors: &mut Errors,
    ) {
        let mut keys: Vec<&String> = table.keys().collect();
        keys.sort();
        for key in keys {
            let child = path.child(Segment::Key(key.clone()));
            match known.get(key.as_str()) {
                Some(expected) => self.value(&child, &table[key], expected, errors),
                None if errors.covers(&child.to_string()) => {}
                None => errors.push(ConfigError::Unknown {
                    key: child.to_string(),
                    origin: self.origin.to_owned(),
                    suggestion: suggest(self.root, path, key, known)
                        .map(|intended| format!("`{intended}`")),
                }),
            }
        }
    }

    fn value(&self, path: &KeyPath, value: &Value, expected: &Json, errors: &mut Errors) {
        if errors.covers(&path.to_string()) {
            return;
        }
        match (&value.kind, expected) {
            (ValueKind::Table(table), Json::Object(_)) => self.table(path, table, expected, errors),
            (ValueKind::Array(items), Json::Array(loaded)) => {
                let dropped = |i: usize| self.dropped.contains(&(path.clone(), i));
                let kept = (0..items.len()).filter(|i| !dropped(*i));
                for (i, loaded) in kept.zip(loaded) {
                    self.value(&path.child(Segment::Index(i)), &items[i], loaded, errors);
                }
            }
            (ValueKind::String(_), Json::String(s)) if s == REDACTED && !self.secrets_allowed => {
                let instead = path
                    .env_var()
                    .map(|var| format!("; set the environment variable {var} instead"))
                    .unwrap_or_default();
                errors.push(ConfigError::invalid(
                    path.to_string(),
                    format!(
                        "secrets are never read from the configuration file ({}){instead}",
                        self.origin
                    ),
                ));
            }
            _ => {}
        }
    }
}

/// `AKGUARD__*` variables checked against `known`: each must name a setting.
pub(super) fn check_env<'a>(
    vars: impl Iterator<Item = &'a String>,
    known: &Json,
    errors: &mut Errors,
) {
    for var in vars {
        let Some(path) = KeyPath::from_env(var) else {
            continue;
        };
        let mut node = known;
        for (depth, segment) in path.0.iter().enumerate() {
            let Segment::Key(key) = segment else { break };
            if let Some(next) = node.get(key.as_str()) {
                node = next;
                continue;
            }
            if errors.covers(&path.to_string()) {
                break;
            }
            let parent = KeyPath(path.0[..depth].to_vec());
            let suggestion = suggest(known, &parent, key, node).map(|mut intended| {
                intended.0.extend_from_slice(&path.0[depth + 1..]);
                let var = intended.env_var().unwrap_or_default();
                format!("`{intended}` ({var})")
            });
            errors.push(ConfigError::Unknown {
                key: path.to_string(),
                origin: format!("environment variable {var}"),
                suggestion,
            });
            break;
        }
    }
}

/// The key probably meant by `name` under `parent`: the closest sibling within a few edits,
/// else a setting of that exact name elsewhere (a key put in the wrong section).
fn suggest(root: &Json, parent: &KeyPath, name: &str, siblings: &Json) -> Option<KeyPath> {
    let lower = name.to_ascii_lowercase();
    let nearest = siblings.as_object().and_then(|siblings| {
        siblings
            .keys()
            .map(|k| (edit_distance(&lower, k), k))
            .filter(|(d, k)| *d <= k.chars().count().max(3) / 3)
            .min_by_key(|(d, _)| *d)
    });
    if let Some((_, key)) = nearest {
        return Some(parent.child(Segment::Key(key.clone())));
    }
    find_key(root, &KeyPath::default(), &lower)
}

fn find_key(node: &Json, path: &KeyPath, name: &str) -> Option<KeyPath> {
    let object = node.as_object()?;
    if object.contains_key(name) {
        return Some(path.child(Segment::Key(name.to_owned())));
    }
    object
        .iter()
        .find_map(|(k, v)| find_key(v, &path.child(Segment::Key(k.clone())), name))
}

/// Edits between `a` and `b`: insertions, deletions, substitutions and swaps of two
/// neighbouring characters (`auht` is one edit from `auth`).
pub(super) fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            d[i][j] = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d[i][j] = d[i][j].min(d[i - 2][j - 2] + 1);
            }
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("dryrun", "dry_run"), 1);
        assert_eq!(edit_distance("in_use_windw", "in_use_window"), 1);
        assert_eq!(edit_distance("remediaton", "remediation"), 1);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("auht", "auth"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn key_paths_print_as_written_and_name_their_variable() {
        let path = KeyPath(vec![
            Segment::Key("rotation".into()),
            Segment::Key("users".into()),
            Segment::Index(0),
            Segment::Key("sink".into()),
        ]);
        assert_eq!(path.to_string(), "rotation.users[0].sink");
        assert_eq!(path.env_var(), None);
        let path = KeyPath::from_env("AKGUARD__REMEDIATION__DRY_RUN").unwrap();
        assert_eq!(path.to_string(), "remediation.dry_run");
        assert_eq!(
            path.env_var().as_deref(),
            Some("AKGUARD__REMEDIATION__DRY_RUN")
        );
    }
}
