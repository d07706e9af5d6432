//! `nslat compare`: the main job.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::run::{parse_host, parse_positive_secs, parse_rr_sizes, parse_secs, Family, LockArgs};
use crate::attach::{AttachMode, NicSpec};
use crate::bench::TestKind;
use crate::compare::{
    self, AttachPlan, CompareOptions, CompareReport, CpuChoice, Flow, LabPlan, Progress,
    RemotePlan, RepsChoice, ScheduleChoice, Stamp, TargetPlan,
};
use crate::lab::{mode, Mode};
use crate::report::{
    self, CsvExporter, Exporter, JsonExporter, MarkdownExporter, TerminalExporter,
};
use crate::target::TargetSpec;

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Measure every container network mode against the host, explain the gap, report it.\n\n\
    Builds a one-machine lab and, for the measurement, one closed copy of it per mode and per \
    replicate (a remote, a node of its own in the --baseline state, the mode's container), runs \
    `nslat serve` in every copy's remote, and measures every mode, the host on a node of the other \
    state and an A/A control at once in interleaved 1 ms blocks, each paired with the host round by \
    round, in --epochs fresh processes one after another; the ratio's 95% CI spans the --replicates \
    instances and the epochs. Then one short \
    run per mode with tracepoint counters (backlog packets, NET_RX softirqs, CPU time, tracepoints), \
    the feature checks (which features each mode keeps), and everything is removed.\n\n\
    Client and server are pinned to one CPU by default (--cpu same): on different CPUs the \
    cross-CPU wake-up costs far more than any network path and hides the differences.\n\n\
    Examples:\n  \
    nslat compare                                   # every mode, TCP_RR 1,1, 15-20 s\n  \
    nslat compare --modes host,bridge,macvlan --explain\n  \
    nslat compare -t UDP_RR -r 64,1024 --reps 8 --json out.json --html report/\n  \
    nslat compare --cpu both                        # same-CPU and split-CPU tables\n  \
    nslat compare --remote 192.0.2.7 --parent eth0 --addr 192.0.2.50/24   # modes on a real NIC\n  \
    nslat compare --remote 192.0.2.7 --target web=docker:web --attach macvlan --parent eth0 --addr 192.0.2.50/24"
)]
pub struct CompareArgs {
    /// Modes to measure, comma-separated (host is always measured: it is the baseline).
    #[arg(long, value_name = "LIST", default_value = "host,bridge,ptp,macvlan,ipvlan-l2,ipvlan-l3,ipvlan-l3s", value_parser = parse_modes)]
    modes: ModeList,
    /// Test: TCP_RR, UDP_RR, TCP_CRR, TCP_STREAM or TCP_MAERTS.
    #[arg(
        short = 't',
        long = "test",
        value_name = "TEST",
        default_value = "TCP_RR"
    )]
    test: TestKind,
    /// Request and response sizes in bytes (request/response tests).
    #[arg(short = 'r', value_name = "REQ,RESP", allow_hyphen_values = true, default_value = "1,1", value_parser = parse_rr_sizes)]
    sizes: (usize, usize),
    /// Measured seconds per run.
    #[arg(short = 'l', long = "length", value_name = "SECS", allow_hyphen_values = true, default_value = "1.5", value_parser = parse_positive_secs)]
    length: Duration,
    /// Warm-up seconds before each run (not measured).
    #[arg(long, value_name = "SECS", default_value = "0.3", allow_hyphen_values = true, value_parser = parse_secs)]
    warmup: Duration,
    /// Interleaved: `auto` measures until every ratio's CI is within --target-ci or --budget is
    /// spent; N measures for about what N runs of -l would give each mode. Runs: repetitions per
    /// mode; `auto`: at least 5, more while a 95% CI is above 1% of the mean and time allows.
    #[arg(long, value_name = "N|auto", default_value = "auto", allow_hyphen_values = true, value_parser = parse_reps)]
    reps: RepsChoice,
    /// `interleaved`: every mode at once, in blocks of transactions taken in turn, each mode
    /// compared with the host round by round (with an A/A control); `runs`: one run per mode
    /// after another, repeated (the previous method).
    #[arg(long, value_name = "interleaved|runs", default_value = "interleaved")]
    schedule: ScheduleChoice,
    /// Interleaved: target time of one block (B transactions are chosen to fill it).
    #[arg(long, value_name = "SECS", default_value = "0.001", allow_hyphen_values = true, value_parser = parse_positive_secs)]
    block_time: Duration,
    /// Interleaved: a fixed number of transactions per block instead of --block-time.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    block_transactions: Option<u64>,
    /// Interleaved: untimed transactions at the start of every block (the first transaction
    /// after switching paths pays the path's cold caches, which a steady run does not).
    #[arg(long, value_name = "N", default_value = "1", value_parser = clap::value_parser!(u64).range(0..=1000))]
    lead_in: u64,
    /// Interleaved with --reps auto: measure until every ratio's 95% CI half-width is at most
    /// this many percentage points...
    #[arg(long, value_name = "POINTS", default_value = "0.5", value_parser = parse_target_ci)]
    target_ci: f64,
    /// ...or until this many seconds of measuring have passed.
    #[arg(long, value_name = "SECS", default_value = "12", allow_hyphen_values = true, value_parser = parse_positive_secs)]
    budget: Duration,
    /// The host baseline's netfilter state, and every mode's node before the mode loads its own
    /// rules: `bare` (no NAT table, conntrack off: a machine before containers) or `nat` (a NAT
    /// table loaded, conntrack on: a Docker host or a kube-proxy node). Every mode runs on a
    /// node of its own, so no mode's rules reach another's path or the baseline; the host on a
    /// node of the other state is measured beside it (see --no-other-host).
    #[arg(long, value_name = "bare|nat", default_value = "bare")]
    baseline: crate::lab::cells::NodeState,
    /// Interleaved lab compare: independent instances of every path (own namespaces, links,
    /// connection and server thread), measured in the same rounds. Where an instance lands in
    /// memory shifts its latency by a few tenths of a percent for its whole life; the ratio's
    /// 95% CI adds the spread between the instances to the spread between time batches
    /// (corrected for their autocorrelation), so it covers what a rerun gives.
    #[arg(long, value_name = "N", default_value_t = crate::compare::DEFAULT_REPLICATES as u8,
          value_parser = clap::value_parser!(u8).range(1..=12))]
    replicates: u8,
    /// Interleaved lab compare with replicates: split the measuring time into N epochs, each in
    /// a fresh process (its own servers, connections and client thread) over the same cells.
    /// Where a process's memory lands shifts a path's latency for that process's life (bridge's
    /// by up to a point); the ratio's 95% CI takes the spread between epochs, so it covers what
    /// a rerun in a new process gives. 1: measure in this process, in one go.
    #[arg(long, value_name = "N", default_value_t = crate::measure::epochs::DEFAULT_EPOCHS)]
    epochs: usize,
    /// Do not measure the host on a node of the other netfilter state beside the baseline.
    #[arg(long)]
    no_other_host: bool,
    /// IP family of the lab's paths: 4, 6 (the lab's 2001:2::/48 addresses; bridge with NAT66)
    /// or both (each mode's IPv6 row beside its IPv4 row, against the host's IPv6, in the same
    /// interleaved rounds). Lab compare only: not with --remote, --target, --explain, --waterfall
    /// or --schedule runs.
    #[arg(long, value_name = "4|6|both", default_value = "4")]
    family: crate::compare::FamilyChoice,
    /// CPU placement: `same` (client and server on one CPU), `split` (different CPUs), or `both`.
    #[arg(long, value_name = "same|split|both", default_value = "same")]
    cpu: CpuChoice,
    /// Also attribute the bridge mode's overhead to veth, bridge, conntrack and MASQUERADE:
    /// six variants (host and containers at three NAT levels, one node namespace per level,
    /// built beside the lab and removed after) measured interleaved against "host, no NAT
    /// table"; needs the interleaved schedule.
    #[arg(long)]
    explain: bool,
    /// After the timed rounds, trace each path (BPF on the network, softirq, scheduler and
    /// system-call tracepoints, summed in the kernel) in traced and untraced blocks, and show
    /// where its round trip goes: per device hop, backlog wait, softirq delay, processing,
    /// socket receive, wake-up, user space; each mode's stages against the host's; the
    /// tracing overhead, and the path's CPU work (the stages that run code, not the waits).
    /// With --remote/--target the server is not followed: its machine is one `remote` stage
    /// (wire transmit to its first packet back); with --explain each variant is traced too.
    /// TCP_RR; needs root and BTF (docs/waterfall.md).
    #[arg(long)]
    waterfall: bool,
    /// With --waterfall: pairs of a traced and an untraced 100 ms block per path (2 to 100).
    /// Fewer: a quicker waterfall with a wider interval on the tracing overhead.
    #[arg(long, value_name = "N", default_value_t = crate::waterfall::run::DEFAULT_PAIRS,
          value_parser = clap::value_parser!(u32).range(2..=100), requires = "waterfall")]
    waterfall_pairs: u32,
    /// Skip the feature checks (Service, node access, policy) shown beside the latency table.
    #[arg(long)]
    no_checks: bool,
    /// Use (and keep) this lab if it exists; otherwise build it under this name.
    #[arg(long, value_name = "NAME")]
    lab: Option<String>,
    /// Keep the lab afterwards (remove it with `nslat lab down --name NAME`).
    #[arg(long)]
    keep_lab: bool,
    /// The real two-machine case: measure against `nslat serve` on this remote machine instead
    /// of the lab's (needs --parent and --addr; host, macvlan, ipvlan-l2 and ipvlan-l3 are measured).
    #[arg(long, value_name = "HOST[:PORT]")]
    remote: Option<String>,
    /// Measure your own container (repeatable): NAME=SPEC with SPEC netns:NAME|PATH, pid:N,
    /// docker:CONTAINER, podman:CONTAINER or cri:POD. Needs --remote (a machine running
    /// `nslat serve` that the containers reach); the baseline host is this machine's namespace.
    #[arg(long = "target", value_name = "NAME=SPEC", value_parser = parse_target)]
    targets: Vec<TargetSpec>,
    /// With --target: do not build the lab to put its figure for each target's mode beside it.
    #[arg(long, requires = "targets")]
    no_lab: bool,
    /// With --target: also attach these modes (macvlan, ipvlan-l2, ipvlan-l3) to --parent, each
    /// in a temporary namespace, and measure them in the same interleaved rounds as the targets
    /// (detached afterwards). ipvlan cannot share a parent with macvlan children.
    #[arg(long, value_name = "LIST", requires = "targets", value_parser = parse_attach)]
    attach: Option<AttachList>,
    /// With --target: give the lab's bridge Docker's FORWARD chains (DOCKER-USER, the isolation
    /// stages, the conntrack accept), so lab/bridge compares with a real Docker host's bridge.
    #[arg(long, requires = "targets")]
    lab_docker_forward: bool,
    /// With --remote: this machine's NIC on the remote's network; modes attach to it.
    #[arg(long, value_name = "IFACE", requires = "remote")]
    parent: Option<String>,
    /// With --remote: the first of the free addresses on the NIC's network for the attached
    /// modes, e.g. 192.0.2.50/24; the n-th attached mode gets this address plus n (.50, .51, ...).
    #[arg(long, value_name = "CIDR", requires = "remote")]
    addr: Option<String>,
    /// With --remote: the attached modes' default gateway.
    #[arg(long, value_name = "IP", requires = "remote")]
    gateway: Option<std::net::IpAddr>,
    /// With --remote: the server's token; visible to every user of the machine: prefer
    /// --token-file or NSLAT_TOKEN.
    #[arg(long, value_name = "SECRET", requires = "remote")]
    token: Option<String>,
    /// With --remote: the file holding the server's token (or set NSLAT_TOKEN).
    #[arg(
        long,
        value_name = "PATH",
        requires = "remote",
        conflicts_with = "token"
    )]
    token_file: Option<std::path::PathBuf>,
    /// With --remote: the namespace that plays this machine, the baseline host (default: this
    /// process's own).
    #[arg(
        long = "host-netns",
        alias = "machine-netns",
        value_name = "NAME|PATH",
        requires = "remote"
    )]
    machine_netns: Option<String>,
    #[command(flatten)]
    lock: LockArgs,
    /// Show every column of the main table (default: the compact table, fitted to the terminal).
    #[arg(long)]
    wide: bool,
    /// Name the machine this runs on in the report's `pair` (for `nslat report merge`)
    /// [default: the host name]. Setting --node, --peer or --peer-network records the pair.
    #[arg(long, value_name = "NAME")]
    node: Option<String>,
    /// Name the machine the server runs on in the report's `pair` [default: the --remote address].
    #[arg(long, value_name = "NAME")]
    peer: Option<String>,
    /// Which of the peer's networks the server listens on, for the report's `pair`: host or pod.
    #[arg(long, value_name = "host|pod")]
    peer_network: Option<crate::compare::PeerNetwork>,
    /// Write the report as JSON to PATH.
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write one CSV row per mode to PATH.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Write the report as a Markdown table to PATH.
    #[arg(long, value_name = "PATH")]
    markdown: Option<PathBuf>,
    /// Write a self-contained HTML page with plots to DIR/index.html.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
}

/// A comma-separated mode list as one clap value.
#[derive(Debug, Clone)]
struct ModeList(Vec<Mode>);

/// `--attach`: attach modes, comma-separated, each once.
#[derive(Debug, Clone)]
struct AttachList(Vec<AttachMode>);

fn parse_attach(s: &str) -> Result<AttachList, String> {
    let mut out: Vec<AttachMode> = Vec::new();
    for part in s.split(',') {
        let m: AttachMode = part
            .parse()
            .map_err(|e: crate::attach::AttachError| e.to_string())?;
        if m == AttachMode::Bridge {
            return Err("bridge is not attached to a NIC: measure a container on a bridge with --target NAME=docker:CONTAINER".into());
        }
        if !out.contains(&m) {
            out.push(m);
        }
    }
    Ok(AttachList(out))
}

fn parse_modes(s: &str) -> Result<ModeList, String> {
    mode::parse_list(s).map(ModeList).map_err(|e| e.to_string())
}

fn parse_target(s: &str) -> Result<TargetSpec, String> {
    s.parse()
        .map_err(|e: crate::target::TargetError| e.to_string())
}

/// Some targets failed during the run while the rest finished: exit status
/// [`super::EXIT_PARTIAL`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PartialSuccess(pub String);

fn parse_reps(s: &str) -> Result<RepsChoice, String> {
    if s.eq_ignore_ascii_case("auto") {
        return Ok(RepsChoice::Auto);
    }
    match s.parse::<usize>() {
        Ok(n) if (1..=1000).contains(&n) => Ok(RepsChoice::Fixed(n)),
        _ => Err(format!(
            "'{s}' is not a repetition count: give 1..1000 or auto"
        )),
    }
}

fn parse_target_ci(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(x) if x > 0.0 && x <= 100.0 => Ok(x),
        _ => Err(format!(
            "'{s}' is not a CI target: give percentage points, more than 0 and at most 100"
        )),
    }
}

/// An output file must go into an existing directory, must not be a directory itself, and must
/// be writable: checked before anything is built by opening it (without truncating an existing
/// file, and removing a file only this check created), so nothing is left changed.
pub(super) fn check_output_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        bail!(
            "{flag} {}: is a directory; give a file path",
            path.display()
        );
    }
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        bail!(
            "{flag} {}: directory {} does not exist; create it first",
            path.display(),
            parent.display()
        );
    }
    let existed = path.exists();
    let opened = std::fs::OpenOptions::new()
        .append(true)
        .create(!existed)
        .open(path);
    match opened {
        Ok(_) => {
            if !existed {
                let _ = std::fs::remove_file(path);
            }
            Ok(())
        }
        Err(e) => bail!(
            "{flag} {}: cannot write there ({e}); give a writable path",
            path.display()
        ),
    }
}

/// `--html DIR`: DIR may exist (as a directory) or be created inside an existing directory.
pub(super) fn check_output_dir(path: &Path) -> anyhow::Result<()> {
    if path.exists() && !path.is_dir() {
        bail!(
            "--html {}: exists and is not a directory; give a directory",
            path.display()
        );
    }
    if !path.exists() {
        check_output_file("--html", path)?;
    }
    Ok(())
}

/// With `--cpu both`, each placement gets its own file: `out.json` → `out.same.json`, `out.split.json`.
fn placement_path(path: &Path, placement: &str, several: bool) -> PathBuf {
    if !several {
        return path.to_path_buf();
    }
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = match path.extension() {
        Some(ext) => format!("{stem}.{placement}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{placement}"),
    };
    path.with_file_name(name)
}

pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    for (flag, path) in [
        ("--json", &args.json),
        ("--csv", &args.csv),
        ("--markdown", &args.markdown),
    ] {
        if let Some(p) = path {
            check_output_file(flag, p)?;
        }
    }
    if let Some(dir) = &args.html {
        check_output_dir(dir)?;
    }
    // --remote's token, from --token, --token-file or NSLAT_TOKEN (a bad file changes nothing).
    let mut args = args;
    if args.remote.is_some() {
        args.token = super::token::resolve(args.token.take(), args.token_file.as_deref())?;
    }
    // The run starts now, with the command line as typed (the page header and the JSON keep it).
    let context = crate::compare::RunContext::now(std::env::args().collect());
    let opts = options(&args);
    let flow = flow(&args)?;
    // Bad options fail at once, not after waiting for another measurement's CPUs.
    compare::check(&opts, flow.as_ref()).context("compare")?;

    let lock = args.lock.acquire(&pinned_cpus(&opts))?;
    let stamp = Stamp {
        context: Some(context),
        pair: pair_label(&args),
        flags: lock.contention.iter().map(|c| c.describe()).collect(),
    };
    let progress = CliProgress::new();
    let finished = compare::run(&opts, flow.as_ref(), &stamp, &progress);
    progress.done();
    drop(lock);
    let finished = finished.context("compare")?;

    export_all(&args, &finished.reports)?;
    if !finished.failed.is_empty() {
        return Err(PartialSuccess(format!(
            "partial success: {} of {} targets failed during the run ({}); the rest was measured",
            finished.failed.len(),
            args.targets.len(),
            finished.failed.join("; ")
        ))
        .into());
    }
    Ok(())
}

/// The flow the flags ask for: `--target`, `--remote`, or the lab.
fn flow(args: &CompareArgs) -> anyhow::Result<Box<dyn Flow>> {
    if args.family != crate::compare::FamilyChoice::V4
        && (!args.targets.is_empty() || args.remote.is_some())
    {
        bail!("--family 6|both measures the lab's paths only: drop --target/--remote, or --family");
    }
    if !args.targets.is_empty() {
        return Ok(Box::new(target_plan(args)?));
    }
    match &args.remote {
        Some(host) => {
            if args.parent.is_none() || args.addr.is_none() {
                bail!("--remote needs --parent IFACE and --addr CIDR (the NIC the modes attach to), or --target NAME=SPEC to measure your own containers");
            }
            Ok(Box::new(remote_plan(args, host)?))
        }
        None => Ok(Box::new(LabPlan {
            name: args.lab.clone(),
            keep: args.keep_lab,
        })),
    }
}

/// Every CPU the placements pin a client or server to: what the measurement lock holds.
fn pinned_cpus(opts: &CompareOptions) -> Vec<usize> {
    let mut cpus = Vec::new();
    for placement in opts.cpu.placements() {
        let (c, s) = CompareOptions::cpus_for(*placement);
        cpus.extend([c, s]);
    }
    cpus
}

/// The first screen's table: compact and fitted to the terminal, or every column with --wide.
fn terminal_exporter(args: &CompareArgs) -> TerminalExporter {
    TerminalExporter {
        detail: if args.wide {
            report::compare_view::Detail::Wide
        } else {
            report::compare_view::Detail::Compact
        },
        width: super::terminal_width(),
    }
}

fn options(args: &CompareArgs) -> CompareOptions {
    CompareOptions {
        modes: args.modes.0.clone(),
        test: args.test,
        request_size: args.sizes.0,
        response_size: args.sizes.1,
        duration: args.length,
        warmup: args.warmup,
        reps: args.reps,
        cpu: args.cpu,
        explain: args.explain,
        waterfall: args.waterfall,
        waterfall_pairs: args.waterfall_pairs,
        checks: !args.no_checks,
        schedule: args.schedule,
        block_time: args.block_time,
        block_transactions: args.block_transactions,
        lead_in: args.lead_in,
        target_ci_points: args.target_ci,
        measure_budget: args.budget,
        baseline: args.baseline,
        replicates: usize::from(args.replicates),
        epochs: args.epochs,
        other_host: !args.no_other_host,
        family: args.family,
        ..CompareOptions::default()
    }
}

/// `--target`: the user's containers against `--remote`, beside the host and the lab's figures.
fn target_plan(args: &CompareArgs) -> anyhow::Result<TargetPlan> {
    let Some(host) = &args.remote else {
        bail!("--target needs --remote HOST: a machine running `nslat serve` that the containers reach (the lab's remote lives in a namespace no container can reach)");
    };
    let server = parse_host(host, Family::Any).map_err(|e| anyhow::anyhow!("--remote: {e}"))?;
    let host_netns = match &args.machine_netns {
        Some(ns) => Some(crate::netns::resolve(ns).context("--host-netns")?),
        None => None,
    };
    let attach = match (&args.attach, &args.parent, &args.addr) {
        (None, None, None) => None,
        (None, _, _) => bail!("--parent and --addr with --target go with --attach MODES (the modes to attach to the NIC beside the targets)"),
        (Some(_), None, _) | (Some(_), _, None) => {
            bail!("--attach needs --parent IFACE and --addr CIDR: the NIC the modes attach to and the first free address on its network")
        }
        (Some(modes), Some(parent), Some(cidr)) => {
            let (addr, prefix) = crate::cidr::parse_cidr(cidr)?;
            Some(AttachPlan {
                nic: NicSpec {
                    parent: parent.clone(),
                    parent_netns: host_netns.clone(),
                    addr,
                    prefix,
                    gateway: args.gateway,
                },
                modes: modes.0.clone(),
            })
        }
    };
    Ok(TargetPlan {
        targets: args.targets.clone(),
        server,
        token: args.token.clone(),
        host_netns,
        lab_figures: !args.no_lab,
        attach,
        lab_docker_forward: args.lab_docker_forward,
    })
}

/// `--node`/`--peer`/`--peer-network`: the pair the report is labelled with, if any was given.
fn pair_label(args: &CompareArgs) -> Option<crate::compare::PairLabel> {
    if args.node.is_none() && args.peer.is_none() && args.peer_network.is_none() {
        return None;
    }
    Some(crate::compare::PairLabel {
        node: args
            .node
            .clone()
            .or_else(crate::host_facts::host_name)
            .unwrap_or_else(|| "this machine".into()),
        peer: args
            .peer
            .clone()
            .or_else(|| args.remote.clone())
            .unwrap_or_else(|| "lab remote".into()),
        peer_network: args
            .peer_network
            .unwrap_or(crate::compare::PeerNetwork::Host),
    })
}

fn remote_plan(args: &CompareArgs, host: &str) -> anyhow::Result<RemotePlan> {
    let server = parse_host(host, Family::Any).map_err(|e| anyhow::anyhow!("--remote: {e}"))?;
    let cidr = args.addr.as_deref().unwrap_or_default();
    let (addr, prefix) = crate::cidr::parse_cidr(cidr)?;
    let machine_netns = match &args.machine_netns {
        Some(ns) => Some(crate::netns::resolve(ns)?),
        None => None,
    };
    Ok(RemotePlan {
        server,
        parent: args.parent.clone().unwrap_or_default(),
        addr,
        prefix,
        gateway: args.gateway,
        machine_netns,
        token: args.token.clone(),
    })
}

/// Each report on the terminal and into the files `--json`, `--csv`, `--markdown` and `--html`
/// name (one set per placement when there are several).
fn export_all(args: &CompareArgs, reports: &[CompareReport]) -> anyhow::Result<()> {
    let terminal = terminal_exporter(args);
    let several = reports.len() > 1;
    let mut stdout = std::io::stdout().lock();
    for r in reports {
        terminal.export(r, &mut stdout)?;
        write_files(
            r,
            &args.json,
            &args.csv,
            &args.markdown,
            &args.html,
            several,
        )?;
    }
    Ok(())
}

fn write_files(
    r: &CompareReport,
    json: &Option<PathBuf>,
    csv: &Option<PathBuf>,
    markdown: &Option<PathBuf>,
    html: &Option<PathBuf>,
    several: bool,
) -> anyhow::Result<()> {
    let files: [(&Option<PathBuf>, &dyn Exporter); 3] = [
        (json, &JsonExporter),
        (csv, &CsvExporter),
        (markdown, &MarkdownExporter),
    ];
    for (path, exporter) in files {
        if let Some(p) = path {
            let p = placement_path(p, &r.cpu_placement, several);
            report::export_to_path(exporter, r, &p)?;
            eprintln!("wrote {}", p.display());
        }
    }
    if let Some(p) = csv {
        let p = placement_path(p, &r.cpu_placement, several);
        if let Some(w) = report::waterfall::write_csv_beside(r, &p)? {
            eprintln!("wrote {}", w.display());
        }
    }
    if let Some(dir) = html {
        let dir = if several {
            dir.join(&r.cpu_placement)
        } else {
            dir.clone()
        };
        let page = report::write_html_dir(r, &dir)?;
        eprintln!("wrote {}", page.display());
    }
    Ok(())
}

/// A progress bar on a terminal (mode, repetition, ETA); plain lines otherwise.
struct CliProgress {
    bar: Option<ProgressBar>,
}

impl CliProgress {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix} [{bar:20}] {pos}/{len} ETA {eta} {wide_msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            // Shown once the first placement says how many runs there are (never as 0/0).
            bar.set_draw_target(ProgressDrawTarget::hidden());
            bar
        });
        CliProgress { bar }
    }

    fn done(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Progress for CliProgress {
    fn placement(&self, placement: &str, runs: usize, seconds_per_run: f64) {
        match &self.bar {
            Some(bar) => {
                bar.set_prefix(format!("cpu {placement}"));
                bar.set_position(0);
                bar.set_length(runs as u64);
                if bar.is_hidden() {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            None => eprintln!(
                "compare: cpu placement {placement}: {runs} runs of {seconds_per_run:.1} s planned"
            ),
        }
    }

    fn run_started(&self, _placement: &str, label: &str, rep: usize, reps: usize) {
        if let Some(bar) = &self.bar {
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.inc_length(1);
            }
            bar.set_message(format!("{label} rep {rep}/{reps}"));
        }
    }

    fn run_finished(&self, label: &str, latency_us: f64) {
        match &self.bar {
            Some(bar) => bar.inc(1),
            None => eprintln!("compare: {label}: {latency_us:.2} µs"),
        }
    }

    fn note(&self, message: &str) {
        match &self.bar {
            Some(bar) => {
                let text = super::wrap_for_stderr(&format!("note: {message}"));
                if bar.is_hidden() {
                    // Not shown yet (before the first placement): its println would drop it.
                    eprintln!("{text}");
                } else {
                    // One println per line: the bar redraws below each.
                    text.lines().for_each(|line| bar.println(line));
                }
            }
            None => eprintln!("compare: {message}"),
        }
    }

    fn checks_planned(&self, checks: usize) {
        match &self.bar {
            Some(bar) => {
                bar.set_prefix("checks");
                bar.set_position(0);
                bar.set_length(checks as u64);
                bar.set_message("");
                if bar.is_hidden() {
                    bar.set_draw_target(ProgressDrawTarget::stderr());
                }
            }
            None => eprintln!("compare: feature checks: {checks} planned"),
        }
    }

    fn check_started(&self, mode: &str, check: &str) {
        if let Some(bar) = &self.bar {
            if bar.position() >= bar.length().unwrap_or(0) {
                bar.inc_length(1);
            }
            bar.set_message(format!("{mode}: {check}…"));
        }
    }

    fn check_finished(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reps_and_ci_target_parse() {
        assert_eq!(parse_reps("auto").unwrap(), RepsChoice::Auto);
        assert_eq!(parse_reps("7").unwrap(), RepsChoice::Fixed(7));
        assert!(parse_reps("0").is_err());
        assert!(parse_reps("-3").is_err());
        assert_eq!(parse_target_ci("0.5").unwrap(), 0.5);
        assert!(parse_target_ci("0").is_err() && parse_target_ci("x").is_err());
    }

    #[test]
    fn outputs_are_checked_before_anything_runs() {
        assert!(check_output_file("--json", Path::new("/nonexistent-dir-7f/out.json")).is_err());
        assert!(check_output_file("--json", Path::new("/tmp")).is_err());
        assert!(check_output_file("--json", Path::new("out.json")).is_ok());
        assert!(check_output_dir(Path::new("/etc/hostname")).is_err());
        assert!(check_output_dir(Path::new("/tmp/nslat-html-new")).is_ok());
    }

    #[test]
    fn both_placements_get_their_own_files() {
        let p = Path::new("/tmp/out.json");
        assert_eq!(
            placement_path(p, "split", true),
            Path::new("/tmp/out.split.json")
        );
        assert_eq!(placement_path(p, "same", false), p);
    }
}
