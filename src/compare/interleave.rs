//! The comparison's one measuring loop: a set of paths (the lab's modes with the A/A control,
//! a remote's attached mode beside the host, the ablation's variants) measured with
//! [`crate::measure`]'s interleaved schedule and turned into the report model's inputs.
//! It must not build or change what it measures: callers make every path exist first.

use super::error::CompareError;
use super::model::{ModeInput, PairedInput, RepInput, Warning};
use super::options::CpuPlacement;
use super::progress::Progress;
use super::runs::Runner;
use crate::error::error_chain;
use crate::measure::sockets::{self, MeasureError, PathSpec};
use crate::measure::{epochs, paired, BlockSize, Ci, Stopped};

/// What an interleaved set gave.
pub(super) struct Measurement {
    /// One per path group, in the paths' order (the first is the baseline); a group's
    /// replicates are its repetitions.
    pub inputs: Vec<ModeInput>,
    pub rounds: usize,
    /// B (`None`: time-sliced blocks).
    pub block_transactions: Option<u64>,
    /// Mean block length, seconds.
    pub block_s: f64,
    /// e.g. "batch means (40 batches of 25 rounds)".
    pub ci_method: String,
    /// Sessions that did not end cleanly (kept, never dropped), and a precision target missed.
    pub warnings: Vec<Warning>,
    /// Each path's block means by round, ns (for pairs other than against the baseline).
    pub means_ns: Vec<Vec<f64>>,
    /// Measured time, seconds.
    pub measured_s: f64,
    /// Rounds of each epoch (empty: measured in this process, in one go).
    pub epochs: Vec<usize>,
}

pub(super) fn scale(c: Ci, k: f64) -> Ci {
    Ci {
        estimate: c.estimate * k,
        ci95: c.ci95.map(|(lo, hi)| (lo * k, hi * k)),
    }
}

/// Measures `paths` (the first is the baseline) interleaved, as `opts` says: one replicate of
/// each.
pub(super) fn measure(
    runner: &Runner,
    paths: &[PathSpec],
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<Measurement, CompareError> {
    measure_replicated(runner, paths, 1, placement, progress)
}

/// Measures `paths` interleaved: G groups of `replicates` paths (path `r * G + g` is
/// replicate `r` of group `g`; group 0 is the baseline), each group compared with the baseline
/// replicate by replicate.
pub(super) fn measure_replicated(
    runner: &Runner,
    paths: &[PathSpec],
    replicates: usize,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<Measurement, CompareError> {
    let replicates = replicates.max(1);
    let cfg = runner.opts.schedule_config(paths.len(), replicates);
    progress.run_started(placement.name(), &set_label(paths.len(), replicates), 1, 1);
    let m = sockets::measure(paths, &runner.opts.run_spec(placement), &cfg, &runner.stop)
        .map_err(measure_error)?;
    assemble(runner, paths, replicates, &cfg, m, progress)
}

/// What the progress line calls a set.
fn set_label(paths: usize, replicates: usize) -> String {
    if replicates > 1 {
        format!(
            "{} paths × {replicates} replicates interleaved",
            paths / replicates
        )
    } else {
        format!("{paths} paths interleaved")
    }
}

fn measure_error(e: MeasureError) -> CompareError {
    match e {
        MeasureError::Baseline { error, .. } => CompareError::Baseline(error),
        e => CompareError::Invalid(error_chain(&e)),
    }
}

/// [`measure_replicated`] in `epochs` fresh processes one after another
/// ([`crate::measure::epochs`]): each binds a server of its own for every path in the path's
/// `server_netns` (the paths' ports are the epoch's).
pub(super) fn measure_epochs(
    runner: &Runner,
    paths: &[epochs::EpochPath],
    replicates: usize,
    epochs_n: usize,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<Measurement, CompareError> {
    let replicates = replicates.max(1);
    let cfg = runner.opts.schedule_config(paths.len(), replicates);
    let label = set_label(paths.len(), replicates);
    let exe = runner
        .opts
        .epoch_exe
        .clone()
        .unwrap_or_else(|| epochs::SELF_EXE.into());
    let m = epochs::measure(
        &exe,
        paths,
        epochs_n,
        &runner.opts.run_spec(placement),
        &cfg,
        &runner.stop,
        &mut |e| {
            progress.run_started(
                placement.name(),
                &format!("{label}, epoch {} of {epochs_n}", e + 1),
                e + 1,
                epochs_n,
            )
        },
    )
    .map_err(measure_error)?;
    let specs: Vec<PathSpec> = paths.iter().map(|p| p.path.clone()).collect();
    assemble(runner, &specs, replicates, &cfg, m, progress)
}

/// The report model's inputs from what a set measured.
fn assemble(
    runner: &Runner,
    paths: &[PathSpec],
    replicates: usize,
    cfg: &crate::measure::ScheduleConfig,
    m: sockets::Measured,
    progress: &dyn Progress,
) -> Result<Measurement, CompareError> {
    let opts = runner.opts;
    if m.rounds.stopped == Stopped::Interrupted || runner.stopped() {
        return Err(CompareError::Interrupted(""));
    }
    let rounds = m.rounds.rounds();
    let k = paired::batches_for(rounds);
    let groups = paths.len() / replicates;
    let mut runs: Vec<Option<_>> = m.runs.into_iter().map(Some).collect();
    let path_of = |g: usize, r: usize| r * groups + g;
    let mut inputs = Vec::with_capacity(groups);
    for g in 0..groups {
        let p = &paths[g];
        let mut input = ModeInput {
            mode: p.label.clone(),
            unavailable: None,
            reps: Vec::new(),
            trace_run: None,
            paired: None,
        };
        let group_runs: Vec<_> = (0..replicates)
            .map(|r| runs[path_of(g, r)].take().flatten())
            .collect();
        // A replicate that failed is left out of the group's figures; the group is unavailable
        // only when none is left.
        for r in 0..replicates {
            if let Some(e) = m.rounds.failed(path_of(g, r)) {
                progress.note(&format!(
                    "{} (replicate {}): run failed, left out: {}",
                    p.label,
                    r + 1,
                    error_chain(e)
                ));
            }
        }
        let ok: Vec<_> = group_runs
            .into_iter()
            .enumerate()
            .filter(|(r, _)| m.rounds.failed(path_of(g, *r)).is_none())
            .filter_map(|(_, run)| run)
            .collect();
        if let Some(e) = m.rounds.group_failed(g) {
            input.unavailable = Some(format!("run failed: {}", error_chain(e)));
        } else if ok.is_empty() {
            input.unavailable = Some("its session did not end cleanly".into());
        } else {
            if let Some(mean) = m.rounds.mean_ci(g) {
                progress.run_finished(&p.label, mean.estimate / 1000.0);
                input.paired = Some(PairedInput {
                    mean_us: scale(mean, 1e-3),
                    vs_baseline: m.rounds.paired(g).map(|mut v| {
                        v.delta = scale(v.delta, 1e-3);
                        v
                    }),
                });
            }
            input
                .reps
                .extend(ok.into_iter().map(|run| RepInput { run, probes: None }));
        }
        inputs.push(input);
    }
    let mut warnings: Vec<Warning> = m
        .cleanup
        .iter()
        .map(|(i, e)| Warning {
            message: format!(
                "{}: its session did not end cleanly: {}",
                paths[*i].label,
                error_chain(e)
            ),
            remedy: "check the server side (nslat serve) for errors".into(),
        })
        .collect();
    if m.rounds.stopped == Stopped::Budget {
        warnings.push(Warning {
            message: format!(
                "the measuring budget of {:.0} s was spent before every ratio's 95% CI was within \
                 ±{} points",
                opts.measure_budget.as_secs_f64(),
                opts.target_ci_points
            ),
            remedy: "raise --budget, or keep the machine otherwise idle".into(),
        });
    }
    let stalls: Vec<String> = (0..groups)
        .filter_map(|g| {
            let (n, st) = (0..replicates)
                .map(|r| &m.rounds.totals[path_of(g, r)])
                .fold((0u64, 0u64), |(n, s), t| (n + t.transactions, s + t.stalls));
            (n > 0).then(|| format!("{} {:.2}%", paths[g].label, st as f64 * 100.0 / n as f64))
        })
        .collect();
    let stall_note = if cfg.time_sliced {
        "; stream blocks are time slices compared by time per MB (inverse throughput)".to_string()
    } else if m.rounds.stall_ns == u64::MAX {
        String::new()
    } else {
        format!(
            "; transactions over {:.0} µs (stalls: the client preempted) left out of block means: {}",
            m.rounds.stall_ns as f64 / 1e3,
            stalls.join(", ")
        )
    };
    let blocks = (rounds * paths.len()).max(1);
    let (block_transactions, block_s) = match m.rounds.block {
        BlockSize::Transactions(b) => (Some(b), m.rounds.measured_ns as f64 / blocks as f64 / 1e9),
        BlockSize::Time(t) => (None, t.as_secs_f64()),
    };
    progress.note(&format!(
        "{rounds} rounds of {} blocks, {}, {:.1} s measured ({})",
        paths.len(),
        match block_transactions {
            Some(b) => format!("{b} transactions per block"),
            None => format!("{:.1} ms slices", block_s * 1e3),
        },
        m.rounds.measured_ns as f64 / 1e9,
        match m.rounds.stopped {
            Stopped::Target => "every ratio within the target",
            Stopped::Budget => "time budget spent",
            Stopped::Time => "planned time spent",
            Stopped::Interrupted => "interrupted",
        }
    ));
    Ok(Measurement {
        inputs,
        rounds,
        block_transactions,
        block_s,
        ci_method: if replicates > 1 && m.rounds.epochs.len() > 1 {
            format!(
                "{} ({replicates} independent instances of every path, each paired with the \
                 host's by round, measured in {} epochs, each a fresh process; the interval adds \
                 the spread between instances to the spread between epochs, corrected for their \
                 autocorrelation, Student's t){stall_note}",
                paired::REPLICATE_METHOD,
                m.rounds.epochs.len()
            )
        } else if replicates > 1 {
            format!(
                "{} ({replicates} independent instances of every path, each paired with the \
                 host's by round; the interval adds the spread between instances to the spread \
                 between time batches, corrected for their autocorrelation, Student's t)\
                 {stall_note}",
                paired::REPLICATE_METHOD
            )
        } else if let Some(per) = rounds.checked_div(k) {
            format!(
                "{} ({k} batches of {per} rounds){stall_note}",
                paired::METHOD
            )
        } else {
            format!(
                "{} (too few rounds for an interval){stall_note}",
                paired::METHOD
            )
        },
        warnings,
        epochs: m.rounds.epochs.clone(),
        means_ns: m.rounds.means_ns,
        measured_s: m.rounds.measured_ns as f64 / 1e9,
    })
}
