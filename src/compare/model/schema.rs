//! The report of `nslat compare` as `--json` writes it and every exporter reads it: the schema
//! types only (their JSON keys are pinned by the snapshot tests). Nothing here measures or
//! computes a figure; [`super::assemble`] fills them in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::host_facts;

/// The mode every other mode is compared with.
pub const BASELINE: &str = "host";

/// The A/A control of the interleaved schedule: a second connection from the host's own
/// namespace, measured like a mode. Its ratio to the host must come out 1 within its interval.
pub const AA_CONTROL: &str = "host (A/A)";

/// The label of the host measured on a node of the other state than the baseline's
/// ([`crate::lab::cells::NodeState`]): "host (NAT table)" beside a bare baseline, "host (no NAT
/// table)" beside a NAT one. Shown beside the baseline so both answers are on one screen.
pub fn host_other_label(baseline: crate::lab::cells::NodeState) -> &'static str {
    match baseline {
        crate::lab::cells::NodeState::Bare => "host (NAT table)",
        crate::lab::cells::NodeState::Nat => "host (no NAT table)",
    }
}

/// Rows that are the host itself (the baseline, its A/A control, the host on a node of the other
/// state): reference rows, never a container setup to recommend.
pub fn is_host_row(mode: &str) -> bool {
    mode == BASELINE || mode == AA_CONTROL || mode.starts_with("host (")
}

/// What the baseline is: the host's own namespace and its netfilter state. The same whatever
/// else is measured: every mode has its own node ([`crate::lab::cells`]), so nothing a mode
/// loads reaches the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "BaselineRepr")]
pub struct Baseline {
    /// The row the others are compared with (`host`).
    pub mode: String,
    /// The namespace the baseline ran in (the first replicate's node in the lab; the machine's
    /// or the target's namespace with `--remote`/`--target`). `None` in older reports.
    pub namespace: Option<String>,
    /// A NAT table is loaded there (`None`: not known).
    pub nat_table: Option<bool>,
    /// Conntrack runs for its packets (`None`: not known).
    pub conntrack: Option<bool>,
    /// How it was set: `bare` or `nat` (chosen with `--baseline`), or `as found` (read, never
    /// changed: `--remote`, `--target`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
}

impl Baseline {
    /// The lab's baseline: `state` chosen by the user.
    pub fn chosen(state: crate::lab::cells::NodeState, namespace: Option<String>) -> Baseline {
        Baseline {
            mode: BASELINE.to_string(),
            namespace,
            nat_table: Some(state.nat_table()),
            conntrack: Some(state.nat_table()),
            state: Some(state.name().to_string()),
        }
    }

    /// A baseline as found (read, never changed): `--remote`'s machine, `--target`'s host.
    /// `netns`: the namespace (`None`: this process's).
    pub fn as_found(netns: Option<&std::path::Path>) -> Baseline {
        let state = crate::netns::run_in(netns, || {
            Ok::<_, crate::netns::NetnsError>(crate::target::nat::read_ruleset())
        })
        .ok()
        .and_then(|r| r.ok())
        .map(|r| crate::target::nat::netfilter_state(&r));
        Baseline {
            mode: BASELINE.to_string(),
            namespace: Some(
                netns
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|| "this process's".to_string()),
            ),
            nat_table: state.map(|s| s.nat_table),
            conntrack: state.map(|s| s.conntrack),
            state: Some("as found".to_string()),
        }
    }

    /// A baseline of unknown state (the `runs` schedule's shared node, old reports).
    pub fn unknown() -> Baseline {
        Baseline {
            mode: BASELINE.to_string(),
            namespace: None,
            nat_table: None,
            conntrack: None,
            state: None,
        }
    }

    /// One phrase for a header: "host (bare: no NAT table, conntrack off)".
    pub fn describe(&self) -> String {
        let what = match (self.nat_table, self.conntrack) {
            (Some(true), _) => "NAT table loaded, conntrack on".to_string(),
            (Some(false), Some(true)) => "no NAT table, conntrack on".to_string(),
            (Some(false), _) => "no NAT table, conntrack off".to_string(),
            (None, _) => "netfilter state not known".to_string(),
        };
        match &self.state {
            Some(s) => format!("{} ({s}: {what})", self.mode),
            None => format!("{} ({what})", self.mode),
        }
    }
}

/// Reports before the baseline object wrote its mode's name alone.
#[derive(Deserialize)]
#[serde(untagged)]
enum BaselineRepr {
    Name(String),
    Full {
        mode: String,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        nat_table: Option<bool>,
        #[serde(default)]
        conntrack: Option<bool>,
        #[serde(default)]
        state: Option<String>,
    },
}

impl From<BaselineRepr> for Baseline {
    fn from(r: BaselineRepr) -> Baseline {
        match r {
            BaselineRepr::Name(mode) => Baseline {
                mode,
                ..Baseline::unknown()
            },
            BaselineRepr::Full {
                mode,
                namespace,
                nat_table,
                conntrack,
                state,
            } => Baseline {
                mode,
                namespace,
                nat_table,
                conntrack,
                state,
            },
        }
    }
}

/// How a comparison was scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    /// Every mode at once in interleaved blocks, paired by round.
    Interleaved,
    /// One run per mode after another.
    #[default]
    Runs,
}

impl ScheduleKind {
    pub fn name(self) -> &'static str {
        match self {
            ScheduleKind::Interleaved => "interleaved",
            ScheduleKind::Runs => "runs",
        }
    }
}

/// The A/A control's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AaControl {
    pub ratio: f64,
    pub ratio_ci95: Option<[f64; 2]>,
    /// The interval contains 1.
    pub within_ci: bool,
    /// The ratio is within [`AA_TOLERANCE`] of 1: the two connections differ by less than the
    /// default precision target, even where the interval (which measures this run's noise, not
    /// what differs between two connections) excludes 1.
    #[serde(default)]
    pub within_tolerance: bool,
}

/// The whole result of `nslat compare` (what `--json` writes and every exporter reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareReport {
    /// netperf's test name, e.g. `TCP_RR`.
    pub test: String,
    pub request_size: usize,
    pub response_size: usize,
    /// Repetitions per mode.
    pub reps: usize,
    /// Measured seconds per repetition.
    pub duration_s: f64,
    /// `same` (client and server on one CPU) or `split` (different CPUs).
    pub cpu_placement: String,
    /// `uname -r`.
    pub kernel: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host_name: Option<String>,
    /// The row the others are compared with (`host`) and its netfilter state.
    pub baseline: Baseline,
    /// One sentence per mode, e.g. "bridge adds 1.5 µs (+29%) per round trip, significant".
    pub verdict: Vec<String>,
    pub warnings: Vec<Warning>,
    pub modes: Vec<ModeResult>,
    #[serde(default)]
    pub explain: Option<Explain>,
    /// Feature checks per mode (`nslat check`'s matrix), when run.
    #[serde(default)]
    pub checks: Option<crate::check::ChecksOutcome>,
    /// `interleaved` or `runs`.
    #[serde(default)]
    pub schedule: ScheduleKind,
    /// Interleaved: transactions per block (B); `None` for time-sliced blocks or runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block_transactions: Option<u64>,
    /// Interleaved: how the intervals were computed, e.g. "batch means (40 batches)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_method: Option<String>,
    /// Interleaved: the A/A control (a second host connection against the host).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aa_control: Option<AaControl>,
    /// Why these figures are not clean (a CPU shared with another measurement, load from other
    /// processes on the pinned CPUs, packet counts that should be whole and are not). Empty: clean.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub flags: Vec<String>,
    /// Which node measured which peer (`--node`/`--peer`): what `nslat report merge` groups by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pair: Option<PairLabel>,
    /// When, how and on what the run was made (the HTML page's header); `None` in reports
    /// written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RunContext>,
    /// The recommendation ([`crate::compare::recommend::lines`] of this report, computed once
    /// when the comparison finishes the report); every exporter renders this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendation: Vec<String>,
}

/// When, how and on what a comparison ran.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunContext {
    /// Start of the run, UTC, e.g. `2026-12-01T20:21:25Z`.
    pub started_utc: String,
    /// The command line as given (argv, program name first).
    pub command_line: Vec<String>,
    /// Online CPUs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_count: Option<usize>,
    /// `model name` of /proc/cpuinfo's first CPU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_model: Option<String>,
}

impl RunContext {
    /// The context of a run starting now with this command line (reads the clock and
    /// /proc/cpuinfo).
    pub fn now(command_line: Vec<String>) -> Self {
        RunContext {
            started_utc: host_facts::utc_now(),
            command_line,
            cpu_count: host_facts::cpu_count(),
            cpu_model: host_facts::this_cpu_model(),
        }
    }

    /// The command line as a shell would take it back (arguments with spaces or quotes in
    /// single quotes).
    pub fn command(&self) -> String {
        host_facts::shell_command(&self.command_line)
    }
}

/// The node pair a report was measured across, as the user named it (`compare --node --peer
/// --peer-network`); a fleet report (`nslat report merge`) has one row per pair and path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairLabel {
    /// The machine that ran `nslat compare` (the client side).
    pub node: String,
    /// The machine that ran `nslat serve`.
    pub peer: String,
    /// Which of the peer's networks was measured against.
    pub peer_network: PeerNetwork,
}

/// The network the peer's `nslat serve` listens on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerNetwork {
    /// The peer machine's own namespace (a hostNetwork pod, or the machine itself).
    Host,
    /// A pod (container) on the peer machine.
    Pod,
}

impl PeerNetwork {
    pub fn name(self) -> &'static str {
        match self {
            PeerNetwork::Host => "host",
            PeerNetwork::Pod => "pod",
        }
    }
}

impl std::fmt::Display for PeerNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PeerNetwork {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "host" => Ok(PeerNetwork::Host),
            "pod" => Ok(PeerNetwork::Pod),
            _ => Err(format!("'{s}' is not a peer network: use host or pod")),
        }
    }
}

/// Something that limits the conclusions, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub message: String,
    pub remedy: String,
}

/// A mean with the half-width of its 95 % confidence interval (`None`: fewer than 2 reps).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub mean: f64,
    pub ci95: Option<f64>,
}

/// Latency of a mode in µs: mean across repetitions with its CI; percentiles of all
/// transactions of all repetitions (merged histograms; else the mean of the reps' percentiles).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LatencyEstimate {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub ci95: Option<f64>,
}

/// A mode against the baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VsHost {
    /// Mean latency minus the baseline's, µs.
    pub delta_us: f64,
    /// (ratio - 1) * 100.
    pub delta_pct: f64,
    /// Mean latency / the baseline's.
    pub ratio: f64,
    /// Runs: Welch two-sided p-value over the repetitions' mean latencies (`None`: < 2 reps).
    /// Interleaved: t-test of the batch ratios against 1.
    pub p_value: Option<f64>,
    pub significant: bool,
    /// Interleaved: the ratio's 95% interval (paired by round, batch means).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio_ci95: Option<[f64; 2]>,
    /// Interleaved: the 95% interval of `delta_us`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_us_ci95: Option<[f64; 2]>,
    /// Interleaved: rounds the pairing used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// Interleaved: independent replicates of the path and the baseline behind the interval
    /// (each its own namespaces, links, connection and server thread; 1: one instance, batch
    /// means over its rounds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicates: Option<usize>,
    /// Interleaved: epochs (fresh processes, one after another) the rounds were measured in,
    /// which are the interval's time batches (absent: one process, in one go).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub epochs: Option<usize>,
}

/// Probe counters per transaction, averaged over repetitions (`None`: not measured).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeFigures {
    pub backlog_pkts_per_tx: Option<f64>,
    pub net_rx_per_tx: Option<f64>,
    pub cpu_us_per_tx: Option<f64>,
    pub tracepoints_per_tx: BTreeMap<String, f64>,
    /// Share of the pinned CPUs' time (0..1) that other processes took during the runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_cpu_share: Option<f64>,
}

/// One repetition's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RepFigures {
    pub transactions: u64,
    pub trans_per_s: f64,
    pub latency_mean_us: f64,
    pub latency_p50_us: f64,
    pub latency_p99_us: f64,
    pub backlog_pkts_per_tx: Option<f64>,
    pub net_rx_per_tx: Option<f64>,
    pub cpu_us_per_tx: Option<f64>,
    /// Share of the pinned CPUs' time (0..1) that other processes took during this repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_cpu_share: Option<f64>,
}

/// Everything about one mode.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModeResult {
    pub mode: String,
    pub available: bool,
    /// Why the mode was not measured (when `available` is false).
    pub reason: Option<String>,
    /// `None` when not available.
    pub trans_per_s: Option<Estimate>,
    pub latency_us: Option<LatencyEstimate>,
    /// `None` for the baseline itself, or without a baseline.
    pub vs_host: Option<VsHost>,
    pub probes: ProbeFigures,
    pub reps: Vec<RepFigures>,
    /// (latency µs, fraction of transactions ≤ it), downsampled, for the CDF plot.
    pub cdf: Vec<(f64, f64)>,
    /// (quantile, latency µs): the merged histogram's percentile distribution (hdrhistogram's
    /// quantile iterator, [`stats::PERCENTILE_TICKS`] per halving of the distance to 100%), for
    /// the percentile plot. Empty in reports written before it was kept (the plot then uses
    /// `cdf`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub percentiles: Vec<(f64, f64)>,
    /// `--target`: the container this row measured (its `mode` is the target's NAME).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<crate::target::TargetReport>,
    /// `--waterfall`: where this path's round trip goes, stage by stage (src/waterfall).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waterfall: Option<Box<crate::waterfall::Waterfall>>,
    /// The lab compare's IP family of this path: 4 or 6 (`--family`); absent in reports from
    /// before it, and for paths outside the lab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<u8>,
    /// What the path's tracepoint run put on the wire: the data socket's ends and the IP
    /// packets per transaction of each family in the client's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wire: Option<Wire>,
}

/// The family a path really used, seen from its client's namespace (the tracepoint run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wire {
    /// The data socket's local and peer address.
    pub socket: Option<crate::bench::DataSocket>,
    /// 4 or 6: the data socket's family.
    pub socket_family: Option<u8>,
    /// IP packets (received + sent) per transaction in the client's namespace, per family
    /// (`/proc/net/snmp`, `/proc/net/snmp6`).
    pub packets_per_tx: Option<crate::probe::snmp::PacketsPerTx>,
}

/// The label of `mode`'s row of family `family` in a lab compare: `bridge`, `bridge (IPv6)`.
pub fn family_label(mode: &str, family: u8) -> String {
    if family == 6 {
        format!("{mode}{IPV6_SUFFIX}")
    } else {
        mode.to_string()
    }
}

/// What an IPv6 row's label ends with.
pub const IPV6_SUFFIX: &str = " (IPv6)";

/// The mode a row label names, without its family: `bridge (IPv6)` -> `bridge`.
pub fn base_mode(label: &str) -> &str {
    label.strip_suffix(IPV6_SUFFIX).unwrap_or(label)
}

/// `--explain`: the target mode's gap to the baseline split into the parts that make it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explain {
    /// The mode being explained, e.g. `bridge`.
    pub target: String,
    /// What the baseline is, e.g. "host, no NAT table": every row is against it.
    #[serde(default = "default_explain_baseline")]
    pub baseline: String,
    pub baseline_us: f64,
    /// Half-width of the baseline's 95% interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_ci95: Option<f64>,
    /// Interleaved rounds the variants were measured in (`None`: not interleaved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rounds: Option<usize>,
    /// How the intervals were computed (e.g. "batch means (20 batches of 12 rounds)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci_method: Option<String>,
    /// Latency of the last (complete) variant.
    pub target_us: f64,
    /// target_us - baseline_us.
    pub gap_us: f64,
    /// Cumulative variants in order, each adding one part.
    pub parts: Vec<ExplainPart>,
    pub notes: Vec<String>,
    /// `--explain --waterfall`: each step's ablation delta beside its traced stage sums.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waterfall: Option<crate::waterfall::ExplainWaterfall>,
}

/// One variant of the ablation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainPart {
    /// What this variant adds, e.g. "veth pair (ptp)", "+ bridge", "+ conntrack (NAT table)".
    pub name: String,
    pub latency_us: f64,
    pub ci95: Option<f64>,
    /// Latency minus the previous variant's (the first: minus the baseline).
    pub adds_us: f64,
    /// 95% interval of `adds_us`, paired round by round with the previous variant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adds_ci95: Option<(f64, f64)>,
    /// Latency over the baseline's, paired round by round, with its 95% interval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<crate::measure::Ci>,
    /// adds_us / gap_us (0 when the gap is 0).
    pub share: f64,
}

fn default_explain_baseline() -> String {
    BASELINE.to_string()
}
