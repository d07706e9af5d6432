//! `compare --target NAME=SPEC --remote HOST`: the user's own containers measured against a
//! real second machine, beside this machine's own namespace (the baseline `host`), and beside
//! the lab's emulation of the mode each one looks like (the lab's host and that mode against the
//! lab's own remote, in the same interleaved rounds).
//!
//! Targets are just more paths: a namespace (held open by [`ResolvedTarget`]) and a server. A
//! target whose container exits mid-run is left out with one line; the rest finishes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::attached::{self, Attached};
use super::error::CompareError;
use super::flow::{Finished, Flow};
use super::model::{
    self, build_mode, build_report, CompareReport, ModeInput, ModeResult, RepInput, ReportMeta,
    VsHost, Warning, BASELINE,
};
use super::options::{CompareOptions, CpuPlacement};
use super::progress::Progress;
use super::runs::{probe_config, Runner};
use crate::attach::temp::check_nic;
use crate::attach::{AttachMode, NicSpec};
use crate::bench::server::{Server, ServerConfig, ServerHandle};
use crate::error::error_chain;
use crate::lab::{self, Lab, LabSpec, Mode};
use crate::measure::sockets::{self, MeasureError, PathCut, PathSpec};
use crate::measure::{paired, Paired};
use crate::netns;
use crate::target::{
    self, HostView, LabFigure, NsId, PathDescription, ResolvedTarget, TargetError, TargetReport,
    TargetSpec,
};

/// The `--target` flow: the user's containers, and what is measured beside them.
#[derive(Debug, Clone)]
pub struct TargetPlan {
    pub targets: Vec<TargetSpec>,
    /// The server every target and the baseline talk to (`--remote`).
    pub server: SocketAddr,
    pub token: Option<String>,
    /// The namespace that plays this machine (`--host-netns`; default: this process's).
    pub host_netns: Option<PathBuf>,
    /// Also measure the lab's emulation of each target's mode (`--no-lab` turns it off).
    pub lab_figures: bool,
    /// `--attach`: modes attached to this machine's NIC, measured in the same rounds.
    pub attach: Option<AttachPlan>,
    /// `--lab-docker-forward`: the lab's bridge gets Docker's FORWARD chains
    /// ([`crate::firewall::Firewall::set_docker_forward`]), as a Docker host has them.
    pub lab_docker_forward: bool,
}

/// `--attach MODES --parent IFACE --addr CIDR`: NIC-attached modes measured beside the targets
/// (each in a temporary namespace, detached afterwards; the `n`-th gets `--addr` plus `n`).
#[derive(Debug, Clone)]
pub struct AttachPlan {
    pub nic: NicSpec,
    pub modes: Vec<AttachMode>,
}

/// Prefix of the lab's rows in a target report.
pub const LAB_PREFIX: &str = "lab/";

/// One thing measured in the rounds.
struct Measured {
    label: String,
    netns: PathBuf,
    server: SocketAddr,
    token: Option<String>,
    /// Index into the resolved targets, for targets.
    target: Option<usize>,
    input: ModeInput,
    /// Against its baseline (host, or lab/host for lab rows), from the schedule's rounds.
    paired: Option<Paired>,
    /// Still measured (false once it failed).
    active: bool,
}

/// Removes the lab and stops its server when dropped.
struct LabGuard {
    name: String,
    server: Option<ServerHandle>,
}

impl Drop for LabGuard {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            s.stop();
        }
        let _ = lab::down(&self.name);
    }
}

fn input(label: &str) -> ModeInput {
    ModeInput {
        mode: label.to_string(),
        unavailable: None,
        reps: Vec::new(),
        trace_run: None,
        paired: None,
    }
}

impl Flow for TargetPlan {
    fn check(&self, opts: &CompareOptions) -> Result<(), String> {
        if opts.explain {
            return Err(
                "--explain builds its variants beside a lab; it cannot run with --target".into(),
            );
        }
        // The NIC and the attached modes' addresses (read only), before waiting for the CPUs.
        if let Some(a) = &self.attach {
            check_nic(&a.nic, a.modes.len()).map_err(|e| error_chain(&e))?;
        }
        Ok(())
    }

    fn builds_lab(&self) -> bool {
        self.lab_figures
    }

    /// Resolves the targets (before anything is built: a bad target changes nothing), builds
    /// the lab for the lab's figures, measures.
    fn measure(&self, runner: &Runner, progress: &dyn Progress) -> Result<Finished, CompareError> {
        run(runner, self, progress)
    }
}

fn run(
    runner: &Runner,
    plan: &TargetPlan,
    progress: &dyn Progress,
) -> Result<Finished, CompareError> {
    let opts = runner.opts;
    target::check_unique(&plan.targets)?;
    let resolved = target::resolve_all(&plan.targets)?;
    // The NIC and the attached modes' addresses, before anything is said or built.
    if let Some(a) = &plan.attach {
        check_nic(&a.nic, a.modes.len()).map_err(|e| CompareError::Invalid(error_chain(&e)))?;
    }
    let host_path = plan
        .host_netns
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/self/ns/net"));
    let host_id = NsId::of_path(&host_path).map_err(|e| {
        CompareError::Invalid(format!(
            "reading the host namespace {}: {e}",
            host_path.display()
        ))
    })?;
    let host_view = HostView {
        netns: plan.host_netns.as_deref(),
    };
    let mut descriptions: Vec<PathDescription> = resolved
        .iter()
        .map(|t| {
            let own = t.id == host_id;
            target::describe(&t.netns_path(), &host_view, plan.server.ip(), own)
        })
        .collect();
    for (t, d) in resolved.iter().zip(&descriptions) {
        let like = target::looks_like(d)
            .map(Mode::name)
            .unwrap_or("no lab mode");
        progress.note(&format!(
            "{} = {}: {} via {}; {}; looks like {like}",
            t.spec.name,
            t.spec.spec(),
            t.resolved_netns,
            t.how,
            d.summary()
        ));
    }

    // The lab's emulation of the modes the targets look like (and of the attached modes),
    // against the lab's own remote.
    let attach_modes = plan.attach.iter().flat_map(|a| a.modes.iter().copied());
    let mut lab_modes: Vec<Mode> = descriptions
        .iter()
        .filter_map(target::looks_like)
        .chain(attach_modes.filter_map(attached::mode_of))
        .filter(|m| *m != Mode::Host)
        .collect();
    lab_modes.sort();
    lab_modes.dedup();
    let mut guard = None;
    // `--waterfall`: where each path's packets leave for its server (remote mode).
    let mut wires: Vec<(String, Result<crate::bpf::waterfall::RemoteWire, String>)> = Vec::new();
    if opts.waterfall {
        wires.push((
            String::new(),
            super::waterfall::remote_wire(&host_path, plan.server),
        ));
    }
    let mut paths: Vec<Measured> = Vec::new();
    paths.push(Measured {
        label: BASELINE.into(),
        netns: host_path.clone(),
        server: plan.server,
        token: plan.token.clone(),
        target: None,
        input: input(BASELINE),
        paired: None,
        active: true,
    });
    for (i, t) in resolved.iter().enumerate() {
        paths.push(Measured {
            label: t.spec.name.clone(),
            netns: t.netns_path(),
            server: plan.server,
            token: plan.token.clone(),
            target: Some(i),
            input: input(&t.spec.name),
            paired: None,
            active: true,
        });
    }
    // NIC-attached modes: just more paths, detached when `held` is dropped.
    let held = plan.attach.as_ref().map(|a| {
        attached::attach_all(
            &a.nic,
            &a.modes,
            0,
            plan.server,
            plan.token.as_deref(),
            progress,
        )
    });
    if let Some(Attached {
        paths: ap,
        unavailable,
    }) = &held
    {
        for a in ap {
            paths.push(Measured {
                label: a.label.clone(),
                netns: a.held.path.clone(),
                server: plan.server,
                token: plan.token.clone(),
                target: None,
                input: input(&a.label),
                paired: None,
                active: true,
            });
        }
        for (label, why) in unavailable {
            let mut p = Measured {
                label: label.clone(),
                netns: PathBuf::new(),
                server: plan.server,
                token: None,
                target: None,
                input: input(label),
                paired: None,
                active: false,
            };
            p.input.unavailable = Some(why.clone());
            paths.push(p);
        }
    }
    if plan.lab_figures && !lab_modes.is_empty() {
        // Named like a compare's own lab, so a later compare removes it if this one is killed.
        let name = lab::inventory::compare_lab_name(std::process::id());
        let mut spec = LabSpec::new(&name);
        spec.modes = std::iter::once(Mode::Host)
            .chain(lab_modes.iter().copied())
            .collect();
        let started = Instant::now();
        let built = Lab::up(&spec)?;
        let mut g = LabGuard {
            name: name.clone(),
            server: None,
        };
        if plan.lab_docker_forward && lab_modes.contains(&Mode::Bridge) {
            crate::firewall::Firewall::new(built.node_netns())
                .set_docker_forward("docker0")
                .map_err(|e| {
                    CompareError::Invalid(format!(
                        "loading Docker's FORWARD chains in the lab: {}",
                        error_chain(&e)
                    ))
                })?;
            progress.note("lab/bridge: Docker's FORWARD chains loaded in the lab's node (--lab-docker-forward)");
        }
        let listen = SocketAddr::new(built.remote_addr().into(), 0);
        let server = netns::run_in(Some(built.remote_netns()), move || {
            Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
        })?;
        let lab_server = server.local_addr();
        g.server = Some(server.spawn());
        if opts.waterfall {
            let wire = super::waterfall::remote_wire(
                built.node_netns(),
                SocketAddr::new(built.remote_addr().into(), lab_server.port()),
            );
            wires.push((LAB_PREFIX.to_string(), wire));
        }
        progress.note(&format!(
            "lab '{name}' built in {:.0} ms for the lab's figures ({})",
            started.elapsed().as_secs_f64() * 1e3,
            lab_modes
                .iter()
                .map(|m| m.name())
                .collect::<Vec<_>>()
                .join(", ")
        ));
        for mode in std::iter::once(Mode::Host).chain(lab_modes.iter().copied()) {
            let label = format!("{LAB_PREFIX}{}", mode.name());
            let mut p = Measured {
                label: label.clone(),
                netns: PathBuf::new(),
                server: lab_server,
                token: None,
                target: None,
                input: input(&label),
                paired: None,
                active: false,
            };
            match built.available(mode) {
                Some(info) => {
                    p.netns = info.netns.clone();
                    p.active = true;
                }
                None => {
                    let why = match built.mode(mode) {
                        Some(Err(r)) => r.clone(),
                        _ => "not built".into(),
                    };
                    progress.note(&format!("{label}: unavailable: {why}"));
                    p.input.unavailable = Some(why);
                }
            }
            paths.push(p);
        }
        guard = Some(g);
    }

    let mut failed = Vec::new();
    let mut reports = Vec::new();
    for &placement in opts.cpu.placements() {
        for p in paths.iter_mut() {
            p.input.reps.clear();
            p.paired = None;
        }
        let rounds = measure_paths(
            runner,
            &mut paths,
            &resolved,
            placement,
            progress,
            &mut failed,
        )?;
        let traced = opts
            .waterfall
            .then(|| trace(&paths, &wires, placement, opts, progress));
        let mut r = report(
            opts,
            plan.host_netns.as_deref(),
            placement,
            rounds,
            &paths,
            &resolved,
            &mut descriptions,
        );
        if let Some(t) = traced {
            // Each target beside the lab's emulation of its mode.
            let vs_lab: Vec<(String, String)> = resolved
                .iter()
                .zip(&descriptions)
                .filter_map(|(t, d)| {
                    let m = target::looks_like(d)?;
                    Some((t.spec.name.clone(), format!("{LAB_PREFIX}{}", m.name())))
                })
                .collect();
            super::waterfall::attach_with(&mut r, t, LAB_PREFIX, &vs_lab);
        }
        reports.push(r);
    }
    drop(guard);
    drop(held);
    Ok(Finished { reports, failed })
}

/// Every active path in one interleaved, paired schedule (the measuring seam), then one short
/// probe run per path; returns the timed rounds.
fn measure_paths(
    runner: &Runner,
    paths: &mut [Measured],
    resolved: &[ResolvedTarget],
    placement: CpuPlacement,
    progress: &dyn Progress,
    failed: &mut Vec<String>,
) -> Result<usize, CompareError> {
    let opts = runner.opts;
    for p in paths.iter_mut() {
        if let Some(t) = p.target.map(|i| &resolved[i]) {
            if p.active {
                if let Err(e) = t.check_alive() {
                    leave_out(p, &format!("{e} (before measuring)"), progress, failed);
                }
            }
        }
    }
    let active: Vec<usize> = (0..paths.len()).filter(|&i| paths[i].active).collect();
    let specs: Vec<PathSpec> = active
        .iter()
        .map(|&i| PathSpec {
            label: paths[i].label.clone(),
            netns: Some(paths[i].netns.clone()),
            server: paths[i].server,
            token: paths[i].token.clone(),
        })
        .collect();
    let cfg = opts.schedule_config(specs.len(), 1);
    progress.placement(
        placement.name(),
        1,
        opts.seconds_per_run() * specs.len() as f64,
    );
    progress.run_started(placement.name(), "all paths, interleaved", 1, 1);
    // A target whose container exits while the schedule runs is cut out at once (its sockets
    // would wait for the watchdog, and every other path with them).
    let watched: Vec<(usize, &ResolvedTarget)> = active
        .iter()
        .enumerate()
        .filter_map(|(k, &i)| paths[i].target.map(|t| (k, &resolved[t])))
        .collect();
    let cut = PathCut::new();
    let done = AtomicBool::new(false);
    let template = opts.run_spec(placement);
    let m = std::thread::scope(|s| {
        if !watched.is_empty() {
            s.spawn(|| cut_exited(&watched, &cut, &done));
        }
        let m = sockets::measure_cuttable(&specs, &template, &cfg, &runner.stop, cut.clone());
        done.store(true, Ordering::SeqCst);
        m
    })
    .map_err(|e| match e {
        MeasureError::Baseline { error, .. } => CompareError::Baseline(error),
        e => CompareError::Invalid(e.to_string()),
    })?;
    if runner.stopped() {
        return Err(CompareError::Interrupted("the lab it built was removed"));
    }
    let rounds = m.rounds.rounds();
    let lab_base = active
        .iter()
        .position(|&i| paths[i].label == format!("{LAB_PREFIX}{BASELINE}"));
    for (k, &i) in active.iter().enumerate() {
        let p = &mut paths[i];
        let target = p.target.map(|t| &resolved[t]);
        if let Some(err) = m.rounds.failed(k) {
            let why = match target {
                Some(t) if !t.alive() => format!(
                    "{} (after {} timed transactions; the others went on for {rounds} rounds)",
                    TargetError::Exited {
                        spec: t.spec.spec()
                    },
                    m.rounds.totals[k].transactions
                ),
                _ => format!("{}: failed during the run: {err}", p.label),
            };
            leave_out(p, &why, progress, failed);
            continue;
        }
        let Some(run) = m.runs[k].clone() else {
            leave_out(p, &format!("{}: no result", p.label), progress, failed);
            continue;
        };
        progress.run_finished(&p.label, run.latency_us.mean);
        p.paired = if p.label.starts_with(LAB_PREFIX) {
            lab_base
                .filter(|&b| b != k)
                .and_then(|b| paired::paired(&m.rounds.means_ns[k], &m.rounds.means_ns[b]))
        } else {
            m.rounds.paired(k)
        };
        p.input.reps.push(RepInput { run, probes: None });
    }
    // Probes: one short run per path alone, around which the /proc counters are read.
    let probes = probe_config(placement);
    for p in paths.iter_mut().filter(|p| p.active) {
        if let Some(t) = p.target.map(|i| &resolved[i]) {
            if !t.alive() {
                continue;
            }
        }
        let spec = PathSpec {
            label: p.label.clone(),
            netns: Some(p.netns.clone()),
            server: p.server,
            token: p.token.clone(),
        };
        p.input.trace_run = runner.probe_run(placement, &spec, &probes);
    }
    Ok(rounds)
}

/// `--waterfall`: every measured path traced in remote mode (the server is on another machine,
/// or, for the lab's rows, in a namespace traced the same way so that they compare), while the
/// lab's server still runs.
fn trace(
    paths: &[Measured],
    wires: &[(String, Result<crate::bpf::waterfall::RemoteWire, String>)],
    placement: CpuPlacement,
    opts: &CompareOptions,
    progress: &dyn Progress,
) -> super::waterfall::Traced {
    let mut todo = Vec::new();
    let mut failed = Vec::new();
    for p in paths.iter().filter(|p| p.active) {
        let prefix = if p.label.starts_with(LAB_PREFIX) {
            LAB_PREFIX
        } else {
            ""
        };
        match wires.iter().find(|(w, _)| w == prefix).map(|(_, w)| w) {
            Some(Ok(wire)) => todo.push(super::waterfall::PathToTrace {
                label: p.label.clone(),
                netns: Some(p.netns.clone()),
                server: p.server,
                wire: Vec::new(),
                remote: Some(*wire),
                token: p.token.clone(),
            }),
            Some(Err(why)) => failed.push((p.label.clone(), format!("its wire device: {why}"))),
            None => {}
        }
    }
    let mut t = super::waterfall::trace_paths(&todo, placement, opts, progress);
    t.failed.extend(failed);
    t
}

/// Watches the targets' processes while the schedule runs and cuts the path of one that exits.
fn cut_exited(watched: &[(usize, &ResolvedTarget)], cut: &PathCut, done: &AtomicBool) {
    const EVERY: Duration = Duration::from_millis(50);
    while !done.load(Ordering::SeqCst) {
        for (k, t) in watched {
            if !t.alive() {
                cut.cut(*k);
            }
        }
        std::thread::sleep(EVERY);
    }
}

fn leave_out(p: &mut Measured, why: &str, progress: &dyn Progress, failed: &mut Vec<String>) {
    progress.note(&format!("{}: left out: {why}", p.label));
    p.input.unavailable = Some(why.to_string());
    p.input.reps.clear();
    p.active = false;
    if p.target.is_some() {
        failed.push(why.to_string());
    }
}

/// A path's row: the schedule's figures, its paired ratio (the seam's interval) as `vs_host`,
/// and the probe run's counters.
fn row(p: &Measured) -> ModeResult {
    let mut r = build_mode(&p.input, None);
    if let Some(t) = &p.input.trace_run {
        if let Some(pr) = &t.probes {
            let per = pr.per_tx(t.run.transactions + t.run.warmup_transactions);
            r.probes.backlog_pkts_per_tx = Some(per.backlog_pkts);
            r.probes.net_rx_per_tx = Some(per.net_rx);
            r.probes.cpu_us_per_tx = Some(per.cpu_us);
        }
    }
    if let Some(pd) = &p.paired {
        r.vs_host = Some(VsHost {
            delta_us: pd.delta.estimate / 1e3,
            delta_pct: (pd.ratio.estimate - 1.0) * 100.0,
            ratio: pd.ratio.estimate,
            p_value: pd.p_value,
            significant: pd.significant(),
            ratio_ci95: pd.ratio.ci95.map(|(lo, hi)| [lo, hi]),
            delta_us_ci95: pd.delta.ci95.map(|(lo, hi)| [lo / 1e3, hi / 1e3]),
            rounds: Some(pd.rounds),
            replicates: Some(pd.replicates),
            epochs: None,
        });
    }
    r
}

fn report(
    opts: &CompareOptions,
    host_netns: Option<&std::path::Path>,
    placement: CpuPlacement,
    rounds: usize,
    paths: &[Measured],
    resolved: &[ResolvedTarget],
    descriptions: &mut [PathDescription],
) -> CompareReport {
    let meta = ReportMeta {
        test: opts.test,
        request_size: opts.request_size,
        response_size: opts.response_size,
        reps: rounds,
        duration_s: opts.duration.as_secs_f64(),
        cpu_placement: placement.name().to_string(),
        kernel: crate::host_facts::kernel_release(),
        host_name: crate::host_facts::host_name(),
        schedule: model::ScheduleKind::Interleaved,
        block_transactions: None,
        ci_method: Some(crate::measure::paired::METHOD.to_string()),
        baseline: model::Baseline::as_found(host_netns),
    };
    let mut report = build_report(&meta, &[]);
    report.modes = paths.iter().map(row).collect();
    let mut lab_figures = Vec::new();
    for (p, r) in paths.iter().zip(&report.modes) {
        if !p.label.starts_with(LAB_PREFIX) || p.label == format!("{LAB_PREFIX}{BASELINE}") {
            continue;
        }
        if let (Some(lat), Some(pd)) = (r.latency_us, &p.paired) {
            lab_figures.push(LabFigure {
                mode: p.label[LAB_PREFIX.len()..].to_string(),
                ratio: pd.ratio.estimate,
                ratio_ci95: pd.ratio.half_width(),
                latency_us: lat.mean,
            });
        }
    }
    for (i, t) in resolved.iter().enumerate() {
        let d = &mut descriptions[i];
        let Some(pos) = paths.iter().position(|p| p.target == Some(i)) else {
            continue;
        };
        let row = &mut report.modes[pos];
        d.backlog_pkts_per_tx = row.probes.backlog_pkts_per_tx;
        let like = target::looks_like(d);
        let lab = like.and_then(|m| lab_figures.iter().find(|f| f.mode == m.name()).cloned());
        let paired = paths[pos].paired;
        row.target = Some(TargetReport {
            spec: t.spec.spec(),
            resolved_netns: t.resolved_netns.clone(),
            resolved_by: t.how.clone(),
            looks_like: like.map(|m| m.name().to_string()),
            path: d.clone(),
            lab,
            ratio: paired.map(|p| p.ratio.estimate),
            ratio_ci95: paired.and_then(|p| p.ratio.half_width()),
        });
    }
    // One timed result per path: the intervals are the schedule's (paired by round), not the
    // repetitions' the model's own warnings and verdict speak of.
    report.warnings = model::warnings(&report)
        .into_iter()
        .filter(|w| !w.message.contains("repetitions"))
        .collect();
    report.verdict =
        paths
            .iter()
            .zip(&report.modes)
            .filter_map(|(p, r)| {
                let pd = p.paired.as_ref()?;
                let v = r.vs_host.as_ref()?;
                Some(format!(
                "{}: {:+.2} µs ({:+.1}%) per round trip, ratio {:.3}{} over {} paired rounds, {}",
                r.mode,
                v.delta_us,
                v.delta_pct,
                pd.ratio.estimate,
                pd.ratio
                    .half_width()
                    .map(|h| format!(" ± {h:.3}"))
                    .unwrap_or_default(),
                pd.rounds,
                if pd.significant() { "significant" } else { "not significant" }
            ))
            })
            .collect();
    report.warnings.push(Warning {
        message: format!(
            "{rounds} interleaved rounds of blocks on every path (the measuring seam): ratios are paired by round with batch-means 95% intervals; latency CIs are over the rounds' block means"
        ),
        remedy: "raise --reps (or -l) for narrower intervals".into(),
    });
    if paths.iter().any(|p| p.label.starts_with(LAB_PREFIX)) {
        report.warnings.push(Warning {
            message: format!(
                "rows starting with {LAB_PREFIX} are the lab's emulation, compared with {LAB_PREFIX}{BASELINE} against the lab's own remote (not with host)"
            ),
            remedy: "compare a target's ratio to host with its lab mode's ratio to lab/host".into(),
        });
    }
    report
}
