//! Metric primitives whose hot path is one atomic add: counters, gauges and fixed-bucket
//! histograms, each created once with its labels, and the Prometheus text format (0.0.4) they
//! are written in. Nothing here allocates or locks when a value changes.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

/// A value that only goes up.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A value that goes up and down.
#[derive(Debug, Default)]
pub struct Gauge(AtomicI64);

impl Gauge {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dec(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn set(&self, v: i64) {
        self.0.store(v, Ordering::Relaxed);
    }

    pub fn add(&self, n: i64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> i64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// Upper bounds, in seconds, of the latency buckets: fine below a millisecond, where a proxy
/// hop lives, and up to the 30 s of a slow acks=all write.
pub const LATENCY_BUCKETS: [f64; 18] =
    [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];

/// Durations in fixed buckets; the sum is kept in nanoseconds so an observation is three atomic
/// adds and no lock.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    count: AtomicU64,
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        if let Some(b) = LATENCY_BUCKETS.iter().position(|le| secs <= *le).and_then(|i| self.buckets.get(i)) {
            b.fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_nanos.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// Writes metrics in the Prometheus text format: one HELP and TYPE per family, then its samples.
pub struct Encoder {
    out: String,
}

/// Label pairs of one sample, already escaped by `labels`.
pub type Labels = String;

/// `{k="v",...}` with values escaped as the text format requires; empty for no labels.
pub fn labels(pairs: &[(&str, &str)]) -> Labels {
    if pairs.is_empty() {
        return String::new();
    }
    let body: Vec<String> =
        pairs.iter().map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n"))).collect();
    format!("{{{}}}", body.join(","))
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder { out: String::with_capacity(16 * 1024) }
    }

    pub fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    pub fn sample(&mut self, name: &str, labels: &str, value: impl std::fmt::Display) {
        let _ = writeln!(self.out, "{name}{labels} {value}");
    }

    /// A family of one unlabelled sample (a plain counter or gauge).
    pub fn single(&mut self, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
        self.family(name, kind, help);
        self.sample(name, "", value);
    }

    /// The bucket, sum and count samples of one histogram (cumulative buckets, `+Inf` last).
    pub fn histogram(&mut self, name: &str, label_pairs: &[(&str, &str)], h: &Histogram) {
        let mut cumulative = 0u64;
        for (le, b) in LATENCY_BUCKETS.iter().zip(h.buckets.iter()) {
            cumulative += b.load(Ordering::Relaxed);
            let le = le.to_string();
            let mut pairs = label_pairs.to_vec();
            pairs.push(("le", &le));
            self.sample(&format!("{name}_bucket"), &labels(&pairs), cumulative);
        }
        let count = h.count.load(Ordering::Relaxed);
        let mut pairs = label_pairs.to_vec();
        pairs.push(("le", "+Inf"));
        self.sample(&format!("{name}_bucket"), &labels(&pairs), count);
        let sum = h.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        self.sample(&format!("{name}_sum"), &labels(label_pairs), sum);
        self.sample(&format!("{name}_count"), &labels(label_pairs), count);
    }

    pub fn finish(self) -> String {
        self.out
    }
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative_and_the_sum_is_in_seconds() {
        let h = Histogram::default();
        for us in [40, 90, 90, 2_000_000] {
            h.observe(Duration::from_micros(us));
        }
        let mut e = Encoder::new();
        e.family("x_seconds", "histogram", "test");
        e.histogram("x_seconds", &[("api", "Produce")], &h);
        let text = e.finish();
        assert!(text.contains("x_seconds_bucket{api=\"Produce\",le=\"0.00005\"} 1\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{api=\"Produce\",le=\"0.0001\"} 3\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{api=\"Produce\",le=\"2.5\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_bucket{api=\"Produce\",le=\"+Inf\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_count{api=\"Produce\"} 4\n"), "{text}");
        assert!(text.contains("x_seconds_sum{api=\"Produce\"} 2.00022\n"), "{text}");
    }

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(labels(&[("a", "x\"y\\z\n")]), "{a=\"x\\\"y\\\\z\\n\"}");
        assert_eq!(labels(&[]), "");
    }
}
