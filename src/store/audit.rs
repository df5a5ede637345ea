//! Verifying the audit chain through any `Store`, and the gate that stops appends while it
//! is broken.

use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};

use super::{Store, StoreError};
use crate::domain::audit::{ChainReport, ChainWalk};

/// Walks the audit log from its first row and checks every hash link, the anchor and the
/// append-only triggers; with `expect_head`, also that this hash (recorded elsewhere) is
/// still in the chain.
pub async fn verify_audit_chain(
    store: &dyn Store,
    expect_head: Option<&str>,
) -> Result<ChainReport, StoreError> {
    const PAGE: u32 = 1000;
    // The anchor is read first: rows appended during the walk only move it further.
    let mut walk = ChainWalk::new(store.audit_head().await?, expect_head);
    let mut after = 0;
    loop {
        let page = store.audit_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.id;
        walk.feed(&page);
    }
    let anchor_now = store.audit_head().await?;
    Ok(walk.finish(anchor_now.as_ref(), store.missing_audit_guards().await?))
}

/// The last verdict on the chain, shared by everything that appends or reports on it.
#[derive(Clone)]
pub struct AuditGate {
    last: Arc<RwLock<(ChainReport, DateTime<Utc>)>>,
}

impl AuditGate {
    pub fn new(report: ChainReport) -> Self {
        Self {
            last: Arc::new(RwLock::new((report, Utc::now()))),
        }
    }

    pub fn set(&self, report: ChainReport) {
        *self.last.write().unwrap_or_else(|e| e.into_inner()) = (report, Utc::now());
    }

    /// The last report and when it was made.
    pub fn last(&self) -> (ChainReport, DateTime<Utc>) {
        self.last.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Refuses an append while the chain is broken.
    pub fn check_appendable(&self) -> Result<(), StoreError> {
        match self.last().0.reason() {
            Some(reason) => Err(StoreError::AuditChainBroken(reason)),
            None => Ok(()),
        }
    }
}
