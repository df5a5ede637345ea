//! The configuration's one error type, and the collector that lets a single run report every
//! mistake instead of stopping at the first.

use std::fmt;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration: {0}")]
    Load(#[from] config::ConfigError),
    /// A file named by the settings (or the settings file itself) cannot be read or parsed.
    #[error("{what} {}: {message}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        message: String,
    },
    #[error("invalid setting `{key}`: {message}")]
    Invalid { key: String, message: String },
    /// A key that no setting has: a typo, or a setting of another version.
    #[error("unknown setting `{key}` in {origin}{}", Suggestion(.suggestion))]
    Unknown {
        key: String,
        /// The file, or the environment variable, that holds it.
        origin: String,
        suggestion: Option<String>,
    },
    #[error("{} errors in the configuration:{}", .0.len(), List(.0))]
    Several(Vec<ConfigError>),
}

impl ConfigError {
    pub(super) fn invalid(key: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Invalid {
            key: key.into(),
            message: message.into(),
        }
    }

    /// The setting the error is about, if it names one.
    pub(super) fn key(&self) -> Option<&str> {
        match self {
            Self::Invalid { key, .. } | Self::Unknown { key, .. } => Some(key),
            Self::Load(_) | Self::File { .. } | Self::Several(_) => None,
        }
    }
}

struct Suggestion<'a>(&'a Option<String>);

impl fmt::Display for Suggestion<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(intended) => write!(f, "; did you mean {intended}?"),
            None => Ok(()),
        }
    }
}

struct List<'a>(&'a [ConfigError]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|e| write!(f, "\n  - {e}"))
    }
}

/// Errors gathered while checking independent settings.
#[derive(Debug, Default)]
pub(super) struct Errors(Vec<ConfigError>);

impl Errors {
    pub fn push(&mut self, error: ConfigError) {
        match error {
            ConfigError::Several(all) => self.0.extend(all),
            one => self.0.push(one),
        }
    }

    /// The value, or a placeholder while the error is recorded: `finish` then refuses to hand
    /// out anything built from placeholders.
    pub fn take<T: Default>(&mut self, result: Result<T, ConfigError>) -> T {
        result.unwrap_or_else(|e| {
            self.push(e);
            T::default()
        })
    }

    /// Records an error for each count that is zero.
    pub fn at_least_one<'a>(&mut self, counts: impl IntoIterator<Item = (&'a str, u64)>) {
        for (key, value) in counts {
            if value == 0 {
                self.push(ConfigError::invalid(key, "must be at least 1"));
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether an error was already reported for `key` or for a setting that contains it.
    pub fn covers(&self, key: &str) -> bool {
        self.0.iter().filter_map(ConfigError::key).any(|reported| {
            key == reported
                || key
                    .strip_prefix(reported)
                    .is_some_and(|rest| rest.starts_with(['.', '[']))
        })
    }

    pub fn finish<T>(self, value: T) -> Result<T, ConfigError> {
        if self.is_empty() {
            Ok(value)
        } else {
            Err(self.into_error())
        }
    }

    /// The errors as one; only for a collector that holds some.
    pub fn into_error(self) -> ConfigError {
        let mut all = self.0;
        if all.len() == 1 {
            all.remove(0)
        } else {
            ConfigError::Several(all)
        }
    }
}
