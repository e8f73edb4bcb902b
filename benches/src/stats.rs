//! Percentiles and medians.

use serde::{Deserialize, Serialize};

/// Latency percentiles, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Largest.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

/// The value at quantile `q` (0 to 1) of sorted values (nearest rank).
pub fn quantile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentiles of sorted nanosecond values, in microseconds.
pub fn percentiles(sorted_ns: &[u64]) -> Percentiles {
    let us = |ns: u64| ns as f64 / 1000.0;
    let mean = if sorted_ns.is_empty() {
        0.0
    } else {
        sorted_ns.iter().map(|&n| n as f64).sum::<f64>() / sorted_ns.len() as f64 / 1000.0
    };
    Percentiles {
        p50: us(quantile(sorted_ns, 0.50)),
        p90: us(quantile(sorted_ns, 0.90)),
        p99: us(quantile(sorted_ns, 0.99)),
        p999: us(quantile(sorted_ns, 0.999)),
        max: us(sorted_ns.last().copied().unwrap_or(0)),
        mean,
    }
}

/// The quantiles plotted as a latency curve.
pub const CURVE_QUANTILES: [f64; 14] = [
    0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999,
];

/// `(quantile, microseconds)` points of sorted nanosecond values, for plots.
pub fn curve(sorted_ns: &[u64]) -> Vec<(f64, f64)> {
    CURVE_QUANTILES
        .iter()
        .map(|&q| (q, quantile(sorted_ns, q) as f64 / 1000.0))
        .collect()
}

/// The median of some values (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len() % 2 == 1 {
        v[mid]
    } else {
        (v[mid - 1] + v[mid]) / 2.0
    }
}

/// Counts by kind, as `3 × 200, 1 × 409`.
pub fn tally<K: std::fmt::Display>(counts: &std::collections::BTreeMap<K, u64>) -> String {
    counts
        .iter()
        .map(|(kind, n)| format!("{n} × {kind}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_quantiles() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(quantile(&v, 0.5), 50_000);
        assert_eq!(quantile(&v, 0.99), 99_000);
        assert_eq!(quantile(&v, 1.0), 100_000);
        assert_eq!(quantile(&v, 0.0), 1000);
        assert_eq!(percentiles(&v).p50, 50.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
