//! The experiment behind `nslat compare`: plan the runs, interleave them across modes, collect
//! engine results and probe deltas, and turn them into a [`CompareReport`].

mod ablation;
mod attached;
mod experiment;
mod interleave;
mod model;
mod options;
mod remote;
mod targets;

pub use experiment::{run, CompareError, Progress, SilentProgress};
pub use model::*;
pub use options::{CompareOptions, CpuChoice, CpuPlacement, RepsChoice, ScheduleChoice};
pub use remote::RemoteTarget;
pub use targets::{run as run_targets, AttachPlan, TargetOutcome, TargetPlan, LAB_PREFIX};
