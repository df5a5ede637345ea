//! The accept loop: at most `server.max_connections` connections at once, the oldest idle
//! one closed to make room for a new one, and a drain of every connection at shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::connection::{self, Conn, Timeouts};
use crate::config::ServerLimits;

/// How often, at most, the daemon says that it is at its connection cap.
const CAP_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown`, then waits for open connections to
/// finish their requests (the caller bounds that wait).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let mut server = Server {
        slots: Arc::new(Semaphore::new(limits.max_connections as usize)),
        open: Arc::default(),
        became_idle: Arc::new(Notify::new()),
        max_connections: limits.max_connections,
        warned_at: None,
        closed_since_warning: 0,
    };
    let timeouts = Timeouts {
        header_read: limits.header_read_timeout,
        idle: limits.idle_timeout,
    };
    let mut next_id = 0_u64;
    while let Some((stream, peer)) = accept(&listener, &shutdown).await {
        let Some(permit) = server.free_slot(&shutdown).await else {
            break;
        };
        let conn = Arc::new(Conn::new(server.became_idle.clone()));
        let id = next_id;
        next_id += 1;
        lock(&server.open).insert(id, conn.clone());
        let open = server.open.clone();
        let (router, shutdown) = (router.clone(), shutdown.clone());
        tokio::spawn(async move {
            connection::serve(stream, peer, router, conn, timeouts, shutdown).await;
            lock(&open).remove(&id);
            drop(permit);
        });
    }
    drop(listener);
    // Every connection drains on the same signal and returns its slot when done.
    let _all_closed = server.slots.acquire_many(limits.max_connections).await;
}

/// The next connection, or `None` once shutdown begins.
async fn accept(
    listener: &TcpListener,
    shutdown: &CancellationToken,
) -> Option<(TcpStream, SocketAddr)> {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => return None,
        };
        match accepted {
            Ok(connection) => return Some(connection),
            // The client gave up before it was accepted: nothing to do.
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::ConnectionAborted | std::io::ErrorKind::ConnectionReset
                ) => {}
            Err(err) => {
                // Usually out of file descriptors: retrying at once would spin.
                tracing::warn!(error = %err, "cannot accept a connection; retrying in a second");
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                    () = shutdown.cancelled() => return None,
                }
            }
        }
    }
}

type Open = Arc<Mutex<BTreeMap<u64, Arc<Conn>>>>;

struct Server {
    slots: Arc<Semaphore>,
    /// Ids rise with acceptance, so the first entry is the oldest connection.
    open: Open,
    became_idle: Arc<Notify>,
    max_connections: u32,
    warned_at: Option<Instant>,
    closed_since_warning: u64,
}

impl Server {
    /// A slot for a new connection: free, made by closing the oldest idle connection, or,
    /// when every connection is handling a request, the first that one of them returns.
    async fn free_slot(&mut self, shutdown: &CancellationToken) -> Option<OwnedSemaphorePermit> {
        loop {
            if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                return Some(permit);
            }
            let evicted = self.evict_oldest_idle();
            self.warn_at_cap(evicted);
            tokio::select! {
                permit = self.slots.clone().acquire_owned() => return permit.ok(),
                () = self.became_idle.notified(), if !evicted => {}
                () = shutdown.cancelled() => return None,
            }
        }
    }

    fn evict_oldest_idle(&self) -> bool {
        let open = lock(&self.open);
        let oldest = open
            .values()
            .find(|conn| !conn.close.is_cancelled() && conn.is_idle());
        match oldest {
            Some(conn) => {
                conn.close.cancel();
                true
            }
            None => false,
        }
    }

    fn warn_at_cap(&mut self, evicted: bool) {
        self.closed_since_warning += u64::from(evicted);
        if self
            .warned_at
            .is_some_and(|at| at.elapsed() < CAP_WARNING_EVERY)
        {
            return;
        }
        self.warned_at = Some(Instant::now());
        tracing::warn!(
            max_connections = self.max_connections,
            closed_idle = std::mem::take(&mut self.closed_since_warning),
            "connection limit reached (server.max_connections): closing the oldest idle \
             connections to make room, or waiting when every connection is busy; raise the \
             limit (and LimitNOFILE) if this is legitimate load"
        );
    }
}

fn lock(open: &Open) -> std::sync::MutexGuard<'_, BTreeMap<u64, Arc<Conn>>> {
    // The map is only inserted into and removed from: a panic cannot leave it inconsistent.
    open.lock().unwrap_or_else(|p| p.into_inner())
}
