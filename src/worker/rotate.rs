//! Rotation: a new key created and handed to the workload in the same step, then the wait
//! until the workload uses it and no longer the leaked one.
//!
//! The new secret exists only in memory between `CreateAccessKey` and delivery. A retried step
//! that finds a key it created (after the recorded intent) first asks the sink whether that
//! key was delivered: if so it carries on with it, since the workload may already use it;
//! if not, the secret is lost, so it deletes the key and creates another.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::context::{StepContext, StepError, StepResult, applied};
use super::deliver::{check_sink, deliver, version_id, was_delivered};
use crate::cloud::api::{Effect, KeyStatus, NewAccessKey};
use crate::cloud::ratelimit::Priority;
use crate::config::Sink;
use crate::domain::findings::{Cutover, Rotation, RotationSink};
use crate::domain::undo::Change;
use crate::domain::{Finding, FindingsPatch, Reason};
use crate::store::{IncidentUpdate, ScheduleChange};

/// A zero poll interval (rehearsals, tests) still leaves the cloud a breath between reads.
const MIN_POLL: Duration = Duration::from_millis(200);

pub(super) async fn create_and_deliver(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let user = ctx.user()?.to_owned();
    let leaked = ctx.incident.access_key_id.as_str().to_owned();
    let sink = match configured_sink(ctx, &user) {
        Some(sink) => sink,
        None => {
            let sink = operator_sink(ctx).ok_or_else(|| {
                StepError::Unverified(format!(
                    "no sink for {user}: [[rotation.users]] or set-rotation"
                ))
            })?;
            // The allowlist may have narrowed since the operator chose this sink.
            ctx.inner
                .config
                .sinks
                .allow_operator(&sink)
                .map_err(|e| StepError::Refused(e.to_string()))?;
            sink
        }
    };
    check_sink(ctx, &sink)?;
    let client = ctx.client.clone();
    let intent_at = ctx
        .incident
        .findings
        .rotation
        .as_ref()
        .and_then(|r| r.create_intent_at);
    let keys = ctx
        .read("ListAccessKeys", &user, client.list_access_keys(&user))
        .await?;
    for other in keys.iter().filter(|k| k.access_key_id != leaked) {
        let ours = match (intent_at, other.create_date) {
            // Creation dates have whole seconds.
            (Some(intent), Some(created)) => created >= intent - chrono::Duration::seconds(1),
            _ => false,
        };
        if !ours {
            if other.status == KeyStatus::Inactive && is_unused(ctx, &other.access_key_id).await? {
                // A disabled key nobody uses only blocks the new one: delete it first.
                let id = other.access_key_id.clone();
                ctx.mutate("DeleteAccessKey", &id, || {
                    client.delete_access_key(&user, &id)
                })
                .await?;
                continue;
            }
            let appeared_after = other
                .create_date
                .is_some_and(|c| c > ctx.incident.detected_at);
            let mut finding = Rotation {
                other_key: Some(other.access_key_id.clone()),
                other_key_created: other.create_date,
                other_key_status: Some(format!("{:?}", other.status)),
                appeared_after_detection: Some(appeared_after),
                ..Rotation::default()
            };
            if appeared_after
                && other.status == KeyStatus::Active
                && ctx.inner.config.disable_unknown_keys
            {
                // Possibly the attacker's way back in: shut it now, let a person decide the rest.
                let id = other.access_key_id.clone();
                let change = Change::KeyStatus {
                    user: user.clone(),
                    access_key_id: id.clone(),
                    from: KeyStatus::Active.as_str().to_owned(),
                    to: KeyStatus::Inactive.as_str().to_owned(),
                };
                ctx.apply(change, || {
                    applied(client.update_access_key(&user, &id, KeyStatus::Inactive))
                })
                .await?;
                finding.other_key_disabled = Some(true);
            }
            return Ok(StepResult::halted(Reason::SecondKey).finding(Finding::Rotation(finding)));
        }
        // Ours, from an attempt cut short by a crash or a lost answer.
        let id = other.access_key_id.clone();
        if was_delivered(ctx, &sink, &id).await? {
            // Delivered: the workload may hold it already, so it is the new key.
            let version = matches!(sink, Sink::Kms { .. }).then(|| version_id(ctx, &id));
            let finding = Rotation {
                create_intent_at: intent_at,
                new_access_key_id: Some(id),
                sink: Some(describe(&sink)),
                secret_version: version,
                delivered_at: Some(Utc::now()),
                recovered_after_interruption: Some(true),
                ..Rotation::default()
            };
            return Ok(StepResult::default().finding(Finding::Rotation(finding)));
        }
        // Never delivered: its secret is gone.
        ctx.mutate("DeleteAccessKey", &id, || {
            client.delete_access_key(&user, &id)
        })
        .await?;
    }
    // The intent is durable before the key exists, so a retry can recognize a lost key.
    let now = Utc::now();
    if !ctx.dry_run() {
        let intent = Rotation {
            create_intent_at: Some(now),
            sink: Some(describe(&sink)),
            ..Rotation::default()
        };
        let update = IncidentUpdate {
            findings: FindingsPatch::one(Finding::Rotation(intent)),
            ..IncidentUpdate::default()
        };
        ctx.inner
            .store
            .record(ctx.lease, update, ScheduleChange::default(), Vec::new())
            .await?;
    }
    let Some(created) = create(ctx, &user).await? else {
        // A dry run recorded the call it would have made; there is no key to deliver.
        let dry = Rotation {
            dry_run: Some(true),
            sink: Some(describe(&sink)),
            ..Rotation::default()
        };
        return Ok(StepResult::default().finding(Finding::Rotation(dry)));
    };
    let version = deliver(ctx, &sink, &created).await?;
    let finding = Rotation {
        create_intent_at: Some(now),
        new_access_key_id: Some(created.access_key_id.clone()),
        sink: Some(describe(&sink)),
        secret_version: version,
        delivered_at: Some(Utc::now()),
        ..Rotation::default()
    };
    Ok(StepResult::default().finding(Finding::Rotation(finding)))
}

/// `CreateAccessKey` with its intent and result in the audit log (the new key's id only);
/// `None` in a dry run.
async fn create(ctx: &mut StepContext<'_>, user: &str) -> Result<Option<NewAccessKey>, StepError> {
    let client = ctx.client.clone();
    let mut created = None;
    ctx.mutate("CreateAccessKey", user, || async {
        let called = client.create_access_key(user).await?;
        let request_id = called.request_id.clone();
        created = Some(called.value);
        Ok(crate::cloud::Called {
            request_id,
            value: Effect::Applied,
        })
    })
    .await?
    .map(|_| created.ok_or_else(|| StepError::Unverified("CreateAccessKey returned no key".into())))
    .transpose()
}

/// Never used, or not used within `triage.in_use_window`.
async fn is_unused(ctx: &mut StepContext<'_>, key: &str) -> Result<bool, StepError> {
    let principal = ctx
        .incident
        .findings
        .user_principal_name()
        .map(str::to_owned);
    let used = last_used(ctx, key, principal.as_deref()).await?;
    let window =
        chrono::Duration::from_std(ctx.inner.config.in_use_window).unwrap_or(chrono::Duration::MAX);
    Ok(used.is_none_or(|t| Utc::now() - t > window))
}

fn configured_sink(ctx: &StepContext<'_>, user: &str) -> Option<Sink> {
    ctx.inner
        .config
        .rotation
        .iter()
        .find(|(u, _)| u == user)
        .map(|(_, sink)| sink.clone())
}

/// The sink an operator gave with `set-rotation`.
fn operator_sink(ctx: &StepContext<'_>) -> Option<Sink> {
    Some(match ctx.incident.findings.rotation_sink.clone()? {
        RotationSink::Kms { secret_name } => Sink::Kms { secret_name },
        RotationSink::File { path } => Sink::File { path: path.into() },
    })
}

/// The sink as the findings record it.
fn describe(sink: &Sink) -> RotationSink {
    match sink {
        Sink::Kms { secret_name } => RotationSink::Kms {
            secret_name: secret_name.clone(),
        },
        Sink::File { path } => RotationSink::File {
            path: path.to_string_lossy().into_owned(),
        },
    }
}

/// Proceeds once the new key was used after delivery and the old one has been quiet for
/// `rotation.quiet_period`; otherwise looks again after `rotation.poll_interval`.
pub(super) async fn await_cutover(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let rotation = ctx.incident.findings.rotation.clone().unwrap_or_default();
    // No new key: a dry run, or a key a person rotated and confirmed; only the old key's
    // disuse is left to verify.
    let new_key = rotation.new_access_key_id;
    let delivered_at = rotation.delivered_at;
    let principal = ctx
        .incident
        .findings
        .user_principal_name()
        .map(str::to_owned);
    let old_key = ctx.incident.access_key_id.as_str().to_owned();
    let new_used = match &new_key {
        Some(key) => last_used(ctx, key, principal.as_deref()).await?,
        None => None,
    };
    let old_used = last_used(ctx, &old_key, principal.as_deref()).await?;
    let now = Utc::now();
    let quiet = chrono::Duration::from_std(ctx.inner.config.quiet_period).unwrap_or_default();
    // Last-used times have whole seconds: a use in the second of delivery counts.
    let moved = new_key.is_none()
        || new_used
            .is_some_and(|t| delivered_at.is_none_or(|d| t >= d - chrono::Duration::seconds(1)));
    let old_quiet = old_used.is_none_or(|t| now - t >= quiet);
    let finding = Finding::Cutover(Cutover {
        new_key_last_used: new_used,
        old_key_last_used: old_used,
        new_key_in_use: moved,
        old_key_quiet: old_quiet,
        checked_at: now,
    });
    if moved && old_quiet {
        return Ok(StepResult::default().finding(finding));
    }
    let wait = ctx.inner.config.cutover_poll.max(MIN_POLL);
    Ok(
        StepResult::wait_until(now + chrono::Duration::from_std(wait).unwrap_or_default())
            .finding(finding),
    )
}

async fn last_used(
    ctx: &mut StepContext<'_>,
    key: &str,
    principal: Option<&str>,
) -> Result<Option<DateTime<Utc>>, StepError> {
    let client = ctx.client.clone();
    match principal {
        Some(upn) => {
            ctx.read(
                "GetAccessKeyLastUsed",
                key,
                client.access_key_last_used(key, upn),
            )
            .await
        }
        None => Ok(ctx
            .read(
                "GetAccessKeyLastUsedInfo",
                key,
                client.access_key_last_used_info(key, Priority::Forensics),
            )
            .await?
            .used_at),
    }
}
