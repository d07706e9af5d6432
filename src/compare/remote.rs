//! `compare --remote`: the real two-machine case. The remote is a machine running `nslat serve`;
//! the node is this machine (or the namespace given as the machine). Each mode is attached to
//! the real NIC in a temporary namespace ([`super::attached`]), measured in the one measuring
//! loop ([`super::interleave`]) beside the host and the A/A control, and detached again.
//!
//! Modes that cannot be children of one parent at once (macvlan and each ipvlan mode, see
//! [`crate::attach::temp::parent_groups`]) are measured in groups, one after another: each group
//! is its own interleaved schedule with its own host baseline, and a mode's ratio is to the host
//! of its group's rounds (the report says so). The host row and the A/A control are the first
//! group's.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;

use super::attached::{self, Attached};
use super::error::CompareError;
use super::flow::{Finished, Flow};
use super::interleave;
use super::model::{self, build_report, CompareReport, ModeInput, ReportMeta, Warning};
use super::options::{CompareOptions, CpuPlacement};
use super::progress::Progress;
use super::runs::{trace_config, Runner};
use crate::attach::temp::{check_nic, parent_groups};
use crate::attach::{AttachMode, NicSpec};
use crate::error::error_chain;
use crate::lab::Mode;
use crate::measure::sockets::PathSpec;

/// The `--remote` flow: where the remote is and how to attach the modes to the real NIC.
#[derive(Debug, Clone)]
pub struct RemotePlan {
    /// The remote's `nslat serve` control address.
    pub server: SocketAddr,
    /// The NIC the modes attach to (`--parent`).
    pub parent: String,
    /// The first attached mode's address, on the NIC's network (`--addr`); the `n`-th attached
    /// mode gets this plus `n`.
    pub addr: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// The namespace that plays "this machine" (None: the caller's; tests use a lab's node).
    pub machine_netns: Option<PathBuf>,
    pub token: Option<String>,
}

impl RemotePlan {
    /// The NIC and addresses the attached modes take.
    pub fn nic(&self) -> NicSpec {
        NicSpec {
            parent: self.parent.clone(),
            parent_netns: self.machine_netns.clone(),
            addr: self.addr,
            prefix: self.prefix,
            gateway: self.gateway,
        }
    }

    fn path(&self, label: &str, netns: Option<PathBuf>) -> PathSpec {
        PathSpec {
            label: label.to_string(),
            netns,
            server: self.server,
            token: self.token.clone(),
        }
    }
}

fn input(label: &str, unavailable: Option<String>) -> ModeInput {
    ModeInput {
        mode: label.to_string(),
        unavailable,
        reps: Vec::new(),
        trace_run: None,
        paired: None,
    }
}

impl Flow for RemotePlan {
    fn check(&self, opts: &CompareOptions) -> Result<(), String> {
        if opts.explain {
            return Err(
                "--explain builds its variants beside a lab; it cannot run with --remote".into(),
            );
        }
        Ok(())
    }

    fn builds_lab(&self) -> bool {
        false
    }

    fn measure(&self, runner: &Runner, progress: &dyn Progress) -> Result<Finished, CompareError> {
        run(runner, self, progress).map(Finished::from)
    }
}

/// Runs the comparison against a real remote and returns one report per CPU placement.
fn run(
    runner: &Runner,
    target: &RemotePlan,
    progress: &dyn Progress,
) -> Result<Vec<CompareReport>, CompareError> {
    let opts = runner.opts;
    let nic = target.nic();
    let mut attach: Vec<AttachMode> = Vec::new();
    let mut inputs: Vec<ModeInput> = Vec::new();
    for mode in opts.measured_modes() {
        match mode.traits().attach {
            _ if !mode.traits().own_namespace => {}
            Some(am) => attach.push(am),
            None => inputs.push(input(
                mode.name(),
                Some(format!(
                    "not measured with --remote: attach supports macvlan, ipvlan-l2 and ipvlan-l3 on a real NIC ({mode} needs the lab)"
                )),
            )),
        }
    }
    check_nic(&nic, attach.len()).map_err(|e| CompareError::Invalid(error_chain(&e)))?;
    let groups = parent_groups(&attach);
    let mut reports = Vec::new();
    for &placement in opts.cpu.placements() {
        let report = measure_placement(runner, target, &nic, &groups, &inputs, placement, progress)
            .map_err(|e| e.after_interrupt("the modes it attached were detached"))?;
        reports.push(report);
    }
    Ok(reports)
}

/// One placement: every group in turn, each interleaved beside the host.
fn measure_placement(
    runner: &Runner,
    target: &RemotePlan,
    nic: &NicSpec,
    groups: &[Vec<AttachMode>],
    not_attachable: &[ModeInput],
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<CompareReport, CompareError> {
    let opts = runner.opts;
    let traced = trace_config(placement);
    let mut host = None;
    let mut control = None;
    let mut measured: Vec<ModeInput> = Vec::new();
    let mut first = None;
    let mut warnings = Vec::new();
    let mut next_addr = 0;
    // `--waterfall`: each path traced in remote mode, leaving by the route to the server.
    let machine = target
        .machine_netns
        .clone()
        .unwrap_or_else(|| PathBuf::from("/proc/self/ns/net"));
    let wire = opts
        .waterfall
        .then(|| super::waterfall::remote_wire(&machine, target.server));
    let mut waterfalls = super::waterfall::Traced::default();
    // With no attachable mode, the host and its A/A control are still measured.
    let none: [Vec<AttachMode>; 1] = [Vec::new()];
    let groups: &[Vec<AttachMode>] = if groups.is_empty() { &none } else { groups };
    for (g, group) in groups.iter().enumerate() {
        let Attached {
            paths: held,
            unavailable,
        } = attached::attach_all(
            nic,
            group,
            next_addr,
            target.server,
            target.token.as_deref(),
            progress,
        );
        next_addr += group.len();
        measured.extend(
            unavailable
                .into_iter()
                .map(|(label, why)| input(&label, Some(why))),
        );
        if g > 0 && held.is_empty() {
            continue;
        }
        let mut paths = vec![target.path(model::BASELINE, target.machine_netns.clone())];
        if g == 0 {
            paths.push(target.path(model::AA_CONTROL, target.machine_netns.clone()));
        }
        paths.extend(held.iter().map(|a| a.path.clone()));
        progress.placement(placement.name(), paths.len(), opts.seconds_per_run());
        let m = interleave::measure(runner, &paths, placement, progress)?;
        let mut got = m.inputs.into_iter();
        let mut base = got.next().expect("the baseline's input");
        if g == 0 {
            base.trace_run = runner.probe_run(placement, &paths[0], &traced);
            host = Some(base);
            control = got.next();
        }
        for (a, mut i) in held.iter().zip(got) {
            if i.unavailable.is_none() {
                i.trace_run = runner.probe_run(placement, &a.path, &traced);
            }
            measured.push(i);
        }
        warnings.extend(m.warnings);
        if let Some(wire) = &wire {
            let mut todo: Vec<&PathSpec> = held.iter().map(|a| &a.path).collect();
            if g == 0 {
                todo.insert(0, &paths[0]);
            }
            trace_group(&todo, wire, placement, opts, progress, &mut waterfalls);
        }
        if g > 0 {
            warnings.push(Warning {
                message: format!(
                    "{}: measured in a schedule of its own ({} rounds) beside its own host baseline: {} cannot share the parent {} with {}; its ratio is to that schedule's host",
                    held.iter().map(|a| a.label.as_str()).collect::<Vec<_>>().join(", "),
                    m.rounds,
                    held[0].mode,
                    nic.parent,
                    groups[0].iter().map(|m| m.name()).collect::<Vec<_>>().join(", "),
                ),
                remedy: "give each ipvlan mode a parent of its own (a second NIC) to measure it in the same rounds".into(),
            });
        }
        if first.is_none() {
            first = Some((m.rounds, m.block_s, m.block_transactions, m.ci_method));
        }
        // Detached and removed here, before the next group attaches.
        drop(held);
    }
    let (rounds, block_s, block_transactions, ci_method) =
        first.expect("the first group is always measured");
    // Report order: the host, the modes as the lab orders them, the A/A control last.
    measured.extend(not_attachable.iter().cloned());
    measured.sort_by_key(|i| {
        Mode::ALL
            .iter()
            .position(|m| m.name() == i.mode)
            .unwrap_or(usize::MAX)
    });
    let inputs: Vec<ModeInput> = host.into_iter().chain(measured).chain(control).collect();
    let meta = ReportMeta {
        test: opts.test,
        request_size: opts.request_size,
        response_size: opts.response_size,
        reps: rounds,
        duration_s: block_s,
        cpu_placement: placement.name().to_string(),
        kernel: crate::host_facts::kernel_release(),
        host_name: crate::host_facts::host_name(),
        schedule: model::ScheduleKind::Interleaved,
        block_transactions,
        ci_method: Some(ci_method),
        baseline: model::Baseline::as_found(target.machine_netns.as_deref()),
    };
    let mut report = build_report(&meta, &inputs);
    report.warnings.extend(warnings);
    if wire.is_some() {
        super::waterfall::attach(&mut report, waterfalls);
    }
    report.warnings.push(Warning {
        message: format!(
            "remote {}: the modes were attached to {} in temporary namespaces (addresses from {} up) and measured interleaved beside this machine's own namespace",
            target.server, nic.parent, nic.addr
        ),
        remedy: "the remote's own path is in every figure: compare ratios, not µs, across machines".into(),
    });
    Ok(report)
}

/// `--waterfall`: the group's paths traced in remote mode while they are attached; a refusal
/// stops the tracing for the rest of the run.
fn trace_group(
    todo: &[&PathSpec],
    wire: &Result<crate::bpf::waterfall::RemoteWire, String>,
    placement: CpuPlacement,
    opts: &CompareOptions,
    progress: &dyn Progress,
    out: &mut super::waterfall::Traced,
) {
    if out.refused.is_some() {
        return;
    }
    let wire = match wire {
        Ok(w) => *w,
        Err(why) => {
            for p in todo {
                out.failed
                    .push((p.label.clone(), format!("its wire device: {why}")));
            }
            return;
        }
    };
    let paths: Vec<super::waterfall::PathToTrace> = todo
        .iter()
        .map(|p| super::waterfall::PathToTrace {
            label: p.label.clone(),
            netns: p.netns.clone(),
            server: p.server,
            wire: Vec::new(),
            remote: Some(wire),
            token: p.token.clone(),
        })
        .collect();
    let t = super::waterfall::trace_paths(&paths, placement, opts, progress);
    out.waterfalls.extend(t.waterfalls);
    out.failed.extend(t.failed);
    out.refused = t.refused;
}
