//! One run of one path, as every flow makes it: the engine's settings from the options and the
//! placement ([`CompareOptions::run_spec`], the one place a comparison's `RunSpec` is built)
//! sent towards a path, the counters read around it (the probe configurations), and the flag a
//! signal raises. Part of the floor: it imports no flow.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::error::CompareError;
use super::model::RepInput;
use super::options::{CompareOptions, CpuPlacement};
use crate::bench::client;
use crate::bench::RunSpec;
use crate::lab;
use crate::measure::sockets::PathSpec;
use crate::probe::{self, ProbeConfig, Snapshot};

/// Length of the extra tracepoint-counting run per mode (and of `--explain`'s probed runs).
const TRACE_RUN: Duration = Duration::from_millis(300);

/// Length of [`Runner::probe_run`]'s run.
const PROBE_RUN: Duration = Duration::from_millis(400);

/// What every run of a comparison shares: its options and the flag a signal raises.
pub struct Runner<'a> {
    pub opts: &'a CompareOptions,
    /// Raised by SIGINT/SIGTERM/SIGHUP: the flow stops after the current run and removes what it
    /// built.
    pub stop: Arc<AtomicBool>,
}

impl<'a> Runner<'a> {
    /// Installs the signal handlers (they only raise [`Runner::stop`]).
    pub(super) fn new(opts: &'a CompareOptions) -> Self {
        Runner {
            opts,
            stop: interrupt_flag(),
        }
    }

    /// Whether a signal asked to stop.
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// One run of `path` as the options and the placement say.
    pub fn spec(&self, placement: CpuPlacement, path: &PathSpec) -> RunSpec {
        let mut spec = self.opts.run_spec(placement);
        spec.server = path.server;
        spec.netns = path.netns.clone();
        spec.token = path.token.clone();
        spec
    }

    /// One timed run of `path` (the runs schedule), with `probes` read around it (before the
    /// warm-up: the model divides by all transactions).
    pub fn timed(
        &self,
        placement: CpuPlacement,
        path: &PathSpec,
        probes: &ProbeConfig,
    ) -> Result<RepInput, CompareError> {
        self.probed(self.spec(placement, path), probes)
    }

    /// A short run of `path` with `probes` read around it (see [`trace_config`]), outside any
    /// timed block: a mode's tracepoint run, `--explain`'s per-variant counters.
    pub fn traced(
        &self,
        placement: CpuPlacement,
        path: &PathSpec,
        probes: &ProbeConfig,
    ) -> Result<RepInput, CompareError> {
        let mut spec = self.spec(placement, path);
        spec.duration = spec.duration.min(TRACE_RUN);
        spec.warmup = spec.warmup.min(TRACE_RUN / 5);
        self.probed(spec, probes)
    }

    /// One short run of a path alone, with `probes` read around it (never inside the interleaved
    /// blocks): the probe figures of a path measured outside the lab (a target, an attached mode).
    /// `None` when the run fails (the path's row then has no counters).
    pub fn probe_run(
        &self,
        placement: CpuPlacement,
        path: &PathSpec,
        probes: &ProbeConfig,
    ) -> Option<RepInput> {
        let mut spec = self.spec(placement, path);
        spec.duration = PROBE_RUN;
        spec.warmup = PROBE_RUN / 4;
        let before = Snapshot::take(probes).ok();
        let run = client::run(&spec).ok()?;
        let after = Snapshot::take(probes).ok();
        Some(RepInput {
            run,
            probes: before.zip(after).map(|(b, a)| Snapshot::delta(&b, &a)),
        })
    }

    fn probed(&self, spec: RunSpec, probes: &ProbeConfig) -> Result<RepInput, CompareError> {
        if self.stopped() {
            return Err(CompareError::Interrupted(""));
        }
        let before = Snapshot::take(probes).ok();
        let run = client::run(&spec);
        let after = Snapshot::take(probes).ok();
        if self.stopped() {
            return Err(CompareError::Interrupted(""));
        }
        let run = run.map_err(|e| CompareError::Invalid(e.to_string()))?;
        let probes = match (before, after) {
            (Some(b), Some(a)) => Some(Snapshot::delta(&b, &a)),
            _ => None,
        };
        Ok(RepInput { run, probes })
    }
}

/// Installs SIGINT/SIGTERM/SIGHUP handlers that only raise a flag: the comparison stops after the
/// current run and removes what it built.
fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    lab::set_default_signal_action_outside_up(false);
    for sig in lab::STOP_SIGNALS {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

fn placement_cpus(placement: CpuPlacement) -> Vec<usize> {
    let (c, s) = CompareOptions::cpus_for(placement);
    let mut cpus = vec![c, s];
    cpus.dedup();
    cpus
}

/// The counters read around every timed run: only the /proc ones, which cost nothing while the
/// run goes on. (Open perf tracepoint counters cost nanoseconds per event, and a path with more
/// events, like the bridge's, would pay more: the probe would change what it measures.)
pub fn probe_config(placement: CpuPlacement) -> ProbeConfig {
    ProbeConfig::new(Some(placement_cpus(placement)))
}

/// The counters of the extra tracepoint run: the /proc ones plus the tracepoints.
pub fn trace_config(placement: CpuPlacement) -> ProbeConfig {
    ProbeConfig::with_tracepoints(
        Some(placement_cpus(placement)),
        &probe::tracepoints::DEFAULT,
    )
}
