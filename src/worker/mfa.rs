//! MFA: every RAM user with console access and no MFA device must bind one at next logon;
//! the leaked key's own user must also change its password.

use serde_json::json;

use super::context::{StepContext, StepError, StepResult, applied};

pub(super) async fn run(ctx: &mut StepContext<'_>) -> Result<StepResult, StepError> {
    let client = ctx.inner.client.clone();
    let leaked_user = ctx.incident.user_name.clone();
    let users = ctx.read("ListUsers", "*", client.list_users()).await?;
    let mut console_users = 0;
    let mut required = Vec::new();
    let mut already = Vec::new();
    let mut password_reset = None;
    for user in &users {
        let name = user.user_name.as_str();
        let Some(profile) = ctx
            .read("GetLoginProfile", name, client.get_login_profile(name))
            .await?
        else {
            continue;
        };
        console_users += 1;
        let has_device = ctx
            .read("GetUserMFAInfo", name, client.get_user_mfa_info(name))
            .await?
            .is_some();
        let is_leaked_user = leaked_user.as_deref() == Some(name);
        let want_mfa = !has_device && !profile.mfa_bind_required;
        let want_reset = is_leaked_user && !profile.password_reset_required;
        if !want_mfa && !want_reset {
            if !has_device {
                already.push(name.to_owned());
            }
            continue;
        }
        ctx.mutate("UpdateLoginProfile", name, || {
            applied(client.update_login_profile(
                name,
                want_mfa.then_some(true),
                want_reset.then_some(true),
            ))
        })
        .await?;
        if want_mfa {
            required.push(name.to_owned());
        }
        if is_leaked_user {
            password_reset = Some(name.to_owned());
        }
    }
    let finding = json!({
        "users_checked": users.len(),
        "console_users": console_users,
        "mfa_now_required": required,
        "mfa_already_required": already,
        "password_reset_required": password_reset,
        "dry_run": ctx.dry_run(),
    });
    Ok(StepResult::default().finding("mfa", finding))
}
