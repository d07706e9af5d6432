//! `compare --waterfall`: the traced run of each measured path after the timed rounds, and
//! putting the waterfalls (with their deltas to the host's) into the report's mode rows.
//!
//! A path whose server is on another machine (`--remote`, `--target`) is traced in remote mode
//! ([`remote_wire`]): the client alone, the time from the wire device's transmit to the
//! server's first packet back is one `remote` stage.
//!
//! The experiment calls [`trace_paths`] while its servers still run and [`attach`] on the
//! finished report; nothing here measures the main table. A kernel that refuses the programs
//! (no BTF, not root, a tracepoint missing) gives one warning and the compare goes on.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::options::{CompareOptions, CpuPlacement};
use super::Progress;
use super::{CompareReport, Warning, BASELINE};
use crate::bpf::waterfall::RemoteWire;
use crate::waterfall::run::{self, TraceSpec, WaterfallError};
use crate::waterfall::{delta, Waterfall};

/// One path to trace.
#[derive(Debug, Clone)]
pub struct PathToTrace {
    /// The mode row it belongs to (`host`, `bridge`, ...).
    pub label: String,
    pub netns: Option<PathBuf>,
    /// The `nslat serve` control address (a server of this process).
    pub server: SocketAddr,
    /// The namespaces at the ends of the wire (node, remote), for naming devices.
    pub wire: Vec<PathBuf>,
    /// Remote mode (the server is not in this process): see [`remote_wire`].
    pub remote: Option<RemoteWire>,
    /// The server's token (`--token-file`).
    pub token: Option<String>,
}

/// Remote mode's wire for `server` as seen from the namespace `machine` (the device the route
/// to the server leaves by, and the namespace's inode).
pub fn remote_wire(machine: &std::path::Path, server: SocketAddr) -> Result<RemoteWire, String> {
    use std::os::unix::fs::MetadataExt;
    let ifindex = crate::target::route_oif(machine, server.ip())?;
    let netns = std::fs::metadata(machine)
        .map_err(|e| format!("{}: {e}", machine.display()))?
        .ino() as u32;
    Ok(RemoteWire {
        ifindex,
        netns,
        server,
    })
}

/// The traced paths' waterfalls, and why some (or all) have none.
#[derive(Debug, Default)]
pub struct Traced {
    pub waterfalls: Vec<(String, Waterfall)>,
    /// One line per path that could not be traced; `refused`: the kernel refused the programs
    /// (then no path was traced).
    pub failed: Vec<(String, String)>,
    pub refused: Option<String>,
}

/// Traces each path in turn (TCP_RR with the options' sizes, on the placement's CPUs, the
/// options' number of block pairs). Stops trying at the first refusal of the programs: the
/// next path would be refused the same way.
pub fn trace_paths(
    paths: &[PathToTrace],
    placement: CpuPlacement,
    opts: &CompareOptions,
    progress: &dyn Progress,
) -> Traced {
    let mut out = Traced::default();
    let (client_cpu, server_cpu) = CompareOptions::cpus_for(placement);
    for p in paths {
        let label = format!("{} (waterfall)", p.label);
        progress.run_started("waterfall", &label, 1, 1);
        let mut spec = TraceSpec::new(p.netns.clone(), p.server);
        spec.client_cpu = Some(client_cpu);
        spec.server_cpu = Some(server_cpu);
        spec.request_size = opts.request_size;
        spec.response_size = opts.response_size;
        spec.pairs = opts.waterfall_pairs as usize;
        spec.wire = p.wire.clone();
        spec.remote = p.remote;
        spec.token = p.token.clone();
        match run::run(&spec) {
            Ok(wf) => {
                progress.run_finished(&label, wf.traced_rtt_us);
                out.waterfalls.push((p.label.clone(), wf));
            }
            Err(WaterfallError::Trace(e)) => {
                let why = e.to_string();
                progress.note(&format!("waterfall not available: {why}"));
                out.refused = Some(why);
                return out;
            }
            Err(e) => {
                progress.note(&format!("{}: waterfall not available: {e}", p.label));
                out.failed.push((p.label.clone(), e.to_string()));
            }
        }
    }
    out
}

/// Puts each waterfall into its mode's row (with its delta to the host's), and a warning per
/// path that has none.
pub fn attach(report: &mut CompareReport, traced: Traced) {
    attach_with(report, traced, "", &[]);
}

/// [`attach`] where rows starting with `lab_prefix` (`lab/`) are against `lab/host`, and each
/// `(row, lab row)` of `vs_lab` gets its delta to that lab row (a target against the lab's
/// emulation of its mode).
pub fn attach_with(
    report: &mut CompareReport,
    mut traced: Traced,
    lab_prefix: &str,
    vs_lab: &[(String, String)],
) {
    let find = |label: &str| {
        traced
            .waterfalls
            .iter()
            .find(|(l, _)| l == label)
            .map(|(_, w)| w.clone())
    };
    let host = find(BASELINE);
    let lab_host = (!lab_prefix.is_empty())
        .then(|| find(&format!("{lab_prefix}{BASELINE}")))
        .flatten();
    let labs: Vec<(String, Option<Waterfall>)> =
        vs_lab.iter().map(|(_, l)| (l.clone(), find(l))).collect();
    for (label, wf) in traced.waterfalls.iter_mut() {
        let lab_row = !lab_prefix.is_empty() && label.starts_with(lab_prefix);
        let base = if lab_row { &lab_host } else { &host };
        if *label != BASELINE && *label != format!("{lab_prefix}{BASELINE}") {
            wf.vs_host = base.as_ref().map(|h| delta(wf, h));
        }
        if let Some((_, l)) = vs_lab.iter().find(|(r, _)| r == label) {
            if let Some((_, Some(lw))) = labs.iter().find(|(n, _)| n == l) {
                let mut d = delta(wf, lw);
                d.against = Some(l.clone());
                wf.vs_lab = Some(d);
            }
        }
    }
    for (label, wf) in traced.waterfalls {
        if let Some(m) = report.modes.iter_mut().find(|m| m.mode == label) {
            m.waterfall = Some(Box::new(wf));
        }
    }
    if let Some(why) = traced.refused {
        report.warnings.push(Warning {
            message: format!("waterfall not available: {why}"),
            remedy: "run as root on a kernel with BTF (/sys/kernel/btf/vmlinux) and the net, irq, sched and raw_syscalls tracepoints".into(),
        });
    }
    for (label, why) in traced.failed {
        report.warnings.push(Warning {
            message: format!("{label}: waterfall not available: {why}"),
            remedy: "the rest of the compare is unaffected".into(),
        });
    }
}
