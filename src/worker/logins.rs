//! Console logons of the users a leaked key created. The attacker chose their passwords, and
//! `PasswordResetRequired` or `MFABindRequired` only make the attacker choose again at the
//! next logon, so the logon is switched off (IMS `UpdateLoginProfile` with `Status=Inactive`,
//! which keeps the profile so a cancel can switch it back on) and read back.

use super::context::{StepContext, StepError, applied};
use crate::cloud::api::LoginStatus;
use crate::domain::findings::{AttackerLogins, Logon, LogonState};
use crate::domain::forensics::AuditFindings;
use crate::domain::undo::Change;

/// Switches off the console logon of every user `findings` shows the key created; returns the
/// finding, folded into what earlier passes found.
pub(super) async fn disable_created(
    ctx: &mut StepContext<'_>,
    findings: &AuditFindings,
) -> Result<AttackerLogins, StepError> {
    let mut names: Vec<String> = findings
        .users_created
        .items
        .iter()
        .filter_map(|u| u.user_name.clone())
        .collect();
    names.sort();
    names.dedup();
    let earlier = ctx.incident.findings.attacker_logins.clone();
    let mut users = Vec::new();
    for name in names {
        let mut entry = disable_one(ctx, &name).await?;
        // A logon this incident switched off stays reported as switched off by it.
        let before = earlier
            .as_ref()
            .and_then(|e| e.users.iter().find(|u| u.user_name == name));
        if entry.console_logon == LogonState::AlreadyDisabled
            && before.is_some_and(|b| b.console_logon == LogonState::Disabled)
        {
            entry.console_logon = LogonState::Disabled;
        }
        users.push(entry);
    }
    Ok(AttackerLogins {
        users,
        dry_run: ctx.dry_run(),
    })
}

async fn disable_one(ctx: &mut StepContext<'_>, name: &str) -> Result<Logon, StepError> {
    let client = ctx.client.clone();
    let mut entry = Logon {
        user_name: name.to_owned(),
        console_logon: LogonState::UserDeleted,
        user_principal_name: None,
        verified: None,
    };
    let user = match ctx.read("GetUser", name, client.get_user(name)).await {
        Ok(user) => user,
        Err(StepError::Cloud(err)) if err.code() == Some("EntityNotExist.User") => {
            return Ok(entry);
        }
        Err(err) => return Err(err),
    };
    let ims_user = ctx
        .read("GetUser", &user.user_id, client.user_by_id(&user.user_id))
        .await?;
    let Some(upn) = ims_user.and_then(|u| u.user_principal_name) else {
        return Ok(entry);
    };
    entry.user_principal_name = Some(upn.clone());
    let status = ctx
        .read("GetLoginProfile", &upn, client.login_status(&upn))
        .await?;
    match status {
        None => entry.console_logon = LogonState::None,
        Some(LoginStatus::Inactive) => entry.console_logon = LogonState::AlreadyDisabled,
        Some(LoginStatus::Active) => {
            let change = Change::LoginStatus {
                user: name.to_owned(),
                user_principal_name: upn.clone(),
                from: LoginStatus::Active.as_str().to_owned(),
                to: LoginStatus::Inactive.as_str().to_owned(),
            };
            ctx.apply(change, || {
                applied(client.set_login_status(&upn, LoginStatus::Inactive))
            })
            .await?;
            if ctx.dry_run() {
                entry.console_logon = LogonState::WouldDisable;
                return Ok(entry);
            }
            let after = ctx
                .read("GetLoginProfile", &upn, client.login_status(&upn))
                .await?;
            if after != Some(LoginStatus::Inactive) {
                return Err(StepError::Unverified(format!(
                    "the console logon of {name} is still on"
                )));
            }
            entry.console_logon = LogonState::Disabled;
            entry.verified = Some(true);
        }
    }
    Ok(entry)
}

/// Switches a console logon back on (or off) for a cancel, and verifies it.
pub(super) async fn set_status(
    ctx: &mut StepContext<'_>,
    user: &str,
    upn: &str,
    wanted: LoginStatus,
) -> Result<Option<LoginStatus>, StepError> {
    let client = ctx.client.clone();
    let Some(current) = ctx
        .read("GetLoginProfile", upn, client.login_status(upn))
        .await?
    else {
        return Ok(None);
    };
    if current != wanted {
        let change = Change::LoginStatus {
            user: user.to_owned(),
            user_principal_name: upn.to_owned(),
            from: current.as_str().to_owned(),
            to: wanted.as_str().to_owned(),
        };
        ctx.apply(change, || applied(client.set_login_status(upn, wanted)))
            .await?;
        if !ctx.dry_run() {
            let after = ctx
                .read("GetLoginProfile", upn, client.login_status(upn))
                .await?;
            if after != Some(wanted) {
                return Err(StepError::Unverified(format!(
                    "the console logon of {user} is not {} yet",
                    wanted.as_str()
                )));
            }
        }
    }
    Ok(Some(current))
}
