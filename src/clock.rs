//! Time and randomness for chronik, behind traits so that tests can inject
//! them: [`Clock`] (monotonic `Instant`s and wall-clock Unix milliseconds),
//! [`RandomSource`] (random numbers), and [`Backoff`] (an exponential retry
//! schedule with optional jitter). [`SystemClock`] and [`ThreadRandom`] are the
//! only places in chronik that read real time or OS randomness; everything
//! else takes a [`SharedClock`] / `RandomSource`, and tests substitute
//! [`ManualClock`] and [`SeededRandom`] to run deterministically.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{RngCore, SeedableRng};

/// A source of time.
pub trait Clock: Send + Sync + 'static {
    /// The current monotonic instant (for timeouts and intervals).
    fn now(&self) -> Instant;

    /// The current wall-clock time in milliseconds since the Unix epoch (for
    /// record timestamps and retention); may jump backwards or forwards.
    fn unix_millis(&self) -> i64;

    /// Time elapsed since `earlier` (zero if `earlier` is in the future).
    fn elapsed_since(&self, earlier: Instant) -> Duration {
        self.now().saturating_duration_since(earlier)
    }
}

/// A clock shared between components.
pub type SharedClock = Arc<dyn Clock>;

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl SystemClock {
    /// A [`SharedClock`] reading real time.
    pub fn shared() -> SharedClock {
        Arc::new(SystemClock)
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }

    fn unix_millis(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
            // The system clock is set before 1970: report a negative time.
            Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
        }
    }
}

/// How far a [`ManualClock`] can be advanced (about 100 years), so that
/// `Instant` arithmetic never overflows.
pub const MANUAL_CLOCK_MAX_ELAPSED: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

#[derive(Debug)]
struct ManualState {
    /// Monotonic time elapsed since `origin`.
    elapsed: Duration,
    unix_millis: i64,
}

/// A clock that moves only when told to; for deterministic tests. Cloning
/// shares the same time, and it can be used from several threads.
#[derive(Debug, Clone)]
pub struct ManualClock {
    origin: Instant,
    state: Arc<Mutex<ManualState>>,
}

impl ManualClock {
    /// A clock whose wall time starts at `unix_millis`.
    pub fn new(unix_millis: i64) -> Self {
        ManualClock {
            origin: Instant::now(),
            state: Arc::new(Mutex::new(ManualState { elapsed: Duration::ZERO, unix_millis })),
        }
    }

    /// This clock as a [`SharedClock`] (sharing its time with `self`).
    pub fn shared(&self) -> SharedClock {
        Arc::new(self.clone())
    }

    fn lock(&self) -> MutexGuard<'_, ManualState> {
        // A panic while holding this lock cannot leave the state torn, so a
        // poisoned lock is still usable.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves both monotonic and wall-clock time forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut s = self.lock();
        s.elapsed = s.elapsed.saturating_add(by).min(MANUAL_CLOCK_MAX_ELAPSED);
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        s.unix_millis = s.unix_millis.saturating_add(ms);
    }

    /// Sets wall-clock time only (simulates an NTP step; `now()` is unaffected).
    pub fn set_unix_millis(&self, unix_millis: i64) {
        self.lock().unix_millis = unix_millis;
    }

    /// Monotonic time advanced since this clock was created.
    pub fn elapsed(&self) -> Duration {
        self.lock().elapsed
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        ManualClock::new(0)
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        let elapsed = self.lock().elapsed;
        // `advance` caps `elapsed` at MANUAL_CLOCK_MAX_ELAPSED, so this adds.
        self.origin.checked_add(elapsed).unwrap_or(self.origin)
    }

    fn unix_millis(&self) -> i64 {
        self.lock().unix_millis
    }
}

/// A source of random numbers.
pub trait RandomSource: Send + 'static {
    /// A uniformly distributed `u64`.
    fn next_u64(&mut self) -> u64;

    /// A uniformly distributed value in `[lo, hi)`; `lo` when `hi <= lo`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        let span = hi - lo;
        // Rejection sampling: discard the top partial block to stay unbiased.
        let zone = u64::MAX - (u64::MAX % span);
        loop {
            let v = self.next_u64();
            if v < zone {
                return lo + v % span;
            }
        }
    }

    /// A uniformly distributed duration in `[lo, hi)` at nanosecond
    /// resolution; `lo` when `hi <= lo`.
    fn duration_between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let to_nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(self.range(to_nanos(lo), to_nanos(hi)))
    }
}

impl<R: RandomSource + ?Sized> RandomSource for Box<R> {
    fn next_u64(&mut self) -> u64 {
        (**self).next_u64()
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        (**self).range(lo, hi)
    }
}

/// OS-seeded randomness (`rand::thread_rng`), for production.
#[derive(Debug, Clone, Copy, Default)]
pub struct ThreadRandom;

impl RandomSource for ThreadRandom {
    fn next_u64(&mut self) -> u64 {
        rand::thread_rng().next_u64()
    }
}

/// Deterministic randomness from a seed, for tests: the same seed gives the
/// same sequence.
#[derive(Debug, Clone)]
pub struct SeededRandom(StdRng);

impl SeededRandom {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom(StdRng::seed_from_u64(seed))
    }
}

impl RandomSource for SeededRandom {
    fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }
}

/// An exponential backoff schedule: attempt `n` (0-based) waits
/// `base * factor^n`, capped at `max_delay`, for `n < max_attempts`; after
/// that [`Backoff::delay`] returns `None` (give up). With base 100 ms, factor
/// 2 and 5 attempts the delays are 100, 200, 400, 800, 1600 ms.
///
/// Jitter (`with_jitter`) spreads each delay uniformly over
/// `[d * (1 - j), d * (1 + j)]`, drawn from a [`RandomSource`] by
/// [`Backoff::jittered_delay`]; [`Backoff::delay`] never jitters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    base: Duration,
    factor: u32,
    max_attempts: u32,
    max_delay: Duration,
    jitter: f64,
}

impl Backoff {
    /// Factor 2, no cap, no jitter.
    pub fn new(base: Duration, max_attempts: u32) -> Self {
        Backoff { base, factor: 2, max_attempts, max_delay: Duration::MAX, jitter: 0.0 }
    }

    /// Sets the growth factor (a factor of 0 is treated as 1: constant delay).
    pub fn with_factor(mut self, factor: u32) -> Self {
        self.factor = factor.max(1);
        self
    }

    /// Caps every delay at `max_delay`.
    pub fn with_max_delay(mut self, max_delay: Duration) -> Self {
        self.max_delay = max_delay;
        self
    }

    /// Sets the jitter fraction, clamped to `[0, 1]` (NaN means none).
    pub fn with_jitter(mut self, fraction: f64) -> Self {
        self.jitter = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
        self
    }

    /// The number of attempts that get a delay.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The delay before retry `attempt` (0-based), or `None` once
    /// `attempt >= max_attempts`. Saturates instead of overflowing.
    pub fn delay(&self, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let d = self.factor.checked_pow(attempt).and_then(|mult| self.base.checked_mul(mult)).unwrap_or(Duration::MAX);
        Some(d.min(self.max_delay))
    }

    /// [`Backoff::delay`] spread by the jitter fraction using `rng`.
    pub fn jittered_delay(&self, attempt: u32, rng: &mut dyn RandomSource) -> Option<Duration> {
        let d = self.delay(attempt)?;
        if self.jitter == 0.0 || d.is_zero() {
            return Some(d);
        }
        let spread = d.mul_f64(self.jitter);
        let lo = d.saturating_sub(spread);
        let hi = d.saturating_add(spread).saturating_add(Duration::from_nanos(1));
        Some(rng.duration_between(lo, hi))
    }

    /// All un-jittered delays in order.
    pub fn delays(&self) -> impl Iterator<Item = Duration> + '_ {
        (0..self.max_attempts).filter_map(|a| self.delay(a))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let c = ManualClock::new(1_000);
        let t0 = c.now();
        assert_eq!(c.now(), t0);
        assert_eq!(c.unix_millis(), 1_000);
        c.advance(ms(250));
        assert_eq!(c.now() - t0, ms(250));
        assert_eq!(c.elapsed_since(t0), ms(250));
        assert_eq!(c.elapsed(), ms(250));
        assert_eq!(c.unix_millis(), 1_250);
    }

    #[test]
    fn manual_clock_wall_time_can_jump_without_moving_monotonic_time() {
        let c = ManualClock::new(5_000);
        let t0 = c.now();
        c.set_unix_millis(100);
        assert_eq!(c.unix_millis(), 100);
        assert_eq!(c.now(), t0);
        c.advance(ms(10));
        assert_eq!(c.unix_millis(), 110);
        assert_eq!(c.elapsed_since(c.now() + ms(5)), Duration::ZERO);
    }

    #[test]
    fn manual_clock_saturates_instead_of_overflowing() {
        let c = ManualClock::new(i64::MAX - 5);
        let t0 = c.now();
        c.advance(Duration::MAX);
        c.advance(Duration::MAX);
        assert_eq!(c.now() - t0, MANUAL_CLOCK_MAX_ELAPSED);
        assert_eq!(c.unix_millis(), i64::MAX);
    }

    #[test]
    fn manual_clock_is_shared_between_clones_and_threads() {
        let c = ManualClock::new(0);
        let shared: SharedClock = c.shared();
        let t0 = shared.now();
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let c = c.clone();
                std::thread::spawn(move || {
                    for _ in 0..100 {
                        c.advance(ms(1));
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().expect("thread");
        }
        assert_eq!(shared.now() - t0, ms(400));
        assert_eq!(shared.unix_millis(), 400);
    }

    #[test]
    fn system_clock_is_monotonic_and_after_2020() {
        let c = SystemClock::shared();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!(c.unix_millis() > 1_577_836_800_000);
    }

    #[test]
    fn seeded_random_is_deterministic() {
        let mut a = SeededRandom::new(42);
        let mut b = SeededRandom::new(42);
        let mut c = SeededRandom::new(43);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn range_stays_in_bounds_and_covers_them() {
        let mut r = SeededRandom::new(7);
        let mut seen = [false; 5];
        for _ in 0..1_000 {
            let v = r.range(10, 15);
            assert!((10..15).contains(&v));
            seen[(v - 10) as usize] = true;
        }
        assert!(seen.iter().all(|&s| s));
        assert_eq!(r.range(5, 5), 5);
        assert_eq!(r.range(9, 3), 9);
        assert!(r.range(0, u64::MAX) < u64::MAX);
        let mut t = ThreadRandom;
        assert!((100..200).contains(&t.range(100, 200)));
    }

    #[test]
    fn boxed_random_source_works() {
        let mut boxed: Box<dyn RandomSource> = Box::new(SeededRandom::new(1));
        let mut plain = SeededRandom::new(1);
        assert_eq!(boxed.next_u64(), plain.next_u64());
        assert_eq!(boxed.range(0, 1000), plain.range(0, 1000));
    }

    #[test]
    fn duration_between_is_in_range() {
        let mut r = SeededRandom::new(3);
        for _ in 0..100 {
            let d = r.duration_between(ms(100), ms(200));
            assert!(d >= ms(100) && d < ms(200));
        }
        assert_eq!(r.duration_between(ms(5), ms(5)), ms(5));
    }

    #[test]
    fn backoff_doubles_then_gives_up() {
        let b = Backoff::new(ms(100), 5);
        let delays: Vec<_> = b.delays().collect();
        assert_eq!(delays, vec![ms(100), ms(200), ms(400), ms(800), ms(1600)]);
        assert_eq!(b.delay(0), Some(ms(100)));
        assert_eq!(b.delay(4), Some(ms(1600)));
        assert_eq!(b.delay(5), None);
        assert_eq!(b.delay(u32::MAX), None);
        assert_eq!(b.max_attempts(), 5);
        assert_eq!(Backoff::new(ms(100), 0).delay(0), None);
    }

    #[test]
    fn backoff_factor_cap_and_saturation() {
        let b = Backoff::new(ms(10), 4).with_factor(3);
        assert_eq!(b.delays().collect::<Vec<_>>(), vec![ms(10), ms(30), ms(90), ms(270)]);
        let b = Backoff::new(ms(100), 10).with_max_delay(ms(500));
        assert_eq!(b.delay(2), Some(ms(400)));
        assert_eq!(b.delay(3), Some(ms(500)));
        assert_eq!(b.delay(9), Some(ms(500)));
        let b = Backoff::new(ms(100), 100).with_factor(0);
        assert_eq!(b.delay(50), Some(ms(100)));
        let b = Backoff::new(Duration::from_secs(1), 200);
        assert_eq!(b.delay(199), Some(Duration::MAX));
    }

    #[test]
    fn backoff_jitter_is_bounded_and_deterministic_with_a_seed() {
        let b = Backoff::new(ms(100), 5).with_jitter(0.2);
        let mut r1 = SeededRandom::new(9);
        let mut r2 = SeededRandom::new(9);
        let mut distinct = std::collections::BTreeSet::new();
        for attempt in 0..5 {
            for _ in 0..50 {
                let base = b.delay(attempt).expect("attempt in range");
                let d = b.jittered_delay(attempt, &mut r1).expect("attempt in range");
                assert_eq!(Some(d), b.jittered_delay(attempt, &mut r2));
                assert!(d >= base.mul_f64(0.8) && d <= base.mul_f64(1.2), "{d:?}");
                distinct.insert(d);
            }
        }
        assert!(distinct.len() > 50);
        assert_eq!(b.jittered_delay(5, &mut r1), None);
        let plain = Backoff::new(ms(100), 5);
        assert_eq!(plain.jittered_delay(2, &mut r1), Some(ms(400)));
        assert_eq!(Backoff::new(ms(100), 5).with_jitter(f64::NAN), Backoff::new(ms(100), 5));
    }
}
