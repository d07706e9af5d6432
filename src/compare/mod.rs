//! `nslat compare`: measure container network paths against the host and report the gap.
//!
//! One front door, [`run`]: it checks the options and the flow, sweeps the labs of compares that
//! crashed, runs the flow, and stamps every report (the lock's flags, the node pair, the run's
//! context, the recommendation). Below it:
//!
//! - the flows, one file each, every one a [`Flow`]: `lab.rs` ([`LabPlan`], the default, with
//!   `explain.rs` for `--explain`), `remote.rs` ([`RemotePlan`], `--remote`), `targets.rs`
//!   ([`TargetPlan`], `--target`);
//! - the floor they share, which imports no flow: `options.rs` (what to measure, and the one
//!   `RunSpec` builder), `error.rs`, `progress.rs`, `flow.rs` (what a flow is), `runs.rs` (one
//!   run of one path, the probe configurations, the interrupt flag), `interleave.rs` (the one
//!   measuring loop), `attached.rs` (NIC-attached modes as paths), `model/` (the report and its
//!   assembly), `recommend.rs`.
//!
//! A new flow is a file with a type that implements [`Flow`], and its `mod` line here; the CLI
//! builds the type and hands it to [`run`].

mod attached;
mod error;
mod explain;
mod flow;
mod interleave;
mod lab;
mod model;
mod options;
mod progress;
pub mod recommend;
mod remote;
mod runs;
mod targets;
mod waterfall;

pub use error::CompareError;
pub use flow::{Finished, Flow};
pub use lab::LabPlan;
pub use model::*;
pub use options::{
    CompareOptions, CpuChoice, CpuPlacement, FamilyChoice, RepsChoice, ScheduleChoice,
    DEFAULT_REPLICATES,
};
pub use progress::{Progress, SilentProgress};
pub use remote::RemotePlan;
pub use runs::Runner;
pub use targets::{AttachPlan, TargetPlan, LAB_PREFIX};

/// What every finished report is stamped with besides its measurement.
#[derive(Debug, Clone, Default)]
pub struct Stamp {
    /// When, how and on what the run was made.
    pub context: Option<RunContext>,
    /// `--node`/`--peer`/`--peer-network`.
    pub pair: Option<PairLabel>,
    /// Conditions of the measurement worth a flag first (another measurement held the CPUs).
    pub flags: Vec<String>,
}

/// Runs the comparison `opts` describes the way `flow` measures it, and returns the finished
/// reports (one per CPU placement).
pub fn run(
    opts: &CompareOptions,
    flow: &dyn Flow,
    stamp: &Stamp,
    progress: &dyn Progress,
) -> Result<Finished, CompareError> {
    check(opts, flow)?;
    if !crate::netns::is_root() {
        return Err(CompareError::NotRoot);
    }
    let runner = Runner::new(opts);
    if flow.builds_lab() {
        remove_stale_labs(progress);
    }
    let mut finished = flow.measure(&runner, progress)?;
    for r in &mut finished.reports {
        finish(r, stamp);
    }
    Ok(finished)
}

/// Checks the options and what the flow cannot do with them, before anything is built or locked.
pub fn check(opts: &CompareOptions, flow: &dyn Flow) -> Result<(), CompareError> {
    opts.validate()
        .and_then(|()| flow.check(opts))
        .map_err(CompareError::Invalid)
}

/// The last of a report: the stamp's flags first, its node pair and context, and the
/// recommendation (computed here, once; every exporter renders this one).
fn finish(r: &mut CompareReport, stamp: &Stamp) {
    for (i, flag) in stamp.flags.iter().enumerate() {
        r.flags.insert(i, flag.clone());
    }
    r.pair = stamp.pair.clone();
    r.context = stamp.context.clone();
    r.recommendation = recommend::lines(r);
}

/// Removes the labs of compares that are gone (kill -9, a crash) and says so, one line each.
fn remove_stale_labs(progress: &dyn Progress) {
    for (e, result) in crate::lab::inventory::remove_stale_compare_labs() {
        let owner = e.owner.map(|p| format!(" (pid {p})")).unwrap_or_default();
        progress.note(&match result {
            Ok(r) if r.errors.is_empty() => format!(
                "removed stale lab '{}': its compare{owner} is gone ({} namespaces)",
                e.name,
                r.removed.len()
            ),
            Ok(r) => format!(
                "warning: stale lab '{}' of a compare that is gone{owner} only partly removed: {}",
                e.name,
                r.errors.join("; ")
            ),
            Err(err) => format!(
                "warning: stale lab '{}' of a compare that is gone{owner} not removed: {}",
                e.name,
                crate::error::error_chain(&err)
            ),
        });
    }
}
