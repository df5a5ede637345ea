//! Checkpoints of SQLite's write-ahead log, run beside the writers instead of inside one of
//! their commits. Left to SQLite, the commit that grows the log past its limit copies the
//! log into the database file and syncs it before it returns, while that writer still holds
//! its turn at the write lock (see `turns`): every write queued behind it, a leak's intent
//! among them, waits the whole copy out. A passive checkpoint on a connection of its own
//! takes no write lock, so writers go on meanwhile.

use std::time::Duration;

use sqlx::AnyPool;

use super::StoreError;
use super::backend::Backend;

/// How often the log is copied into the database file. A second of this daemon's commits is
/// a few hundred pages at most, about as much as SQLite's own limit (1,000 pages) lets grow.
const EVERY: Duration = Duration::from_secs(1);

/// The task checkpointing one SQLite database; it ends when this is dropped.
pub(super) struct Checkpointer {
    task: tokio::task::AbortHandle,
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Checkpointer {
    /// Starts checkpointing the database at `url` on a connection of its own. `None` where
    /// there is no log to checkpoint: PostgreSQL, an in-memory database.
    pub async fn start(backend: Backend, url: &str) -> Result<Option<Self>, StoreError> {
        let Some(pool) = backend.connect_volatile(url).await? else {
            return Ok(None);
        };
        let task = tokio::spawn(run(pool)).abort_handle();
        Ok(Some(Self { task }))
    }
}

async fn run(pool: AnyPool) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        // Passive: copies what no reader still needs and never waits for a lock, so it can
        // neither block a writer nor be blocked by one; what it leaves, the next one copies.
        if let Err(err) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            tracing::warn!(error = %err, "cannot checkpoint the SQLite log; trying again");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::backend::Creation;

    /// The database file holds what was written only once the log was copied into it.
    #[tokio::test]
    async fn the_log_is_copied_into_the_database_without_any_writer_doing_it() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.db");
        let url = format!("sqlite://{}", file.display());
        let pool = Backend::Sqlite
            .connect(&url, 1, Creation::IfMissing)
            .await
            .unwrap();
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&pool)
            .await
            .unwrap();
        // About 1,200 pages: past SQLite's own limit of 1,000, at which a commit would copy
        // the log itself.
        for _ in 0..1_200 {
            sqlx::query("INSERT INTO t VALUES (randomblob(3000))")
                .execute(&pool)
                .await
                .unwrap();
        }
        let size = || std::fs::metadata(&file).unwrap().len();
        assert!(
            size() < 1_000_000,
            "a writer copied the log: {} bytes",
            size()
        );
        let checkpointer = Checkpointer::start(Backend::Sqlite, &url)
            .await
            .unwrap()
            .expect("a file database is checkpointed");
        tokio::time::sleep(EVERY + Duration::from_millis(500)).await;
        drop(checkpointer);
        assert!(
            size() > 3_600_000,
            "the log was not copied: {} bytes",
            size()
        );
    }

    #[tokio::test]
    async fn an_in_memory_database_has_no_log_to_checkpoint() {
        let none = Checkpointer::start(Backend::Sqlite, "sqlite::memory:")
            .await
            .unwrap();
        assert!(none.is_none());
    }
}
