//! Running a comparison: build (or reuse) the lab, serve in the remote, run every mode in
//! interleaved rounds with probes around each run, and build the reports.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::ablation;
use super::model::{self, build_report, CompareReport, ModeInput, RepInput, ReportMeta};
use super::options::{CompareOptions, CpuPlacement, RepsChoice, ScheduleChoice};
use crate::bench::client::{self, ClientError};
use crate::bench::server::{Server, ServerConfig, ServerError};
use crate::bench::RunSpec;
use crate::lab::cells::{Cell, CellSet, CellSpec};
use crate::lab::{self, Lab, LabError, LabSpec, Mode};
use crate::netns::{self, NetnsError};
use crate::probe::{self, ProbeConfig, Snapshot};
use crate::stats;

/// Errors that stop a comparison (a single mode failing does not: it is reported as unavailable).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    Invalid(String),
    #[error("nslat compare builds network namespaces and needs root; run it with sudo")]
    NotRoot,
    #[error("lab")]
    Lab(#[from] LabError),
    #[error("starting the server in the remote namespace")]
    Server(#[from] ServerError),
    #[error("the baseline (host) could not be measured: {0}")]
    Baseline(ClientError),
    /// The text says what became of what nslat built (see [`CompareError::interrupted`]).
    #[error("interrupted by a signal; {0}")]
    Interrupted(&'static str),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
}

/// Progress of a comparison, for a progress bar or plain lines. Every method has a no-op default.
pub trait Progress {
    /// A placement begins: about `runs` runs of `seconds_per_run` each are planned.
    fn placement(&self, _placement: &str, _runs: usize, _seconds_per_run: f64) {}
    /// One run begins.
    fn run_started(&self, _placement: &str, _label: &str, _rep: usize, _reps: usize) {}
    /// One run ended with this mean latency (µs).
    fn run_finished(&self, _label: &str, _latency_us: f64) {}
    /// Something worth a line (lab built, mode unavailable, extra rounds).
    fn note(&self, _message: &str) {}
    /// The feature checks begin: `checks` are planned (at least 1).
    fn checks_planned(&self, _checks: usize) {}
    /// One feature check begins, e.g. ("bridge", "Service").
    fn check_started(&self, _mode: &str, _check: &str) {}
    /// The feature check that began last ended.
    fn check_finished(&self) {}
}

/// A comparison's progress as the checks' progress.
struct ChecksProgress<'a>(&'a dyn Progress);

impl crate::check::CheckProgress for ChecksProgress<'_> {
    fn planned(&self, checks: usize) {
        self.0.checks_planned(checks);
    }
    fn started(&self, mode: &str, check: &str) {
        self.0.check_started(mode, check);
    }
    fn finished(&self) {
        self.0.check_finished();
    }
}

/// Progress that shows nothing.
pub struct SilentProgress;
impl Progress for SilentProgress {}

/// Removes the lab when dropped (unless disarmed), so every exit path cleans up.
struct LabTeardown {
    name: String,
    armed: bool,
}

impl Drop for LabTeardown {
    fn drop(&mut self) {
        if self.armed {
            let _ = lab::down(&self.name);
        }
    }
}

/// Everything a run needs besides the mode.
pub(super) struct Bench<'a> {
    pub(super) opts: &'a CompareOptions,
    pub(super) server: SocketAddr,
    /// The server address each mode's namespace targets (its driver's plan; the server listens
    /// on every address of the remote).
    targets: HashMap<PathBuf, IpAddr>,
    pub(super) stop: Arc<AtomicBool>,
}

impl Bench<'_> {
    fn spec(&self, netns: &Path, placement: CpuPlacement) -> RunSpec {
        let ip = self.targets.get(netns).copied().unwrap_or(self.server.ip());
        self.spec_to(netns, SocketAddr::new(ip, self.server.port()), placement)
    }

    fn spec_to(&self, netns: &Path, server: SocketAddr, placement: CpuPlacement) -> RunSpec {
        let (client_cpu, server_cpu) = CompareOptions::cpus_for(placement);
        let mut spec = RunSpec::new(server, self.opts.test, self.opts.duration);
        spec.warmup = self.opts.warmup;
        spec.request_size = self.opts.request_size;
        spec.response_size = self.opts.response_size;
        spec.client_cpu = Some(client_cpu);
        spec.server_cpu = Some(server_cpu);
        spec.netns = Some(netns.to_path_buf());
        spec
    }

    /// One timed run with probes around it (taken before the warm-up; the model divides by all
    /// transactions).
    fn measure(
        &self,
        netns: &Path,
        placement: CpuPlacement,
        probes: &ProbeConfig,
    ) -> Result<RepInput, CompareError> {
        self.run_probed(self.spec(netns, placement), probes)
    }

    /// The short extra run of a mode with tracepoint counters open (see [`trace_config`]).
    pub(super) fn measure_traced(
        &self,
        netns: &Path,
        placement: CpuPlacement,
        probes: &ProbeConfig,
    ) -> Result<RepInput, CompareError> {
        self.run_traced(self.spec(netns, placement), probes)
    }

    /// [`Bench::measure_traced`] of a run already described.
    pub(super) fn run_traced(
        &self,
        mut spec: RunSpec,
        probes: &ProbeConfig,
    ) -> Result<RepInput, CompareError> {
        spec.duration = spec.duration.min(TRACE_RUN);
        spec.warmup = spec.warmup.min(TRACE_RUN / 5);
        self.run_probed(spec, probes)
    }

    /// A short probed run (as long as the tracepoint run) from `netns` to `server`, outside any
    /// timed block (`--explain`'s per-variant counters).
    pub(super) fn probe_run(
        &self,
        netns: &Path,
        server: SocketAddr,
        placement: CpuPlacement,
        probes: &ProbeConfig,
    ) -> Result<RepInput, CompareError> {
        let mut spec = self.spec_to(netns, server, placement);
        spec.duration = spec.duration.min(TRACE_RUN);
        spec.warmup = spec.warmup.min(TRACE_RUN / 5);
        self.run_probed(spec, probes)
    }

    fn run_probed(&self, spec: RunSpec, probes: &ProbeConfig) -> Result<RepInput, CompareError> {
        if self.stop.load(Ordering::SeqCst) {
            return Err(CompareError::Interrupted(""));
        }
        let before = Snapshot::take(probes).ok();
        let run = client::run(&spec);
        let after = Snapshot::take(probes).ok();
        if self.stop.load(Ordering::SeqCst) {
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
/// current run and removes its lab.
pub(super) fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    lab::set_default_signal_action_outside_up(false);
    for sig in lab::STOP_SIGNALS {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

/// Runs the comparison `opts` describes and returns one report per CPU placement.
pub fn run(
    opts: &CompareOptions,
    progress: &dyn Progress,
) -> Result<Vec<CompareReport>, CompareError> {
    opts.validate().map_err(CompareError::Invalid)?;
    if !netns::is_root() {
        return Err(CompareError::NotRoot);
    }
    let stop = interrupt_flag();
    if let Some(target) = &opts.remote {
        return super::remote::run(opts, target, &stop, progress);
    }

    let (lab, teardown) = open_or_build_lab(opts, progress)?;
    let interrupted = if teardown.armed {
        "the lab it built was removed"
    } else {
        "the lab was left as it was"
    };
    if stop.load(Ordering::SeqCst) {
        return Err(CompareError::Interrupted(interrupted));
    }

    let remote_ns = lab.remote_netns().to_path_buf();
    let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    let server = netns::run_in(Some(&remote_ns), move || {
        Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
    })?;
    let targets = lab
        .modes()
        .filter_map(|(_, s)| s.as_ref().ok())
        .map(|i| (i.netns.clone(), IpAddr::V4(i.server)))
        .collect();
    let bench = Bench {
        opts,
        server: SocketAddr::new(lab.remote_addr().into(), server.local_addr().port()),
        targets,
        stop: stop.clone(),
    };
    let handle = server.spawn();
    let result = measure_all(&bench, &lab, progress);
    handle.stop();
    result.map_err(|e| match e {
        CompareError::Interrupted(_) => CompareError::Interrupted(interrupted),
        e => e,
    })
}

/// Reuses `--lab NAME` when it exists (and leaves it), else builds a lab and arms its teardown.
fn open_or_build_lab(
    opts: &CompareOptions,
    progress: &dyn Progress,
) -> Result<(Lab, LabTeardown), CompareError> {
    if let Some(name) = &opts.lab {
        lab::validate_name(name)?;
        if let Ok(existing) = Lab::open(name) {
            progress.note(&format!("using the existing lab '{name}' (left as it is)"));
            let keep = LabTeardown {
                name: name.clone(),
                armed: false,
            };
            return Ok((existing, keep));
        }
    }
    let name = opts
        .lab
        .clone()
        .unwrap_or_else(|| lab::inventory::compare_lab_name(std::process::id()));
    let mut spec = LabSpec::new(&name);
    spec.modes = opts.lab_modes();
    let started = Instant::now();
    let built = Lab::up(&spec)?;
    let teardown = LabTeardown {
        name: name.clone(),
        armed: !opts.keep_lab,
    };
    progress.note(&format!(
        "lab '{name}' built in {:.0} ms{}",
        started.elapsed().as_secs_f64() * 1e3,
        if opts.keep_lab {
            format!(" (kept: remove it with `nslat lab down --name {name}`)")
        } else {
            String::new()
        }
    ));
    Ok((built, teardown))
}

/// Where a mode runs, or why it cannot.
fn mode_netns(lab: &Lab, mode: Mode) -> Result<PathBuf, String> {
    match lab.mode(mode) {
        Some(Ok(info)) => Ok(info.netns.clone()),
        Some(Err(reason)) => Err(reason.clone()),
        None => Err(format!(
            "not part of lab '{}' (rebuild it with --modes including {mode})",
            lab.name()
        )),
    }
}

fn measure_all(
    bench: &Bench,
    lab: &Lab,
    progress: &dyn Progress,
) -> Result<Vec<CompareReport>, CompareError> {
    let opts = bench.opts;
    let mut reports = Vec::new();
    for &placement in opts.cpu.placements() {
        let mut report = match opts.schedule {
            ScheduleChoice::Interleaved => {
                measure_placement_interleaved(bench, lab, placement, progress)?
            }
            ScheduleChoice::Runs => measure_placement(bench, lab, placement, progress)?,
        };
        if opts.explain && placement == CpuPlacement::Same {
            report.explain = Some(ablation::run(bench, lab, placement, progress)?);
        }
        if opts.checks {
            let modes = opts.measured_modes();
            report.checks = Some(crate::check::outcome(
                lab,
                &modes,
                &ChecksProgress(progress),
            ));
        }
        reports.push(report);
    }
    Ok(reports)
}

/// Length of the extra tracepoint-counting run per mode.
const TRACE_RUN: Duration = Duration::from_millis(300);

fn placement_cpus(placement: CpuPlacement) -> Vec<usize> {
    let (c, s) = CompareOptions::cpus_for(placement);
    let mut cpus = vec![c, s];
    cpus.dedup();
    cpus
}

/// The counters read around every timed run: only the /proc ones, which cost nothing while the
/// run goes on. (Open perf tracepoint counters cost nanoseconds per event, and a path with more
/// events, like the bridge's, would pay more: the probe would change what it measures.)
pub(super) fn probe_config(placement: CpuPlacement) -> ProbeConfig {
    ProbeConfig::new(Some(placement_cpus(placement)))
}

/// The counters of the extra tracepoint run: the /proc ones plus the tracepoints.
pub(super) fn trace_config(placement: CpuPlacement) -> ProbeConfig {
    ProbeConfig::with_tracepoints(
        Some(placement_cpus(placement)),
        &probe::tracepoints::DEFAULT,
    )
}

/// One short run of a path alone, with `probes` read around it (never inside the interleaved
/// blocks): the probe figures of a path measured outside the lab (a target, an attached mode).
/// `None` when the run fails (the path's row then has no counters).
pub(super) fn probe_run(
    opts: &CompareOptions,
    placement: CpuPlacement,
    path: &crate::measure::sockets::PathSpec,
    probes: &ProbeConfig,
) -> Option<RepInput> {
    let mut spec = super::interleave::template(opts, placement);
    spec.server = path.server;
    spec.netns = path.netns.clone();
    spec.token = path.token.clone();
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

/// Length of [`probe_run`]'s run.
const PROBE_RUN: Duration = Duration::from_millis(400);

/// Every measured mode with its namespace, or unavailable with the reason.
fn mode_inputs(
    bench: &Bench,
    lab: &Lab,
    progress: &dyn Progress,
) -> Vec<(ModeInput, Option<PathBuf>)> {
    bench
        .opts
        .measured_modes()
        .into_iter()
        .map(|mode| {
            let (unavailable, ns) = match mode_netns(lab, mode) {
                Ok(ns) => (None, Some(ns)),
                Err(reason) => {
                    progress.note(&format!("{mode}: unavailable: {reason}"));
                    (Some(reason), None)
                }
            };
            let input = ModeInput {
                trace_run: None,
                paired: None,
                mode: mode.name().to_string(),
                unavailable,
                reps: Vec::new(),
            };
            (input, ns)
        })
        .collect()
}

/// Tracepoints: one short extra run per mode with the counters open, outside the statistics.
/// With the interleaved schedule, its /proc counters are the mode's probe figures too.
fn trace_runs(
    bench: &Bench,
    inputs: &mut [(ModeInput, Option<PathBuf>)],
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<(), CompareError> {
    let traced = trace_config(placement);
    for (input, ns) in inputs.iter_mut() {
        if input.mode == model::AA_CONTROL || input.unavailable.is_some() {
            continue;
        }
        if let Some(path) = ns.clone() {
            let label = format!("{} (tracepoints)", input.mode);
            progress.run_started(placement.name(), &label, 1, 1);
            let rep = bench.measure_traced(&path, placement, &traced)?;
            progress.run_finished(&label, rep.run.latency_us.mean);
            input.trace_run = Some(rep);
        }
    }
    Ok(())
}

fn report_meta(
    opts: &CompareOptions,
    placement: CpuPlacement,
    reps: usize,
    duration_s: f64,
) -> ReportMeta {
    ReportMeta {
        test: opts.test,
        request_size: opts.request_size,
        response_size: opts.response_size,
        reps,
        duration_s,
        cpu_placement: placement.name().to_string(),
        kernel: crate::host_facts::kernel_release(),
        host_name: crate::host_facts::host_name(),
        schedule: model::ScheduleKind::Runs,
        block_transactions: None,
        ci_method: None,
        baseline: model::Baseline::unknown(),
    }
}

/// One measured row of the interleaved lab comparison: a mode on a node of a state.
struct Group {
    label: String,
    spec: CellSpec,
}

/// The rows of the interleaved lab comparison, baseline first: the host on a node of the
/// baseline's state, every other measured mode (each on its own node of that state), the host on
/// a node of the other state (unless turned off), and the A/A control (a second, independent set
/// of host cells of the baseline's state). Modes the lab could not build are returned apart.
fn groups(opts: &CompareOptions, lab: &Lab) -> (Vec<Group>, Vec<(Mode, String)>) {
    let state = opts.baseline;
    let mut groups = Vec::new();
    let mut unavailable = Vec::new();
    for mode in opts.measured_modes() {
        match mode_netns(lab, mode) {
            Ok(_) => groups.push(Group {
                label: mode.name().to_string(),
                spec: CellSpec { mode, node: state },
            }),
            Err(reason) => unavailable.push((mode, reason)),
        }
    }
    if opts.other_host {
        groups.push(Group {
            label: model::host_other_label(state).to_string(),
            spec: CellSpec {
                mode: Mode::Host,
                node: state.other(),
            },
        });
    }
    groups.push(Group {
        label: model::AA_CONTROL.to_string(),
        spec: CellSpec {
            mode: Mode::Host,
            node: state,
        },
    });
    (groups, unavailable)
}

/// The interleaved schedule: every available mode, the other host and the A/A control at once,
/// each on `--replicates` cells of its own (see [`crate::lab::cells`]).
fn measure_placement_interleaved(
    bench: &Bench,
    lab: &Lab,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<CompareReport, CompareError> {
    let opts = bench.opts;
    let (mut groups, unavailable) = groups(opts, lab);
    if groups.first().is_none_or(|g| g.spec.mode != Mode::Host) {
        let why = unavailable
            .iter()
            .find(|(m, _)| *m == Mode::Host)
            .map(|(_, r)| r.clone())
            .unwrap_or_else(|| "not built".into());
        return Err(CompareError::Baseline(ClientError::Invalid(format!(
            "the host mode is unavailable: {why}"
        ))));
    }
    let reps = opts.replicates.max(1);
    // Replicate-major (replicate 0 of every path, then replicate 1, ...): one path's instances
    // are not made one after another, so they do not share where they land in memory.
    let specs: Vec<CellSpec> = (0..reps)
        .flat_map(|_| groups.iter().map(|g| g.spec))
        .collect();
    let started = Instant::now();
    let cells = CellSet::build(lab.name(), &specs).map_err(|e| match e {
        LabError::Interrupted => CompareError::Interrupted(""),
        e => CompareError::Lab(e),
    })?;
    progress.note(&format!(
        "{} measurement cells ({} paths × {reps} replicates, each its own node) built in {:.0} ms",
        specs.len(),
        groups.len(),
        started.elapsed().as_secs_f64() * 1e3
    ));
    // A group with a cell that could not be built is unavailable (all its replicates go).
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut keep = Vec::new();
    let ngroups = groups.len();
    for (g, group) in groups.iter().enumerate() {
        let bad = (0..reps).find_map(|r| cells.cells()[r * ngroups + g].as_ref().err().cloned());
        match bad {
            Some(why) if g == 0 => {
                return Err(CompareError::Baseline(ClientError::Invalid(format!(
                    "the host baseline's cell could not be built: {why}"
                ))))
            }
            Some(why) => {
                progress.note(&format!("{}: unavailable: {why}", group.label));
                failed.push((group.label.clone(), why));
            }
            None => keep.push(g),
        }
    }
    let built: Vec<&Cell> = (0..reps)
        .flat_map(|r| keep.iter().map(move |&g| r * ngroups + g))
        .filter_map(|i| cells.cells()[i].as_ref().ok())
        .collect();
    groups = keep
        .iter()
        .map(|&g| Group {
            label: groups[g].label.clone(),
            spec: groups[g].spec,
        })
        .collect();

    // One server per cell, in its remote.
    let mut servers = Vec::with_capacity(built.len());
    let mut paths = Vec::with_capacity(built.len());
    for (i, cell) in built.iter().enumerate() {
        let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
        let server = netns::run_in(Some(&cell.remote), move || {
            Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
        })?;
        let port = server.local_addr().port();
        servers.push(server.spawn());
        paths.push(crate::measure::sockets::PathSpec {
            label: groups[i % groups.len()].label.clone(),
            netns: Some(cell.info.netns.clone()),
            server: SocketAddr::new(IpAddr::V4(cell.info.server), port),
            token: None,
        });
    }
    progress.placement(placement.name(), groups.len() + groups.len() - 1, 1.0);
    let measured =
        super::interleave::measure_replicated(opts, &paths, reps, placement, &bench.stop, progress);
    let m = match measured {
        Ok(m) => m,
        Err(e) => {
            servers.into_iter().for_each(|s| s.stop());
            return Err(e);
        }
    };
    // The tracepoint run of each mode, on its first replicate's cell (outside the statistics).
    let traced = trace_config(placement);
    let mut inputs: Vec<ModeInput> = Vec::with_capacity(groups.len() + failed.len());
    let mut trace_err = None;
    for ((g, group), mut input) in groups.iter().enumerate().zip(m.inputs) {
        if group.label != model::AA_CONTROL && input.unavailable.is_none() && trace_err.is_none() {
            let label = format!("{} (tracepoints)", group.label);
            progress.run_started(placement.name(), &label, 1, 1);
            let path = &paths[g];
            let spec = bench.spec_to(
                path.netns.as_deref().unwrap_or(Path::new("")),
                path.server,
                placement,
            );
            match bench.run_traced(spec, &traced) {
                Ok(rep) => {
                    progress.run_finished(&label, rep.run.latency_us.mean);
                    input.trace_run = Some(rep);
                }
                Err(e) => trace_err = Some(e),
            }
        }
        inputs.push(input);
    }
    let waterfalls = opts
        .waterfall
        .then(|| waterfall_paths(&groups, &paths, &built, placement, opts, progress));
    servers.into_iter().for_each(|s| s.stop());
    if let Some(e) = trace_err {
        return Err(e);
    }
    // Modes the lab could not build, and groups whose cells could not be built, in the
    // order the user asked.
    for (mode, why) in unavailable {
        progress.note(&format!("{mode}: unavailable: {why}"));
        inputs.push(ModeInput {
            trace_run: None,
            paired: None,
            mode: mode.name().to_string(),
            unavailable: Some(why),
            reps: Vec::new(),
        });
    }
    for (label, why) in failed {
        inputs.push(ModeInput {
            trace_run: None,
            paired: None,
            mode: label,
            unavailable: Some(why),
            reps: Vec::new(),
        });
    }
    let asked = opts.measured_modes();
    inputs.sort_by_key(|i| {
        asked
            .iter()
            .position(|m| m.name() == i.mode)
            .unwrap_or(usize::MAX)
    });
    let baseline_ns = built.first().map(|c| c.node.display().to_string());
    drop(cells);
    let mut meta = report_meta(opts, placement, m.rounds, m.block_s);
    meta.schedule = model::ScheduleKind::Interleaved;
    meta.block_transactions = m.block_transactions;
    meta.ci_method = Some(m.ci_method);
    meta.baseline = model::Baseline::chosen(opts.baseline, baseline_ns);
    let mut report = build_report(&meta, &inputs);
    report.warnings.extend(m.warnings);
    if let Some(w) = waterfalls {
        crate::waterfall::compare::attach(&mut report, w);
    }
    Ok(report)
}

/// `--waterfall`: each group's first replicate traced (not the A/A control).
fn waterfall_paths(
    groups: &[Group],
    paths: &[crate::measure::sockets::PathSpec],
    built: &[&Cell],
    placement: CpuPlacement,
    opts: &CompareOptions,
    progress: &dyn Progress,
) -> crate::waterfall::compare::Traced {
    let todo: Vec<crate::waterfall::compare::PathToTrace> = (0..groups.len())
        .filter(|&g| groups[g].label != model::AA_CONTROL)
        .map(|g| crate::waterfall::compare::PathToTrace {
            label: groups[g].label.clone(),
            netns: paths[g].netns.clone(),
            server: paths[g].server,
            wire: vec![built[g].node.clone(), built[g].remote.clone()],
        })
        .collect();
    let cpus = CompareOptions::cpus_for(placement);
    let sizes = (opts.request_size, opts.response_size);
    crate::waterfall::compare::trace_paths(&todo, cpus, sizes, progress)
}

fn measure_placement(
    bench: &Bench,
    lab: &Lab,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<CompareReport, CompareError> {
    let opts = bench.opts;
    let probes = probe_config(placement);
    let mut inputs = mode_inputs(bench, lab, progress);

    let available = inputs.iter().filter(|(_, ns)| ns.is_some()).count();
    let min_reps = match opts.reps {
        RepsChoice::Fixed(n) => n,
        RepsChoice::Auto => RepsChoice::AUTO_MIN,
    };
    let round_secs = available as f64 * opts.seconds_per_run();
    progress.placement(
        placement.name(),
        available * min_reps,
        opts.seconds_per_run(),
    );

    let started = Instant::now();
    let mut round = 0;
    loop {
        let reps_shown = min_reps.max(round + 1);
        for (input, ns) in inputs.iter_mut() {
            let Some(path) = ns.clone() else { continue };
            progress.run_started(placement.name(), &input.mode, round + 1, reps_shown);
            match bench.measure(&path, placement, &probes) {
                Ok(rep) => {
                    progress.run_finished(&input.mode, rep.run.latency_us.mean);
                    input.reps.push(rep);
                }
                Err(CompareError::Invalid(why)) if input.mode != model::BASELINE => {
                    progress.note(&format!("{}: run failed, left out: {why}", input.mode));
                    input.unavailable = Some(format!("run failed: {why}"));
                    input.reps.clear();
                    *ns = None;
                }
                Err(CompareError::Invalid(why)) => {
                    return Err(CompareError::Baseline(ClientError::Invalid(why)))
                }
                Err(e) => return Err(e),
            }
        }
        round += 1;
        if !another_round(
            opts,
            &inputs,
            round,
            started.elapsed().as_secs_f64(),
            round_secs,
        ) {
            break;
        }
        if round == min_reps {
            progress.note("confidence intervals still above 1% of the mean: adding rounds");
        }
    }

    trace_runs(bench, &mut inputs, placement, progress)?;
    let modes: Vec<ModeInput> = inputs.into_iter().map(|(i, _)| i).collect();
    let meta = report_meta(opts, placement, round, opts.duration.as_secs_f64());
    Ok(build_report(&meta, &modes))
}

/// Whether to run another round of every mode.
fn another_round(
    opts: &CompareOptions,
    inputs: &[(ModeInput, Option<PathBuf>)],
    done: usize,
    elapsed_s: f64,
    round_s: f64,
) -> bool {
    match opts.reps {
        RepsChoice::Fixed(n) => done < n,
        RepsChoice::Auto => {
            if done < RepsChoice::AUTO_MIN {
                return true;
            }
            let wide = inputs.iter().any(|(input, _)| {
                stats::mean_ci95(&model::rep_latencies(input))
                    .and_then(|c| c.rel_half_width())
                    .is_some_and(|r| r > RepsChoice::AUTO_TARGET_REL_CI)
            });
            wide && done < RepsChoice::AUTO_MAX && elapsed_s + round_s <= opts.budget.as_secs_f64()
        }
    }
}
