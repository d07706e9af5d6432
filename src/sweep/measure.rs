//! How a sweep point is measured: its paths (e.g. the bridge container through the ClusterIP,
//! and the same container straight to the endpoint), interleaved and paired so that the
//! machine's drift hits every path of a round alike. The rest of the sweep sees only
//! [`measure`] and [`Measured`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::model::{Latency, VsReference};
use crate::bench::client;
use crate::bench::{RunSpec, TestKind};
use crate::stats;

/// One path of a point.
#[derive(Debug, Clone)]
pub struct PathSpec {
    pub label: String,
    pub netns: PathBuf,
    pub server: SocketAddr,
}

/// What was measured of one path.
#[derive(Debug, Clone)]
pub struct PathFigures {
    pub latency: Latency,
    pub transactions: u64,
}

/// The point's paths, in the order given; path 0 is the reference the others are paired with.
#[derive(Debug, Clone)]
pub struct Measured {
    pub paths: Vec<PathFigures>,
    /// Per path, against path 0 over the same rounds (`None` for path 0).
    pub vs_reference: Vec<Option<VsReference>>,
    pub rounds: usize,
}

/// Errors of measuring a point.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("{label}: {message}")]
    Path { label: String, message: String },
    #[error("interrupted")]
    Interrupted,
}

/// One round's slice of a path (the paths take turns within a round).
const SLICE: Duration = Duration::from_millis(250);

/// Measures `paths` for about `total` (all paths together), client on `cpus.0`, server on
/// `cpus.1`, in interleaved rounds (the order alternates every round).
pub fn measure(
    paths: &[PathSpec],
    test: TestKind,
    total: Duration,
    cpus: (usize, usize),
    stop: &Arc<AtomicBool>,
) -> Result<Measured, MeasureError> {
    let rounds = ((total.as_secs_f64() / paths.len().max(1) as f64 / SLICE.as_secs_f64()).round()
        as usize)
        .max(4);
    let mut means: Vec<Vec<f64>> = vec![Vec::new(); paths.len()];
    let mut hists: Vec<Option<Histogram<u64>>> = vec![None; paths.len()];
    let mut tx = vec![0u64; paths.len()];
    for round in 0..rounds {
        let order: Vec<usize> = if round % 2 == 0 {
            (0..paths.len()).collect()
        } else {
            (0..paths.len()).rev().collect()
        };
        for i in order {
            if stop.load(Ordering::SeqCst) {
                return Err(MeasureError::Interrupted);
            }
            let p = &paths[i];
            let mut spec = RunSpec::new(p.server, test, SLICE);
            spec.warmup = Duration::from_millis(30);
            spec.client_cpu = Some(cpus.0);
            spec.server_cpu = Some(cpus.1);
            spec.netns = Some(p.netns.clone());
            let r = client::run(&spec).map_err(|e| MeasureError::Path {
                label: p.label.clone(),
                message: crate::lab::error_chain(&e),
            })?;
            means[i].push(r.latency_us.mean);
            tx[i] += r.transactions;
            if let Some(h) = r.histogram {
                match &mut hists[i] {
                    Some(acc) => {
                        let _ = acc.add(&h);
                    }
                    slot @ None => *slot = Some(h),
                }
            }
        }
    }
    let figures = (0..paths.len())
        .map(|i| {
            let ci = stats::mean_ci95(&means[i]);
            let s = hists[i].as_ref().map(stats::summarize_ns);
            let mean = ci.map(|c| c.mean).unwrap_or(0.0);
            PathFigures {
                latency: Latency {
                    mean: s.as_ref().map(|s| s.mean).unwrap_or(mean),
                    p50: s.as_ref().map(|s| s.p50).unwrap_or(mean),
                    p99: s.as_ref().map(|s| s.p99).unwrap_or(mean),
                    p99_9: s.as_ref().map(|s| s.p99_9).unwrap_or(mean),
                    ci95: ci.and_then(|c| c.ci95),
                },
                transactions: tx[i],
            }
        })
        .collect();
    let vs = (0..paths.len())
        .map(|i| (i > 0).then(|| paired(&means[i], &means[0])).flatten())
        .collect();
    Ok(Measured {
        paths: figures,
        vs_reference: vs,
        rounds,
    })
}

/// Ratio of sums and mean difference of `a` against `b` round by round, with t intervals.
fn paired(a: &[f64], b: &[f64]) -> Option<VsReference> {
    let n = a.len().min(b.len());
    if n == 0 {
        return None;
    }
    let (sa, sb): (f64, f64) = (a[..n].iter().sum(), b[..n].iter().sum());
    let ratios: Vec<f64> = (0..n).map(|i| a[i] / b[i]).collect();
    let deltas: Vec<f64> = (0..n).map(|i| a[i] - b[i]).collect();
    let rc = stats::mean_ci95(&ratios);
    let dc = stats::mean_ci95(&deltas);
    let ratio = sa / sb;
    let delta = (sa - sb) / n as f64;
    Some(VsReference {
        ratio,
        ratio_ci95: rc.and_then(|c| c.ci95).map(|h| (ratio - h, ratio + h)),
        delta_us: delta,
        delta_ci95: dc.and_then(|c| c.ci95).map(|h| (delta - h, delta + h)),
    })
}
