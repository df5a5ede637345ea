//! Walking the audit chain against its anchor: the hash links catch an edited or removed
//! row, the anchor catches a removed tail, and an expected head recorded elsewhere catches
//! a rewrite of every hash.

use serde::Serialize;

use super::{AuditRecord, ChainBreak, GENESIS_HASH, check_row};

/// The anchored head of the chain: the last row's id and hash and how many rows lead to it.
/// The store moves it in the same transaction as every append.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditHead {
    pub last_id: i64,
    pub hash: String,
    pub rows: u64,
}

/// One reason the audit log cannot be trusted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error(transparent)]
    Broken(#[from] ChainBreak),
    #[error("tail removed: expected {} rows/head {}, found {found}", .expected.rows, .expected.hash)]
    TailRemoved { expected: AuditHead, found: u64 },
    #[error("the audit anchor is missing (a database not yet migrated, or its anchor removed)")]
    AnchorMissing,
    #[error("rows {first} to {last} were appended without moving the anchor")]
    Unanchored { first: i64, last: i64 },
    #[error("append-only triggers missing: {}", .0.join(", "))]
    MissingGuards(Vec<String>),
    #[error("the expected head {0} is not in the chain (a rewritten chain, or another database)")]
    ExpectedHeadNotFound(String),
}

/// What a walk found: the rows and last hash present, and every fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainReport {
    pub rows: u64,
    pub head: String,
    pub faults: Vec<ChainFault>,
}

impl ChainReport {
    pub fn is_intact(&self) -> bool {
        self.faults.is_empty()
    }

    /// The faults in one line, or `None` when intact.
    pub fn reason(&self) -> Option<String> {
        (!self.is_intact()).then(|| {
            self.faults
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        })
    }
}

/// `verify-audit`'s output: the one line of an intact chain, or one line per fault.
impl std::fmt::Display for ChainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_intact() {
            return write!(
                f,
                "audit chain intact: {} rows, head {}",
                self.rows, self.head
            );
        }
        let lines: Vec<String> = self.faults.iter().map(ToString::to_string).collect();
        f.write_str(&lines.join("\n"))
    }
}

/// Checks the rows page by page, in id order, against the anchor read before the first page.
#[derive(Debug)]
pub struct ChainWalk {
    anchor: Option<AuditHead>,
    expect_head: Option<String>,
    head: String,
    rows: u64,
    last_id: i64,
    /// Only the first break is reported: every later row is off the chain anyway.
    first_fault: Option<ChainFault>,
    anchor_seen: bool,
    expected_seen: bool,
}

impl ChainWalk {
    pub fn new(anchor: Option<AuditHead>, expect_head: Option<&str>) -> Self {
        Self {
            anchor,
            expect_head: expect_head.map(|h| h.trim().to_ascii_lowercase()),
            head: GENESIS_HASH.to_owned(),
            rows: 0,
            last_id: 0,
            first_fault: None,
            anchor_seen: false,
            expected_seen: false,
        }
    }

    pub fn feed<'a>(&mut self, rows: impl IntoIterator<Item = &'a AuditRecord>) {
        for row in rows {
            self.rows += 1;
            if self.first_fault.is_none() {
                self.first_fault = self.check(row).err().map(ChainFault::from);
            }
            if self.expect_head.as_deref() == Some(row.hash.as_str()) {
                self.expected_seen = true;
            }
            self.last_id = row.id;
            self.head.clone_from(&row.hash);
        }
    }

    fn check(&mut self, row: &AuditRecord) -> Result<(), ChainBreak> {
        check_row(&self.head, row)?;
        let Some(anchor) = self.anchor.as_ref().filter(|a| a.last_id == row.id) else {
            return Ok(());
        };
        self.anchor_seen = true;
        if anchor.hash != row.hash {
            return Err(ChainBreak {
                id: row.id,
                reason: "its hash differs from the anchored head (the chain was rewritten)",
            });
        }
        if anchor.rows != self.rows {
            return Err(ChainBreak {
                id: row.id,
                reason: "the anchor counts another number of rows up to it (rows were removed)",
            });
        }
        Ok(())
    }

    /// The verdict. `anchor_now` is the anchor read again after the last page: rows past the
    /// first anchor are fine if they are appends that moved it meanwhile.
    pub fn finish(
        self,
        anchor_now: Option<&AuditHead>,
        missing_guards: Vec<String>,
    ) -> ChainReport {
        let mut faults: Vec<ChainFault> = self.first_fault.into_iter().collect();
        if faults.is_empty() {
            match (&self.anchor, anchor_now) {
                (Some(anchor), _) if anchor.rows > 0 && !self.anchor_seen => {
                    faults.push(ChainFault::TailRemoved {
                        expected: anchor.clone(),
                        found: self.rows,
                    });
                }
                (Some(_), Some(now)) if self.last_id > now.last_id => {
                    faults.push(ChainFault::Unanchored {
                        first: now.last_id + 1,
                        last: self.last_id,
                    });
                }
                (None, _) | (_, None) => faults.push(ChainFault::AnchorMissing),
                _ => {}
            }
        }
        if let Some(expected) = self.expect_head.filter(|_| !self.expected_seen) {
            faults.push(ChainFault::ExpectedHeadNotFound(expected));
        }
        if !missing_guards.is_empty() {
            faults.push(ChainFault::MissingGuards(missing_guards));
        }
        ChainReport {
            rows: self.rows,
            head: self.head,
            faults,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::chain;
    use super::*;

    fn head_of(rows: &[AuditRecord]) -> AuditHead {
        AuditHead {
            last_id: rows.last().map_or(0, |r| r.id),
            hash: rows
                .last()
                .map_or(GENESIS_HASH.to_owned(), |r| r.hash.clone()),
            rows: rows.len() as u64,
        }
    }

    fn walk(rows: &[AuditRecord], anchor: &AuditHead, expect: Option<&str>) -> ChainReport {
        let mut walk = ChainWalk::new(Some(anchor.clone()), expect);
        walk.feed(rows);
        walk.finish(Some(anchor), Vec::new())
    }

    #[test]
    fn an_anchored_chain_is_intact_with_its_head() {
        let rows = chain(5);
        let report = walk(&rows, &head_of(&rows), Some(&rows[2].hash.to_uppercase()));
        assert!(report.is_intact(), "{report:?}");
        assert_eq!((report.rows, report.head), (5, rows[4].hash.clone()));
    }

    #[test]
    fn an_empty_chain_with_an_empty_anchor_is_intact() {
        let report = walk(&[], &head_of(&[]), None);
        assert!(report.is_intact());
        assert_eq!(report.head, GENESIS_HASH);
    }

    #[test]
    fn a_removed_tail_is_reported_against_the_anchor() {
        let rows = chain(6);
        let anchor = head_of(&rows);
        for kept in [5, 3, 0] {
            let report = walk(&rows[..kept], &anchor, None);
            assert_eq!(
                report.reason().unwrap(),
                format!(
                    "tail removed: expected 6 rows/head {}, found {kept}",
                    anchor.hash
                )
            );
        }
    }

    #[test]
    fn a_rewritten_anchor_row_is_a_break_at_that_row() {
        let rows = chain(4);
        let mut anchor = head_of(&rows);
        anchor.hash = "ab".repeat(32);
        let report = walk(&rows, &anchor, None);
        assert!(matches!(&report.faults[..], [ChainFault::Broken(b)] if b.id == 4));
    }

    #[test]
    fn rows_the_anchor_never_covered_are_reported() {
        let rows = chain(4);
        let report = walk(&rows, &head_of(&rows[..2]), None);
        assert_eq!(
            report.faults,
            vec![ChainFault::Unanchored { first: 3, last: 4 }]
        );
    }

    #[test]
    fn appends_that_moved_the_anchor_during_the_walk_are_not_faults() {
        let rows = chain(4);
        let mut walk = ChainWalk::new(Some(head_of(&rows[..2])), None);
        walk.feed(&rows);
        assert!(walk.finish(Some(&head_of(&rows)), Vec::new()).is_intact());
    }

    #[test]
    fn a_missing_anchor_or_guard_or_expected_head_is_a_fault() {
        let rows = chain(2);
        let mut unanchored = ChainWalk::new(None, None);
        unanchored.feed(&rows);
        assert_eq!(
            unanchored.finish(None, Vec::new()).faults,
            vec![ChainFault::AnchorMissing]
        );
        let mut guarded = ChainWalk::new(Some(head_of(&rows)), Some("cd"));
        guarded.feed(&rows);
        let report = guarded.finish(Some(&head_of(&rows)), vec!["t1".into(), "t2".into()]);
        assert_eq!(
            report.reason().unwrap(),
            "the expected head cd is not in the chain (a rewritten chain, or another database); \
             append-only triggers missing: t1, t2"
        );
    }
}
