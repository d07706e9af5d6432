//! How a sweep point is measured: its paths (e.g. the bridge container through the ClusterIP,
//! and the same container straight to the endpoint; or the victim alone) are a path set for
//! the project's one measuring seam, [`crate::measure`]: interleaved blocks with a per-round
//! shuffle on one pinned client thread, every block's mean kept by round, paired batch-means
//! intervals. This module only describes the point's paths to it and turns what it measured
//! into the sweep's figures; it runs no loop of its own.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use super::model::{Latency, VsReference};
use crate::bench::{RunSpec, TestKind};
use crate::error::error_chain;
use crate::measure::sockets::{self, PathSpec as SeamPath};
use crate::measure::{Ci, ScheduleConfig, StopRule, Stopped};

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
    /// Timed and warm-up transactions: what counters read around the whole point divide by.
    pub all_transactions: u64,
    /// Transactions slower than the stall threshold (left out of the block means).
    pub stalls: u64,
}

/// The point's paths, in the order given; path 0 is the reference the others are paired with.
#[derive(Debug, Clone)]
pub struct Measured {
    pub paths: Vec<PathFigures>,
    /// Per path, against path 0 over the same rounds (`None` for path 0).
    pub vs_reference: Vec<Option<VsReference>>,
    /// Timed rounds.
    pub rounds: usize,
    /// Transactions per block (the seam picks B from its block time).
    pub block_transactions: Option<u64>,
}

/// Errors of measuring a point.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("{label}: {message}")]
    Path { label: String, message: String },
    #[error("{0}")]
    Seam(String),
    #[error("interrupted")]
    Interrupted,
}

/// How a point is measured: the test, `duration` of measured blocks (all paths together),
/// client on `cpus.0`, servers on `cpus.1`; `stalls`: leave transactions slower than ten times
/// the warm-up's mean out of the block means (a shared machine's preemptions), or keep them
/// (the load sweep, where being preempted by the neighbours is the effect measured).
#[derive(Debug, Clone, Copy)]
pub struct PointConfig {
    pub test: TestKind,
    pub duration: Duration,
    pub cpus: (usize, usize),
    pub leave_out_stalls: bool,
}

impl PointConfig {
    /// The seam's schedule for this point: a fixed measuring time, the seam's block time and
    /// warm-up, path 0 the baseline.
    pub fn schedule(&self) -> ScheduleConfig {
        let d = ScheduleConfig::default();
        ScheduleConfig {
            stop: StopRule::Time(self.duration),
            stall_factor: if self.leave_out_stalls {
                d.stall_factor
            } else {
                None
            },
            ..d
        }
    }

    fn template(&self) -> RunSpec {
        let mut spec = RunSpec::template(self.test, self.duration);
        spec.client_cpu = Some(self.cpus.0);
        spec.server_cpu = Some(self.cpus.1);
        spec
    }
}

fn us(c: Ci) -> Ci {
    Ci {
        estimate: c.estimate / 1e3,
        ci95: c.ci95.map(|(lo, hi)| (lo / 1e3, hi / 1e3)),
    }
}

/// Measures `paths` as `cfg` says; `stop` (a signal flag) ends it early as
/// [`MeasureError::Interrupted`]. Any path failing fails the point (a sweep point is its paths
/// together).
pub fn measure(
    paths: &[PathSpec],
    cfg: &PointConfig,
    stop: &Arc<AtomicBool>,
) -> Result<Measured, MeasureError> {
    let seam: Vec<SeamPath> = paths
        .iter()
        .map(|p| SeamPath {
            label: p.label.clone(),
            netns: Some(p.netns.clone()),
            server: p.server,
            token: None,
        })
        .collect();
    let schedule = cfg.schedule();
    let m = sockets::measure(&seam, &cfg.template(), &schedule, stop).map_err(|e| match e {
        sockets::MeasureError::Baseline { label, error } => MeasureError::Path {
            label,
            message: error_chain(&error),
        },
        e => MeasureError::Seam(error_chain(&e)),
    })?;
    if m.rounds.stopped == Stopped::Interrupted {
        return Err(MeasureError::Interrupted);
    }
    if let Some((label, e)) = m.failures().next() {
        return Err(MeasureError::Path {
            label: label.to_string(),
            message: error_chain(e),
        });
    }
    if let Some((i, e)) = m.cleanup.first() {
        return Err(MeasureError::Path {
            label: paths[*i].label.clone(),
            message: format!("its session did not end cleanly: {}", error_chain(e)),
        });
    }
    let mut figures = Vec::with_capacity(paths.len());
    for (i, run) in m.runs.iter().enumerate() {
        let run = run.as_ref().ok_or_else(|| MeasureError::Path {
            label: paths[i].label.clone(),
            message: "no figures (its session did not end cleanly)".into(),
        })?;
        let mean = m.rounds.mean_ci(i).map(us);
        let l = &run.latency_us;
        figures.push(PathFigures {
            latency: Latency {
                mean: mean.map(|c| c.estimate).unwrap_or(l.mean),
                p50: l.p50,
                p99: l.p99,
                p99_9: l.p99_9,
                ci95: mean.and_then(|c| c.half_width()),
            },
            transactions: run.transactions,
            all_transactions: run.transactions + run.warmup_transactions,
            stalls: m.rounds.totals[i].stalls,
        });
    }
    let vs = (0..paths.len())
        .map(|i| {
            m.rounds.paired(i).map(|p| {
                let d = us(p.delta);
                VsReference {
                    ratio: p.ratio.estimate,
                    ratio_ci95: p.ratio.ci95,
                    delta_us: d.estimate,
                    delta_ci95: d.ci95,
                }
            })
        })
        .collect();
    Ok(Measured {
        paths: figures,
        vs_reference: vs,
        rounds: m.rounds.rounds(),
        block_transactions: match m.rounds.block {
            crate::measure::BlockSize::Transactions(b) => Some(b),
            crate::measure::BlockSize::Time(_) => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_a_fixed_time_schedule_on_the_seam() {
        let mut c = PointConfig {
            test: TestKind::TcpCrr,
            duration: Duration::from_secs(3),
            cpus: (0, 0),
            leave_out_stalls: true,
        };
        let s = c.schedule();
        assert_eq!(s.stop, StopRule::Time(Duration::from_secs(3)));
        assert_eq!(s.baseline, 0);
        assert!(!s.time_sliced);
        assert!(s.stall_factor.is_some());
        c.leave_out_stalls = false;
        assert_eq!(c.schedule().stall_factor, None);
        let t = c.template();
        assert_eq!(
            (t.client_cpu, t.server_cpu, t.test),
            (Some(0), Some(0), TestKind::TcpCrr)
        );
    }
}
