//! The two databases behind one set of statements: connecting, migrations, the write lock,
//! and the few SQL fragments that differ between SQLite and PostgreSQL.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::migrate::Migrator;
use sqlx::{Any, AnyPool, Executor as _, Transaction};

use super::StoreError;

static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// Taken by every PostgreSQL transaction of the worker, the operator and the MFA sweep
/// ("akguard" in ASCII). Intake takes per-key locks instead (`begin_keyed`), and every audit
/// append locks the chain's head row (`audit_log::append_audit`).
const WRITE_LOCK: i64 = 0x61_6b67_7561_7264;
/// Taken by every PostgreSQL transaction that settles deliveries ("akguard" + 1): the delivery
/// log's ids then commit in order, so the event stream's cursor never passes one still to come.
const SETTLE_LOCK: i64 = WRITE_LOCK + 1;

/// The class of intake's per-key advisory locks ("akg"), in the two-key space, which does not
/// overlap the one-key space of `WRITE_LOCK` and `SETTLE_LOCK`.
const KEY_LOCK_CLASS: i32 = 0x61_6b67;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Backend {
    Sqlite,
    Postgres,
}

/// Whether connecting may create the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    IfMissing,
    /// Tools that only read (`verify-audit`) must not turn a mistyped path into a new,
    /// empty, "intact" database.
    Never,
}

impl Backend {
    /// The backend a URL names by its scheme.
    pub fn of(url: &str) -> Result<Self, StoreError> {
        match url.split(':').next().unwrap_or_default() {
            "sqlite" => Ok(Self::Sqlite),
            "postgres" | "postgresql" => Ok(Self::Postgres),
            other => Err(StoreError::UnsupportedUrl(other.to_owned())),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }

    pub fn migrator(self) -> &'static Migrator {
        match self {
            Self::Sqlite => &SQLITE_MIGRATIONS,
            Self::Postgres => &POSTGRES_MIGRATIONS,
        }
    }

    /// Opens a pool on `url`. SQLite: WAL, `synchronous=FULL` so a commit survives power
    /// loss, foreign keys on, and a new database file private to its owner.
    pub async fn connect(
        self,
        url: &str,
        max_connections: u32,
        creation: Creation,
    ) -> Result<AnyPool, StoreError> {
        self.open(url, max_connections, creation, "FULL").await
    }

    /// One connection to a SQLite database file whose commits survive a crash of the process
    /// but not a power loss (`synchronous=NORMAL`: no fsync per commit in WAL mode), for
    /// writes that are worthless after one (the fleet's rate-limit schedule, which a call
    /// waits on) or only redone ([`super::Durability::Deferred`]). Power loss then drops only
    /// such commits: the next commit of the main pool syncs the log with every commit before
    /// it. The checkpointer uses one too: at this level a checkpoint still syncs the log
    /// before it copies it, and the database file after. `None` for PostgreSQL and an
    /// in-memory database (another connection would open another database).
    pub async fn connect_volatile(self, url: &str) -> Result<Option<AnyPool>, StoreError> {
        if self == Self::Postgres || is_in_memory(url) {
            return Ok(None);
        }
        Ok(Some(self.open(url, 1, Creation::Never, "NORMAL").await?))
    }

    async fn open(
        self,
        url: &str,
        max_connections: u32,
        creation: Creation,
        synchronous: &'static str,
    ) -> Result<AnyPool, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)?;
        let pool = AnyPoolOptions::new().max_connections(max_connections);
        let pool = match self {
            Self::Postgres => pool,
            Self::Sqlite => {
                prepare_sqlite_file(url, creation)?;
                // A file has no connection to lose: the ping sqlx sends before handing out a
                // connection would cost every transaction a trip to its thread, for nothing.
                pool.test_before_acquire(false)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            // No commit checkpoints the log: the checkpointer does, beside
                            // the writers (see `checkpoint`).
                            let pragmas = format!(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = {synchronous}; \
                             PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                             PRAGMA wal_autocheckpoint = 0"
                            );
                            conn.execute(pragmas.as_str()).await?;
                            Ok(())
                        })
                    })
            }
        };
        Ok(pool.connect_with(options).await?)
    }

    /// A transaction that excludes every other writer until it ends, taken before the reads
    /// its writes depend on. SQLite: `BEGIN IMMEDIATE` (its one write lock); PostgreSQL: a
    /// transaction-scoped advisory lock.
    pub async fn begin_write(
        self,
        pool: &AnyPool,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        match self {
            Self::Sqlite => Ok(pool.begin_with("BEGIN IMMEDIATE").await?),
            Self::Postgres => locked(pool, WRITE_LOCK).await,
        }
    }

    /// A transaction that settles deliveries, excluding other settlers until it ends so the
    /// delivery log grows in commit order. SQLite: its one write lock; PostgreSQL: an advisory
    /// lock of its own, so settling never waits for intake or the worker.
    pub async fn begin_settle(
        self,
        pool: &AnyPool,
    ) -> Result<Transaction<'static, Any>, StoreError> {
        match self {
            Self::Sqlite => self.begin_write(pool).await,
            Self::Postgres => locked(pool, SETTLE_LOCK).await,
        }
    }

    /// A transaction that excludes every other writer of the same `keys` (a batch's
    /// AccessKey ids and delivery ids), taken before the reads its writes depend on. SQLite:
    /// its one write lock. PostgreSQL: one transaction-scoped advisory lock per key, taken in
    /// one order by every batch so two batches never wait on each other in a cycle; batches
    /// of other keys commit in parallel, and meet only at the audit chain's head.
    pub async fn begin_keyed(
        self,
        pool: &AnyPool,
        keys: &[&str],
    ) -> Result<Transaction<'static, Any>, StoreError> {
        if self == Self::Sqlite {
            return self.begin_write(pool).await;
        }
        let mut hashes: Vec<i32> = keys.iter().map(|k| key_hash(k)).collect();
        hashes.sort_unstable();
        hashes.dedup();
        let mut tx = pool.begin().await?;
        if hashes.is_empty() {
            return Ok(tx);
        }
        // PostgreSQL evaluates a volatile target list after the ORDER BY, so the locks are
        // taken in the sorted order.
        let mut q = super::sql::Sql::new("SELECT pg_advisory_xact_lock(");
        q.bind(KEY_LOCK_CLASS).push(", v.h) FROM (VALUES ");
        q.tuples(&hashes, |row, h| {
            row.bind(*h);
        });
        q.push(") AS v(h) ORDER BY v.h");
        q.execute(&mut *tx).await?;
        Ok(tx)
    }

    /// The text at `doc.k1.k2...` of a JSON text column; each key is an SQL expression.
    pub fn json_text(self, doc: &str, keys: &[&str]) -> String {
        match self {
            Self::Sqlite => {
                let path = keys
                    .iter()
                    .map(|k| format!("'.\"' || {k} || '\"'"))
                    .collect::<Vec<_>>()
                    .join(" || ");
                format!("json_extract({doc}, '$' || {path})")
            }
            Self::Postgres => {
                let mut expr = format!("({doc})::jsonb");
                for (i, key) in keys.iter().enumerate() {
                    let arrow = if i + 1 == keys.len() { "->>" } else { "->" };
                    expr = format!("({expr} {arrow} ({key}))");
                }
                expr
            }
        }
    }

    /// The larger of two values (SQLite's scalar `MAX`).
    pub fn greatest(self, a: &str, b: &str) -> String {
        match self {
            Self::Sqlite => format!("MAX({a}, {b})"),
            Self::Postgres => format!("GREATEST({a}, {b})"),
        }
    }

    /// The database's clock in microseconds since the epoch, read when the statement runs (after
    /// any lock it waited for). SQLite's clock is the host's, to the millisecond.
    pub fn now_micros(self) -> &'static str {
        match self {
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000000.0 AS INTEGER)",
            Self::Postgres => "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000000 AS BIGINT)",
        }
    }

    /// Appended to a `SELECT` of incidents that a write transaction goes on to change: on
    /// PostgreSQL it locks the rows read, so a worker cannot claim one between the read and the
    /// write (claims skip locked rows, and one under way is seen once it commits). SQLite's
    /// write lock already keeps claims out.
    pub fn lock_rows(self, table: &str) -> String {
        match self {
            Self::Sqlite => String::new(),
            Self::Postgres => format!(" FOR UPDATE OF {table}"),
        }
    }

    /// Appended to a claim's inner `SELECT`: on PostgreSQL, concurrent claimers pass over rows
    /// another is taking instead of both taking them. SQLite claims under its write lock.
    pub fn skip_locked(self) -> &'static str {
        match self {
            Self::Sqlite => "",
            Self::Postgres => " FOR UPDATE SKIP LOCKED",
        }
    }
}

/// A key's lock number: the first four bytes of its SHA-256, the same in every process, so
/// replicas lock alike. Two keys sharing a number only wait on each other.
fn key_hash(key: &str) -> i32 {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(key.as_bytes());
    i32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]])
}

/// A PostgreSQL transaction holding the transaction-scoped advisory lock `key`.
async fn locked(pool: &AnyPool, key: i64) -> Result<Transaction<'static, Any>, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(key)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Creates the SQLite file's missing directories (0700) and the empty file (0600), whatever
/// the umask: it holds incident details and the audit log. SQLite gives the `-wal` and `-shm`
/// files the database file's mode. With `Creation::Never` the file must exist.
fn prepare_sqlite_file(url: &str, creation: Creation) -> Result<(), StoreError> {
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)?;
    if is_in_memory(url) {
        return Ok(());
    }
    let file = options.get_filename();
    match creation {
        Creation::IfMissing => Ok(create_private(file)?),
        Creation::Never if !file.exists() => Err(StoreError::Missing(file.to_path_buf())),
        Creation::Never => Ok(()),
    }
}

/// An in-memory database has no file to prepare. sqlx names it `file:sqlx-in-memory-N` and
/// offers no getter for the flag, so the URL is read the way sqlx reads it.
fn is_in_memory(url: &str) -> bool {
    let rest = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let (database, params) = rest.split_once('?').unwrap_or((rest, ""));
    database == ":memory:"
        || form_urlencoded::parse(params.as_bytes())
            .any(|(key, value)| key == "mode" && value == "memory")
}

fn create_private(file: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
    if let Some(dir) = file.parent()
        && !dir.as_os_str().is_empty()
        && !dir.exists()
    {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        // The umask may have taken bits from the mode above; directories that already
        // existed are the operator's and keep theirs.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(file)
    {
        Ok(created) => created.set_permissions(std::fs::Permissions::from_mode(0o600)),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_memory_urls_are_recognised_as_sqlx_reads_them() {
        for url in [
            "sqlite::memory:",
            "sqlite://:memory:",
            "sqlite://?mode=memory",
        ] {
            assert!(is_in_memory(url), "{url}");
        }
        for url in ["sqlite://data/akguard.db", "sqlite:akguard.db?mode=rwc"] {
            assert!(!is_in_memory(url), "{url}");
        }
    }

    /// sqlx names an in-memory database `file:sqlx-in-memory-N`; preparing it must not
    /// create that name as an empty file in the working directory.
    #[test]
    fn an_in_memory_database_leaves_no_file_behind() {
        prepare_sqlite_file("sqlite::memory:", Creation::IfMissing).unwrap();
        let strays: Vec<_> = std::fs::read_dir(".")
            .unwrap()
            .filter_map(|entry| entry.ok())
            .filter(|entry| {
                entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("file:sqlx-in-memory")
            })
            .collect();
        assert!(strays.is_empty(), "{strays:?}");
    }

    async fn synchronous(pool: &AnyPool) -> i64 {
        sqlx::query_scalar("PRAGMA synchronous")
            .fetch_one(pool)
            .await
            .unwrap()
    }

    /// The rate-limit schedule's connection skips the fsync the main pool's commits make, and
    /// both write the same database.
    #[tokio::test]
    async fn the_volatile_connection_shares_the_file_without_syncing_each_commit() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("a.db").display());
        let backend = Backend::Sqlite;
        let pool = backend.connect(&url, 2, Creation::IfMissing).await.unwrap();
        let volatile = backend.connect_volatile(&url).await.unwrap().unwrap();
        // 2 is FULL, 1 is NORMAL.
        assert_eq!(synchronous(&pool).await, 2);
        assert_eq!(synchronous(&volatile).await, 1);
        sqlx::query("CREATE TABLE t (n INTEGER)")
            .execute(&pool)
            .await
            .unwrap();
        sqlx::query("INSERT INTO t (n) VALUES (7)")
            .execute(&volatile)
            .await
            .unwrap();
        let n: i64 = sqlx::query_scalar("SELECT n FROM t")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(n, 7);
        assert!(
            backend
                .connect_volatile("sqlite::memory:")
                .await
                .unwrap()
                .is_none(),
            "another connection to an in-memory database opens another database"
        );
    }
}
