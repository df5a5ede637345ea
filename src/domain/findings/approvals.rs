//! Approvals, one per step, kept in the findings as `approval_<step>` keys.

use std::fmt;

use serde::de::{IgnoredAny, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::steps::Approval;
use crate::domain::Step;

const PREFIX: &str = "approval_";

/// The approvals asked for so far, in the order they were first asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Approvals(Vec<(Step, Approval)>);

impl Approvals {
    pub fn get(&self, step: Step) -> Option<&Approval> {
        self.0.iter().find(|(s, _)| *s == step).map(|(_, a)| a)
    }

    pub fn set(&mut self, step: Step, approval: Approval) {
        match self.0.iter_mut().find(|(s, _)| *s == step) {
            Some((_, held)) => *held = approval,
            None => self.0.push((step, approval)),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = (Step, &Approval)> {
        self.0.iter().map(|(s, a)| (*s, a))
    }
}

impl Serialize for Approvals {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.0.len()))?;
        for (step, approval) in &self.0 {
            map.serialize_entry(&format!("{PREFIX}{}", step.as_str()), approval)?;
        }
        map.end()
    }
}

/// Reads the `approval_<step>` keys among the findings' other keys, which it leaves alone.
impl<'de> Deserialize<'de> for Approvals {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Keys;
        impl<'de> Visitor<'de> for Keys {
            type Value = Approvals;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("approval_<step> keys")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Approvals, M::Error> {
                let mut approvals = Approvals::default();
                while let Some(key) = map.next_key::<String>()? {
                    let Some(step) = key.strip_prefix(PREFIX).and_then(Step::parse) else {
                        map.next_value::<IgnoredAny>()?;
                        continue;
                    };
                    // `null`: an approval record the step never wrote; nothing to keep.
                    if let Some(approval) = map.next_value::<Option<Approval>>()? {
                        approvals.set(step, approval);
                    }
                }
                Ok(approvals)
            }
        }
        d.deserialize_map(Keys)
    }
}
