//! Latency and interval samples on HDR histograms (`hdrhistogram`): recording is O(1) and does
//! not allocate once the histogram has grown to the largest value seen; quantiles are read from
//! the histograms at scrape time. Two histograms rotate so the quantiles follow recent behaviour
//! (the last [`WINDOW`] to 2 × [`WINDOW`] samples) while `count` and `sum` cover the whole run.

use hdrhistogram::Histogram;

/// Samples per histogram before the windows rotate.
pub const WINDOW: u64 = 4096;

/// Significant decimal digits kept by the histograms (relative error below 0.1 %).
const SIGFIG: u8 = 3;

/// Samples are kept in microseconds.
const MICROS: f64 = 1_000_000.0;

/// The recent samples of an interval or latency (seconds), for quantiles at scrape time, and the
/// count and sum of every sample.
#[derive(Debug, Clone)]
pub struct Samples {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    count: u64,
    sum: f64,
}

impl Default for Samples {
    fn default() -> Self {
        let empty = Histogram::new(SIGFIG).expect("3 significant figures is a valid precision");
        Samples { current: empty.clone(), previous: empty, count: 0, sum: 0.0 }
    }
}

impl Samples {
    /// Records one sample of `seconds` (negative values count as 0; a value beyond the
    /// histogram's reach is clamped to its largest trackable value).
    pub fn record(&mut self, seconds: f64) {
        let seconds = seconds.max(0.0);
        if self.current.len() >= WINDOW {
            std::mem::swap(&mut self.current, &mut self.previous);
            self.current.reset();
        }
        let micros = (seconds * MICROS).round() as u64;
        // The histograms auto-resize (an allocation only when a larger value than any before
        // arrives); only a value beyond their absolute limit is clamped.
        if self.current.record(micros).is_err() {
            self.current.saturating_record(micros);
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// The q-quantile (0..=1) of the recent samples, in seconds; `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.current.is_empty() && self.previous.is_empty() {
            return None;
        }
        let q = q.clamp(0.0, 1.0);
        let micros = if self.previous.is_empty() {
            self.current.value_at_quantile(q)
        } else {
            let mut both = self.previous.clone();
            // Both histograms auto-resize, so adding never fails for want of range.
            both.add(&self.current).ok()?;
            both.value_at_quantile(q)
        };
        Some(micros as f64 / MICROS)
    }

    /// Samples recorded since the start.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of every sample recorded since the start, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Samples the quantiles are currently computed from.
    pub fn recent(&self) -> u64 {
        self.current.len() + self.previous.len()
    }
}

/// Cumulative counts of samples at or below fixed upper bounds (a Prometheus histogram): unlike
/// [`Samples`]' recent quantiles, two scrapes' counts give the distribution of exactly the
/// samples recorded between them.
#[derive(Debug, Clone)]
pub struct Buckets {
    bounds: &'static [f64],
    /// `counts[i]`: samples `<= bounds[i]`, not cumulative here (summed at export).
    counts: Vec<u64>,
    count: u64,
    sum: f64,
}

impl Buckets {
    /// Empty buckets with these upper bounds in seconds (ascending; `+Inf` is implied).
    pub fn new(bounds: &'static [f64]) -> Buckets {
        Buckets { bounds, counts: vec![0; bounds.len()], count: 0, sum: 0.0 }
    }

    /// Records one sample of `seconds`.
    pub fn record(&mut self, seconds: f64) {
        if let Some(i) = self.bounds.iter().position(|b| seconds <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum += seconds;
    }

    /// `(upper bound, samples at or below it)` for every bound, cumulative as Prometheus has them.
    pub fn cumulative(&self) -> impl Iterator<Item = (f64, u64)> + '_ {
        self.bounds
            .iter()
            .zip(self.counts.iter().scan(0, |acc, c| {
                *acc += c;
                Some(*acc)
            }))
            .map(|(b, c)| (*b, c))
    }

    /// Samples recorded (`+Inf` included).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of every sample, in seconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= b * 0.001 + 1e-6
    }

    #[test]
    fn empty_samples_have_no_quantiles() {
        let s = Samples::default();
        assert_eq!(s.quantile(0.5), None);
        assert_eq!(s.count(), 0);
        assert_eq!(s.sum(), 0.0);
    }

    #[test]
    fn quantiles_of_a_known_distribution() {
        let mut s = Samples::default();
        // 1 ms .. 1000 ms, one sample each.
        for ms in 1..=1000 {
            s.record(ms as f64 / 1000.0);
        }
        for (q, want) in [(0.5, 0.500), (0.99, 0.990), (1.0, 1.000), (0.0, 0.001)] {
            let got = s.quantile(q).unwrap();
            assert!(close(got, want), "q{q}: got {got}, want {want}");
        }
        assert_eq!(s.count(), 1000);
        assert!(close(s.sum(), 500.5), "sum {}", s.sum());
    }

    #[test]
    fn outliers_show_in_high_quantiles_only() {
        let mut s = Samples::default();
        for _ in 0..990 {
            s.record(0.150);
        }
        for _ in 0..10 {
            s.record(2.0);
        }
        assert!(close(s.quantile(0.5).unwrap(), 0.150));
        assert!(close(s.quantile(0.99).unwrap(), 0.150));
        assert!(close(s.quantile(1.0).unwrap(), 2.0));
    }

    #[test]
    fn the_window_rotates_but_count_and_sum_cover_everything() {
        let mut s = Samples::default();
        for _ in 0..WINDOW {
            s.record(1.0);
        }
        assert_eq!(s.recent(), WINDOW);
        // One window of 10 ms samples: the 1 s samples are still in the previous window.
        for _ in 0..WINDOW {
            s.record(0.010);
        }
        assert_eq!(s.recent(), 2 * WINDOW);
        assert!(close(s.quantile(1.0).unwrap(), 1.0));
        // The next sample rotates: the 1 s window is dropped.
        s.record(0.010);
        assert_eq!(s.recent(), WINDOW + 1);
        assert!(close(s.quantile(1.0).unwrap(), 0.010));
        assert_eq!(s.count(), 2 * WINDOW + 1);
        let want = WINDOW as f64 * 1.0 + (WINDOW + 1) as f64 * 0.010;
        assert!((s.sum() - want).abs() < 1e-6, "sum {}", s.sum());
    }

    #[test]
    fn negative_and_huge_values_are_kept_in_range() {
        let mut s = Samples::default();
        s.record(-1.0);
        assert_eq!(s.quantile(1.0), Some(0.0));
        s.record(86_400.0);
        assert!(close(s.quantile(1.0).unwrap(), 86_400.0));
    }

    #[test]
    fn buckets_count_each_sample_once_and_export_cumulatively() {
        static BOUNDS: [f64; 3] = [0.1, 0.2, 0.5];
        let mut b = Buckets::new(&BOUNDS);
        for v in [0.05, 0.1, 0.15, 0.3, 0.7, 2.0] {
            b.record(v);
        }
        let got: Vec<_> = b.cumulative().collect();
        assert_eq!(got, vec![(0.1, 2), (0.2, 3), (0.5, 4)]);
        assert_eq!(b.count(), 6, "the samples above every bound count only in +Inf");
        assert!((b.sum() - 3.3).abs() < 1e-9);
    }
}
