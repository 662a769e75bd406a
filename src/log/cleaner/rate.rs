//! The cleaner's I/O rate limit (`[cleaner] io-max-bytes-per-second`, Kafka's
//! `log.cleaner.io.max.bytes.per.second`): a token bucket over an injected clock. The cleaner
//! reports the bytes it read or wrote; [`Throttle::delay`] says how long to sleep before going on,
//! and the caller sleeps (so tests check the schedule without sleeping).

use std::time::{Duration, Instant};

use crate::clock::SharedClock;

/// A token bucket of `rate` bytes per second holding at most one second of tokens.
pub struct Throttle {
    rate: Option<u64>,
    clock: SharedClock,
    tokens: f64,
    last: Instant,
}

impl Throttle {
    /// `rate` None: unlimited.
    pub fn new(rate: Option<u64>, clock: SharedClock) -> Self {
        let last = clock.now();
        Throttle { rate: rate.filter(|r| *r > 0), clock, tokens: rate.unwrap_or(0) as f64, last }
    }

    /// Takes `bytes` from the bucket; returns how long the caller must wait before doing more
    /// I/O (zero while the bucket holds enough).
    pub fn delay(&mut self, bytes: u64) -> Duration {
        let Some(rate) = self.rate else {
            return Duration::ZERO;
        };
        let now = self.clock.now();
        let refill = now.saturating_duration_since(self.last).as_secs_f64() * rate as f64;
        self.last = now;
        self.tokens = (self.tokens + refill).min(rate as f64) - bytes as f64;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / rate as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;

    #[test]
    fn unlimited_never_waits() {
        let c = ManualClock::new(0);
        let mut t = Throttle::new(None, c.shared());
        assert_eq!(t.delay(u64::MAX / 2), Duration::ZERO);
    }

    #[test]
    fn bucket_paces_to_the_rate() {
        let c = ManualClock::new(0);
        let mut t = Throttle::new(Some(1000), c.shared());
        // One second of burst, then each byte costs a millisecond.
        assert_eq!(t.delay(1000), Duration::ZERO);
        assert_eq!(t.delay(500), Duration::from_millis(500));
        // The caller slept 500 ms: the debt is paid, nothing is owed.
        c.advance(Duration::from_millis(500));
        assert_eq!(t.delay(0), Duration::ZERO);
        c.advance(Duration::from_millis(250));
        assert_eq!(t.delay(250), Duration::ZERO);
        assert_eq!(t.delay(100), Duration::from_millis(100));
        // A long pause refills at most one second of tokens.
        c.advance(Duration::from_secs(60));
        assert_eq!(t.delay(1000), Duration::ZERO);
        assert_eq!(t.delay(2000), Duration::from_secs(2));
    }
}
