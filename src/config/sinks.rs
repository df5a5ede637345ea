//! Where a new key may be delivered: the sinks of `[[rotation.users]]`, the sinks an operator
//! may name under `rotation.operator_sinks`, and never a file inside akguard's own state.

use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{ConfigError, Sink, values};

/// `rotation.operator_sinks`: what `set-rotation` may name beyond the configured sinks.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct OperatorSinkSettings {
    /// KMS secret names starting with one of these.
    #[serde(deserialize_with = "values::list_or_comma_separated")]
    pub kms_secret_prefixes: Vec<String>,
    /// Absolute directories whose files (or subdirectories' files) may be written.
    #[serde(deserialize_with = "values::list_or_comma_separated")]
    pub directories: Vec<String>,
}

/// Why a sink was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkRefused {
    #[error("{0} is neither a sink of [[rotation.users]] nor allowed by rotation.operator_sinks")]
    NotAllowed(String),
    #[error("{0} is inside akguard's own state or database directory")]
    Protected(String),
}

/// The delivery rules, validated.
#[derive(Debug, Clone, Default)]
pub struct SinkPolicy {
    configured: Vec<Sink>,
    kms_secret_prefixes: Vec<String>,
    directories: Vec<PathBuf>,
    /// akguard's state and database directories.
    protected: Vec<PathBuf>,
}

impl SinkPolicy {
    pub(super) fn new(
        settings: &OperatorSinkSettings,
        configured: &[(String, Sink)],
        protected: Vec<PathBuf>,
    ) -> Result<Self, ConfigError> {
        let key = "rotation.operator_sinks";
        if settings.kms_secret_prefixes.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::invalid(
                format!("{key}.kms_secret_prefixes"),
                "an empty prefix would allow every secret",
            ));
        }
        let directories = settings
            .directories
            .iter()
            .map(|d| {
                let path = PathBuf::from(d);
                if !path.is_absolute() || has_parent_step(&path) {
                    return Err(ConfigError::invalid(
                        format!("{key}.directories"),
                        format!("{d:?} must be an absolute path without `..`"),
                    ));
                }
                Ok(path)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let policy = Self {
            configured: configured.iter().map(|(_, s)| s.clone()).collect(),
            kms_secret_prefixes: settings.kms_secret_prefixes.clone(),
            directories,
            protected,
        };
        for (user, sink) in configured {
            if let Sink::File { path } = sink {
                policy.check_file(path).map_err(|e| {
                    ConfigError::invalid(format!("rotation.users.{user}.path"), e.to_string())
                })?;
            }
        }
        Ok(policy)
    }

    /// May an operator's `set-rotation` name `sink`?
    pub fn allow_operator(&self, sink: &Sink) -> Result<(), SinkRefused> {
        if let Sink::File { path } = sink {
            self.check_file(path)?;
        }
        if self.configured.contains(sink) {
            return Ok(());
        }
        let allowed = match sink {
            Sink::Kms { secret_name } => self
                .kms_secret_prefixes
                .iter()
                .any(|p| secret_name.starts_with(p.as_str())),
            Sink::File { path } => {
                let resolved = resolve(path);
                !has_parent_step(path)
                    && self
                        .directories
                        .iter()
                        .any(|d| resolved.starts_with(resolve(d)))
            }
        };
        if allowed {
            Ok(())
        } else {
            Err(SinkRefused::NotAllowed(describe(sink)))
        }
    }

    /// May akguard write a key to the file at `path`?
    pub fn check_file(&self, path: &Path) -> Result<(), SinkRefused> {
        let resolved = resolve(path);
        if self
            .protected
            .iter()
            .any(|dir| resolved.starts_with(resolve(dir)))
        {
            return Err(SinkRefused::Protected(format!("{path:?}")));
        }
        Ok(())
    }
}

fn describe(sink: &Sink) -> String {
    match sink {
        Sink::Kms { secret_name } => format!("KMS secret {secret_name:?}"),
        Sink::File { path } => format!("file {path:?}"),
    }
}

fn has_parent_step(path: &Path) -> bool {
    path.components().any(|c| c == Component::ParentDir)
}

/// `path` with symbolic links in its existing directories resolved, so a link cannot carry
/// a path out of an allowed directory or into a protected one.
fn resolve(path: &Path) -> PathBuf {
    if let Ok(real) = path.canonicalize() {
        return real;
    }
    match (path.parent(), path.file_name()) {
        (Some(parent), Some(name)) => resolve(parent).join(name),
        _ => path.to_path_buf(),
    }
}

/// The directory of a `sqlite:` database file, absolute; `None` for an in-memory database.
pub(super) fn database_directory(url: &str) -> Option<PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or(url.strip_prefix("sqlite:"))?;
    let file = rest.split('?').next().unwrap_or_default();
    if file.is_empty() || file == ":memory:" {
        return None;
    }
    let dir = Path::new(file).parent().unwrap_or(Path::new(""));
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    std::path::absolute(dir).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(dirs: &[&str], prefixes: &[&str], protected: &[&str]) -> SinkPolicy {
        let settings = OperatorSinkSettings {
            kms_secret_prefixes: prefixes.iter().map(|s| s.to_string()).collect(),
            directories: dirs.iter().map(|s| s.to_string()).collect(),
        };
        let configured = vec![(
            "ci".to_owned(),
            Sink::Kms {
                secret_name: "acme/ci/key".into(),
            },
        )];
        let protected = protected.iter().map(PathBuf::from).collect();
        SinkPolicy::new(&settings, &configured, protected).unwrap()
    }

    fn kms(name: &str) -> Sink {
        Sink::Kms {
            secret_name: name.into(),
        }
    }

    fn file(path: &str) -> Sink {
        Sink::File { path: path.into() }
    }

    #[test]
    fn an_empty_allowlist_allows_only_configured_sinks() {
        let p = policy(&[], &[], &[]);
        assert_eq!(p.allow_operator(&kms("acme/ci/key")), Ok(()));
        assert!(p.allow_operator(&kms("acme/admin/key")).is_err());
        assert!(p.allow_operator(&file("/srv/app/key.json")).is_err());
    }

    #[test]
    fn allowed_prefixes_and_directories_admit_their_sinks_only() {
        let p = policy(&["/srv/keys"], &["acme/apps/"], &[]);
        assert_eq!(p.allow_operator(&kms("acme/apps/web")), Ok(()));
        assert!(p.allow_operator(&kms("acme/admin")).is_err());
        assert_eq!(p.allow_operator(&file("/srv/keys/web.json")), Ok(()));
        assert_eq!(p.allow_operator(&file("/srv/keys/web/a.json")), Ok(()));
        assert!(p.allow_operator(&file("/srv/keys-other/a.json")).is_err());
        assert!(p.allow_operator(&file("/srv/keys/../etc/a.json")).is_err());
    }

    #[test]
    fn akguards_own_directories_are_refused_even_when_allowed() {
        let p = policy(&["/var/lib"], &[], &["/var/lib/akguard"]);
        assert_eq!(
            p.allow_operator(&file("/var/lib/akguard/akguard.db")),
            Err(SinkRefused::Protected(
                "\"/var/lib/akguard/akguard.db\"".into()
            ))
        );
        assert_eq!(p.allow_operator(&file("/var/lib/app.json")), Ok(()));
    }

    #[test]
    fn a_configured_file_sink_inside_akguards_directory_is_a_configuration_error() {
        let configured = [("ci".to_owned(), file("/var/lib/akguard/ci.json"))];
        let protected = vec![PathBuf::from("/var/lib/akguard")];
        let err =
            SinkPolicy::new(&OperatorSinkSettings::default(), &configured, protected).unwrap_err();
        assert!(err.to_string().contains("rotation.users.ci.path"), "{err}");
    }

    #[test]
    fn bad_allowlist_entries_are_rejected() {
        let configured = [];
        for settings in [
            OperatorSinkSettings {
                kms_secret_prefixes: vec![String::new()],
                directories: vec![],
            },
            OperatorSinkSettings {
                kms_secret_prefixes: vec![],
                directories: vec!["relative/dir".into()],
            },
        ] {
            assert!(SinkPolicy::new(&settings, &configured, vec![]).is_err());
        }
    }

    #[test]
    fn the_database_directory_comes_from_the_url() {
        assert_eq!(
            database_directory("sqlite:///var/lib/akguard/akguard.db?mode=rwc"),
            Some(PathBuf::from("/var/lib/akguard"))
        );
        assert_eq!(database_directory("sqlite::memory:"), None);
        let relative = database_directory("sqlite://data/akguard.db").unwrap();
        assert!(relative.is_absolute() && relative.ends_with("data"));
    }
}
