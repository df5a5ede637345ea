//! Self-protection: akguard learns its own identity before it acts, and refuses any change
//! to a protected identity (its own, or one in `protect.*`) wherever a step would make one.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::context::{StepContext, StepError, StepResult};
use crate::cloud::{CloudClient, CloudError};
use crate::config::RemediationConfig;
use crate::domain::findings::ProtectedStop;
use crate::domain::{Finding, Protected, Protection, Reason};

/// The longest wait between two attempts to learn the identity.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(60);

/// Asks STS who akguard is, retrying until it answers: until then no step runs, since any
/// step might act on akguard's own user. `None` when shutdown came first.
pub(super) async fn learn(
    client: &CloudClient,
    config: &RemediationConfig,
    account: &std::sync::OnceLock<String>,
    shutdown: &CancellationToken,
) -> Option<Protection> {
    let listed = Protection::listed(
        config.protect_users.iter().cloned(),
        config.protect_access_key_ids.iter().cloned(),
    );
    let mut delay = Duration::from_secs(1);
    loop {
        let learned = async {
            let identity = client.caller_identity().await?.value;
            let keys = client.own_access_key_ids().await?;
            Ok::<_, CloudError>((identity, keys))
        };
        let failure = tokio::select! {
            () = shutdown.cancelled() => return None,
            learned = learned => match learned {
                Ok((identity, keys)) => {
                    let user = identity.user_name().map(str::to_owned);
                    if let Some(id) = &identity.account_id {
                        // Set once: the replica's heartbeat names it for the others.
                        let _ = account.set(id.clone());
                    }
                    tracing::info!(
                        arn = identity.arn.as_deref().unwrap_or_default(),
                        identity_type = identity.identity_type.as_deref().unwrap_or_default(),
                        protected_users = config.protect_users.len(),
                        protected_access_key_ids = config.protect_access_key_ids.len(),
                        "akguard's own identity is known and protected"
                    );
                    return Some(listed.with_own(user, keys));
                }
                Err(err) => err,
            },
        };
        tracing::error!(
            error = %failure,
            retry_in_secs = delay.as_secs(),
            "cannot learn akguard's own identity (STS GetCallerIdentity); no incident is \
             remediated until it is known, notifications are still recorded"
        );
        tokio::select! {
            () = shutdown.cancelled() => return None,
            () = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(MAX_RETRY_DELAY);
    }
}

/// Whether the incident's key is protected: listed, akguard's own at start, or the one
/// akguard signs with now (temporary credentials change).
pub(super) async fn key_protection(ctx: &StepContext<'_>) -> Result<Option<Protected>, StepError> {
    let key = ctx.incident.access_key_id.as_str();
    if let Some(found) = ctx.inner.protection.key(key) {
        return Ok(Some(found));
    }
    let own = ctx.client.own_access_key_ids().await?;
    Ok(own.iter().any(|k| k == key).then_some(Protected::Own))
}

/// What the stop names besides the key: the protected user, or the change refused.
#[derive(Default)]
pub(super) struct Named {
    pub user_name: Option<String>,
    pub refused_change_to: Option<String>,
}

/// The verdict for an incident about a protected identity: no change, a person now.
pub(super) fn stop(ctx: &StepContext<'_>, why: Protected, named: Named) -> StepResult {
    let own = why == Protected::Own;
    tracing::error!(
        incident.id = ctx.incident.id.0,
        access_key_id = %ctx.incident.access_key_id,
        step = ctx.step.as_str(),
        own_credentials = own,
        "the incident concerns a protected identity; akguard makes no change, a person must act now"
    );
    let finding = ProtectedStop {
        access_key_id: ctx.incident.access_key_id.clone(),
        own_credentials: own,
        listed: !own,
        step: ctx.step,
        user_name: named.user_name,
        refused_change_to: named.refused_change_to,
    };
    StepResult::halted(Reason::ProtectedIdentity).finding(Finding::Protected(finding))
}

/// The last line of defence, checked before every mutating call: a change that names a
/// protected user or key, or any change in an incident about one, is refused.
pub(super) fn guard(ctx: &StepContext<'_>, target: &str) -> Result<(), StepError> {
    let p = &ctx.inner.protection;
    let incident = ctx.incident;
    let hit = p
        .covers(target)
        .or_else(|| p.key(incident.access_key_id.as_str()))
        .or_else(|| incident.user_name.as_deref().and_then(|u| p.user(u)));
    match hit {
        Some(why) => Err(StepError::Protected {
            target: target.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}
