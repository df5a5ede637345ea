//! Failed authentications per peer: a token bucket per address (IPv6 by its /64, which one
//! host usually holds whole), a 429 with `Retry-After` once a peer's budget is spent, and a
//! log line per failure that names the peer and path, never the credential.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::ApiError;

/// Peers remembered at once. Beyond it, peers whose budget is full are forgotten (they are
/// no different from new ones), then the longest quiet.
const MAX_PEERS: usize = 10_000;

pub struct AuthLimiter {
    max_failures: f64,
    /// Failures forgiven per second.
    refill_per_sec: f64,
    peers: Mutex<HashMap<IpAddr, Bucket>>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures the peer may still make.
    left: f64,
    at: Instant,
}

/// What `record_failure` did to the peer's budget.
#[derive(Debug, PartialEq, Eq)]
pub enum Budget {
    Left,
    /// That failure spent the last of it; the peer is refused for this long.
    Spent(Duration),
}

impl AuthLimiter {
    pub fn new(max_failures: u32, window: Duration) -> Self {
        let max_failures = f64::from(max_failures);
        Self {
            max_failures,
            refill_per_sec: max_failures / window.as_secs_f64(),
            peers: Mutex::default(),
        }
    }

    /// `Some(wait)` while the peer has no failures left.
    pub fn refusal(&self, ip: IpAddr, now: Instant) -> Option<Duration> {
        let peers = self.lock();
        let left = self.left(peers.get(&key(ip))?, now);
        (left < 1.0).then(|| self.wait_for_one(left))
    }

    pub fn record_failure(&self, ip: IpAddr, now: Instant) -> Budget {
        let mut peers = self.lock();
        let key = key(ip);
        if !peers.contains_key(&key) && peers.len() >= MAX_PEERS {
            self.forget_one(&mut peers, now);
        }
        let left = match peers.get(&key) {
            Some(bucket) => self.left(bucket, now),
            None => self.max_failures,
        };
        // Requests that passed the check together may fail together; the budget stops at 0.
        let left = (left - 1.0).max(0.0);
        peers.insert(key, Bucket { left, at: now });
        if left < 1.0 {
            Budget::Spent(self.wait_for_one(left))
        } else {
            Budget::Left
        }
    }

    fn left(&self, bucket: &Bucket, now: Instant) -> f64 {
        let refilled = now.saturating_duration_since(bucket.at).as_secs_f64() * self.refill_per_sec;
        (bucket.left + refilled).min(self.max_failures)
    }

    fn wait_for_one(&self, left: f64) -> Duration {
        Duration::from_secs_f64((1.0 - left) / self.refill_per_sec)
    }

    fn forget_one(&self, peers: &mut HashMap<IpAddr, Bucket>, now: Instant) {
        peers.retain(|_, bucket| self.left(bucket, now) < self.max_failures);
        if peers.len() >= MAX_PEERS
            && let Some(quietest) = peers.iter().min_by_key(|(_, b)| b.at).map(|(ip, _)| *ip)
        {
            peers.remove(&quietest);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Bucket>> {
        // Buckets are plain values: a panic elsewhere cannot leave one half-written.
        self.peers.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// IPv4 (also when mapped into IPv6) by address, IPv6 by /64.
fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(v6.to_bits() & !u128::from(u64::MAX))),
        },
    }
}

/// Every authenticated route (`/v1/...`, `/metrics`): a refused peer is answered 429 before
/// its credential is looked at, so that guessing gains nothing from the answer; a 401 is
/// counted and logged.
pub async fn limit_failed_auth(
    State(limiter): State<Arc<AuthLimiter>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if !path.starts_with("/v1/") && path != "/metrics" {
        return next.run(request).await;
    }
    let ip = peer.ip();
    if let Some(wait) = limiter.refusal(ip, Instant::now()) {
        return ApiError::TooManyAuthFailures(wait).into_response();
    }
    let (method, path) = (request.method().clone(), request.uri().path().to_owned());
    let response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED {
        // The path is the client's: quoted, so it cannot shape the log line.
        tracing::warn!(peer = %ip, method = %method, path = ?path, "authentication failed");
        if let Budget::Spent(wait) = limiter.record_failure(ip, Instant::now()) {
            tracing::warn!(
                peer = %ip,
                retry_after_secs = wait.as_secs_f64().ceil() as u64,
                "too many failed authentications from this peer: refusing its requests with 429 \
                 until its budget refills (server.max_auth_failures per server.auth_failure_window)"
            );
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_is_refused_after_its_budget_and_forgiven_as_it_refills() {
        let limiter = AuthLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let t0 = Instant::now();
        assert_eq!(limiter.record_failure(ip, t0), Budget::Left);
        assert_eq!(limiter.record_failure(ip, t0), Budget::Left);
        assert!(limiter.refusal(ip, t0).is_none());
        assert_eq!(
            limiter.record_failure(ip, t0),
            Budget::Spent(Duration::from_secs(20))
        );
        assert_eq!(limiter.refusal(ip, t0), Some(Duration::from_secs(20)));
        assert!(limiter.refusal(ip, t0 + Duration::from_secs(21)).is_none());
        let other: IpAddr = "192.0.2.8".parse().unwrap();
        assert!(limiter.refusal(other, t0).is_none());
    }

    #[test]
    fn ipv6_peers_share_their_64_and_mapped_ipv4_is_ipv4() {
        let limiter = AuthLimiter::new(1, Duration::from_secs(60));
        let t0 = Instant::now();
        limiter.record_failure("2001:db8:1:2::1".parse().unwrap(), t0);
        assert!(
            limiter
                .refusal("2001:db8:1:2:ffff::9".parse().unwrap(), t0)
                .is_some()
        );
        assert!(
            limiter
                .refusal("2001:db8:1:3::1".parse().unwrap(), t0)
                .is_none()
        );
        limiter.record_failure("::ffff:192.0.2.1".parse().unwrap(), t0);
        assert!(limiter.refusal("192.0.2.1".parse().unwrap(), t0).is_some());
    }

    #[test]
    fn memory_stays_bounded_under_many_peers() {
        let limiter = AuthLimiter::new(1, Duration::from_secs(3600));
        let t0 = Instant::now();
        for n in 0..(MAX_PEERS as u32 + 50) {
            let ip = IpAddr::V4(std::net::Ipv4Addr::from(0x0A00_0000 + n));
            limiter.record_failure(ip, t0 + Duration::from_millis(u64::from(n)));
        }
        assert_eq!(limiter.lock().len(), MAX_PEERS);
        // The newest offender is still refused.
        let newest = IpAddr::V4(std::net::Ipv4Addr::from(
            0x0A00_0000 + MAX_PEERS as u32 + 49,
        ));
        assert!(
            limiter
                .refusal(newest, t0 + Duration::from_secs(1))
                .is_some()
        );
    }
}
