//! Client-side rate limits per API class, with containment calls served before forensics.
//!
//! Each class admits one call every `1 / rate` seconds (plus a small guard). Spacing calls rather than allowing
//! bursts keeps any one-second window within the documented quota (ActionTrail
//! `LookupEvents`: 2 per second per account). One limiter belongs to one client, and one
//! client acts in one account.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// A group of calls that share a quota.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ApiClass {
    /// ActionTrail `LookupEvents`.
    LookupEvents,
    /// RAM and IMS calls that change something.
    RamWrite,
    /// Everything else.
    Other,
}

impl ApiClass {
    /// The class's name as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LookupEvents => "lookup_events",
            Self::RamWrite => "ram_write",
            Self::Other => "other",
        }
    }
}

/// Who waits longer when both wait for the same class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Priority {
    Forensics,
    Normal,
    /// Policy attach, key disable: stop the attacker first.
    Containment,
}

struct Lane {
    interval: Duration,
    next_free: Instant,
    waiting: [usize; 3],
}

/// Spaces calls per class; higher priorities go first.
pub struct RateLimiter {
    lanes: Mutex<HashMap<ApiClass, Lane>>,
}

impl RateLimiter {
    /// `rates` gives calls per second for each class; a class without a rate is unlimited.
    pub fn new(rates: &[(ApiClass, f64)]) -> Self {
        let now = Instant::now();
        let lanes = rates
            .iter()
            .filter(|(_, rate)| *rate > 0.0)
            .map(|&(class, rate)| {
                // A 5 % guard: requests reach the server with some jitter, and a quota
                // counted over sliding one-second windows must not see two of ours bunch up.
                let lane = Lane {
                    interval: Duration::from_secs_f64(1.05 / rate),
                    next_free: now,
                    waiting: [0; 3],
                };
                (class, lane)
            })
            .collect();
        Self {
            lanes: Mutex::new(lanes),
        }
    }

    /// Waits for this class's next slot.
    pub async fn acquire(&self, class: ApiClass, priority: Priority) {
        let mut registered = false;
        loop {
            let wait = {
                let mut lanes = self
                    .lanes
                    .lock()
                    .expect("rate limiter lock is not poisoned");
                let Some(lane) = lanes.get_mut(&class) else {
                    return;
                };
                if registered {
                    lane.waiting[priority as usize] -= 1;
                }
                let now = Instant::now();
                let outranked = lane.waiting[priority as usize + 1..].iter().any(|&n| n > 0);
                if lane.next_free <= now && !outranked {
                    lane.next_free = lane.next_free.max(now) + lane.interval;
                    return;
                }
                lane.waiting[priority as usize] += 1;
                registered = true;
                // An outranked caller re-checks after one interval; the others when a slot frees.
                lane.next_free
                    .saturating_duration_since(now)
                    .max(if outranked {
                        lane.interval
                    } else {
                        Duration::ZERO
                    })
            };
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn calls_are_spaced_by_the_class_rate() {
        let limiter = RateLimiter::new(&[(ApiClass::LookupEvents, 2.0)]);
        let start = Instant::now();
        for _ in 0..5 {
            limiter
                .acquire(ApiClass::LookupEvents, Priority::Normal)
                .await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(2100));
        // Unlimited classes never wait.
        let before = Instant::now();
        limiter.acquire(ApiClass::Other, Priority::Normal).await;
        assert_eq!(before.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn containment_goes_before_waiting_forensics() {
        let limiter = Arc::new(RateLimiter::new(&[(ApiClass::RamWrite, 1.0)]));
        limiter.acquire(ApiClass::RamWrite, Priority::Normal).await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (name, priority) in [
            ("forensics-1", Priority::Forensics),
            ("forensics-2", Priority::Forensics),
            ("containment", Priority::Containment),
        ] {
            let (limiter, order) = (limiter.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                limiter.acquire(ApiClass::RamWrite, priority).await;
                order.lock().unwrap().push(name);
            }));
            tokio::task::yield_now().await;
        }
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(order.lock().unwrap()[0], "containment");
    }
}
