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
use std::time::Instant;

use super::experiment::{probe_config, CompareError, Progress};
use super::model::{
    self, build_mode, build_report, CompareReport, ModeInput, RepInput, ReportMeta,
};
use super::options::{CompareOptions, RepsChoice};
use super::{Warning, BASELINE};
use crate::bench::client;
use crate::bench::server::{Server, ServerConfig, ServerHandle};
use crate::bench::RunSpec;
use crate::lab::{self, Lab, LabSpec, Mode};
use crate::netns;
use crate::probe::Snapshot;
use crate::stats;
use crate::target::{
    self, HostView, LabFigure, NsId, PathDescription, ResolvedTarget, TargetReport, TargetSpec,
};

/// What `--target` adds to a comparison.
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
}

/// The reports, and the targets that failed during the run (partial success when not empty).
#[derive(Debug)]
pub struct TargetOutcome {
    pub reports: Vec<CompareReport>,
    /// One line per target that failed mid-run.
    pub failed: Vec<String>,
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
    }
}

/// Runs a comparison of targets: checks the options, then resolves the targets (before anything
/// is built: a bad target changes nothing), builds the lab for the lab's figures, measures.
pub fn run(
    opts: &CompareOptions,
    plan: &TargetPlan,
    progress: &dyn Progress,
) -> Result<TargetOutcome, CompareError> {
    opts.validate().map_err(CompareError::Invalid)?;
    if opts.explain {
        return Err(CompareError::Invalid(
            "--explain needs the lab's bridge and ptp modes; it cannot run with --target".into(),
        ));
    }
    if !netns::is_root() {
        return Err(CompareError::NotRoot);
    }
    let stop = super::experiment::interrupt_flag();
    run_with(opts, plan, &stop, progress)
}

fn run_with(
    opts: &CompareOptions,
    plan: &TargetPlan,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<TargetOutcome, CompareError> {
    target::check_unique(&plan.targets)?;
    let resolved = target::resolve_all(&plan.targets)?;
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

    // The lab's emulation of the modes the targets look like, against the lab's own remote.
    let mut lab_modes: Vec<Mode> = descriptions
        .iter()
        .filter_map(target::looks_like)
        .filter(|m| *m != Mode::Host)
        .collect();
    lab_modes.sort();
    lab_modes.dedup();
    let mut guard = None;
    let mut paths: Vec<Measured> = Vec::new();
    paths.push(Measured {
        label: BASELINE.into(),
        netns: host_path.clone(),
        server: plan.server,
        token: plan.token.clone(),
        target: None,
        input: input(BASELINE),
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
            active: true,
        });
    }
    if plan.lab_figures && !lab_modes.is_empty() {
        let name = format!("tgt{}", std::process::id());
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
        let listen = SocketAddr::new(built.remote_addr().into(), 0);
        let server = netns::run_in(Some(built.remote_netns()), move || {
            Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
        })?;
        let lab_server = server.local_addr();
        g.server = Some(server.spawn());
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
        }
        let rounds = measure_rounds(
            opts,
            &mut paths,
            &resolved,
            placement,
            stop,
            progress,
            &mut failed,
        )?;
        reports.push(report(
            opts,
            placement,
            rounds,
            &paths,
            &resolved,
            &mut descriptions,
        ));
    }
    drop(guard);
    Ok(TargetOutcome { reports, failed })
}

fn spec_for(opts: &CompareOptions, p: &Measured, placement: &str) -> RunSpec {
    let (client_cpu, server_cpu) = CompareOptions::cpus_for(placement);
    let mut spec = RunSpec::new(p.server, opts.test, opts.duration);
    spec.warmup = opts.warmup;
    spec.request_size = opts.request_size;
    spec.response_size = opts.response_size;
    spec.client_cpu = Some(client_cpu);
    spec.server_cpu = Some(server_cpu);
    spec.netns = Some(p.netns.clone());
    spec.token = p.token.clone();
    spec
}

/// Interleaved rounds over every active path (the order rotates each round); returns the rounds done.
fn measure_rounds(
    opts: &CompareOptions,
    paths: &mut [Measured],
    resolved: &[ResolvedTarget],
    placement: &str,
    stop: &AtomicBool,
    progress: &dyn Progress,
    failed: &mut Vec<String>,
) -> Result<usize, CompareError> {
    let probes = probe_config(placement);
    let min_reps = match opts.reps {
        RepsChoice::Fixed(n) => n,
        RepsChoice::Auto => RepsChoice::AUTO_MIN,
    };
    let active = paths.iter().filter(|p| p.active).count();
    progress.placement(placement, active * min_reps, opts.seconds_per_run());
    let started = Instant::now();
    let mut round = 0;
    loop {
        let n = paths.len();
        for k in 0..n {
            let p = &mut paths[(k + round) % n];
            if !p.active {
                continue;
            }
            if stop.load(Ordering::SeqCst) {
                return Err(CompareError::Interrupted("the lab it built was removed"));
            }
            let target = p.target.map(|i| &resolved[i]);
            if let Some(t) = target {
                if let Err(e) = t.check_alive() {
                    leave_out(
                        p,
                        &format!("{e} (before round {})", round + 1),
                        progress,
                        failed,
                    );
                    continue;
                }
            }
            progress.run_started(placement, &p.label, round + 1, min_reps.max(round + 1));
            let before = Snapshot::take(&probes).ok();
            let run = client::run(&spec_for(opts, p, placement));
            let after = Snapshot::take(&probes).ok();
            match run {
                Ok(run) => {
                    progress.run_finished(&p.label, run.latency_us.mean);
                    let probes = before.zip(after).map(|(b, a)| Snapshot::delta(&b, &a));
                    p.input.reps.push(RepInput { run, probes });
                }
                Err(e) if p.label == BASELINE => {
                    return Err(CompareError::Baseline(e));
                }
                Err(e) => {
                    let why = match target {
                        Some(t) if !t.alive() => format!(
                            "{} (in round {})",
                            crate::target::TargetError::Exited {
                                spec: t.spec.spec()
                            },
                            round + 1
                        ),
                        _ => format!("{}: run failed in round {}: {e}", p.label, round + 1),
                    };
                    leave_out(p, &why, progress, failed);
                }
            }
        }
        round += 1;
        let more = match opts.reps {
            RepsChoice::Fixed(n) => round < n,
            RepsChoice::Auto => {
                let round_s =
                    paths.iter().filter(|p| p.active).count() as f64 * opts.seconds_per_run();
                round < RepsChoice::AUTO_MIN
                    || (round < RepsChoice::AUTO_MAX
                        && started.elapsed().as_secs_f64() + round_s <= opts.budget.as_secs_f64()
                        && paths.iter().filter(|p| p.active).any(|p| {
                            paired_ratio_ci_wide(&p.input, &paths_baseline(paths, &p.label))
                        }))
            }
        };
        if !more {
            return Ok(round);
        }
    }
}

/// The reps of the baseline a path is compared with (lab rows: the lab's host).
fn paths_baseline(paths: &[Measured], label: &str) -> Vec<f64> {
    let base = if label.starts_with(LAB_PREFIX) {
        format!("{LAB_PREFIX}{BASELINE}")
    } else {
        BASELINE.to_string()
    };
    paths
        .iter()
        .find(|p| p.label == base)
        .map(|p| model::rep_latencies(&p.input))
        .unwrap_or_default()
}

fn paired_ratio_ci_wide(input: &ModeInput, base: &[f64]) -> bool {
    paired_ratio(&model::rep_latencies(input), base)
        .and_then(|(m, ci)| ci.map(|c| c / m))
        .is_some_and(|r| r > RepsChoice::AUTO_TARGET_REL_CI)
}

/// Mean and 95 % CI half-width of the per-round ratios `sample[i] / base[i]` (rounds both have).
pub fn paired_ratio(sample: &[f64], base: &[f64]) -> Option<(f64, Option<f64>)> {
    let ratios: Vec<f64> = sample
        .iter()
        .zip(base)
        .filter(|(_, b)| **b > 0.0)
        .map(|(s, b)| s / b)
        .collect();
    stats::mean_ci95(&ratios).map(|c| (c.mean, c.ci95))
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

fn report(
    opts: &CompareOptions,
    placement: &str,
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
        cpu_placement: placement.to_string(),
        kernel: model::kernel_release(),
        host_name: model::host_name(),
    };
    let real: Vec<ModeInput> = paths
        .iter()
        .filter(|p| !p.label.starts_with(LAB_PREFIX))
        .map(|p| p.input.clone())
        .collect();
    let mut report = build_report(&meta, &real);
    let lab_base = paths_baseline(paths, LAB_PREFIX);
    let mut lab_figures = Vec::new();
    for p in paths.iter().filter(|p| p.label.starts_with(LAB_PREFIX)) {
        let is_base = p.label == format!("{LAB_PREFIX}{BASELINE}");
        let base = (!is_base && !lab_base.is_empty()).then_some(lab_base.as_slice());
        let row = build_mode(&p.input, base);
        if !is_base {
            if let (Some(lat), Some((ratio, ci))) = (
                row.latency_us,
                paired_ratio(&model::rep_latencies(&p.input), &lab_base),
            ) {
                lab_figures.push(LabFigure {
                    mode: p.label[LAB_PREFIX.len()..].to_string(),
                    ratio,
                    ratio_ci95: ci,
                    latency_us: lat.mean,
                });
            }
        }
        report.modes.push(row);
    }
    let host = paths_baseline(paths, BASELINE);
    for (i, t) in resolved.iter().enumerate() {
        let d = &mut descriptions[i];
        let Some(row) = report.modes.iter_mut().find(|m| m.mode == t.spec.name) else {
            continue;
        };
        d.backlog_pkts_per_tx = row.probes.backlog_pkts_per_tx;
        let like = target::looks_like(d);
        let lab = like.and_then(|m| lab_figures.iter().find(|f| f.mode == m.name()).cloned());
        let paired = paths
            .iter()
            .find(|p| p.target == Some(i))
            .and_then(|p| paired_ratio(&model::rep_latencies(&p.input), &host));
        row.target = Some(TargetReport {
            spec: t.spec.spec(),
            resolved_netns: t.resolved_netns.clone(),
            resolved_by: t.how.clone(),
            looks_like: like.map(|m| m.name().to_string()),
            path: d.clone(),
            lab,
            ratio: paired.map(|p| p.0),
            ratio_ci95: paired.and_then(|p| p.1),
        });
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paired_ratios_pair_by_round() {
        let (m, ci) = paired_ratio(&[12.0, 24.0, 36.0], &[10.0, 20.0, 30.0]).unwrap();
        assert!((m - 1.2).abs() < 1e-12);
        assert!(ci.unwrap() < 1e-9);
        // A drift that moves both paths cancels in the paired ratio.
        let (m, _) = paired_ratio(&[11.0, 22.0], &[10.0, 20.0]).unwrap();
        assert!((m - 1.1).abs() < 1e-12);
        assert!(paired_ratio(&[], &[]).is_none());
        let (_, ci) = paired_ratio(&[1.0], &[1.0]).unwrap();
        assert!(ci.is_none());
    }
}
