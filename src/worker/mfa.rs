//! MFA: every RAM user with console access and no MFA device must bind one at next logon;
//! the leaked key's own user must also change its password.
//!
//! The account-wide sweep is shared and runs on one replica at a time (see `sweep`): an
//! incident joins a sweep that covers it (one not yet started, or one that started after
//! the incident was opened), is parked until that sweep is done, and reports it. During a
//! burst of leaks one sweep serves them all.
//!
//! Protected users (akguard's own, `protect.users`) are skipped: their login is never changed.

use chrono::Utc;
use serde_json::json;

use super::context::{Parked, StepContext, StepError, StepResult, applied};
use super::sweep;
use crate::domain::Finding;
use crate::domain::findings::Mfa;
use crate::store::{SweepState, SweepUser, SweepUserState};

/// What was done for the leaked key's user.
#[derive(Default)]
struct Changes {
    mfa_now_required: bool,
    password_reset: bool,
}

/// Parks the incident on a sweep that covers it; once the sweep is done, reports it and
/// makes sure the leaked key's user must change its password.
pub(super) async fn run(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let store = ctx.inner.store.clone();
    let leaked_user = ctx
        .incident
        .user_name
        .clone()
        .filter(|user| ctx.inner.protection.user(user).is_none());
    let now = Utc::now();
    let joined = store
        .join_mfa_sweep(
            ctx.work.account.store_key(),
            ctx.incident.id,
            ctx.incident.created_at,
            leaked_user.as_deref(),
            now,
        )
        .await?;
    if joined.state != SweepState::Done {
        // Parked, not holding a worker: the sweep's holder wakes it when the sweep is done.
        ctx.work.sweep_wake.notify_one();
        return Ok(StepResult::parked(
            Parked::MfaSweep(joined.id),
            sweep::parked_until(now),
        ));
    }
    let users = store.mfa_sweep_users(joined.id).await?;
    let named = |outcome: &str| -> Vec<String> {
        users
            .iter()
            .filter(|u| u.outcome.as_deref() == Some(outcome))
            .map(|u| u.user_name.clone())
            .collect()
    };
    let mut finding = Mfa {
        covered_by_sweep_started_at: joined.started_at,
        users_checked: Some(users.len()),
        console_users: Some(
            users
                .iter()
                .filter(|u| {
                    matches!(
                        u.outcome.as_deref(),
                        Some("has_device" | "mfa_now_required" | "mfa_already_required")
                    )
                })
                .count(),
        ),
        mfa_now_required: Some(named("mfa_now_required")),
        mfa_already_required: Some(named("mfa_already_required")),
        password_reset_required: None,
        protected_skipped: Some(named("protected")),
        users_failed: Some(
            users
                .iter()
                .filter(|u| u.state == SweepUserState::Failed)
                .map(|u| u.user_name.clone())
                .collect(),
        ),
        dry_run: ctx.dry_run(),
    };
    // The sweep's own calls are audited account-wide; the incident names the sweep it used.
    ctx.note_row(
        "mfa.sweep",
        json!({"step": ctx.step.as_str(), "sweep": joined.id, "started_at": joined.started_at,
            "mfa_now_required": finding.mfa_now_required, "dry_run": ctx.dry_run()}),
    );
    if let Some(user) = &leaked_user {
        let row = users.iter().find(|u| &u.user_name == user);
        if covered(row) {
            finding.password_reset_required =
                row.is_some_and(|r| r.password_reset).then(|| user.clone());
        } else {
            // The sweep passed this user before the incident joined, or gave up on it.
            let changes = ensure(ctx, user).await?;
            finding.password_reset_required = changes.password_reset.then(|| user.clone());
            if changes.mfa_now_required
                && let Some(list) = finding.mfa_now_required.as_mut()
                && !list.contains(user)
            {
                list.push(user.clone());
            }
        }
    }
    Ok(StepResult::default().finding(Finding::Mfa(finding)))
}

/// Whether the sweep already settled the leaked user, new password included.
fn covered(row: Option<&SweepUser>) -> bool {
    row.is_some_and(|r| {
        r.state == SweepUserState::Done
            && (r.password_reset || matches!(r.outcome.as_deref(), Some("no_console")))
    })
}

/// Requires MFA of the leaked key's user, if it has console access and no device, and a new
/// password, changing only what is not already so.
async fn ensure(ctx: &mut StepContext<'_>, name: &str) -> Result<Changes, StepError> {
    let client = ctx.client.clone();
    let Some(profile) = ctx
        .read("GetLoginProfile", name, client.get_login_profile(name))
        .await?
    else {
        return Ok(Changes::default());
    };
    let has_device = ctx
        .read("GetUserMFAInfo", name, client.get_user_mfa_info(name))
        .await?
        .is_some();
    let want_mfa = !has_device && !profile.mfa_bind_required;
    let want_reset = !profile.password_reset_required;
    if want_mfa || want_reset {
        ctx.mutate("UpdateLoginProfile", name, || {
            applied(client.update_login_profile(
                name,
                want_mfa.then_some(true),
                want_reset.then_some(true),
            ))
        })
        .await?;
    }
    Ok(Changes {
        mfa_now_required: want_mfa,
        password_reset: true,
    })
}
