//! The lab flow (the default): build (or reuse) the one-machine lab for the checks, build one
//! closed cell per measured path and replicate, serve in every cell's remote, measure every
//! mode interleaved (or in runs, `--schedule runs`) with probes beside, attach `--explain`'s
//! breakdown ([`super::explain`]) and the feature checks, and remove what it built.

use std::net::{IpAddr, SocketAddr};
use std::time::Instant;

use super::error::CompareError;
use super::explain;
use super::flow::{Finished, Flow};
use super::interleave;
use super::model::{self, build_report, CompareReport, ModeInput, ReportMeta};
use super::options::{CompareOptions, CpuPlacement, RepsChoice, ScheduleChoice};
use super::progress::{ChecksProgress, Progress};
use super::runs::{probe_config, trace_config, Runner};
use crate::bench::client::ClientError;
use crate::bench::server::{Server, ServerConfig, ServerHandle};
use crate::lab::cells::{Cell, CellSet, CellSpec};
use crate::lab::{self, Lab, LabError, LabSpec, Mode};
use crate::measure::sockets::PathSpec;
use crate::netns;
use crate::probe::snmp::IpPackets;
use crate::stats;

/// The lab flow: which lab, and whether it stays.
#[derive(Debug, Clone, Default)]
pub struct LabPlan {
    /// `--lab NAME`: use (and keep) this lab if it exists, else build it under this name;
    /// `None`: a fresh lab named after the process, removed afterwards.
    pub name: Option<String>,
    /// `--keep-lab`: keep the lab afterwards.
    pub keep: bool,
}

impl Flow for LabPlan {
    /// `--lab NAME` is a valid name (before waiting for the CPUs).
    fn check(&self, _opts: &CompareOptions) -> Result<(), String> {
        match &self.name {
            Some(name) => lab::validate_name(name).map_err(|e| format!("lab: {e}")),
            None => Ok(()),
        }
    }

    fn builds_lab(&self) -> bool {
        true
    }

    fn measure(&self, runner: &Runner, progress: &dyn Progress) -> Result<Finished, CompareError> {
        let (lab, teardown) = open_or_build_lab(self, runner.opts, progress)?;
        let interrupted = if teardown.armed {
            "the lab it built was removed"
        } else {
            "the lab was left as it was"
        };
        if runner.stopped() {
            return Err(CompareError::Interrupted(interrupted));
        }
        let remote_ns = lab.remote_netns().to_path_buf();
        let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
        let server = netns::run_in(Some(&remote_ns), move || {
            Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
        })?;
        let port = server.local_addr().port();
        let handle = server.spawn();
        let result = measure_all(runner, &lab, port, progress);
        handle.stop();
        let reports = result.map_err(|e| e.after_interrupt(interrupted))?;
        if self.keep && self.name.is_none() {
            // Kept: no later compare may take it for a crashed one's.
            let name = lab.name().to_string();
            if let Err(e) = lab::inventory::keep(&name) {
                progress.note(&format!(
                    "warning: lab '{name}' may be removed by a later compare: {e}"
                ));
            }
        }
        Ok(reports.into())
    }
}

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

/// Reuses `--lab NAME` when it exists (and leaves it), else builds a lab and arms its teardown.
fn open_or_build_lab(
    plan: &LabPlan,
    opts: &CompareOptions,
    progress: &dyn Progress,
) -> Result<(Lab, LabTeardown), CompareError> {
    if let Some(name) = &plan.name {
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
    let name = plan
        .name
        .clone()
        .unwrap_or_else(|| lab::inventory::compare_lab_name(std::process::id()));
    let mut spec = LabSpec::new(&name);
    spec.modes = opts.lab_modes();
    // The IPv6 reach checks run in the lab: dual-stack when IPv6 is measured.
    spec.ipv6 = opts.family.has_v6();
    let started = Instant::now();
    let built = Lab::up(&spec)?;
    let teardown = LabTeardown {
        name: name.clone(),
        armed: !plan.keep,
    };
    progress.note(&format!(
        "lab '{name}' built in {:.0} ms{}",
        started.elapsed().as_secs_f64() * 1e3,
        if plan.keep {
            format!(" (kept: remove it with `nslat lab down --name {name}`)")
        } else {
            String::new()
        }
    ));
    Ok((built, teardown))
}

/// A mode's path to the lab's shared server (`port` in the lab's remote, at the server address
/// the mode's driver planned), or why it cannot be measured.
fn mode_path(lab: &Lab, mode: Mode, port: u16) -> Result<PathSpec, String> {
    match lab.mode(mode) {
        Some(Ok(info)) => Ok(PathSpec {
            label: mode.name().to_string(),
            netns: Some(info.netns.clone()),
            server: SocketAddr::new(IpAddr::V4(info.server), port),
            token: None,
        }),
        Some(Err(reason)) => Err(reason.clone()),
        None => Err(format!(
            "not part of lab '{}' (rebuild it with --modes including {mode})",
            lab.name()
        )),
    }
}

/// Every placement in turn, each with `--explain`'s breakdown (the same-CPU one) and the checks.
/// `port`: the lab's shared server in its remote (the runs schedule's).
fn measure_all(
    runner: &Runner,
    lab: &Lab,
    port: u16,
    progress: &dyn Progress,
) -> Result<Vec<CompareReport>, CompareError> {
    let opts = runner.opts;
    let mut reports = Vec::new();
    for &placement in opts.cpu.placements() {
        let mut report = match opts.schedule {
            ScheduleChoice::Interleaved => {
                measure_placement_interleaved(runner, lab, placement, progress)?
            }
            ScheduleChoice::Runs => measure_placement(runner, lab, port, placement, progress)?,
        };
        if opts.explain && placement == CpuPlacement::Same {
            report.explain = Some(explain::run(runner, lab, placement, progress)?);
        }
        if opts.checks {
            let modes = opts.measured_modes();
            let mut outcome = crate::check::outcome(lab, &modes, &ChecksProgress(progress));
            if opts.family.has_v6() {
                add_reach6(&mut outcome, lab, &modes, progress);
            }
            report.checks = Some(outcome);
        }
        reports.push(report);
    }
    Ok(reports)
}

/// `--family 6|both`: the IPv6 reach checks' rows, each right after its mode's IPv4 row (the
/// Service and policy checks stay IPv4's: their rows show — in IPv6).
fn add_reach6(
    outcome: &mut crate::check::ChecksOutcome,
    lab: &Lab,
    modes: &[Mode],
    progress: &dyn Progress,
) {
    let crate::check::ChecksOutcome::Matrix(matrix) = outcome else {
        return;
    };
    match crate::check::run_reach6(lab, modes, &ChecksProgress(progress)) {
        Ok(rows6) => {
            let rows4 = std::mem::take(&mut matrix.modes);
            for row in rows4 {
                let v6 = rows6
                    .iter()
                    .find(|r| model::base_mode(&r.mode) == row.mode)
                    .cloned();
                matrix.modes.push(row);
                matrix.modes.extend(v6);
            }
        }
        Err(e) => progress.note(&format!(
            "warning: the IPv6 feature checks could not run: {}",
            crate::error::error_chain(&e)
        )),
    }
}

/// Every measured mode with its path to the lab's server, or unavailable with the reason.
fn mode_inputs(
    runner: &Runner,
    lab: &Lab,
    port: u16,
    progress: &dyn Progress,
) -> Vec<(ModeInput, Option<PathSpec>)> {
    runner
        .opts
        .measured_modes()
        .into_iter()
        .map(|mode| {
            let (unavailable, ns) = match mode_path(lab, mode, port) {
                Ok(path) => (None, Some(path)),
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
    runner: &Runner,
    inputs: &mut [(ModeInput, Option<PathSpec>)],
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<(), CompareError> {
    let traced = trace_config(placement);
    for (input, ns) in inputs.iter_mut() {
        if input.mode == model::AA_CONTROL || input.unavailable.is_some() {
            continue;
        }
        if let Some(path) = ns {
            let label = format!("{} (tracepoints)", input.mode);
            progress.run_started(placement.name(), &label, 1, 1);
            let rep = runner.traced(placement, path, &traced)?;
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

/// One measured row of the interleaved lab comparison: a mode on a node of a state, over one
/// IP family (`spec.ipv6`).
struct Group {
    label: String,
    spec: CellSpec,
}

impl Group {
    fn family(&self) -> u8 {
        if self.spec.ipv6 {
            6
        } else {
            4
        }
    }
}

/// The rows of the interleaved lab comparison, baseline first: the host on a node of the
/// baseline's state, every other measured mode (each on its own node of that state), the host on
/// a node of the other state (unless turned off), and the A/A control (a second, independent set
/// of host cells of the baseline's state). Modes the lab could not build are returned apart.
/// `--family`: the first family's rows as above (the other host and the A/A control over it);
/// with `both`, every mode's IPv6 row after them ("bridge (IPv6)", the host's first: each is
/// paired with it, see [`repair_v6`]); a mode without an IPv6 path is unavailable in IPv6.
fn groups(opts: &CompareOptions, lab: &Lab) -> (Vec<Group>, Vec<(String, String)>) {
    let state = opts.baseline;
    let mut groups = Vec::new();
    let mut unavailable = Vec::new();
    let families = opts.family.families();
    for (i, &family) in families.iter().enumerate() {
        let ipv6 = family == 6;
        for mode in opts.measured_modes() {
            let label = model::family_label(mode.name(), family);
            match mode_path(lab, mode, 0) {
                Ok(_) => match mode.driver().ipv6_unavailable().filter(|_| ipv6) {
                    Some(why) => unavailable.push((label, format!("no IPv6 path: {why}"))),
                    None => groups.push(Group {
                        label,
                        spec: CellSpec {
                            mode,
                            node: state,
                            ipv6,
                        },
                    }),
                },
                Err(reason) => unavailable.push((label, reason)),
            }
        }
        if i > 0 {
            continue;
        }
        if opts.other_host {
            groups.push(Group {
                label: model::host_other_label(state).to_string(),
                spec: CellSpec {
                    mode: Mode::Host,
                    node: state.other(),
                    ipv6,
                },
            });
        }
        groups.push(Group {
            label: model::AA_CONTROL.to_string(),
            spec: CellSpec {
                mode: Mode::Host,
                node: state,
                ipv6,
            },
        });
    }
    (groups, unavailable)
}

/// `--family both`: every IPv6 row paired with the host's IPv6 row (the schedule paired it with
/// the baseline, the host's IPv4), replicate by replicate and round by round, from the block
/// means of the same rounds. The host's IPv6 row itself keeps its ratio to the host's IPv4.
fn repair_v6(groups: &[Group], m: &mut interleave::Measurement, reps: usize) {
    let g = groups.len();
    let Some(host6) = groups
        .iter()
        .position(|x| x.spec.ipv6 && x.spec.mode == Mode::Host)
    else {
        return;
    };
    if host6 == 0 {
        return; // --family 6: the baseline is already the host's IPv6
    }
    let series = |k: usize| -> Vec<&[f64]> {
        (0..reps)
            .filter_map(|r| m.means_ns.get(r * g + k).map(Vec::as_slice))
            .collect()
    };
    let base = series(host6);
    let mut out = Vec::new();
    for (k, group) in groups.iter().enumerate() {
        if !group.spec.ipv6 || k == host6 {
            continue;
        }
        let pair =
            crate::measure::paired::replicated_in(&series(k), &base, &m.epochs).map(|mut v| {
                v.delta = interleave::scale(v.delta, 1e-3);
                v
            });
        out.push((k, pair));
    }
    for (k, pair) in out {
        if let Some(p) = m.inputs[k].paired.as_mut() {
            p.vs_baseline = pair;
        }
    }
}

/// What the path's tracepoint run put on the wire: its data socket's ends and, from the
/// client's namespace, the IP packets per transaction of each family.
fn wire_of(
    rep: &model::RepInput,
    before: Option<IpPackets>,
    after: Option<IpPackets>,
) -> model::Wire {
    let n = rep.run.transactions + rep.run.warmup_transactions;
    model::Wire {
        socket: rep.run.data_socket,
        socket_family: rep.run.data_socket.map(|s| s.family()),
        packets_per_tx: before.zip(after).and_then(|(b, a)| b.delta(&a).per_tx(n)),
    }
}

/// The interleaved schedule: every available mode, the other host and the A/A control at once,
/// each on `--replicates` cells of its own (see [`crate::lab::cells`]).
fn measure_placement_interleaved(
    runner: &Runner,
    lab: &Lab,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<CompareReport, CompareError> {
    let opts = runner.opts;
    let (mut groups, unavailable) = groups(opts, lab);
    if groups.first().is_none_or(|g| g.spec.mode != Mode::Host) {
        let why = unavailable
            .iter()
            .find(|(m, _)| model::base_mode(m) == Mode::Host.name())
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
        let listen = if groups[i % groups.len()].spec.ipv6 {
            SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), 0)
        } else {
            SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0)
        };
        let server = netns::run_in(Some(&cell.remote), move || {
            Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
        })?;
        let port = server.local_addr().port();
        servers.push(server.spawn());
        let group = &groups[i % groups.len()];
        let ip = if group.spec.ipv6 {
            IpAddr::V6(lab::plan::v6(cell.info.server))
        } else {
            IpAddr::V4(cell.info.server)
        };
        paths.push(PathSpec {
            label: group.label.clone(),
            netns: Some(cell.info.netns.clone()),
            server: SocketAddr::new(ip, port),
            token: None,
        });
    }
    progress.placement(placement.name(), groups.len() + groups.len() - 1, 1.0);
    // Each epoch's process binds a server of its own in every cell's remote (the servers
    // above stay for the tracepoint runs and the waterfall).
    let epoch_paths: Vec<crate::measure::epochs::EpochPath> = built
        .iter()
        .zip(&paths)
        .map(|(cell, path)| crate::measure::epochs::EpochPath {
            path: path.clone(),
            server_netns: Some(cell.remote.clone()),
        })
        .collect();
    let measured = if reps > 1 && opts.epochs > 1 {
        interleave::measure_epochs(runner, &epoch_paths, reps, opts.epochs, placement, progress)
    } else {
        interleave::measure_replicated(runner, &paths, reps, placement, progress)
    };
    let mut m = match measured {
        Ok(m) => m,
        Err(e) => {
            ServerHandle::stop_all(servers);
            return Err(e);
        }
    };
    repair_v6(&groups, &mut m, reps);
    if let Some(file) = std::env::var_os("NSLAT_DUMP_MEANS") {
        let labels: Vec<&str> = groups.iter().map(|g| g.label.as_str()).collect();
        let dump = serde_json::json!({"labels": labels, "replicates": reps, "epochs": m.epochs,
            "means_ns": m.means_ns});
        let _ = std::fs::write(file, dump.to_string());
    }
    // The tracepoint run of each mode, on its first replicate's cell (outside the statistics).
    let traced = trace_config(placement);
    let mut inputs: Vec<ModeInput> = Vec::with_capacity(groups.len() + failed.len());
    let mut trace_err = None;
    let mut wires: Vec<(String, u8, Option<model::Wire>)> = Vec::new();
    for ((g, group), mut input) in groups.iter().enumerate().zip(m.inputs) {
        let mut wire = None;
        if group.label != model::AA_CONTROL && input.unavailable.is_none() && trace_err.is_none() {
            let label = format!("{} (tracepoints)", group.label);
            progress.run_started(placement.name(), &label, 1, 1);
            let ns = paths[g].netns.clone();
            let before = IpPackets::read_in(ns.as_deref()).ok();
            match runner.traced(placement, &paths[g], &traced) {
                Ok(rep) => {
                    let after = IpPackets::read_in(ns.as_deref()).ok();
                    progress.run_finished(&label, rep.run.latency_us.mean);
                    wire = Some(wire_of(&rep, before, after));
                    input.trace_run = Some(rep);
                }
                Err(e) => trace_err = Some(e),
            }
        }
        wires.push((group.label.clone(), group.family(), wire));
        inputs.push(input);
    }
    let waterfalls = opts
        .waterfall
        .then(|| waterfall_paths(&groups, &paths, &built, placement, opts, progress));
    ServerHandle::stop_all(servers);
    if let Some(e) = trace_err {
        return Err(e);
    }
    // Modes the lab could not build, and groups whose cells could not be built, in the
    // order the user asked.
    for (label, why) in unavailable {
        progress.note(&format!("{label}: unavailable: {why}"));
        inputs.push(ModeInput {
            trace_run: None,
            paired: None,
            mode: label,
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
    // As asked; with --family both each mode's IPv6 row right after its IPv4 row.
    inputs.sort_by_key(|i| {
        let base = model::base_mode(&i.mode);
        (
            asked
                .iter()
                .position(|m| m.name() == base)
                .unwrap_or(usize::MAX),
            base != i.mode,
        )
    });
    let baseline_ns = built.first().map(|c| c.node.display().to_string());
    drop(cells);
    let mut meta = report_meta(opts, placement, m.rounds, m.block_s);
    meta.schedule = model::ScheduleKind::Interleaved;
    meta.block_transactions = m.block_transactions;
    meta.ci_method = Some(m.ci_method);
    meta.baseline = model::Baseline::chosen(opts.baseline, baseline_ns);
    if let Some(first) = groups.first() {
        meta.baseline.mode = first.label.clone(); // "host (IPv6)" with --family 6
    }
    let mut report = build_report(&meta, &inputs);
    let first_family = opts.family.families()[0];
    for row in report.modes.iter_mut() {
        row.family = Some(
            wires
                .iter()
                .find(|(l, _, _)| *l == row.mode)
                .map(|(_, f, _)| *f)
                .unwrap_or(if model::base_mode(&row.mode) != row.mode {
                    6
                } else {
                    first_family
                }),
        );
        row.wire = wires
            .iter()
            .find(|(l, _, _)| *l == row.mode)
            .and_then(|(_, _, w)| w.clone());
    }
    report.warnings.extend(m.warnings);
    if let Some(w) = waterfalls {
        super::waterfall::attach(&mut report, w);
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
) -> super::waterfall::Traced {
    let todo: Vec<super::waterfall::PathToTrace> = (0..groups.len())
        .filter(|&g| groups[g].label != model::AA_CONTROL)
        .map(|g| super::waterfall::PathToTrace {
            label: groups[g].label.clone(),
            netns: paths[g].netns.clone(),
            server: paths[g].server,
            wire: vec![built[g].node.clone(), built[g].remote.clone()],
            remote: None,
            token: None,
        })
        .collect();
    super::waterfall::trace_paths(&todo, placement, opts, progress)
}

/// The runs schedule: one run per mode after another, repeated, against the lab's server.
fn measure_placement(
    runner: &Runner,
    lab: &Lab,
    port: u16,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<CompareReport, CompareError> {
    let opts = runner.opts;
    let probes = probe_config(placement);
    let mut inputs = mode_inputs(runner, lab, port, progress);

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
            let Some(path) = ns.as_ref() else { continue };
            progress.run_started(placement.name(), &input.mode, round + 1, reps_shown);
            match runner.timed(placement, path, &probes) {
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

    trace_runs(runner, &mut inputs, placement, progress)?;
    let modes: Vec<ModeInput> = inputs.into_iter().map(|(i, _)| i).collect();
    let meta = report_meta(opts, placement, round, opts.duration.as_secs_f64());
    Ok(build_report(&meta, &modes))
}

/// Whether to run another round of every mode.
fn another_round(
    opts: &CompareOptions,
    inputs: &[(ModeInput, Option<PathSpec>)],
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
