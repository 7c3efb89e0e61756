//! How long this host's calls to other hosts take: a histogram that any
//! thread records into without a lock (a relaxed add on one bucket), fine
//! enough that a percentile read from it is within a few percent, shown in
//! `/metrics` as a Prometheus histogram of the buckets that have counts.
//!
//! Buckets are log-linear, as HdrHistogram's: exact below 16 ns, then
//! 16 per power of two (each at most 1/16 of its lower bound wide), up to
//! 2^40 ns (18 minutes); anything longer counts in the last.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Buckets per power of two (and the exact ones below the first).
const SUBS: u64 = 16;
/// log2 of [`SUBS`].
const SUB_BITS: u32 = 4;
/// The largest power of two with buckets of its own.
const MAX_OCTAVE: u32 = 40;
/// How many buckets.
const BUCKETS: usize = (SUBS + (MAX_OCTAVE - SUB_BITS + 1) as u64 * SUBS) as usize;

/// Durations of calls, recorded from any thread.
pub struct LatencyHistogram {
    buckets: Box<[AtomicU64]>,
    sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum_ns: AtomicU64::new(0),
        }
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.count())
            .finish()
    }
}

/// The bucket of `ns`.
fn index(ns: u64) -> usize {
    if ns < SUBS {
        return ns as usize;
    }
    let octave = (63 - ns.leading_zeros()).min(MAX_OCTAVE);
    if octave == MAX_OCTAVE && ns >> MAX_OCTAVE > 1 {
        return BUCKETS - 1;
    }
    let sub = (ns >> (octave - SUB_BITS)) & (SUBS - 1);
    (SUBS + u64::from(octave - SUB_BITS) * SUBS + sub) as usize
}

/// The durations bucket `i` holds: `[lower, upper)` in ns.
pub fn bucket_bounds(i: usize) -> (u64, u64) {
    let i = i as u64;
    if i < SUBS {
        return (i, i + 1);
    }
    let octave = (i - SUBS) / SUBS + u64::from(SUB_BITS);
    let sub = (i - SUBS) % SUBS;
    let width = 1u64 << (octave - u64::from(SUB_BITS));
    let lower = (SUBS + sub) * width;
    (lower, lower + width)
}

impl LatencyHistogram {
    /// Records one call of `took`.
    // PERFORMANCE_CRITICAL_PATH: once per call to another host.
    pub fn record(&self, took: Duration) {
        let ns = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.buckets[index(ns)].fetch_add(1, Relaxed);
        self.sum_ns.fetch_add(ns, Relaxed);
    }

    /// How many calls were recorded.
    pub fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Relaxed)).sum()
    }

    /// The histogram in the Prometheus text format as `name`: a bucket
    /// per fine bucket with counts (its upper bound as `le`, cumulative),
    /// `+Inf`, the sum in seconds and the count.
    pub fn prometheus(&self, name: &str, help: &str) -> String {
        let mut out = format!("# HELP {name} {help}\n# TYPE {name} histogram\n");
        let mut cumulative = 0u64;
        for (i, b) in self.buckets.iter().enumerate() {
            let n = b.load(Relaxed);
            if n == 0 {
                continue;
            }
            cumulative += n;
            let (_, upper) = bucket_bounds(i);
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{}\"}} {cumulative}",
                upper as f64 / 1e9
            );
        }
        let sum = self.sum_ns.load(Relaxed) as f64 / 1e9;
        let _ = write!(
            out,
            "{name}_bucket{{le=\"+Inf\"}} {cumulative}\n{name}_sum {sum}\n{name}_count {cumulative}\n"
        );
        out
    }
}

/// Counts per bucket read back from [`LatencyHistogram::prometheus`]
/// text (cumulative by upper bound in seconds), so that a reader can take
/// the difference of two readings and its percentiles.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Buckets {
    /// (upper bound in ns, calls in the bucket), by bound.
    counts: Vec<(u64, u64)>,
}

impl Buckets {
    /// The buckets of histogram `name` in Prometheus text `text` (none if
    /// it is not there).
    pub fn parse(text: &str, name: &str) -> Buckets {
        let prefix = format!("{name}_bucket{{le=\"");
        let mut cumulative: Vec<(u64, u64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix(&prefix))
            .filter_map(|rest| {
                let (le, count) = rest.split_once("\"} ")?;
                let secs: f64 = le.parse().ok()?;
                Some(((secs * 1e9).round() as u64, count.trim().parse().ok()?))
            })
            .collect();
        cumulative.sort_unstable();
        let mut previous = 0;
        let counts = cumulative
            .into_iter()
            .map(|(le, c)| {
                let n = c.saturating_sub(previous);
                previous = c;
                (le, n)
            })
            .collect();
        Buckets { counts }
    }

    /// What was recorded after `earlier` (a reading of the same histogram).
    pub fn since(&self, earlier: &Buckets) -> Buckets {
        let counts = self
            .counts
            .iter()
            .map(|&(le, n)| {
                let before = earlier
                    .counts
                    .iter()
                    .find(|(l, _)| *l == le)
                    .map_or(0, |(_, n)| *n);
                (le, n.saturating_sub(before))
            })
            .collect();
        Buckets { counts }
    }

    /// How many calls.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|(_, n)| n).sum()
    }

    /// The `q` quantile (0..=1), interpolated within its bucket; none
    /// without calls.
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut below = 0u64;
        for &(upper, n) in &self.counts {
            if n > 0 && (below + n) as f64 >= rank {
                let lower = lower_bound(upper);
                let within = (rank - below as f64) / n as f64;
                let ns = lower as f64 + within * (upper - lower) as f64;
                return Some(Duration::from_nanos(ns as u64));
            }
            below += n;
        }
        None
    }
}

/// The lower bound of the bucket whose upper bound is `upper` ns.
fn lower_bound(upper: u64) -> u64 {
    let (lower, u) = bucket_bounds(index(upper.saturating_sub(1)));
    if u == upper {
        lower
    } else {
        upper.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_every_duration_without_gaps() {
        let mut expected_lower = 0;
        for i in 0..BUCKETS {
            let (lower, upper) = bucket_bounds(i);
            assert_eq!(lower, expected_lower, "bucket {i}");
            assert!(upper > lower);
            // At most 1/16 of the lower bound wide beyond the exact ones.
            assert!(
                lower < SUBS || (upper - lower) * SUBS <= lower,
                "bucket {i}"
            );
            assert_eq!(index(lower), i);
            assert_eq!(index(upper - 1), i);
            expected_lower = upper;
        }
        assert_eq!(index(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn percentiles_read_back_from_the_metrics_text_are_within_a_bucket() {
        let h = LatencyHistogram::default();
        // 1..=1000 µs, once each: p50 500 µs, p99 990 µs.
        for us in 1..=1000u64 {
            h.record(Duration::from_micros(us));
        }
        let text = h.prometheus("t_seconds", "test");
        assert!(text.contains("# TYPE t_seconds histogram"));
        assert!(text.contains("t_seconds_count 1000"));
        let b = Buckets::parse(&text, "t_seconds");
        assert_eq!(b.count(), 1000);
        for (q, exact) in [(0.5, 500.0), (0.99, 990.0), (0.9, 900.0)] {
            let got = b.quantile(q).unwrap().as_secs_f64() * 1e6;
            assert!(
                (got - exact).abs() / exact < 0.04,
                "q{q}: {got} µs, exact {exact}"
            );
        }
    }

    #[test]
    fn the_difference_of_two_readings_holds_only_what_came_between() {
        let h = LatencyHistogram::default();
        for _ in 0..100 {
            h.record(Duration::from_micros(50));
        }
        let before = Buckets::parse(&h.prometheus("t", "t"), "t");
        for _ in 0..10 {
            h.record(Duration::from_micros(400));
        }
        let after = Buckets::parse(&h.prometheus("t", "t"), "t");
        let between = after.since(&before);
        assert_eq!(between.count(), 10);
        let p50 = between.quantile(0.5).unwrap().as_micros();
        assert!((380..=420).contains(&p50), "{p50}");
        assert_eq!(Buckets::default().quantile(0.5), None);
    }
}
