//! What containment rests on, for a person: the network fence beside the Deny policy, and
//! what Alibaba's own restrictive protection already refused and what it leaves open.

use crate::domain::Incident;
use crate::domain::findings::Verified;

/// Which networks the key is limited to now (or would be, in a dry run), or why it is not.
pub(super) fn fence_note(incident: &Incident) -> Option<String> {
    if !incident.state.is_open() {
        return None;
    }
    let fence = incident.findings.fence.as_ref()?;
    if let Some(why) = &fence.not_fenced {
        return Some(format!(
            "The key is not network-fenced ({why}); the Deny policy is its containment."
        ));
    }
    let networks = fence.networks.as_ref()?.describe();
    Some(match fence.verified {
        Some(Verified::Yes) => format!(
            "Besides the Deny policy, the key is now limited to calls from {networks} (its \
             network access policy, read back): calls from anywhere else are refused, while \
             the workload goes on until the key is rotated. A cancel restores the previous \
             policy."
        ),
        _ => format!(
            "Besides the Deny policy, the key would be limited to calls from {networks} (its \
             network access policy)."
        ),
    })
}

/// What Alibaba's restrictive protection refused, against what the key's calls achieved.
pub(super) fn protection_note(incident: &Incident) -> Option<String> {
    if !incident.state.is_open() {
        return None;
    }
    let audit = incident.findings.audit.as_ref()?;
    let refused = audit.refused_by_leak_protection.total();
    if refused == 0 {
        return None;
    }
    let mut names: Vec<&str> = audit
        .refused_by_leak_protection
        .items
        .iter()
        .map(|e| e.name.as_str())
        .collect();
    names.sort_unstable();
    names.dedup();
    Some(format!(
        "Alibaba's restrictive protection already refused {refused} of the key's calls ({}): \
         it blocks RAM, IMS and high-risk ECS actions only, and cannot be lifted. It leaves \
         every other API open to the attacker: {} calls with the key succeeded. Rotating or \
         deleting the key is what ends it.",
        names.join(", "),
        audit.succeeded
    ))
}
