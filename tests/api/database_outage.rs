//! The database unreachable for a while: intake refuses with 503 (never 202 without a durable
//! row), `/readyz` fails, workers pause; once it is back, everything resumes and nothing
//! acknowledged is lost. On PostgreSQL the daemon reaches the server through a TCP proxy the
//! test cuts and restores; on SQLite another process holds the file's write lock.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use akguard_emulator as emulator;
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

use crate::cloud_support::calls;
use crate::failover::{self, Kind};
use crate::helpers::{TestDaemon, backend_name};

const KEYS: usize = 24;
/// How long the database stays unreachable.
const OUTAGE: Duration = Duration::from_secs(6);

/// A TCP proxy in front of PostgreSQL that can drop every connection and refuse new ones.
struct Proxy {
    port: u16,
    cut: Arc<Mutex<bool>>,
    connections: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = Arc::new(Mutex::new(false));
        let connections: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let (cut, connections) = (cut.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        continue;
                    };
                    // Closed at once: the server is unreachable.
                    if *cut.lock().unwrap() {
                        continue;
                    }
                    let upstream = upstream.clone();
                    let relay = tokio::spawn(async move {
                        if let Ok(mut server) = TcpStream::connect(&upstream).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                        }
                    });
                    connections.lock().unwrap().push(relay.abort_handle());
                }
            })
            .abort_handle()
        };
        Self {
            port,
            cut,
            connections,
            accept,
        }
    }

    /// Drops every open connection and refuses new ones until `restore`.
    fn cut(&self) {
        *self.cut.lock().unwrap() = true;
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }

    fn restore(&self) {
        *self.cut.lock().unwrap() = false;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        for relay in self.connections.lock().unwrap().drain(..) {
            relay.abort();
        }
    }
}

/// What makes the daemon's database unreachable, per backend.
enum Outage {
    Proxy(Proxy),
    /// A connection of this test that holds SQLite's write lock while it lasts.
    Sqlite(String, Option<sqlx::SqliteConnection>),
}

impl Outage {
    /// Points `app` at the database through whatever can cut it off (restarting it).
    async fn around(app: &mut TestDaemon) -> Self {
        let url = app.database_url();
        if backend_name() == "sqlite" {
            return Self::Sqlite(url, None);
        }
        let mut parsed = reqwest::Url::parse(&url).unwrap();
        let upstream = format!(
            "{}:{}",
            parsed.host_str().unwrap(),
            parsed.port().unwrap_or(5432)
        );
        let proxy = Proxy::start(upstream).await;
        parsed.set_host(Some("127.0.0.1")).unwrap();
        parsed.set_port(Some(proxy.port)).unwrap();
        assert!(app.stop().await.success());
        app.set_env("AKGUARD__DATABASE__URL", Some(parsed.as_str()));
        app.restart().await;
        Self::Proxy(proxy)
    }

    async fn begin(&mut self) {
        match self {
            Self::Proxy(proxy) => proxy.cut(),
            Self::Sqlite(url, held) => {
                use sqlx::{Connection as _, Executor as _};
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                // Held past the daemon's busy timeout, so its writes fail rather than wait.
                conn.execute("BEGIN EXCLUSIVE").await.unwrap();
                *held = Some(conn);
            }
        }
    }

    async fn end(&mut self) {
        match self {
            Self::Proxy(proxy) => proxy.restore(),
            Self::Sqlite(_, held) => {
                use sqlx::{Connection as _, Executor as _};
                let mut conn = held.take().unwrap();
                conn.execute("ROLLBACK").await.unwrap();
                conn.close().await.unwrap();
            }
        }
    }
}

/// Posts notification `i`; the incident id when acknowledged, else the status it got.
async fn post(app: &TestDaemon, i: usize) -> Result<i64, u16> {
    let response = app.post_generic(&failover::notification(i)).await;
    match response.status.as_u16() {
        202 => Ok(response.incident_id()),
        status => Err(status),
    }
}

async fn readyz(app: &TestDaemon) -> u16 {
    app.get("/readyz", None).await.status.as_u16()
}

/// Polls `/readyz` (bounded) until it answers `want`.
async fn wait_readyz(app: &TestDaemon, want: u16) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while readyz(app).await != want {
        assert!(
            Instant::now() < deadline,
            "/readyz never answered {want}:\n{}",
            app.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_database_is_unreachable_intake_refuses_and_nothing_is_lost() {
    let (url, _emulator) = emulator::spawn(failover::scenario(KEYS)).await.unwrap();
    // No user is rotated here: the keys in use end with a person.
    let mut app = crate::remediation::daemon(&url, &failover::fast_env()).await;
    let mut outage = Outage::around(&mut app).await;
    let mut acknowledged = std::collections::BTreeMap::new();
    for i in 0..KEYS / 2 {
        acknowledged.insert(i, post(&app, i).await.expect("acknowledged"));
    }
    wait_readyz(&app, 200).await;

    outage.begin().await;
    let started = Instant::now();
    wait_readyz(&app, 503).await;
    // Every notification that arrives meanwhile is refused, none acknowledged.
    let bodies = (KEYS / 2..KEYS).map(failover::notification).collect();
    let refused: Vec<u16> = app
        .post_generic_all(bodies)
        .await
        .iter()
        .map(|r| r.status.as_u16())
        .collect();
    assert!(refused.iter().all(|s| *s == 503), "{refused:?}");
    tokio::time::sleep(OUTAGE.saturating_sub(started.elapsed())).await;
    outage.end().await;

    wait_readyz(&app, 200).await;
    // The source delivers the refused ones again.
    for i in KEYS / 2..KEYS {
        acknowledged.insert(
            i,
            post(&app, i).await.expect("acknowledged after the outage"),
        );
    }
    for (i, id) in &acknowledged {
        let incident = app
            .wait_for_incident(*id, "settled", crate::remediation::settled)
            .await;
        assert_eq!(incident["access_key_id"], failover::key_id(*i).as_str());
        let end = match failover::kind(*i) {
            Kind::Unused => "resolved",
            Kind::InUse | Kind::Rotatable => "awaiting_operator",
        };
        assert_eq!(incident["state"], end, "{incident:#}");
    }
    let ids: std::collections::BTreeSet<i64> = acknowledged.values().copied().collect();
    assert_eq!(ids.len(), KEYS, "one incident per leaked key");
    let log: Vec<Value> = calls(&url).await;
    failover::assert_no_mutation_repeated(&log);
}
