//! The emulator's "now": the system clock or a fixed instant, shifted by an adjustable offset.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, TimeDelta, Utc};

/// Shared by the server and whoever moves time (the control API, tests).
#[derive(Clone, Debug)]
pub(crate) struct Clock {
    base: Option<DateTime<Utc>>,
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub(crate) fn system() -> Self {
        Self {
            base: None,
            offset_ms: Arc::default(),
        }
    }

    /// Time stands still at `at` unless moved; tests use this to stay deterministic.
    #[cfg(test)]
    pub(crate) fn fixed(at: DateTime<Utc>) -> Self {
        Self {
            base: Some(at),
            offset_ms: Arc::default(),
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.base.unwrap_or_else(Utc::now) + self.offset()
    }

    pub(crate) fn offset(&self) -> TimeDelta {
        TimeDelta::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    pub(crate) fn set_offset(&self, offset: TimeDelta) {
        self.offset_ms
            .store(offset.num_milliseconds(), Ordering::Relaxed);
    }

    pub(crate) fn advance(&self, by: TimeDelta) {
        self.offset_ms
            .fetch_add(by.num_milliseconds(), Ordering::Relaxed);
    }
}
