//! What a successful create or delete call acted on: resource types and ids.

use super::ResourceChange;
use super::event::{Event, strings, text};

pub(super) const CREATE_PREFIXES: [&str; 4] = ["Create", "Run", "Allocate", "Import"];
pub(super) const DELETE_PREFIXES: [&str; 3] = ["Delete", "Release", "Remove"];

impl Event<'_> {
    /// What a successful create or delete acted on, one entry per resource type. The response
    /// names what was really made, so it wins; then ActionTrail's referenced resources; then
    /// the event's resource name; else the ids the call names after its own noun.
    pub(super) fn resource_changes(&self, verb: &str) -> Vec<ResourceChange> {
        let noun = &self.name[verb.len()..];
        let found = self
            .response_resources()
            .or_else(|| self.referenced_resources(noun))
            .or_else(|| self.named_resources())
            .unwrap_or_else(|| vec![(noun.to_owned(), self.ids_named_after(noun))]);
        found
            .into_iter()
            .map(|(kind, ids)| ResourceChange {
                event_id: self.key.clone(),
                event_name: self.name.to_owned(),
                time: self.time,
                region: self.text(&["acsRegion"]),
                kind,
                ids,
            })
            .collect()
    }

    fn response_resources(&self) -> Option<Vec<(String, Vec<String>)>> {
        let response = &self.raw["responseElements"];
        let mut found = Vec::new();
        let instances = strings(&response["InstanceIdSets"]["InstanceIdSet"]);
        if !instances.is_empty() {
            found.push(("ACS::ECS::Instance".to_owned(), instances));
        }
        let user = text(response, &["User", "UserName"])
            .or_else(|| text(response, &["User", "UserPrincipalName"]));
        if let Some(user) = user {
            found.push(("ACS::RAM::User".to_owned(), vec![user.to_owned()]));
        }
        if let Some(key) = text(response, &["AccessKey", "AccessKeyId"]) {
            found.push(("ACS::RAM::AccessKey".to_owned(), vec![key.to_owned()]));
        }
        (!found.is_empty()).then_some(found)
    }

    fn referenced_resources(&self, noun: &str) -> Option<Vec<(String, Vec<String>)>> {
        let all: Vec<(String, Vec<String>)> = self.raw["referencedResources"]
            .as_object()?
            .iter()
            .map(|(kind, ids)| (kind.clone(), strings(ids)))
            .filter(|(_, ids)| !ids.is_empty())
            .collect();
        // RunInstances also references the image and security group it used: keep the type
        // the event is named after when there is one (`Instance` for `Instances`, `EIP` for
        // `EipAddress`).
        let noun = noun.to_ascii_lowercase();
        let named: Vec<_> = all
            .iter()
            .filter(|(kind, _)| {
                let last = kind
                    .rsplit("::")
                    .next()
                    .unwrap_or(kind)
                    .to_ascii_lowercase();
                !last.is_empty() && noun.starts_with(&last)
            })
            .cloned()
            .collect();
        match (named.is_empty(), all.is_empty()) {
            (false, _) => Some(named),
            (true, false) => Some(all),
            (true, true) => None,
        }
    }

    fn named_resources(&self) -> Option<Vec<(String, Vec<String>)>> {
        let ids = strings(&self.raw["resourceName"]);
        let kind = self.text(&["resourceType"])?;
        (!ids.is_empty()).then(|| vec![(kind, ids)])
    }

    /// `InstanceId` for `DeleteInstance`, `VpcId` in the answer to `CreateVpc`.
    fn ids_named_after(&self, noun: &str) -> Vec<String> {
        let singular = noun.strip_suffix('s').unwrap_or(noun);
        for part in ["responseElements", "requestParameters"] {
            for name in [noun, singular] {
                for suffix in ["Id", "Name"] {
                    if let Some(id) = self.text(&[part, &format!("{name}{suffix}")]) {
                        return vec![id];
                    }
                }
            }
        }
        Vec::new()
    }
}

/// The prefix of `name` among `prefixes`, when a word follows it (`RunInstances`, not `Runtime`).
pub(super) fn verb_of<'p>(name: &str, prefixes: &[&'p str]) -> Option<&'p str> {
    prefixes.iter().copied().find(|prefix| {
        name.strip_prefix(prefix)
            .and_then(|rest| rest.chars().next())
            .is_some_and(|c| c.is_ascii_uppercase())
    })
}
