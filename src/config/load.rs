//! Reading the layers (built-in defaults, the file, `AKGUARD__*` variables) into `Settings`
//! strictly, reporting every mistake in one go.
//!
//! serde stops at the first value it cannot read. To go on, the bad value is reported and
//! replaced by its built-in default (or removed, or, when a list element lacks a required
//! field, the element is dropped), and the merged tree is read again, until it reads. The
//! repaired settings then serve to find unknown keys and misplaced secrets (see `keys`) and
//! to run `validate`, whose errors are added unless they are about a key already reported.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use config::{Source, Value, ValueKind};
use serde::Deserialize;

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
        file: file.as_ref().map(|(path, _, table)| (path.as_path(), table)),
        vars: &vars,
    };
    let mut errors = Errors::default();
    let Some(mut settings) = read_repairing(Value::from(merged), &layers, &mut errors) else {
        return Err(errors.into_error());
    };
    settings.alibaba.fill_from_standard_env(env);
    let known = serde_json::to_value(&settings)
        .map_err(|e| ConfigError::invalid("settings", e.to_string()))?;
    keys::check_layer(&defaults, &known, "the built-in defaults", true, &mut errors);
    if let Some((path, table)) = layers.file {
        keys::check_layer(table, &known, &path.display().to_string(), false, &mut errors);
    }
    keys::check_env(vars.iter(), &known, &mut errors);
    if !errors.is_empty() {
        if let Err(invalid) = settings.validate() {
            let more = match invalid {
                ConfigError::Several(all) => all,
                one => vec![one],
            };
            for error in more {
                if !error.key().is_some_and(|key| errors.covers(key)) {
                    errors.push(error);
                }
            }
        }
    }
    errors.finish(settings)
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
fn read_repairing(mut tree: Value, layers: &Layers, errors: &mut Errors) -> Option<Settings> {
    let defaults = Value::from(layers.defaults.clone());
    // List elements dropped so far, as (list, index) in the file's own numbering.
    let mut dropped: Vec<(KeyPath, usize)> = Vec::new();
    let mut defaulted: Vec<KeyPath> = Vec::new();
    for _ in 0..MAX_REPAIRS {
        let error = match Settings::deserialize(tree.clone()) {
            Ok(settings) => return Some(settings),
            Err(error) => error,
        };
        let (key, message) = explain(error);
        let Some(key) = key else {
            errors.push(ConfigError::invalid("settings", message));
            return None;
        };
        let current = KeyPath::parse(&key);
        let original = as_written(&current, &dropped);
        let present = lookup(&tree, &current).is_some();
        if !errors.covers(&original.to_string()) {
            let message = if present {
                format!("{message} (in {})", layers.origin(&original))
            } else {
                message
            };
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

/// The key and a message of a `config` error; the key is `None` when it names none.
fn explain(error: config::ConfigError) -> (Option<String>, String) {
    match error {
        config::ConfigError::Type {
            unexpected,
            expected,
            key,
            ..
        } => (key, format!("expected {expected}, found {unexpected}")),
        config::ConfigError::NotFound(key) => (Some(key), "required, and not set".into()),
        config::ConfigError::At { error, key, .. } => (key, error.to_string()),
        other => (None, other.to_string()),
    }
}

impl Layers<'_> {
    /// Where the value at `path` was set, for messages.
    fn origin(&self, path: &KeyPath) -> String {
        if let Some(var) = path.env_var().filter(|v| self.vars.contains_key(v)) {
            return format!("environment variable {var}");
        }
        match self.file {
            Some((file, table)) if lookup(&Value::from(table.clone()), path).is_some() => {
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

fn lookup<'a>(tree: &'a Value, path: &KeyPath) -> Option<&'a Value> {
    path.0
        .iter()
        .try_fold(tree, |node, segment| match (&node.kind, segment) {
            (ValueKind::Table(table), Segment::Key(key)) => table.get(key),
            (ValueKind::Array(items), Segment::Index(i)) => items.get(*i),
            _ => None,
        })
}

fn lookup_mut<'a>(tree: &'a mut Value, path: &KeyPath) -> Option<&'a mut Value> {
    path.0
        .iter()
        .try_fold(tree, |node, segment| match (&mut node.kind, segment) {
            (ValueKind::Table(table), Segment::Key(key)) => table.get_mut(key),
            (ValueKind::Array(items), Segment::Index(i)) => items.get_mut(*i),
            _ => None,
        })
}

/// Removes the value at `current` (`original` in the written numbering); `None` when there
/// is nothing to remove, which ends the repairs.
fn remove(
    tree: &mut Value,
    current: &KeyPath,
    original: &KeyPath,
    dropped: &mut Vec<(KeyPath, usize)>,
) -> Option<()> {
    let parent = lookup_mut(tree, &current.parent()?)?;
    match (&mut parent.kind, current.0.last()?, original.0.last()?) {
        (ValueKind::Table(table), Segment::Key(key), _) => table.remove(key).map(drop),
        (ValueKind::Array(items), Segment::Index(i), Segment::Index(written))
            if *i < items.len() =>
        {
            items.remove(*i);
            dropped.push((original.parent()?, *written));
            Some(())
        }
        _ => None,
    }
}
