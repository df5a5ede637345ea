//! MFA: every RAM user with console access and no MFA device must bind one at next logon;
//! the leaked key's own user must also change its password.
//!
//! The account-wide sweep is shared: a sweep that started after an incident was opened
//! already covers that incident, so during a burst of leaks one sweep serves them all and
//! each later incident only handles its own user.
//!
//! Protected users (akguard's own, `protect.users`) are skipped: their login is never changed.

use chrono::Utc;

use super::context::{StepContext, StepError, StepResult, applied};
use crate::domain::Finding;
use crate::domain::findings::Mfa;

/// The start of the last completed sweep, in the store's marks.
const SWEEP_MARK: &str = "mfa_sweep_started";

/// What was done for one user.
#[derive(Default)]
struct Changes {
    console_user: bool,
    mfa_now_required: bool,
    mfa_already_required: bool,
    password_reset: bool,
}

pub(super) async fn run(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let leaked_user = ctx.incident.user_name.clone();
    // One sweep at a time in this process: those waiting are usually covered by it.
    let _sweep = ctx.inner.mfa_sweep.lock().await;
    let covered_since = ctx
        .inner
        .store
        .mark(SWEEP_MARK)
        .await?
        .and_then(|m| m.parse::<i64>().ok())
        .filter(|started| *started >= ctx.incident.created_at.timestamp_millis());
    if let Some(started) = covered_since {
        let mut finding = Mfa {
            covered_by_sweep_started_at: chrono::DateTime::from_timestamp_millis(started),
            dry_run: ctx.dry_run(),
            ..Mfa::default()
        };
        if let Some(user) = &leaked_user {
            let changes = ensure(ctx, user, true).await?;
            finding.password_reset_required = changes.password_reset.then(|| user.clone());
            finding.mfa_now_required = Some(if changes.mfa_now_required {
                vec![user.clone()]
            } else {
                vec![]
            });
        }
        return Ok(StepResult::default().finding(Finding::Mfa(finding)));
    }

    let started = Utc::now();
    let client = ctx.inner.client.clone();
    let users = ctx.read("ListUsers", "*", client.list_users()).await?;
    let (mut console_users, mut required, mut already, mut password_reset) =
        (0, Vec::new(), Vec::new(), None);
    let mut protected = Vec::new();
    for user in &users {
        let name = user.user_name.as_str();
        if ctx.inner.protection.user(name).is_some() {
            protected.push(name.to_owned());
            continue;
        }
        let changes = ensure(ctx, name, leaked_user.as_deref() == Some(name)).await?;
        console_users += usize::from(changes.console_user);
        if changes.mfa_now_required {
            required.push(name.to_owned());
        }
        if changes.mfa_already_required {
            already.push(name.to_owned());
        }
        if changes.password_reset {
            password_reset = Some(name.to_owned());
        }
    }
    if !ctx.dry_run() {
        ctx.inner
            .store
            .set_mark(SWEEP_MARK, &started.timestamp_millis().to_string())
            .await?;
    }
    let finding = Mfa {
        covered_by_sweep_started_at: None,
        users_checked: Some(users.len()),
        console_users: Some(console_users),
        mfa_now_required: Some(required),
        mfa_already_required: Some(already),
        password_reset_required: password_reset,
        protected_skipped: Some(protected),
        dry_run: ctx.dry_run(),
    };
    Ok(StepResult::default().finding(Finding::Mfa(finding)))
}

/// Requires MFA of one console user without a device (and, for the leaked key's user, a new
/// password), changing only what is not already so.
async fn ensure(ctx: &mut StepContext<'_>, name: &str, leaked: bool) -> Result<Changes, StepError> {
    let client = ctx.inner.client.clone();
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
    let want_reset = leaked && !profile.password_reset_required;
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
        console_user: true,
        mfa_now_required: want_mfa,
        mfa_already_required: !has_device && !want_mfa,
        password_reset: leaked && (want_reset || profile.password_reset_required),
    })
}
