//! The audit chain check run by `serve`: at start and every hour it logs the head, and a
//! broken chain or a missing trigger closes the gate so nothing extends the damage.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::domain::audit::ChainReport;
use crate::store::{self, AuditGate, Store, StoreError};

/// How often a running daemon checks the chain again.
const RECHECK_EVERY: Duration = Duration::from_secs(3600);

/// Verifies the chain, logs the verdict and returns the gate that carries it.
pub async fn check_at_start(store: &dyn Store) -> Result<AuditGate, StoreError> {
    let report = store::verify_audit_chain(store, None).await?;
    log_verdict(&report);
    Ok(AuditGate::new(report))
}

/// Checks again every `RECHECK_EVERY` until `shutdown`.
pub async fn recheck(store: Arc<dyn Store>, gate: AuditGate, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(RECHECK_EVERY) => {}
            () = shutdown.cancelled() => return,
        }
        match store::verify_audit_chain(store.as_ref(), None).await {
            Ok(report) => {
                log_verdict(&report);
                gate.set(report);
            }
            Err(err) => tracing::warn!(error = %err, "cannot check the audit chain"),
        }
    }
}

fn log_verdict(report: &ChainReport) {
    match report.reason() {
        None => tracing::info!(
            audit.rows = report.rows,
            audit.head = %report.head,
            "audit chain intact"
        ),
        Some(reason) => tracing::error!(
            audit.rows = report.rows,
            audit.head = %report.head,
            reason = %reason,
            "audit chain broken: intake answers 503, workers and operator actions are paused \
             until it verifies (see `akguard verify-audit`)"
        ),
    }
}
