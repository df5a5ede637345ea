//! Reading the layers (built-in defaults, the file, `AKGUARD__*` variables) into `Settings`
//! strictly, reporting every mistake in one go.
//!
//! The `config` crate merges the layers, but the merged tree is read from JSON rather than
//! through that crate, which takes `"yes"` for true and answers an unknown choice without
//! the valid ones. serde stops at the first value it cannot read; to go on, the bad value is
//! reported and replaced by its built-in default (or removed; or, when a list element lacks
//! a required field, the element is dropped), and the tree is read again until it reads. The
//! repaired settings then serve to find unknown keys and misplaced secrets (see `keys`) and
//! to run `validate`, whose errors are added unless they are about a key already reported
//! or lie in a list that lost an element (their numbers would no longer match the file).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Source, Value, ValueKind};
use serde_json::Value as Json;

use super::error::{ConfigError, Errors};
use super::keys::{self, KeyPath, Segment};
use super::{DEFAULTS, Settings};

/// Far more passes than a file has bad values; only a bound against a loop.
const MAX_REPAIRS: usize = 256;

type Table = config::Map<String, Value>;

/// The layers, kept apart to say where a value came from.
struct Layers<'a> {
    defaults: &'a Table,
    file: Option<(&'a Path, &'a Table)>,
    vars: &'a config::Map<String, String>,
}

pub(super) fn load(
    file: Option<&Path>,
    env: &BTreeMap<String, String>,
) -> Result<Settings, ConfigError> {
    let defaults = config::File::from_str(DEFAULTS, config::FileFormat::Toml).collect()?;
    let file = file.map(read_file).transpose()?;
    let vars: config::Map<String, String> = env
        .iter()
        .filter(|(k, _)| k.starts_with(keys::ENV_PREFIX))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut builder = config::Config::builder()
        .add_source(config::File::from_str(DEFAULTS, config::FileFormat::Toml));
    if let Some((_, text, _)) = &file {
        builder = builder.add_source(config::File::from_str(text, config::FileFormat::Toml));
    }
    let merged = builder
        .add_source(
            config::Environment::with_prefix("AKGUARD")
                .prefix_separator("__")
                .separator("__")
                .source(Some(vars.clone())),
        )
        .build()?
        .collect()?;
    let layers = Layers {
        defaults: &defaults,
        file: file
            .as_ref()
            .map(|(path, _, table)| (path.as_path(), table)),
        vars: &vars,
    };
    let mut errors = Errors::default();
    let Some((mut settings, dropped)) =
        read_repairing(to_json(Value::from(merged)), &layers, &mut errors)
    else {
        return Err(errors.into_error());
    };
    settings.alibaba.fill_from_standard_env(env);
    let known = serde_json::to_value(&settings)
        .map_err(|e| ConfigError::invalid("settings", e.to_string()))?;
    let origin = "the built-in defaults";
    keys::check_layer(&defaults, &known, origin, true, &dropped, &mut errors);
    if let Some((path, table)) = layers.file {
        let origin = path.display().to_string();
        keys::check_layer(table, &known, &origin, false, &dropped, &mut errors);
    }
    keys::check_env(vars.keys(), &known, &mut errors);
    if !errors.is_empty() {
        if let Err(invalid) = settings.validate() {
            let more = match invalid {
                ConfigError::Several(all) => all,
                one => vec![one],
            };
            let renumbered = |key: &str| {
                dropped
                    .iter()
                    .any(|(list, _)| key.starts_with(&format!("{list}[")))
            };
            for error in more {
                if !error
                    .key()
                    .is_some_and(|key| errors.covers(key) || renumbered(key))
                {
                    errors.push(error);
                }
            }
        }
    }
    errors.finish(settings)
}

/// A TOML document of another kind (the tokens file) read strictly into `T`; the error
/// names the key at fault.
pub(super) fn read_toml<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    let table = config::File::from_str(text, config::FileFormat::Toml)
        .collect()
        .map_err(|e| e.to_string())?;
    serde_path_to_error::deserialize(&to_json(Value::from(table)))
        .map_err(|e| format!("`{}`: {}", e.path(), e.inner()))
}

fn read_file(path: &Path) -> Result<(PathBuf, String, Table), ConfigError> {
    let error = |message: String| ConfigError::File {
        what: "configuration file",
        path: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
    let table = config::File::from_str(&text, config::FileFormat::Toml)
        .collect()
        .map_err(|e| error(e.to_string()))?;
    Ok((path.to_owned(), text, table))
}

/// Reads `tree` into `Settings`, reporting and repairing each value serde refuses.
/// Also returns the list elements dropped, as (list, index) in the layers' own numbering.
fn read_repairing(
    mut tree: Json,
    layers: &Layers,
    errors: &mut Errors,
) -> Option<(Settings, Vec<(KeyPath, usize)>)> {
    let defaults = to_json(Value::from(layers.defaults.clone()));
    let from_env: Vec<KeyPath> = layers
        .vars
        .keys()
        .filter_map(|v| KeyPath::from_env(v))
        .collect();
    let mut dropped: Vec<(KeyPath, usize)> = Vec::new();
    let mut defaulted: Vec<KeyPath> = Vec::new();
    // Variables read as numbers or switches, with what serde said of them as text.
    let mut coerced: Vec<(KeyPath, String)> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let error = match serde_path_to_error::deserialize::<_, Settings>(&tree) {
            Ok(settings) => return Some((settings, dropped)),
            Err(error) => error,
        };
        let mut current = KeyPath::from_serde(error.path());
        let mut message = error.inner().to_string();
        // serde names a missing field in its message, at the path of the table lacking it.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'))
        {
            current = current.child(Segment::Key(field.to_owned()));
            message = "required, and not set".into();
        }
        let slot = lookup_mut(&mut tree, &current);
        let present = slot.is_some();
        if let Some(text) = slot.filter(|_| from_env.contains(&current)) {
            // The environment gives only text: read it as a number or a switch if it is one.
            if let Some(typed) = typed(text) {
                *text = typed;
                coerced.push((current, message));
                continue;
            }
        }
        if let Some((_, as_text)) = coerced.iter().find(|(path, _)| *path == current) {
            message.clone_from(as_text);
        }
        if may_be_secret(&current) {
            message = without_value(&message);
        }
        let original = as_written(&current, &dropped);
        if !errors.covers(&original.to_string()) {
            if present {
                message = format!("{message} (in {})", layers.origin(&original));
            }
            errors.push(ConfigError::invalid(original.to_string(), message));
        }
        let default = lookup(&defaults, &original).filter(|_| !defaulted.contains(&current));
        match (present, default) {
            (true, Some(default)) => {
                *lookup_mut(&mut tree, &current)? = default.clone();
                defaulted.push(current);
            }
            (true, None) => remove(&mut tree, &current, &original, &mut dropped)?,
            // A required field is missing: the table that needs it cannot be read at all.
            (false, _) => remove(
                &mut tree,
                &current.parent()?,
                &original.parent()?,
                &mut dropped,
            )?,
        }
    }
    None
}

/// serde quotes the value it refused, and a secret written as a number would be quoted
/// too: the value of any setting named like a secret is left out of its message.
fn may_be_secret(path: &KeyPath) -> bool {
    path.0.iter().any(|segment| {
        matches!(segment, Segment::Key(key)
            if ["secret", "token", "password"].iter().any(|word| key.contains(word)))
    })
}

fn without_value(message: &str) -> String {
    match message.split_once(", expected ") {
        Some((_, expected)) => {
            format!("a value of the wrong type (not shown), expected {expected}")
        }
        None => "a value of the wrong type (not shown)".into(),
    }
}

/// A variable's text as the number or switch it spells, if it spells one.
fn typed(value: &Json) -> Option<Json> {
    let text = value.as_str()?.trim();
    if text.eq_ignore_ascii_case("true") || text.eq_ignore_ascii_case("false") {
        return Some(Json::Bool(text.eq_ignore_ascii_case("true")));
    }
    if let Ok(n) = text.parse::<u64>() {
        return Some(n.into());
    }
    if let Ok(n) = text.parse::<i64>() {
        return Some(n.into());
    }
    text.parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map(Json::Number)
}

/// The merged layers as JSON, whose deserializer takes no liberties: `"yes"` is not a switch
/// and `"4"` is not a number, and an unknown choice is answered with the valid ones.
fn to_json(value: Value) -> Json {
    match value.kind {
        ValueKind::Nil => Json::Null,
        ValueKind::Boolean(b) => Json::Bool(b),
        ValueKind::I64(n) => n.into(),
        ValueKind::U64(n) => n.into(),
        ValueKind::Float(f) => serde_json::Number::from_f64(f)
            .map_or_else(|| Json::String(f.to_string()), Json::Number),
        // Beyond 64 bits no setting can hold it; as text, serde refuses it by name.
        ValueKind::I128(n) => Json::String(n.to_string()),
        ValueKind::U128(n) => Json::String(n.to_string()),
        ValueKind::String(s) => Json::String(s),
        ValueKind::Table(table) => {
            Json::Object(table.into_iter().map(|(k, v)| (k, to_json(v))).collect())
        }
        ValueKind::Array(items) => Json::Array(items.into_iter().map(to_json).collect()),
    }
}

impl Layers<'_> {
    /// Where the value at `path` was set, for messages.
    fn origin(&self, path: &KeyPath) -> String {
        // Variable names are matched as the `config` crate matches them: in any case.
        let wanted = path.env_var().unwrap_or_default();
        if let Some(var) = self.vars.keys().find(|v| v.eq_ignore_ascii_case(&wanted)) {
            return format!("environment variable {var}");
        }
        match self.file {
            Some((file, table)) if lookup(&to_json(Value::from(table.clone())), path).is_some() => {
                file.display().to_string()
            }
            _ => "the built-in defaults".into(),
        }
    }
}

/// `path` in the numbering of the layers as written, undoing the shift of dropped elements.
fn as_written(path: &KeyPath, dropped: &[(KeyPath, usize)]) -> KeyPath {
    let mut written = KeyPath::default();
    for segment in &path.0 {
        let segment = match segment {
            Segment::Index(index) => {
                let mut gone: Vec<usize> = dropped
                    .iter()
                    .filter(|(list, _)| *list == written)
                    .map(|(_, i)| *i)
                    .collect();
                gone.sort_unstable();
                let index = gone
                    .into_iter()
                    .fold(*index, |i, g| if g <= i { i + 1 } else { i });
                Segment::Index(index)
            }
            key => key.clone(),
        };
        written.0.push(segment);
    }
    written
}

fn lookup<'a>(tree: &'a Json, path: &KeyPath) -> Option<&'a Json> {
    path.0
        .iter()
        .try_fold(tree, |node, segment| match (node, segment) {
            (Json::Object(table), Segment::Key(key)) => table.get(key),
            (Json::Array(items), Segment::Index(i)) => items.get(*i),
            _ => None,
        })
}

fn lookup_mut<'a>(tree: &'a mut Json, path: &KeyPath) -> Option<&'a mut Json> {
    path.0
        .iter()
        .try_fold(tree, |node, segment| match (node, segment) {
            (Json::Object(table), Segment::Key(key)) => table.get_mut(key),
            (Json::Array(items), Segment::Index(i)) => items.get_mut(*i),
            _ => None,
        })
}

/// Removes the value at `current` (`original` in the written numbering); `None` when there
/// is nothing to remove, which ends the repairs.
fn remove(
    tree: &mut Json,
    current: &KeyPath,
    original: &KeyPath,
    dropped: &mut Vec<(KeyPath, usize)>,
) -> Option<()> {
    let parent = lookup_mut(tree, &current.parent()?)?;
    match (parent, current.0.last()?, original.0.last()?) {
        (Json::Object(table), Segment::Key(key), _) => table.remove(key).map(drop),
        (Json::Array(items), Segment::Index(i), Segment::Index(written)) if *i < items.len() => {
            items.remove(*i);
            dropped.push((original.parent()?, *written));
            Some(())
        }
        _ => None,
    }
}
