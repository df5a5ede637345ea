//! `Capped<T>`: a list kept to its earliest entries, with a count of the ones left out, so a
//! noisy key cannot bloat the incident row.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::MAX_LISTED;

/// A list kept to its earliest `MAX_LISTED` entries; `truncated` counts the ones left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capped<T> {
    pub items: Vec<T>,
    pub truncated: u64,
}

impl<T> Default for Capped<T> {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            truncated: 0,
        }
    }
}

impl<T> Capped<T> {
    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    /// Entries listed plus entries left out.
    pub fn total(&self) -> u64 {
        self.items.len() as u64 + self.truncated
    }
}

/// The earliest `MAX_LISTED` of `entries`, each once.
pub(super) fn capped<T: Listed>(mut entries: Vec<T>) -> Capped<T> {
    entries.sort_by(|a, b| a.order().cmp(&b.order()));
    entries.dedup_by(|a, b| a.order() == b.order());
    let truncated = entries.len().saturating_sub(MAX_LISTED) as u64;
    entries.truncate(MAX_LISTED);
    Capped {
        items: entries,
        truncated,
    }
}

/// How list entries are ordered and told apart: by time (undated last), then event.
pub(super) trait Listed {
    fn order(&self) -> (bool, Option<DateTime<Utc>>, &str, &str);
}
