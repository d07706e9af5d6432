//! Histogram summaries, confidence intervals across repetitions, and Welch's t-test against a
//! baseline. Pure functions; the reference values in the tests come from SciPy 1.17
//! (`scipy.stats.t.ppf`, `scipy.stats.ttest_ind(equal_var=False)`).

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// The p-value below which a difference is called significant.
pub const ALPHA: f64 = 0.05;

/// Latency figures of a run or of a histogram, in microseconds: the one latency summary (the
/// engine's run result carries it as `latency_us`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    /// Mean of the timed transactions.
    pub mean: f64,
    /// netperf's RT_LATENCY: elapsed time / transactions (0 when not known).
    pub rate_mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub max: f64,
}

impl LatencySummary {
    /// Summarizes a histogram of nanoseconds into microseconds; `rate_mean` is netperf's
    /// RT_LATENCY, `elapsed_ns / transactions` (0 without transactions).
    pub fn from_histogram(h: &Histogram<u64>, elapsed_ns: u64, transactions: u64) -> Self {
        let rate_mean = if transactions > 0 {
            elapsed_ns as f64 / transactions as f64 / 1000.0
        } else {
            0.0
        };
        LatencySummary {
            rate_mean,
            ..summarize_ns(h)
        }
    }
}

/// Summarizes a histogram of nanosecond values in microseconds (all zero when empty; `rate_mean`
/// 0: a histogram alone has no elapsed time, [`LatencySummary::from_histogram`] has).
pub fn summarize_ns(h: &Histogram<u64>) -> LatencySummary {
    if h.is_empty() {
        return LatencySummary::default();
    }
    let us = |ns: u64| ns as f64 / 1000.0;
    LatencySummary {
        mean: h.mean() / 1000.0,
        rate_mean: 0.0,
        stddev: h.stdev() / 1000.0,
        min: us(h.min()),
        p50: us(h.value_at_quantile(0.50)),
        p90: us(h.value_at_quantile(0.90)),
        p99: us(h.value_at_quantile(0.99)),
        p99_9: us(h.value_at_quantile(0.999)),
        max: us(h.max()),
    }
}

/// The empirical CDF of a nanosecond histogram as at most `points` (latency µs, fraction ≤)
/// pairs, denser in the tail (quantiles 1 - 10^-k are always included up to 0.9999).
pub fn cdf_points_us(h: &Histogram<u64>, points: usize) -> Vec<(f64, f64)> {
    if h.is_empty() || points < 2 {
        return Vec::new();
    }
    let linear = points.saturating_sub(6).max(2);
    let mut qs: Vec<f64> = (0..linear)
        .map(|i| i as f64 / (linear - 1) as f64)
        .collect();
    qs.extend([0.95, 0.99, 0.995, 0.999, 0.9999]);
    qs.retain(|q| *q < 1.0);
    qs.push(1.0);
    qs.sort_by(f64::total_cmp);
    qs.dedup();
    qs.into_iter()
        .map(|q| (h.value_at_quantile(q) as f64 / 1000.0, q))
        .collect()
}

/// Ticks per halving of the distance to 100% for [`percentile_points_us`] (HdrHistogram's
/// percentile distribution output uses 5).
pub const PERCENTILE_TICKS: u32 = 5;

/// A nanosecond histogram's percentile distribution as (quantile, latency µs) pairs, from
/// hdrhistogram's quantile iterator (HdrHistogram's percentile output): `ticks` steps per
/// halving of the distance to 100%, so the tail gets as many points as the body. Quantiles are
/// the levels iterated to; the last point is (1.0, max). Values equal to the previous point's
/// make one flat run: its first and last points are kept (the line stays true, with fewer points).
pub fn percentile_points_us(h: &Histogram<u64>, ticks: u32) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut out: Vec<(f64, f64)> = Vec::new();
    for v in h.iter_quantiles(ticks.max(1)) {
        let point = (
            v.quantile_iterated_to(),
            h.highest_equivalent(v.value_iterated_to()) as f64 / 1000.0,
        );
        let n = out.len();
        let flat = n >= 2 && out[n - 1].1 == point.1 && out[n - 2].1 == point.1;
        if flat || (n >= 1 && out[n - 1].0 >= point.0) {
            out[n - 1] = point;
        } else {
            out.push(point);
        }
    }
    if let Some(last) = out.last_mut() {
        last.0 = 1.0;
    }
    out
}

/// Mean and two-sided confidence interval of repetition results.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MeanCi {
    pub n: usize,
    pub mean: f64,
    /// Sample standard deviation (n - 1).
    pub stddev: f64,
    /// Half-width of the 95 % interval (Student t, n - 1 degrees of freedom); `None` for n < 2.
    pub ci95: Option<f64>,
}

impl MeanCi {
    /// Half-width relative to the mean (0.01 = ±1 %); `None` without an interval or mean 0.
    pub fn rel_half_width(&self) -> Option<f64> {
        self.ci95
            .filter(|_| self.mean != 0.0)
            .map(|h| h / self.mean.abs())
    }
}

/// Sample mean and standard deviation (n - 1); `None` for an empty slice.
pub fn mean_sd(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let sd = if xs.len() < 2 {
        0.0
    } else {
        (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    };
    Some((mean, sd))
}

/// The two-sided Student t quantile for `confidence` (e.g. 0.95) with `df` degrees of freedom.
pub fn t_quantile(confidence: f64, df: f64) -> f64 {
    StudentsT::new(0.0, 1.0, df)
        .map(|t| t.inverse_cdf(0.5 + confidence / 2.0))
        .unwrap_or(f64::NAN)
}

/// Mean with its 95 % confidence interval; `None` for an empty slice.
pub fn mean_ci95(xs: &[f64]) -> Option<MeanCi> {
    let (mean, stddev) = mean_sd(xs)?;
    let n = xs.len();
    let ci95 = (n >= 2).then(|| t_quantile(0.95, (n - 1) as f64) * stddev / (n as f64).sqrt());
    Some(MeanCi {
        n,
        mean,
        stddev,
        ci95,
    })
}

/// Result of Welch's unequal-variance t-test.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Welch {
    /// (mean(a) - mean(b)) / standard error.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p_value: f64,
}

/// Welch's t-test of `a` against `b`; `None` unless both have at least 2 values. Two samples
/// without any spread give p = 1 (equal means) or p = 0 (different means).
pub fn welch(a: &[f64], b: &[f64]) -> Option<Welch> {
    if a.len() < 2 || b.len() < 2 {
        return None;
    }
    let (ma, sa) = mean_sd(a)?;
    let (mb, sb) = mean_sd(b)?;
    let (va, vb) = (sa * sa / a.len() as f64, sb * sb / b.len() as f64);
    let se2 = va + vb;
    if se2 == 0.0 {
        let same = ma == mb;
        return Some(Welch {
            t: if same {
                0.0
            } else {
                f64::INFINITY.copysign(ma - mb)
            },
            df: (a.len() + b.len() - 2) as f64,
            p_value: if same { 1.0 } else { 0.0 },
        });
    }
    let t = (ma - mb) / se2.sqrt();
    let df = se2 * se2 / (va * va / (a.len() - 1) as f64 + vb * vb / (b.len() - 1) as f64);
    let p_value = StudentsT::new(0.0, 1.0, df)
        .map(|d| 2.0 * d.sf(t.abs()))
        .unwrap_or(f64::NAN)
        .clamp(0.0, 1.0);
    Some(Welch { t, df, p_value })
}

/// A sample's mean against a baseline's.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VsBaseline {
    /// mean(sample) - mean(baseline).
    pub delta: f64,
    /// mean(sample) / mean(baseline).
    pub ratio: f64,
    /// Welch two-sided p-value (`None` with fewer than 2 values on a side).
    pub p_value: Option<f64>,
    /// p < [`ALPHA`].
    pub significant: bool,
}

/// Compares `sample` with `baseline`; `None` if either is empty.
pub fn vs_baseline(sample: &[f64], baseline: &[f64]) -> Option<VsBaseline> {
    let (m, _) = mean_sd(sample)?;
    let (mb, _) = mean_sd(baseline)?;
    let p_value = welch(sample, baseline).map(|w| w.p_value);
    Some(VsBaseline {
        delta: m - mb,
        ratio: if mb != 0.0 { m / mb } else { f64::NAN },
        p_value,
        significant: p_value.is_some_and(|p| p < ALPHA),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: [f64; 5] = [5.12, 5.08, 5.15, 5.10, 5.11];
    const BRIDGE: [f64; 6] = [6.60, 6.55, 6.71, 6.62, 6.58, 6.64];
    const NOISY: [f64; 5] = [5.10, 5.20, 4.95, 5.30, 5.05];

    fn close(a: f64, b: f64, rel: f64) {
        assert!((a - b).abs() <= rel * b.abs().max(1e-300), "{a} vs {b}");
    }

    #[test]
    fn t_quantiles_match_scipy() {
        for (df, want) in [
            (1.0, 12.70620474),
            (2.0, 4.30265273),
            (4.0, 2.77644511),
            (9.0, 2.26215716),
            (29.0, 2.04522964),
        ] {
            close(t_quantile(0.95, df), want, 1e-6);
        }
    }

    #[test]
    fn confidence_interval_matches_scipy() {
        let c = mean_ci95(&HOST).unwrap();
        close(c.mean, 5.112, 1e-12);
        close(c.stddev, 0.0258843582111, 1e-9);
        close(c.ci95.unwrap(), 0.0321396757073, 1e-6);
        close(c.rel_half_width().unwrap(), 0.0321396757073 / 5.112, 1e-6);
        let c = mean_ci95(&BRIDGE).unwrap();
        close(c.ci95.unwrap(), 0.058115114193, 1e-6);
        let one = mean_ci95(&[3.0]).unwrap();
        assert_eq!((one.mean, one.ci95), (3.0, None));
        assert!(mean_ci95(&[]).is_none());
    }

    #[test]
    fn welch_matches_scipy() {
        let w = welch(&BRIDGE, &HOST).unwrap();
        close(w.t, 59.2410897704, 1e-9);
        close(w.df, 7.33518365031, 1e-9);
        close(w.p_value, 4.19727060996e-11, 1e-4);
        let w = welch(&NOISY, &HOST).unwrap();
        close(w.t, 0.130051217752, 1e-9);
        close(w.df, 4.29330331737, 1e-9);
        close(w.p_value, 0.902394201234, 1e-6);
        assert!(welch(&[1.0], &HOST).is_none());
        let flat = welch(&[2.0, 2.0], &[2.0, 2.0]).unwrap();
        assert_eq!(flat.p_value, 1.0);
        assert_eq!(welch(&[3.0, 3.0], &[2.0, 2.0]).unwrap().p_value, 0.0);
    }

    #[test]
    fn baseline_comparison() {
        let v = vs_baseline(&BRIDGE, &HOST).unwrap();
        close(v.delta, 6.61666666667 - 5.112, 1e-9);
        close(v.ratio, 6.61666666667 / 5.112, 1e-9);
        assert!(v.significant);
        let v = vs_baseline(&NOISY, &HOST).unwrap();
        assert!(!v.significant);
        let v = vs_baseline(&[5.0], &HOST).unwrap();
        assert_eq!((v.p_value, v.significant), (None, false));
    }

    #[test]
    fn histogram_summary_and_cdf() {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap(); // 1..1000 µs
        }
        let s = summarize_ns(&h);
        close(s.mean, 500.5, 1e-3);
        close(s.stddev, 288.6749, 1e-3); // population sd of 1..1000
        close(s.min, 1.0, 1e-3);
        close(s.p50, 500.0, 2e-3);
        close(s.p90, 900.0, 2e-3);
        close(s.p99, 990.0, 2e-3);
        close(s.p99_9, 999.0, 2e-3);
        close(s.max, 1000.0, 2e-3);
        let cdf = cdf_points_us(&h, 50);
        assert!(cdf.len() <= 50 && cdf.len() > 40);
        assert!(cdf.windows(2).all(|w| w[0].0 <= w[1].0 && w[0].1 < w[1].1));
        assert_eq!(cdf.last().unwrap().1, 1.0);
        assert_eq!(
            summarize_ns(&Histogram::<u64>::new(3).unwrap()),
            LatencySummary::default()
        );
        assert!(cdf_points_us(&Histogram::<u64>::new(3).unwrap(), 50).is_empty());
        let pts = percentile_points_us(&h, PERCENTILE_TICKS);
        assert!(
            pts.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
            "{pts:?}"
        );
        assert_eq!(pts.last().unwrap().0, 1.0);
        assert!(
            pts.iter().any(|p| p.0 >= 0.999 && p.0 < 1.0),
            "tail points: {pts:?}"
        );
        assert!(percentile_points_us(&Histogram::<u64>::new(3).unwrap(), 5).is_empty());
    }
}
