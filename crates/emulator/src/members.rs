//! Member accounts (a resource directory's): each a scenario of its own whose state no other
//! account sees. A request is answered by the account that holds the key that signed it; a
//! member's roles trust the home account, whose identity assumes them with STS `AssumeRole`,
//! and the credentials issued are valid in that member only.

use super::scenario::{Role, Scenario};
use super::state::Inner;

/// The member a request was handed to, to be put back after it was answered.
pub(crate) struct Entered {
    index: usize,
    others: Vec<Scenario>,
}

impl Scenario {
    /// Whether `key_id` signs for this account: one of its keys, or credentials it issued.
    fn holds_key(&self, key_id: &str) -> bool {
        self.find_key(key_id).is_some()
            || self
                .temporary_credentials
                .iter()
                .any(|c| c.access_key_id == key_id)
    }

    /// The member whose uid is `uid`.
    pub(crate) fn member(&self, uid: &str) -> Option<&Scenario> {
        self.members.iter().find(|m| m.account.uid == uid)
    }

    /// A member's role `arn`, and that member, for an `AssumeRole` from the home account.
    pub(crate) fn member_role_mut(&mut self, arn: &str) -> Option<(&mut Scenario, Role)> {
        self.members.iter_mut().find_map(|m| {
            let role = super::sts::find_role(m, arn)?.clone();
            Some((m, role))
        })
    }
}

/// Makes the member holding `key_id` the world the request sees; `None` leaves the home
/// account in place (its keys, and keys nobody holds, which it then refuses).
pub(crate) fn enter(inner: &mut Inner, key_id: Option<&str>) -> Option<Entered> {
    let key_id = key_id?;
    if inner.world.holds_key(key_id) {
        return None;
    }
    let index = inner
        .world
        .members
        .iter()
        .position(|m| m.holds_key(key_id))?;
    let mut others = std::mem::take(&mut inner.world.members);
    std::mem::swap(&mut inner.world, &mut others[index]);
    Some(Entered { index, others })
}

/// Puts the home account back after [`enter`].
pub(crate) fn leave(inner: &mut Inner, entered: Option<Entered>) {
    let Some(Entered { index, mut others }) = entered else {
        return;
    };
    std::mem::swap(&mut inner.world, &mut others[index]);
    inner.world.members = others;
}
