//! The interleaved schedule over a [`PathSet`]: blocks of B transactions on each path in turn,
//! the order shuffled every round, warm-up rounds dropped, every block's mean kept by round.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::paired::{self, Ci, Paired};

/// How long one block runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum BlockSize {
    /// B transactions (request/response tests; for TCP_CRR, B connections).
    Transactions(u64),
    /// At least this long (streams: time-sliced blocks).
    Time(Duration),
}

/// What one block did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Block {
    /// Completed transactions (or stream send/recv calls), each one timed into the path's
    /// histogram when the block was timed.
    pub transactions: u64,
    /// Transactions lost (UDP_RR timeouts): not in the histogram, but their time is in
    /// `elapsed_ns`, so a loss costs its timeout.
    pub lost: u64,
    /// From the block's first clock read to its last.
    pub elapsed_ns: u64,
    /// Payload bytes moved (client's view).
    pub bytes: u64,
    /// CPU time of the client thread over the block.
    pub cpu_ns: u64,
    /// Completed transactions slower than the stall threshold (the client thread was
    /// preempted or the machine stalled): in the histogram, but left out of the block mean.
    pub stalls: u64,
    /// Their time.
    pub stall_ns: u64,
}

/// What one block is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSpec {
    pub size: BlockSize,
    /// Record each transaction into the path's histogram (warm-up blocks are not recorded).
    pub timed: bool,
    /// A completed transaction slower than this is a stall (`u64::MAX`: none is).
    pub stall_ns: u64,
    /// Transactions run untimed before the block (request/response blocks): the first
    /// transaction after switching paths pays the path's cold caches, which a steady run does
    /// not. Not in the block, its histogram or its time.
    pub lead_in: u64,
}

impl Block {
    /// Transactions tried (completed + lost).
    pub fn attempts(&self) -> u64 {
        self.transactions + self.lost
    }

    /// Mean time per attempt without the stalls, ns (`None` when nothing else is left). A lost
    /// transaction still costs its timeout.
    pub fn mean_ns(&self) -> Option<f64> {
        let n = self.attempts().saturating_sub(self.stalls);
        (n > 0).then(|| self.elapsed_ns.saturating_sub(self.stall_ns) as f64 / n as f64)
    }

    /// Time per megabyte moved, ns (streams: inverse throughput; `None` without bytes).
    pub fn ns_per_mb(&self) -> Option<f64> {
        (self.bytes > 0).then(|| self.elapsed_ns as f64 * 1e6 / self.bytes as f64)
    }

    /// What a block contributes to its round: time per attempt (stalls left out; a block whose
    /// every attempt was a stall, as a short block of slow TCP_CRR connections can be, gives its
    /// whole time per attempt rather than nothing), or for time-sliced stream blocks, time per
    /// megabyte.
    pub fn round_value(&self, time_sliced: bool) -> Option<f64> {
        if time_sliced {
            self.ns_per_mb()
        } else {
            self.mean_ns().or_else(|| {
                let n = self.attempts();
                (n > 0).then(|| self.elapsed_ns as f64 / n as f64)
            })
        }
    }

    pub(crate) fn add(&mut self, b: &Block) {
        self.transactions += b.transactions;
        self.lost += b.lost;
        self.elapsed_ns += b.elapsed_ns;
        self.bytes += b.bytes;
        self.cpu_ns += b.cpu_ns;
        self.stalls += b.stalls;
        self.stall_ns += b.stall_ns;
    }
}

/// A set of paths that can be measured block by block: the lab's modes, a remote's attached
/// modes, a container's namespace beside the host's, or a fake. Implementations keep one
/// connection (and one preallocated histogram) per path, and run a block with one clock read
/// per transaction and no allocation.
pub trait PathSet {
    type Error: std::error::Error + Send + Sync + 'static;

    /// Paths in the set; the schedule addresses them by index.
    fn len(&self) -> usize;

    /// Whether the set has no paths.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Runs one block on `path`.
    fn block(&mut self, path: usize, spec: BlockSpec) -> Result<Block, Self::Error>;
}

/// When the schedule stops measuring.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum StopRule {
    /// After this much measured time (all paths' blocks together).
    Time(Duration),
    /// When every path's ratio interval half-width is at most `half_width` (0.005 = 0.5
    /// points), or after `budget` of measured time.
    Precision { half_width: f64, budget: Duration },
}

/// The schedule's settings.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScheduleConfig {
    /// Target time of one block; B is chosen from it after the warm-up.
    pub block_time: Duration,
    /// A fixed B instead (e.g. 1 or 10, to see what the block size does).
    pub block_transactions: Option<u64>,
    /// Streams: blocks are time slices of `block_time`.
    pub time_sliced: bool,
    /// Warm-up (dropped): rounds are run until this much measured time has passed (at least 2).
    pub warmup: Duration,
    /// The fewest timed rounds before a precision stop.
    pub min_rounds: usize,
    pub stop: StopRule,
    /// The path group the others are compared with.
    pub baseline: usize,
    /// Independent instances of every path (at least 1). The set's paths are grouped: with G
    /// groups, path `r * G + g` is replicate `r` of group `g` (replicate-major, so that the
    /// instances of one group are not made one after another), and groups are compared
    /// replicate by replicate ([`paired::replicated`]).
    pub replicates: usize,
    /// Seed of the per-round shuffle (fixed: runs are reproducible in their order).
    pub seed: u64,
    /// Untimed transactions at the start of every block ([`BlockSpec::lead_in`]).
    pub lead_in: u64,
    /// A transaction slower than this many times the warm-up's mean is a stall, left out of
    /// its block's mean (but counted, and in the histogram); `None`: no stalls (streams).
    pub stall_factor: Option<f64>,
}

/// The shortest stall threshold, however fast the paths (50 µs).
pub const MIN_STALL_NS: u64 = 50_000;

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            block_time: Duration::from_millis(2),
            block_transactions: None,
            time_sliced: false,
            warmup: Duration::from_millis(300),
            min_rounds: 400,
            stop: StopRule::Precision {
                half_width: 0.005,
                budget: Duration::from_secs(20),
            },
            baseline: 0,
            replicates: 1,
            seed: 0x6e73_6c61_7421,
            lead_in: 1,
            stall_factor: Some(10.0),
        }
    }
}

/// Largest B chosen from a block time.
pub const MAX_BLOCK_TRANSACTIONS: u64 = 1_000_000;

/// How often (in rounds) a precision stop is checked.
const CHECK_EVERY: usize = 25;

/// Why the schedule stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Stopped {
    /// Every ratio interval reached the target width.
    Target,
    /// The precision budget was spent first.
    Budget,
    /// The fixed measuring time was spent.
    Time,
    /// The stop flag was raised (a signal).
    Interrupted,
}

/// A path that failed during the schedule (the others went on without it).
#[derive(Debug)]
pub struct PathFailure<E> {
    pub path: usize,
    pub error: E,
}

/// Errors that end the schedule.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError<E: std::error::Error + 'static> {
    #[error("the set has no paths")]
    Empty,
    #[error("the baseline path {0} is not in the set")]
    NoBaseline(usize),
    #[error("{paths} paths cannot be {replicates} replicates of each group")]
    Replicates { paths: usize, replicates: usize },
    #[error("the baseline path failed")]
    Baseline(#[source] E),
}

/// Everything the schedule measured.
#[derive(Debug)]
pub struct Interleaved<E> {
    pub block: BlockSize,
    /// The stall threshold used, ns (`u64::MAX`: none).
    pub stall_ns: u64,
    pub warmup_rounds: usize,
    /// `[path][round]`: each timed block's [`Block::round_value`] (ns per attempt; streams: ns
    /// per MB). A failed path's is empty.
    pub means_ns: Vec<Vec<f64>>,
    /// Per path: the timed blocks summed.
    pub totals: Vec<Block>,
    /// Per path: the warm-up blocks summed.
    pub warmup: Vec<Block>,
    /// Measured time of the timed rounds, all paths together.
    pub measured_ns: u64,
    pub stopped: Stopped,
    pub failures: Vec<PathFailure<E>>,
    /// The baseline group.
    pub baseline: usize,
    /// Replicates per group ([`ScheduleConfig::replicates`]).
    pub replicates: usize,
    /// Rounds of each epoch, in order, when the rounds were measured in epochs (fresh processes,
    /// [`crate::measure::epochs`]); empty: one run of the schedule.
    pub epochs: Vec<usize>,
}

/// The block means of group `g`'s replicates (paths `g`, `g + G`, `g + 2G`, … of `R * G`).
fn group_of(means: &[Vec<f64>], g: usize, r: usize) -> Vec<&[f64]> {
    let groups = means.len() / r.max(1);
    means
        .iter()
        .skip(g)
        .step_by(groups.max(1))
        .take(r)
        .map(Vec::as_slice)
        .collect()
}

impl<E> Interleaved<E> {
    /// Timed rounds.
    pub fn rounds(&self) -> usize {
        self.means_ns.get(self.baseline).map(Vec::len).unwrap_or(0)
    }

    /// Path groups (paths / replicates).
    pub fn groups(&self) -> usize {
        self.means_ns.len() / self.replicates.max(1)
    }

    /// The block means of `group`'s replicates, by round.
    pub fn group(&self, group: usize) -> Vec<&[f64]> {
        group_of(&self.means_ns, group, self.replicates.max(1))
    }

    /// Whether every replicate of `group` failed.
    pub fn group_failed(&self, group: usize) -> Option<&E> {
        let (r, g) = (self.replicates.max(1), self.groups());
        let all = (0..r).all(|i| self.failed(i * g + group).is_some());
        if all {
            self.failed(group)
        } else {
            None
        }
    }

    /// Whether `path` failed during the schedule.
    pub fn failed(&self, path: usize) -> Option<&E> {
        self.failures
            .iter()
            .find(|f| f.path == path)
            .map(|f| &f.error)
    }

    /// Path group `group` against the baseline group, round by round and replicate by
    /// replicate (`None` for the baseline or a failed group). Without replicates a group is a
    /// path.
    pub fn paired(&self, group: usize) -> Option<Paired> {
        if group == self.baseline || group >= self.groups() {
            return None;
        }
        paired::replicated_in(&self.group(group), &self.group(self.baseline), &self.epochs)
    }

    /// Mean block mean of `group` (ns) with its interval (batch means of one path, or over the
    /// replicates).
    pub fn mean_ci(&self, group: usize) -> Option<Ci> {
        if group >= self.groups() {
            return None;
        }
        paired::replicated_mean_ci(&self.group(group))
    }
}

pub use crate::rng::XorShift;

/// B for a block of `block_time` at `mean_ns` per transaction.
pub fn block_transactions(block_time: Duration, mean_ns: f64) -> u64 {
    if mean_ns.is_nan() || mean_ns <= 0.0 {
        return 1;
    }
    ((block_time.as_nanos() as f64 / mean_ns).round() as u64).clamp(1, MAX_BLOCK_TRANSACTIONS)
}

/// Runs the schedule over `set` until `cfg.stop` says so (or `stop` is raised). A path whose
/// block fails is left out from then on (its failure kept); the baseline failing ends it.
pub fn run<S: PathSet>(
    set: &mut S,
    cfg: &ScheduleConfig,
    stop: &AtomicBool,
) -> Result<Interleaved<S::Error>, ScheduleError<S::Error>> {
    let n = set.len();
    if n == 0 {
        return Err(ScheduleError::Empty);
    }
    let reps = cfg.replicates.max(1);
    if n % reps != 0 {
        return Err(ScheduleError::Replicates {
            paths: n,
            replicates: reps,
        });
    }
    let groups = n / reps;
    if cfg.baseline >= groups {
        return Err(ScheduleError::NoBaseline(cfg.baseline));
    }
    let is_baseline = |p: usize| p % groups == cfg.baseline;
    let mut rng = XorShift::new(cfg.seed);
    let mut order: Vec<usize> = (0..n).collect();
    let mut alive = vec![true; n];
    let mut failures = Vec::new();
    let mut warmup = vec![Block::default(); n];
    let mut totals = vec![Block::default(); n];
    let fail = |path: usize,
                e: S::Error,
                alive: &mut Vec<bool>,
                failures: &mut Vec<PathFailure<S::Error>>|
     -> Result<(), ScheduleError<S::Error>> {
        if is_baseline(path) {
            return Err(ScheduleError::Baseline(e));
        }
        alive[path] = false;
        failures.push(PathFailure { path, error: e });
        Ok(())
    };

    // Warm-up: blocks sized from the running estimate, not recorded.
    let fixed = if cfg.time_sliced {
        Some(BlockSize::Time(cfg.block_time))
    } else {
        cfg.block_transactions
            .map(|b| BlockSize::Transactions(b.max(1)))
    };
    let mut size = fixed.unwrap_or(BlockSize::Transactions(4));
    let mut warm_ns = 0u64;
    let mut warmup_rounds = 0;
    let mut warm_all = Block::default();
    while warmup_rounds < 2 || warm_ns < cfg.warmup.as_nanos() as u64 {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        rng.shuffle(&mut order);
        let mut round = Block::default();
        for &p in &order {
            if !alive[p] {
                continue;
            }
            let spec = BlockSpec {
                size,
                timed: false,
                stall_ns: u64::MAX,
                lead_in: cfg.lead_in,
            };
            match set.block(p, spec) {
                Ok(b) => {
                    warmup[p].add(&b);
                    round.add(&b);
                }
                Err(e) => fail(p, e, &mut alive, &mut failures)?,
            }
        }
        warm_ns += round.elapsed_ns;
        warmup_rounds += 1;
        if warmup_rounds > 1 {
            warm_all.add(&round);
        }
        if fixed.is_none() {
            if let Some(m) = round.mean_ns() {
                size = BlockSize::Transactions(block_transactions(cfg.block_time, m));
            }
        }
    }

    let stall_ns = match (cfg.stall_factor, warm_all.mean_ns()) {
        (Some(f), Some(m)) if !cfg.time_sliced => ((m * f) as u64).max(MIN_STALL_NS),
        _ => u64::MAX,
    };
    let spec = BlockSpec {
        size,
        timed: true,
        stall_ns,
        lead_in: cfg.lead_in,
    };
    let mut means: Vec<Vec<f64>> = vec![Vec::with_capacity(4096); n];
    let mut measured_ns = 0u64;
    let stopped = loop {
        if stop.load(Ordering::Relaxed) {
            break Stopped::Interrupted;
        }
        rng.shuffle(&mut order);
        for &p in &order {
            if !alive[p] {
                continue;
            }
            match set.block(p, spec) {
                Ok(b) => {
                    totals[p].add(&b);
                    measured_ns += b.elapsed_ns;
                    means[p].push(b.round_value(cfg.time_sliced).unwrap_or(f64::NAN));
                }
                Err(e) => {
                    fail(p, e, &mut alive, &mut failures)?;
                    means[p].clear();
                }
            }
        }
        let rounds = means[cfg.baseline].len();
        match cfg.stop {
            StopRule::Time(t) if measured_ns >= t.as_nanos() as u64 => break Stopped::Time,
            StopRule::Time(_) => {}
            StopRule::Precision { budget, .. } if measured_ns >= budget.as_nanos() as u64 => {
                break Stopped::Budget
            }
            StopRule::Precision { half_width, .. } => {
                if rounds >= cfg.min_rounds.max(paired::MIN_BATCHES) && rounds % CHECK_EVERY == 0 {
                    let base = group_of(&means, cfg.baseline, reps);
                    let precise = (0..groups)
                        .filter(|&g| g != cfg.baseline && (0..reps).any(|i| alive[i * groups + g]))
                        .all(|g| {
                            paired::replicated(&group_of(&means, g, reps), &base)
                                .and_then(|x| x.ratio.half_width())
                                .is_some_and(|h| h <= half_width)
                        });
                    if precise {
                        break Stopped::Target;
                    }
                }
            }
        }
    };
    Ok(Interleaved {
        block: size,
        stall_ns,
        warmup_rounds,
        means_ns: means,
        totals,
        warmup,
        measured_ns,
        stopped,
        failures,
        baseline: cfg.baseline,
        replicates: reps,
        epochs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_block_of_stalls_only_still_has_a_round_value() {
        let all_stalls = Block {
            transactions: 2,
            elapsed_ns: 3_000_000,
            stalls: 2,
            stall_ns: 3_000_000,
            ..Block::default()
        };
        assert_eq!(all_stalls.mean_ns(), None);
        assert_eq!(all_stalls.round_value(false), Some(1_500_000.0));
        let one_stall = Block {
            stalls: 1,
            stall_ns: 2_000_000,
            ..all_stalls
        };
        assert_eq!(one_stall.round_value(false), Some(1_000_000.0));
        assert_eq!(Block::default().round_value(false), None);
    }
}
