//! The audit chain: every row hashes its content and its predecessor's hash, so an edited,
//! removed or reordered row breaks the chain where it happened.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::incident::IncidentId;

mod walk;

pub use walk::{AuditHead, ChainFault, ChainReport, ChainWalk};

/// The `prev_hash` of the first row.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An audit event about to be appended.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    pub incident_id: Option<IncidentId>,
    pub actor: String,
    pub action: String,
    pub detail: serde_json::Value,
}

/// An audit row as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub id: i64,
    pub incident_id: Option<IncidentId>,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    /// The detail exactly as stored (JSON text), since the hash covers these bytes.
    #[serde(skip)]
    pub detail_json: String,
    pub prev_hash: String,
    pub hash: String,
}

impl AuditRecord {
    pub fn detail(&self) -> serde_json::Value {
        serde_json::from_str(&self.detail_json).unwrap_or(serde_json::Value::Null)
    }
}

/// The hash of one row, given its predecessor's.
pub fn chain_hash(
    prev_hash: &str,
    id: i64,
    incident_id: Option<IncidentId>,
    at: DateTime<Utc>,
    actor: &str,
    action: &str,
    detail_json: &str,
) -> String {
    // A JSON array is an unambiguous encoding: no field can bleed into the next.
    let content = serde_json::json!([
        prev_hash,
        id,
        incident_id.map(|i| i.0),
        at.timestamp_millis(),
        actor,
        action,
        detail_json
    ]);
    hex::encode(Sha256::digest(content.to_string().as_bytes()))
}

/// Where and why the chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain broken at row {id}: {reason}")]
pub struct ChainBreak {
    pub id: i64,
    pub reason: &'static str,
}

/// Checks one row against its predecessor's hash and its own content.
fn check_row(prev_hash: &str, row: &AuditRecord) -> Result<(), ChainBreak> {
    if row.prev_hash != prev_hash {
        return Err(ChainBreak {
            id: row.id,
            reason: "prev_hash does not match the previous row (a row was removed or reordered)",
        });
    }
    let expected = chain_hash(
        &row.prev_hash,
        row.id,
        row.incident_id,
        row.at,
        &row.actor,
        &row.action,
        &row.detail_json,
    );
    if row.hash != expected {
        return Err(ChainBreak {
            id: row.id,
            reason: "content does not match its hash (the row was edited)",
        });
    }
    Ok(())
}

/// Checks rows in id order, continuing from `prev_hash`; returns the last hash seen.
pub fn verify_rows<'a>(
    mut prev_hash: String,
    rows: impl IntoIterator<Item = &'a AuditRecord>,
) -> Result<String, ChainBreak> {
    for row in rows {
        check_row(&prev_hash, row)?;
        prev_hash = row.hash.clone();
    }
    Ok(prev_hash)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(super) fn chain(n: i64) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        (1..=n)
            .map(|id| {
                let at = DateTime::from_timestamp_millis(1_700_000_000_000 + id).unwrap();
                let detail_json = format!("{{\"n\":{id}}}");
                let hash = chain_hash(
                    &prev,
                    id,
                    Some(IncidentId(7)),
                    at,
                    "test",
                    "did",
                    &detail_json,
                );
                let row = AuditRecord {
                    id,
                    incident_id: Some(IncidentId(7)),
                    at,
                    actor: "test".into(),
                    action: "did".into(),
                    detail_json,
                    prev_hash: prev.clone(),
                    hash: hash.clone(),
                };
                prev = hash;
                row
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let rows = chain(5);
        assert_eq!(
            verify_rows(GENESIS_HASH.into(), &rows).unwrap(),
            rows[4].hash
        );
    }

    #[test]
    fn an_edited_row_is_caught() {
        let mut rows = chain(5);
        rows[2].actor = "someone else".into();
        assert_eq!(verify_rows(GENESIS_HASH.into(), &rows).unwrap_err().id, 3);
    }

    #[test]
    fn a_removed_row_is_caught() {
        let mut rows = chain(5);
        rows.remove(1);
        assert_eq!(verify_rows(GENESIS_HASH.into(), &rows).unwrap_err().id, 3);
    }
}
