//! Retries as data: how many attempts, and how long to wait before each.

use std::time::Duration;

/// Exponential backoff with full jitter: the wait before retry `n` (1-based) is uniform in
/// `[0, min(cap, base * 2^(n-1))]`, and never shorter than a server's `x-acs-retry-after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    pub base: Duration,
    pub cap: Duration,
}

impl RetryPolicy {
    /// The transport's own retries: few and short, so a worker never holds a lease through a
    /// long wait; the durable step retry (`[alibaba.retry]`) takes over from there.
    pub const CALL: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(100),
        cap: Duration::from_secs(1),
    };

    /// `unit` is a uniform sample in `[0, 1)`: injected so the schedule is testable.
    pub fn delay(&self, retry: u32, unit: f64, retry_after: Option<Duration>) -> Duration {
        let exponent = retry.saturating_sub(1).min(30);
        let ceiling = self.base.saturating_mul(1u32 << exponent).min(self.cap);
        let jittered = ceiling.mul_f64(unit.clamp(0.0, 1.0));
        match retry_after {
            Some(after) => jittered.max(after.min(self.cap)),
            None => jittered,
        }
    }
}

/// A uniform sample in `[0, 1)` from the operating system's randomness.
pub fn unit_sample() -> f64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("the operating system provides randomness");
    (u64::from_le_bytes(bytes) >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: RetryPolicy = RetryPolicy {
        max_attempts: 5,
        base: Duration::from_millis(500),
        cap: Duration::from_secs(20),
    };

    #[test]
    fn the_ceiling_doubles_up_to_the_cap() {
        let almost_one = 0.999_999;
        let ms = |retry| POLICY.delay(retry, almost_one, None).as_millis();
        assert_eq!((ms(1), ms(2), ms(3)), (499, 999, 1999));
        assert_eq!(ms(10), 19_999);
        assert_eq!(POLICY.delay(3, 0.0, None), Duration::ZERO);
        assert_eq!(POLICY.delay(3, 0.5, None), Duration::from_secs(1));
    }

    #[test]
    fn a_server_retry_after_is_a_floor_within_the_cap() {
        let after = Some(Duration::from_secs(3));
        assert_eq!(POLICY.delay(1, 0.0, after), Duration::from_secs(3));
        assert_eq!(
            POLICY.delay(1, 0.0, Some(Duration::from_secs(600))),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn samples_are_in_range() {
        for _ in 0..1000 {
            let u = unit_sample();
            assert!((0.0..1.0).contains(&u));
        }
    }
}
