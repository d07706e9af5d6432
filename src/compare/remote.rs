//! `compare --remote`: the real two-machine case. The remote is a machine running `nslat serve`;
//! the node is this machine (or the namespace given as the machine), and each mode is attached
//! to the real NIC in a temporary namespace, measured, and detached again.
//!
//! macvlan and ipvlan children cannot share a parent, so modes are measured one block after
//! another (not interleaved); the report says so.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use super::experiment::{CompareError, Progress};
use super::model::{self, build_report, CompareReport, ModeInput, ReportMeta, Warning};
use super::options::{CompareOptions, RepsChoice};
use crate::attach::{self, AttachMode, AttachSpec, Target};
use crate::bench::{client, RunSpec};
use crate::lab::Mode;
use crate::netlink::{sysctl, Netlink};
use crate::netns;
use crate::probe::Snapshot;

/// Where the remote is and how to attach the modes to the real NIC.
#[derive(Debug, Clone)]
pub struct RemoteTarget {
    /// The remote's `nslat serve` control address.
    pub server: SocketAddr,
    /// The NIC the modes attach to (`--parent`).
    pub parent: String,
    /// The address each attached mode's interface gets, on the NIC's network (`--addr`).
    pub addr: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// The namespace that plays "this machine" (None: the caller's; tests use a lab's node).
    pub machine_netns: Option<PathBuf>,
    pub token: Option<String>,
}

/// A namespace made for one attached mode; detached and removed when dropped.
struct TempContainer {
    name: String,
    path: PathBuf,
}

impl TempContainer {
    fn create(name: String) -> Result<TempContainer, CompareError> {
        let path = netns::create(&name)?;
        Ok(TempContainer { name, path })
    }
}

impl Drop for TempContainer {
    fn drop(&mut self) {
        let _ = attach::detach(&Target::Netns(self.path.display().to_string()), None);
        let _ = netns::delete(&self.name);
    }
}

/// Checks the parent NIC exists before anything is attached.
fn check_parent(target: &RemoteTarget) -> Result<(), CompareError> {
    let mut nl = match &target.machine_netns {
        Some(ns) => Netlink::open_in(ns),
        None => Netlink::open(),
    }
    .map_err(|e| CompareError::Invalid(format!("opening netlink: {e}")))?;
    nl.link_index(&target.parent).map(|_| ()).map_err(|_| {
        CompareError::Invalid(format!(
            "--parent {}: no such interface on this machine (see `ip link`)",
            target.parent
        ))
    })
}

/// Runs the comparison against a real remote and returns one report per CPU placement.
pub(super) fn run(
    opts: &CompareOptions,
    target: &RemoteTarget,
    stop: &AtomicBool,
    progress: &dyn Progress,
) -> Result<Vec<CompareReport>, CompareError> {
    check_parent(target)?;
    let reps = match opts.reps {
        RepsChoice::Fixed(n) => n,
        RepsChoice::Auto => RepsChoice::AUTO_MIN,
    };
    let mut reports = Vec::new();
    for &placement in opts.cpu.placements() {
        let probes = super::experiment::probe_config(placement);
        let modes = opts.measured_modes();
        progress.placement(placement, modes.len() * reps, opts.seconds_per_run());
        let mut inputs = Vec::new();
        for mode in modes {
            let mut input = ModeInput {
                trace_run: None,
                mode: mode.name().to_string(),
                unavailable: None,
                reps: Vec::new(),
            };
            let container = match mode {
                m if !m.traits().own_namespace => None,
                m => match m.traits().attach {
                    None => {
                        input.unavailable = Some(format!(
                            "not measured with --remote: attach supports macvlan, ipvlan-l2 and ipvlan-l3 on a real NIC ({m} needs the lab)"
                        ));
                        inputs.push(input);
                        continue;
                    }
                    Some(am) => match attach_container(target, m, am) {
                        Ok(c) => Some(c),
                        Err(why) => {
                            progress.note(&format!("{m}: unavailable: {why}"));
                            input.unavailable = Some(why);
                            inputs.push(input);
                            continue;
                        }
                    },
                },
            };
            let netns = container
                .as_ref()
                .map(|c| c.path.clone())
                .or_else(|| target.machine_netns.clone());
            for rep in 0..reps {
                if stop.load(Ordering::SeqCst) {
                    return Err(CompareError::Interrupted(
                        "the mode attached for the run was detached",
                    ));
                }
                progress.run_started(placement, &input.mode, rep + 1, reps);
                let spec = spec(opts, target, placement, netns.as_deref());
                let before = Snapshot::take(&probes).ok();
                let run = client::run(&spec).map_err(|e| {
                    CompareError::Invalid(format!(
                        "{mode} against the remote {}: {e}",
                        target.server
                    ))
                });
                let after = Snapshot::take(&probes).ok();
                let run = match run {
                    Ok(r) => r,
                    Err(e) if mode == Mode::Host => return Err(e),
                    Err(e) => {
                        input.unavailable = Some(e.to_string());
                        input.reps.clear();
                        break;
                    }
                };
                progress.run_finished(&input.mode, run.latency_us.mean);
                let probes = before.zip(after).map(|(b, a)| Snapshot::delta(&b, &a));
                input.reps.push(super::model::RepInput { run, probes });
            }
            drop(container);
            inputs.push(input);
        }
        let meta = ReportMeta {
            test: opts.test,
            request_size: opts.request_size,
            response_size: opts.response_size,
            reps,
            duration_s: opts.duration.as_secs_f64(),
            cpu_placement: placement.to_string(),
            kernel: model::kernel_release(),
            host_name: model::host_name(),
        };
        let mut report = build_report(&meta, &inputs);
        report.warnings.push(Warning {
            message: format!(
                "remote {}: modes were measured one after another, not interleaved (macvlan and ipvlan cannot share the parent {})",
                target.server, target.parent
            ),
            remedy: "repeat the comparison, or raise --reps, to see whether drift moved the figures".into(),
        });
        reports.push(report);
    }
    Ok(reports)
}

fn spec(
    opts: &CompareOptions,
    target: &RemoteTarget,
    placement: &str,
    netns: Option<&Path>,
) -> RunSpec {
    let (client_cpu, server_cpu) = CompareOptions::cpus_for(placement);
    let mut spec = RunSpec::new(target.server, opts.test, opts.duration);
    spec.warmup = opts.warmup;
    spec.request_size = opts.request_size;
    spec.response_size = opts.response_size;
    spec.client_cpu = Some(client_cpu);
    spec.server_cpu = Some(server_cpu);
    spec.netns = netns.map(Path::to_path_buf);
    spec.token = target.token.clone();
    spec
}

/// Makes a temporary namespace and attaches `mode` to the parent NIC in it.
fn attach_container(
    target: &RemoteTarget,
    mode: Mode,
    am: AttachMode,
) -> Result<TempContainer, String> {
    let name = format!("nslat-r{}-{}", std::process::id(), mode.name());
    let container = TempContainer::create(name).map_err(|e| e.to_string())?;
    // Announce the address when the interface comes up (the same address moves between modes,
    // and the remote must not keep sending to the previous mode's MAC).
    let _ = sysctl::write_in(
        &container.path,
        &[("net.ipv4.conf.default.arp_notify", "1")],
    );
    let spec = AttachSpec {
        target: Target::Netns(container.path.display().to_string()),
        mode: am,
        parent: target.parent.clone(),
        parent_netns: target
            .machine_netns
            .as_ref()
            .map(|p| p.display().to_string()),
        addr: target.addr,
        prefix: target.prefix,
        gateway: target.gateway,
        ifname: "eth0".into(),
        host_shim: None,
        service_cidr: None,
    };
    attach::attach(&spec).map_err(|e| format!("attach failed: {e}"))?;
    Ok(container)
}
