//! One accepted connection: what it is doing (waiting, reading a request head, handling a
//! request), the deadline that follows from that, and serving it until it ends, times out,
//! is evicted to make room, or drains at shutdown.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::{Service as _, service_fn};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// The timeouts that apply while no request is being handled.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    pub header_read: Duration,
    pub idle: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Phase {
    /// No request yet, or the last one answered; `fresh` until the first request.
    Waiting { since: Instant, fresh: bool },
    /// The first bytes of a request head arrived at `since`.
    Reading { since: Instant },
    /// A handler is running; the request timeout bounds it.
    Busy,
}

/// What the accept loop and the connection's own task share about it.
pub struct Conn {
    phase: Mutex<Phase>,
    changed: Notify,
    /// Wakes the accept loop when it waits for a connection it may close.
    became_idle: Arc<Notify>,
    /// Cancelled to evict the connection.
    pub close: CancellationToken,
}

impl Conn {
    pub fn new(became_idle: Arc<Notify>) -> Self {
        Self {
            phase: Mutex::new(Phase::Waiting {
                since: Instant::now(),
                fresh: true,
            }),
            changed: Notify::new(),
            became_idle,
            close: CancellationToken::new(),
        }
    }

    /// Idle connections may be closed without losing anyone's request.
    pub fn is_idle(&self) -> bool {
        !matches!(*self.lock(), Phase::Busy)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        // The phase is a plain value: a panic elsewhere cannot leave it half-written.
        self.phase.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn set(&self, phase: Phase) {
        *self.lock() = phase;
        self.changed.notify_one();
    }

    fn deadline(&self, timeouts: Timeouts) -> Option<Instant> {
        match *self.lock() {
            // A new connection owes a request head at once, like one that has begun one.
            Phase::Waiting { since, fresh: true } | Phase::Reading { since } => {
                Some(since + timeouts.header_read)
            }
            Phase::Waiting {
                since,
                fresh: false,
            } => Some(since + timeouts.idle),
            Phase::Busy => None,
        }
    }

    fn on_bytes_read(&self) {
        let mut phase = self.lock();
        if let Phase::Waiting { since, fresh } = *phase {
            // A fresh connection's head deadline already runs from its opening.
            let since = if fresh { since } else { Instant::now() };
            *phase = Phase::Reading { since };
            drop(phase);
            self.changed.notify_one();
        }
    }
}

/// Marks the connection busy while a handler runs, and waiting again when it is done or
/// dropped.
struct BusyGuard(Arc<Conn>);

impl BusyGuard {
    fn new(conn: Arc<Conn>) -> Self {
        conn.set(Phase::Busy);
        Self(conn)
    }
}

impl Drop for BusyGuard {
    fn drop(&mut self) {
        self.0.set(Phase::Waiting {
            since: Instant::now(),
            fresh: false,
        });
        self.0.became_idle.notify_one();
    }
}

/// Serves `stream` until the client closes it, a timeout fires, it is evicted, or it has
/// drained after `shutdown`.
pub async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    conn: Arc<Conn>,
    timeouts: Timeouts,
    shutdown: CancellationToken,
) {
    let io = TokioIo::new(Watched {
        inner: stream,
        conn: conn.clone(),
    });
    let handler = TowerToHyperService::new(router);
    let tracked = conn.clone();
    let service = service_fn(move |mut req: hyper::Request<Incoming>| {
        req.extensions_mut().insert(ConnectInfo(peer));
        let busy = BusyGuard::new(tracked.clone());
        let response = handler.call(req);
        async move {
            // Busy until the body is sent, not just its head: a streamed body (the event
            // stream) must neither be evicted as idle nor cut at the idle timeout.
            let response = response.await?;
            Ok::<_, Infallible>(response.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    let _busy = &busy;
                    frame
                }))
            }))
        }
    });
    // Timeouts are enforced below, from the connection's phase, rather than by hyper's
    // header timer, which would also cut kept-alive connections at the header deadline.
    let connection = http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    let mut draining = false;
    loop {
        let deadline = conn.deadline(timeouts);
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(peer = %peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = sleep_until(deadline) => {
                if conn.deadline(timeouts).is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!(peer = %peer, "closing a connection that sent no request in time");
                    return;
                }
            }
            () = conn.changed.notified() => {}
            () = conn.close.cancelled(), if !draining => {
                if conn.is_idle() {
                    return;
                }
                // Became busy since it was chosen: let the request finish, then close.
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
            () = shutdown.cancelled(), if !draining => {
                draining = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// The socket, noting when request bytes arrive.
struct Watched {
    inner: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Watched {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.on_bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUTS: Timeouts = Timeouts {
        header_read: Duration::from_secs(10),
        idle: Duration::from_secs(60),
    };

    #[tokio::test(start_paused = true)]
    async fn the_deadline_follows_what_the_connection_is_doing() {
        let opened = Instant::now();
        let conn = Arc::new(Conn::new(Arc::new(Notify::new())));
        assert_eq!(conn.deadline(TIMEOUTS), Some(opened + TIMEOUTS.header_read));
        tokio::time::advance(Duration::from_secs(3)).await;
        // A new connection's first bytes do not restart its clock.
        conn.on_bytes_read();
        assert_eq!(conn.deadline(TIMEOUTS), Some(opened + TIMEOUTS.header_read));

        let busy = BusyGuard::new(conn.clone());
        assert!(!conn.is_idle());
        assert_eq!(conn.deadline(TIMEOUTS), None);
        tokio::time::advance(Duration::from_secs(5)).await;
        drop(busy);
        let answered = Instant::now();
        assert!(conn.is_idle());
        assert_eq!(conn.deadline(TIMEOUTS), Some(answered + TIMEOUTS.idle));

        tokio::time::advance(Duration::from_secs(20)).await;
        let next_request = Instant::now();
        conn.on_bytes_read();
        assert_eq!(
            conn.deadline(TIMEOUTS),
            Some(next_request + TIMEOUTS.header_read)
        );
    }
}
