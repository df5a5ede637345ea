//! Handing a new key to its workload's sink, and finding out afterwards (after a crash or a
//! lost answer) whether a key akguard created was already handed over.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde_json::{Value, json};

use super::context::{StepContext, StepError};
use crate::cloud::api::{Effect, NewAccessKey};
use crate::config::Sink;

/// The KMS version a key is delivered as: derived from the incident and the key, so a
/// repeated delivery stores nothing twice and a later attempt can look it up.
pub(super) fn version_id(ctx: &StepContext<'_>, access_key_id: &str) -> String {
    format!("akguard-{}-{access_key_id}", ctx.incident.id)
}

/// Refuses, before any key exists, a file sink akguard must not write: inside its own
/// directories, or a symbolic link.
pub(super) fn check_sink(ctx: &StepContext<'_>, sink: &Sink) -> Result<(), StepError> {
    let Sink::File { path } = sink else {
        return Ok(());
    };
    ctx.inner
        .config
        .sinks
        .check_file(path)
        .map_err(|e| StepError::Refused(e.to_string()))?;
    refuse_link(path).map_err(|e| StepError::Refused(format!("{}: {e}", path.display())))
}

/// Hands the new key to the workload; the KMS version id when the sink is a secret.
pub(super) async fn deliver(
    ctx: &mut StepContext<'_>,
    sink: &Sink,
    key: &NewAccessKey,
) -> Result<Option<String>, StepError> {
    let payload = SecretString::from(
        json!({"AccessKeyId": key.access_key_id, "AccessKeySecret": key.secret.expose_secret()})
            .to_string(),
    );
    match sink {
        Sink::Kms { secret_name } => {
            let version = version_id(ctx, &key.access_key_id);
            let client = ctx.client.clone();
            ctx.mutate("PutSecretValue", secret_name, || async {
                let called = client
                    .put_secret_value(secret_name, &version, &payload)
                    .await?;
                Ok(called.map(|_| Effect::Applied))
            })
            .await?;
            Ok(Some(version))
        }
        Sink::File { path } => {
            ctx.inner
                .config
                .sinks
                .check_file(path)
                .map_err(|e| StepError::Refused(e.to_string()))?;
            write_private(path, payload.expose_secret().as_bytes()).map_err(|e| {
                StepError::Unverified(format!("cannot write {}: {e}", path.display()))
            })?;
            #[cfg(feature = "fault-injection")]
            ctx.crash_point("FileSinkWrite");
            let detail = json!({"step": ctx.step.as_str(), "sink": "file", "path": path, "access_key_id": key.access_key_id});
            ctx.write(vec![crate::domain::AuditEntry {
                incident_id: Some(ctx.incident.id),
                actor: format!("worker:{}", ctx.lease.owner),
                action: "key.delivered".into(),
                detail,
            }])
            .await?;
            Ok(None)
        }
    }
}

/// Whether `access_key_id` already sits in the sink: its KMS version exists and holds it, or
/// the file holds it.
pub(super) async fn was_delivered(
    ctx: &mut StepContext<'_>,
    sink: &Sink,
    access_key_id: &str,
) -> Result<bool, StepError> {
    match sink {
        Sink::Kms { secret_name } => {
            let version = version_id(ctx, access_key_id);
            let client = ctx.client.clone();
            let stored = ctx
                .read(
                    "GetSecretValue",
                    secret_name,
                    client.secret_access_key_id(secret_name, &version),
                )
                .await?;
            Ok(stored.as_deref() == Some(access_key_id))
        }
        Sink::File { path } => {
            let stored = match read_sink_file(path) {
                Ok(stored) => stored,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
                Err(e) => {
                    return Err(StepError::Unverified(format!(
                        "cannot read {}: {e}",
                        path.display()
                    )));
                }
            };
            Ok(stored["AccessKeyId"].as_str() == Some(access_key_id))
        }
    }
}

fn read_sink_file(path: &Path) -> std::io::Result<Value> {
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut file, &mut text)?;
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Replaces the file at `path` with `bytes`, readable by the owner only, atomically: a fresh
/// file of a random name is created beside it (never through a link, never over an existing
/// file), made 0600 whatever the umask, synced, renamed over `path`, and the directory synced.
/// A symbolic link at `path` is refused rather than replaced or followed.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(Error::new(ErrorKind::InvalidInput, "not a file path"));
    };
    refuse_link(path)?;
    let tmp = dir.join(format!(
        ".{}.akguard-{}",
        name.to_string_lossy(),
        crate::cloud::sign::fresh_nonce()
    ));
    let written = (|| {
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)?;
        file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

fn refuse_link(path: &Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Err(Error::new(
            ErrorKind::PermissionDenied,
            "the path is a symbolic link; refusing to write through it",
        )),
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_with_owner_only_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, "old").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        write_private(&path, b"{\"AccessKeyId\":\"LTAI\"}").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"AccessKeyId\":\"LTAI\"}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file is left behind");
    }

    #[test]
    fn a_symbolic_link_at_the_path_is_refused_and_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, "precious").unwrap();
        let path = dir.path().join("key.json");
        std::os::unix::fs::symlink(&target, &path).unwrap();
        let err = write_private(&path, b"secret").unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(std::fs::read(&target).unwrap(), b"precious");
        assert!(
            std::fs::symlink_metadata(&path)
                .unwrap()
                .file_type()
                .is_symlink()
        );
    }
}
