//! Open-loop paths on the interleaved schedule: each path (a mode's namespace and the server it
//! reaches) holds C open-loop connections ([`crate::bench::openloop`]), and a block on it is a
//! time slice of requests at the point's rate, every response timed from its intended send time.
//! Blocks start from an idle path and end when every response is in (or timed out), so the
//! paths of one round see the same offered load and none inherits another's queue.
//!
//! How the schedule's [`Block`] is filled: `transactions` are the completed responses, `lost`
//! the timeouts and drops, and `elapsed_ns` the SUM of the responses' latencies (each lost one
//! counted at the timeout) rather than the block's wall time, so a round's value
//! ([`Block::mean_ns`]) is the block's mean latency from intended send times and the paired
//! ratios compare latencies under the same offered load. The schedule's stop rule cannot count
//! rounds of such blocks, so this set raises the schedule's stop flag itself once every path
//! has had its timed rounds (and when the caller's signal flag is raised: then the result says
//! interrupted). Backlog counters (src/probe) are read around every timed block, outside it,
//! and summed per path: machine-wide counters, but only one path runs at a time.
//!
//! This module does not build labs or pick rates (src/sweep/rate.rs does).

use std::fs::File;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::paired::{Ci, Paired};
use super::schedule::{self, Block, BlockSpec, PathSet, ScheduleConfig, StopRule, Stopped};
use super::sockets::PathSpec;
use crate::bench::openloop::{
    BlockOutcome, BlockPlan, Connections, OpenLoopError, ServerSide, Spacing,
};
use crate::bench::timing::{new_histogram, pin_to};
use crate::bench::{LatencySummary, RunSpec, TestKind};
use crate::netns::{self, NetnsError};
use crate::probe::{ProbeConfig, Snapshot};

/// How a point is measured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenLoopConfig {
    pub rate_rps: f64,
    pub spacing: Spacing,
    pub connections: usize,
    /// Requests per block: `rate × block`.
    pub block: Duration,
    /// Timed rounds (every path once per round); at least 20 give batch-means intervals.
    pub rounds: usize,
    pub timeout: Duration,
    pub request_size: usize,
    pub response_size: usize,
    pub client_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
    /// Read the backlog counters around every timed block.
    pub probes: bool,
    pub seed: u64,
    /// Sub-windows per path: the timed rounds in this many consecutive groups, each with its
    /// own histogram (at most `rounds`; 0 or 1: one window).
    pub windows: usize,
}

impl OpenLoopConfig {
    /// Sub-windows per path: `windows`, at least 1 and at most the timed rounds.
    pub fn window_count(&self) -> usize {
        self.windows.clamp(1, self.rounds.max(1))
    }

    /// The window of a path's `k`-th timed block (0-based): consecutive rounds, as evenly as
    /// the rounds divide.
    pub fn window_of(&self, k: usize) -> usize {
        let rounds = self.rounds.max(1);
        (k.min(rounds - 1) * self.window_count()) / rounds
    }

    /// Requests in one block (at least 1).
    pub fn block_requests(&self) -> u64 {
        ((self.rate_rps * self.block.as_secs_f64()).round() as u64).max(1)
    }

    /// The schedule: fixed blocks, two warm-up rounds, no stall rule (under load every slow
    /// response is the figure), no lead-in, path 0 the baseline; the stop is this set's.
    fn schedule(&self) -> ScheduleConfig {
        ScheduleConfig {
            block_transactions: Some(self.block_requests()),
            time_sliced: false,
            warmup: Duration::ZERO,
            stop: StopRule::Time(Duration::from_secs(1_000_000_000)),
            baseline: 0,
            replicates: 1,
            lead_in: 0,
            stall_factor: None,
            ..ScheduleConfig::default()
        }
    }
}

/// Backlog counters of a path's timed blocks, summed (softnet_stat, softirqs, /proc/stat).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    pub backlog_pkts: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
    pub net_rx: u64,
    pub softirq_us: f64,
    pub busy_us: f64,
    pub elapsed_s: f64,
}

/// One path's figures over one sub-window (a group of consecutive timed rounds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowFigures {
    pub timed: BlockOutcome,
    /// Latency percentiles from intended send times over the window, µs (0 without responses).
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One path's figures over its timed blocks.
#[derive(Debug, Clone)]
pub struct PathFigures {
    pub label: String,
    pub timed: BlockOutcome,
    /// Latency from the intended send times, every timed response, µs.
    pub latency_us: LatencySummary,
    /// Mean of the block means with its batch-means interval, ns.
    pub mean_ns: Option<Ci>,
    pub server: Option<ServerSide>,
    pub counters: Option<Counters>,
    pub histogram: Histogram<u64>,
    /// The timed rounds in [`OpenLoopConfig::window_count`] consecutive windows, in time order.
    pub windows: Vec<WindowFigures>,
}

/// What [`measure`] measured.
#[derive(Debug)]
pub struct Measured {
    pub paths: Vec<PathFigures>,
    /// Per path against path 0 over the same rounds (`None` for path 0 or a failed path).
    pub paired: Vec<Option<Paired>>,
    pub rounds: usize,
    pub block_requests: u64,
    /// Paths that failed (label, error); the others were measured.
    pub failures: Vec<(String, String)>,
}

/// Errors that stop a point.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("the baseline path {label} failed: {error}")]
    Baseline { label: String, error: String },
    #[error("interrupted")]
    Interrupted,
    #[error("{0}")]
    Other(String),
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

struct OpenPath {
    label: String,
    conns: Option<Connections>,
    error: Option<OpenLoopError>,
    /// One histogram per window; the path's histogram is their sum.
    win_hist: Vec<Histogram<u64>>,
    win_timed: Vec<BlockOutcome>,
    timed_count: usize,
    timed: BlockOutcome,
    counters: Counters,
    probed: bool,
}

struct OpenLoopPaths<'a> {
    paths: Vec<OpenPath>,
    plan: BlockPlan,
    timed_blocks: usize,
    stop_after: usize,
    cfg: OpenLoopConfig,
    /// The schedule's stop flag: raised after the last timed block, or on a signal.
    stop: &'a AtomicBool,
    /// The caller's signal flag.
    signal: &'a AtomicBool,
    probes: Option<ProbeConfig>,
}

impl PathSet for OpenLoopPaths<'_> {
    type Error = OpenLoopError;

    fn len(&self) -> usize {
        self.paths.len()
    }

    fn block(&mut self, i: usize, spec: BlockSpec) -> Result<Block, OpenLoopError> {
        let seq = self.timed_blocks as u64 * 131 + i as u64;
        let plan = BlockPlan {
            seed: self
                .plan
                .seed
                .wrapping_add(seq)
                .wrapping_add(spec.timed as u64),
            ..self.plan
        };
        if self.signal.load(Ordering::Relaxed) {
            self.stop.store(true, Ordering::Relaxed);
        }
        let p = &mut self.paths[i];
        let Some(conns) = p.conns.as_mut() else {
            return Err(p.error.take().unwrap_or_else(|| {
                OpenLoopError::Invalid(format!("{}: could not be opened", p.label))
            }));
        };
        let before = match (&self.probes, spec.timed) {
            (Some(cfg), true) => Snapshot::take(cfg).ok(),
            _ => None,
        };
        let w = self.cfg.window_of(p.timed_count);
        let out = conns.block(&plan, spec.timed.then_some(&mut p.win_hist[w]))?;
        if spec.timed {
            if let (Some(cfg), Some(b)) = (&self.probes, before) {
                if let Ok(a) = Snapshot::take(cfg) {
                    let d = Snapshot::delta(&b, &a);
                    let c = &mut p.counters;
                    c.backlog_pkts += d.backlog_pkts;
                    c.dropped += d.dropped;
                    c.time_squeeze += d.time_squeeze;
                    c.net_rx += d.net_rx;
                    c.softirq_us += d.cpu_softirq_us;
                    c.busy_us += d.cpu_busy_us;
                    c.elapsed_s += d.elapsed_s;
                    p.probed = true;
                }
            }
            p.timed.add(&out);
            p.win_timed[w].add(&out);
            p.timed_count += 1;
            self.timed_blocks += 1;
            if self.timed_blocks >= self.stop_after {
                self.stop.store(true, Ordering::Relaxed);
            }
        }
        let lost = out.timeouts + out.dropped;
        Ok(Block {
            transactions: out.completed,
            lost,
            elapsed_ns: out
                .latency_sum_ns
                .saturating_add(lost.saturating_mul(plan.timeout.as_nanos() as u64)),
            bytes: 0,
            cpu_ns: out.cpu_ns,
            stalls: 0,
            stall_ns: 0,
        })
    }
}

fn window_figures(h: &Histogram<u64>, t: &BlockOutcome) -> WindowFigures {
    let q = |p: f64| {
        if h.is_empty() {
            0.0
        } else {
            h.value_at_quantile(p) as f64 / 1e3
        }
    };
    WindowFigures {
        timed: *t,
        p50_us: q(0.5),
        p99_us: q(0.99),
    }
}

fn enter(file: &File) -> Result<(), OpenLoopError> {
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
        .map_err(|e| OpenLoopError::Io(e.into()))
}

/// Measures `paths` (path 0 the baseline) at `cfg`'s rate on one pinned client thread, the
/// paths interleaved and shuffled round by round; `signal` (a signal flag) ends it early as
/// [`MeasureError::Interrupted`].
pub fn measure(
    paths: &[PathSpec],
    cfg: &OpenLoopConfig,
    signal: &Arc<AtomicBool>,
) -> Result<Measured, MeasureError> {
    let paths = paths.to_vec();
    let cfg = *cfg;
    let signal = signal.clone();
    netns::run_in(None, move || measure_here(&paths, &cfg, &signal))
}

fn open_all(paths: &[PathSpec], cfg: &OpenLoopConfig, session: Duration) -> Vec<OpenPath> {
    let home = File::open("/proc/thread-self/ns/net");
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        let opened = (|| -> Result<Connections, OpenLoopError> {
            let home = home
                .as_ref()
                .map_err(|e| OpenLoopError::Io(e.kind().into()))?;
            if let Some(ns) = &p.netns {
                let f =
                    File::open(ns).map_err(|_| NetnsError::NotFound(ns.display().to_string()))?;
                enter(&f)?;
            }
            let mut spec = RunSpec::new(p.server, TestKind::TcpRr, session);
            spec.warmup = Duration::ZERO;
            spec.request_size = cfg.request_size;
            spec.response_size = cfg.response_size;
            spec.server_cpu = cfg.server_cpu;
            spec.token = p.token.clone();
            let r = Connections::open(&spec, cfg.connections, cfg.block_requests());
            if p.netns.is_some() {
                enter(home)?;
            }
            r
        })();
        let (conns, error) = match opened {
            Ok(c) => (Some(c), None),
            Err(e) => (None, Some(e)),
        };
        out.push(OpenPath {
            label: p.label.clone(),
            conns,
            error,
            win_hist: (0..cfg.window_count()).map(|_| new_histogram()).collect(),
            win_timed: vec![BlockOutcome::default(); cfg.window_count()],
            timed_count: 0,
            timed: BlockOutcome::default(),
            counters: Counters::default(),
            probed: false,
        });
    }
    out
}

fn measure_here(
    paths: &[PathSpec],
    cfg: &OpenLoopConfig,
    signal: &AtomicBool,
) -> Result<Measured, MeasureError> {
    if let Some(cpu) = cfg.client_cpu {
        pin_to(cpu).map_err(|e| MeasureError::Other(format!("pinning to CPU {cpu}: {e}")))?;
    }
    let rounds = cfg.rounds.max(1);
    // The sessions must outlast every block: rounds (+2 warm-up) × paths × (block + timeout).
    let per_block = cfg.block.saturating_add(cfg.timeout);
    let session = per_block
        .saturating_mul(((rounds + 2) * paths.len()) as u32)
        .saturating_add(Duration::from_secs(30));
    let opened = open_all(paths, cfg, session);
    let stop = AtomicBool::new(false);
    let mut set = OpenLoopPaths {
        paths: opened,
        plan: BlockPlan {
            rate_rps: cfg.rate_rps,
            count: cfg.block_requests(),
            spacing: cfg.spacing,
            seed: cfg.seed,
            timeout: cfg.timeout,
        },
        timed_blocks: 0,
        stop_after: rounds * paths.len(),
        cfg: *cfg,
        stop: &stop,
        signal,
        probes: cfg.probes.then(|| ProbeConfig::new(None)),
    };
    let result = schedule::run(&mut set, &cfg.schedule(), &stop);
    let interrupted = signal.load(Ordering::Relaxed);
    // End every session, whatever happened.
    let mut servers = Vec::with_capacity(set.paths.len());
    let mut failures = Vec::new();
    for p in &mut set.paths {
        servers.push(match p.conns.take().map(|c| c.finish(cfg.timeout)) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                failures.push((
                    p.label.clone(),
                    format!(
                        "its sessions did not end cleanly: {}",
                        crate::error::error_chain(&e)
                    ),
                ));
                None
            }
            None => None,
        });
    }
    let rounds_done = match result {
        Ok(r) => r,
        Err(schedule::ScheduleError::Baseline(e)) => {
            return Err(MeasureError::Baseline {
                label: set.paths[0].label.clone(),
                error: crate::error::error_chain(&e),
            })
        }
        Err(e) => return Err(MeasureError::Other(e.to_string())),
    };
    if interrupted {
        return Err(MeasureError::Interrupted);
    }
    debug_assert!(matches!(
        rounds_done.stopped,
        Stopped::Interrupted | Stopped::Time
    ));
    for f in &rounds_done.failures {
        failures.push((
            set.paths[f.path].label.clone(),
            crate::error::error_chain(&f.error),
        ));
    }
    let n = set.paths.len();
    let paired = (0..n).map(|i| rounds_done.paired(i)).collect();
    let figures = set
        .paths
        .iter_mut()
        .enumerate()
        .map(|(i, p)| {
            let mut hist = new_histogram();
            let windows = p
                .win_hist
                .iter()
                .zip(&p.win_timed)
                .map(|(h, t)| {
                    hist.add(h).expect("histograms of one shape");
                    window_figures(h, t)
                })
                .collect();
            PathFigures {
                label: p.label.clone(),
                latency_us: LatencySummary::from_histogram(
                    &hist,
                    p.timed.wall_ns,
                    p.timed.completed,
                ),
                mean_ns: rounds_done.mean_ci(i),
                timed: p.timed,
                server: servers[i],
                counters: p.probed.then_some(p.counters),
                histogram: hist,
                windows,
            }
        })
        .collect();
    Ok(Measured {
        paths: figures,
        paired,
        rounds: rounds_done.rounds(),
        block_requests: cfg.block_requests(),
        failures,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(rounds: usize, windows: usize) -> OpenLoopConfig {
        OpenLoopConfig {
            rate_rps: 1000.0,
            spacing: Spacing::Constant,
            connections: 1,
            block: Duration::from_millis(50),
            rounds,
            timeout: Duration::from_millis(500),
            request_size: 1,
            response_size: 1,
            client_cpu: None,
            server_cpu: None,
            probes: false,
            seed: 1,
            windows,
        }
    }

    #[test]
    fn windows_are_consecutive_rounds_in_time_order() {
        let c = cfg(20, 10);
        let w: Vec<usize> = (0..20).map(|k| c.window_of(k)).collect();
        assert_eq!(
            w,
            [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9]
        );
        // Rounds that do not divide: every window gets one or two, none is empty.
        let c = cfg(15, 10);
        let mut n = [0; 10];
        (0..15).for_each(|k| n[c.window_of(k)] += 1);
        assert!(n.iter().all(|&x| x == 1 || x == 2), "{n:?}");
        // Fewer rounds than windows: one window per round; no windows: one.
        assert_eq!(cfg(4, 10).window_count(), 4);
        assert_eq!(cfg(4, 0).window_count(), 1);
        assert_eq!(cfg(4, 0).window_of(3), 0);
        assert_eq!(
            cfg(10, 10).window_of(99),
            9,
            "a late block stays in the last window"
        );
    }
}
