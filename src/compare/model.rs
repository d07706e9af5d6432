//! The report data model of `nslat compare`, and the pure functions that turn per-repetition
//! measurements into per-mode statistics, warnings and verdict sentences.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::bench::{RunResult, TestKind};
use crate::host_facts;
use crate::probe::ProbeDelta;
use crate::stats::{self, MeanCi};

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

/// With the interleaved schedule, a ratio whose 95% CI half-width exceeds this (1 point) gets
/// a warning.
pub const WIDE_RATIO_CI: f64 = 0.01;

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

/// How far from 1 the A/A ratio may be before the figures are not trustworthy (half a point:
/// the default `--target-ci`).
pub const AA_TOLERANCE: f64 = 0.005;

/// A mode whose latency CI half-width exceeds this fraction of its mean gets a warning.
pub const WIDE_CI_REL: f64 = 0.02;

/// A mode whose runs left more than this share of the pinned CPUs' time to other processes is
/// flagged: its figures include someone else's work.
pub const FOREIGN_LOAD_FLAG: f64 = 0.05;

/// A per-transaction packet count further than this from a whole number is flagged (in a
/// request/response test every transaction moves the same packets; a fraction means other
/// traffic was counted).
pub const WHOLE_COUNT_TOLERANCE: f64 = 0.02;

/// Points kept of each mode's latency CDF.
pub const CDF_POINTS: usize = 120;

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
    /// The recommendation as the report renders it ([`crate::report::recommend::lines`] of
    /// this report, written when the report is finished), for readers of the JSON; the
    /// exporters build it from the data again.
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

/// One cumulative variant measured in the same interleaved rounds as the baseline, in µs.
#[derive(Debug, Clone)]
pub struct ExplainStep {
    /// What the variant adds.
    pub name: String,
    /// Its latency with the batch-means interval.
    pub latency: crate::measure::Ci,
    /// Against the baseline (for the ratio).
    pub vs_baseline: Option<crate::measure::Paired>,
    /// Against the previous step (the first: the baseline), for what this step adds.
    pub vs_previous: Option<crate::measure::Paired>,
}

/// One measured repetition of a mode: the engine's result and the probe delta around it.
#[derive(Debug, Clone)]
pub struct RepInput {
    pub run: RunResult,
    /// Counters from before the warm-up to after the run (divided by warm-up + measured
    /// transactions); `None` when not probed.
    pub probes: Option<ProbeDelta>,
}

/// All repetitions of one mode, or why it could not be measured.
#[derive(Debug, Clone)]
pub struct ModeInput {
    pub mode: String,
    /// `Some(reason)`: the mode is unavailable here (e.g. "ipvlan: kernel module missing").
    pub unavailable: Option<String>,
    pub reps: Vec<RepInput>,
    /// A separate run with tracepoint counters open: counting costs nanoseconds per event and
    /// paths with more events would pay more, so the timed reps run without them and
    /// `tracepoints_per_tx` comes from this run (from the reps when it is absent).
    pub trace_run: Option<RepInput>,
    /// Interleaved schedule: the block-mean statistics (then `reps` holds one aggregate run,
    /// and the probe counters come from `trace_run`).
    pub paired: Option<PairedInput>,
}

/// One path's figures from the interleaved schedule, in µs.
#[derive(Debug, Clone)]
pub struct PairedInput {
    /// Mean of the path's block means with its batch-means interval.
    pub mean_us: crate::measure::Ci,
    /// Against the baseline's blocks in the same rounds (`None` for the baseline).
    pub vs_baseline: Option<crate::measure::Paired>,
}

/// The run's settings, copied into the report.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub test: TestKind,
    pub request_size: usize,
    pub response_size: usize,
    pub reps: usize,
    pub duration_s: f64,
    /// `same` or `split`.
    pub cpu_placement: String,
    pub kernel: String,
    pub host_name: Option<String>,
    pub schedule: ScheduleKind,
    pub block_transactions: Option<u64>,
    pub ci_method: Option<String>,
    pub baseline: Baseline,
}

fn rep_latency(run: &RunResult) -> f64 {
    if run.latency_us.mean > 0.0 {
        run.latency_us.mean
    } else {
        run.latency_us.rate_mean
    }
}

/// The repetitions' mean latencies (µs) of a mode: the sample the t-test compares.
pub fn rep_latencies(input: &ModeInput) -> Vec<f64> {
    input.reps.iter().map(|r| rep_latency(&r.run)).collect()
}

fn merged_histogram(reps: &[RepInput]) -> Option<Histogram<u64>> {
    let mut it = reps.iter().map(|r| r.run.histogram.as_ref());
    let mut merged = it.next()??.clone();
    for h in it {
        merged.add(h?).ok()?;
    }
    Some(merged)
}

fn mean_of(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    stats::mean_sd(&v).map(|(m, _)| m)
}

fn estimate(c: MeanCi) -> Estimate {
    Estimate {
        mean: c.mean,
        ci95: c.ci95,
    }
}

/// The share of the pinned CPUs' time other processes took during a repetition: CPU time
/// (/proc/stat) minus the measuring threads' own (client and server loops, per transaction times
/// all transactions, warm-up included as the probes are) and interrupts. Request/response tests only.
fn foreign_share(rep: &RepInput) -> Option<f64> {
    let probes = rep.probes.as_ref()?;
    if !rep.run.test.is_request_response() {
        return None;
    }
    let tx = (rep.run.transactions + rep.run.warmup_transactions) as f64;
    let own_us = (rep.run.cpu.client_cpu + rep.run.cpu.server_cpu) * tx;
    probes.foreign_share(own_us)
}

/// Why a report's figures are not clean: load from other processes above
/// [`FOREIGN_LOAD_FLAG`], and (request/response tests) packet counts per transaction that are
/// not whole numbers.
pub fn flags(report: &CompareReport) -> Vec<String> {
    let mut out = Vec::new();
    let measured: Vec<&ModeResult> = report.modes.iter().filter(|m| m.available).collect();
    let loaded: Vec<String> = measured
        .iter()
        .filter_map(|m| {
            let share = m.probes.foreign_cpu_share?;
            (share > FOREIGN_LOAD_FLAG).then(|| format!("{} {:.0}%", m.mode, share * 100.0))
        })
        .collect();
    if !loaded.is_empty() {
        out.push(format!(
            "other processes used the pinned CPUs during the runs ({}): the latencies include their work; measure on an idle machine or move the load off these CPUs",
            loaded.join(", ")
        ));
    }
    let rr = report.test == TestKind::TcpRr.name() || report.test == TestKind::UdpRr.name();
    if rr {
        let fractional: Vec<String> = measured
            .iter()
            .flat_map(|m| {
                [
                    ("backlog packets", m.probes.backlog_pkts_per_tx),
                    ("NET_RX softirqs", m.probes.net_rx_per_tx),
                ]
                .into_iter()
                .filter_map(move |(what, v)| {
                    let v = v?;
                    ((v - v.round()).abs() > WHOLE_COUNT_TOLERANCE)
                        .then(|| format!("{} {v:.2} {what}", m.mode))
                })
            })
            .collect();
        if !fractional.is_empty() {
            out.push(format!(
                "per-transaction counts that should be whole numbers are not ({}): other \
                 traffic on these CPUs was counted with the test's",
                fractional.join(", ")
            ));
        }
    }
    out
}

/// Builds one mode's result; `baseline` is the baseline's per-rep latencies (µs), if any and if
/// this is not the baseline itself.
pub fn build_mode(input: &ModeInput, baseline: Option<&[f64]>) -> ModeResult {
    let unavailable = |reason: String| ModeResult {
        mode: input.mode.clone(),
        available: false,
        reason: Some(reason),
        trans_per_s: None,
        latency_us: None,
        vs_host: None,
        probes: ProbeFigures::default(),
        reps: Vec::new(),
        cdf: Vec::new(),
        percentiles: Vec::new(),
        target: None,
        waterfall: None,
    };
    if let Some(reason) = &input.unavailable {
        return unavailable(reason.clone());
    }
    if input.reps.is_empty() {
        return unavailable("no repetition completed".into());
    }
    let lat = rep_latencies(input);
    let tps: Vec<f64> = input.reps.iter().map(|r| r.run.trans_per_s).collect();
    let mut lat_ci = stats::mean_ci95(&lat).expect("non-empty");
    let tps_ci = stats::mean_ci95(&tps).expect("non-empty");
    if let Some(p) = &input.paired {
        lat_ci.mean = p.mean_us.estimate;
        lat_ci.ci95 = p.mean_us.half_width();
    }

    let merged = merged_histogram(&input.reps);
    let (p50, p99, p99_9, cdf, percentiles) = match &merged {
        Some(h) if !h.is_empty() => {
            let s = stats::summarize_ns(h);
            (
                s.p50,
                s.p99,
                s.p99_9,
                stats::cdf_points_us(h, CDF_POINTS),
                stats::percentile_points_us(h, stats::PERCENTILE_TICKS),
            )
        }
        _ => {
            let m = |f: fn(&RunResult) -> f64| {
                mean_of(input.reps.iter().map(|r| f(&r.run))).unwrap_or(0.0)
            };
            (
                m(|r| r.latency_us.p50),
                m(|r| r.latency_us.p99),
                m(|r| r.latency_us.p99_9),
                Vec::new(),
                Vec::new(),
            )
        }
    };

    let per_tx: Vec<Option<crate::probe::PerTx>> = input
        .reps
        .iter()
        .map(|r| {
            r.probes
                .as_ref()
                .map(|p| p.per_tx(r.run.transactions + r.run.warmup_transactions))
        })
        .collect();
    let mut tracepoints_per_tx = BTreeMap::new();
    let traced: Option<crate::probe::PerTx> = input.trace_run.as_ref().and_then(|r| {
        r.probes
            .as_ref()
            .map(|p| p.per_tx(r.run.transactions + r.run.warmup_transactions))
    });
    // The /proc counters come from the timed reps; the interleaved schedule reads none inside
    // its blocks, so there they come from the short per-mode run.
    let counted: Vec<&crate::probe::PerTx> = if per_tx.iter().flatten().next().is_some() {
        per_tx.iter().flatten().collect()
    } else {
        traced.iter().collect()
    };
    let avg = |f: fn(&crate::probe::PerTx) -> f64| mean_of(counted.iter().map(|p| f(p)));
    let probed: Vec<&crate::probe::PerTx> = match &traced {
        Some(t) => vec![t],
        None => per_tx.iter().flatten().collect(),
    };
    if let Some(first) = probed.first() {
        for name in first.tracepoints.keys() {
            if let Some(m) = mean_of(
                probed
                    .iter()
                    .filter_map(|p| p.tracepoints.get(name).copied()),
            ) {
                tracepoints_per_tx.insert(name.clone(), m);
            }
        }
    }
    let foreign: Vec<Option<f64>> = input.reps.iter().map(foreign_share).collect();
    let probes = ProbeFigures {
        backlog_pkts_per_tx: avg(|p| p.backlog_pkts),
        net_rx_per_tx: avg(|p| p.net_rx),
        cpu_us_per_tx: avg(|p| p.cpu_us),
        tracepoints_per_tx,
        foreign_cpu_share: mean_of(foreign.iter().flatten().copied()),
    };

    let reps = input
        .reps
        .iter()
        .zip(&per_tx)
        .zip(&foreign)
        .map(|((r, p), foreign)| RepFigures {
            transactions: r.run.transactions,
            trans_per_s: r.run.trans_per_s,
            latency_mean_us: rep_latency(&r.run),
            latency_p50_us: r.run.latency_us.p50,
            latency_p99_us: r.run.latency_us.p99,
            backlog_pkts_per_tx: p.as_ref().map(|p| p.backlog_pkts),
            net_rx_per_tx: p.as_ref().map(|p| p.net_rx),
            cpu_us_per_tx: p.as_ref().map(|p| p.cpu_us),
            foreign_cpu_share: *foreign,
        })
        .collect();

    let pair = |c: crate::measure::Ci| c.ci95.map(|(lo, hi)| [lo, hi]);
    let vs_host = match input.paired.as_ref() {
        Some(p) => p.vs_baseline.map(|v| VsHost {
            delta_us: v.delta.estimate,
            delta_pct: (v.ratio.estimate - 1.0) * 100.0,
            ratio: v.ratio.estimate,
            p_value: v.p_value,
            significant: v.significant(),
            ratio_ci95: pair(v.ratio),
            delta_us_ci95: pair(v.delta),
            rounds: Some(v.rounds),
            replicates: Some(v.replicates),
        }),
        None => baseline
            .and_then(|b| stats::vs_baseline(&lat, b))
            .map(|v| VsHost {
                delta_us: v.delta,
                delta_pct: (v.ratio - 1.0) * 100.0,
                ratio: v.ratio,
                p_value: v.p_value,
                significant: v.significant,
                ratio_ci95: None,
                delta_us_ci95: None,
                rounds: None,
                replicates: None,
            }),
    };

    ModeResult {
        mode: input.mode.clone(),
        available: true,
        reason: None,
        trans_per_s: Some(estimate(tps_ci)),
        latency_us: Some(LatencyEstimate {
            mean: lat_ci.mean,
            p50,
            p99,
            p99_9,
            ci95: lat_ci.ci95,
        }),
        vs_host,
        probes,
        reps,
        cdf,
        percentiles,
        target: None,
        waterfall: None,
    }
}

/// Builds the report: every mode against [`BASELINE`] (when measured), warnings, verdict.
pub fn build_report(meta: &ReportMeta, inputs: &[ModeInput]) -> CompareReport {
    let baseline = inputs
        .iter()
        .find(|m| m.mode == BASELINE && m.unavailable.is_none() && !m.reps.is_empty())
        .map(rep_latencies);
    let modes: Vec<ModeResult> = inputs
        .iter()
        .map(|m| {
            let b = if m.mode == BASELINE {
                None
            } else {
                baseline.as_deref()
            };
            build_mode(m, b)
        })
        .collect();
    let mut notes: Vec<String> = inputs
        .iter()
        .flat_map(|m| m.reps.iter())
        .filter_map(|r| r.probes.as_ref())
        .flat_map(|p| p.notes.iter().cloned())
        .collect();
    notes.sort();
    notes.dedup();
    let mut report = CompareReport {
        test: meta.test.name().to_string(),
        request_size: meta.request_size,
        response_size: meta.response_size,
        reps: meta.reps,
        duration_s: meta.duration_s,
        cpu_placement: meta.cpu_placement.clone(),
        kernel: meta.kernel.clone(),
        host_name: meta.host_name.clone(),
        baseline: meta.baseline.clone(),
        verdict: Vec::new(),
        warnings: Vec::new(),
        modes,
        explain: None,
        checks: None,
        schedule: meta.schedule,
        block_transactions: meta.block_transactions,
        ci_method: meta.ci_method.clone(),
        aa_control: None,
        flags: Vec::new(),
        pair: None,
        context: None,
        recommendation: Vec::new(),
    };
    report.aa_control = report
        .modes
        .iter()
        .find(|m| m.mode == AA_CONTROL)
        .and_then(|m| m.vs_host)
        .map(|v| AaControl {
            ratio: v.ratio,
            ratio_ci95: v.ratio_ci95,
            within_ci: v.ratio_ci95.is_some_and(|[lo, hi]| lo <= 1.0 && 1.0 <= hi),
            within_tolerance: (v.ratio - 1.0).abs() <= AA_TOLERANCE,
        });
    report.flags = flags(&report);
    report.warnings = warnings(&report);
    report.warnings.extend(notes.into_iter().map(|n| Warning {
        message: n,
        remedy: "run as root on a kernel with perf events and tracefs for tracepoint counts".into(),
    }));
    report.verdict = verdict(&report);
    report
}

/// The warnings the numbers call for: too few repetitions, intervals too wide to conclude, and
/// split CPU placement (the cross-CPU wake-up dominates every path).
pub fn warnings(report: &CompareReport) -> Vec<Warning> {
    let mut out = Vec::new();
    let measured: Vec<&ModeResult> = report.modes.iter().filter(|m| m.available).collect();
    if report.schedule == ScheduleKind::Interleaved {
        interleaved_warnings(report, &measured, &mut out);
    } else if report.reps < 2 || measured.iter().any(|m| m.reps.len() < 2) {
        out.push(Warning {
            message: "fewer than 2 repetitions: no confidence interval and no significance test"
                .into(),
            remedy: "use --reps 3 or more".into(),
        });
    }
    // One line for every mode whose interval is too wide, with one remedy.
    // (The interleaved schedule's figures are the paired ratios, whose CIs the target governs.)
    let wide: Vec<String> = measured
        .iter()
        .filter(|_| report.schedule == ScheduleKind::Runs)
        .filter_map(|m| {
            let l = m.latency_us?;
            let h = l.ci95?;
            let rel = if l.mean != 0.0 { h / l.mean } else { 0.0 };
            (rel > WIDE_CI_REL).then(|| format!("{} ±{:.1}%", m.mode, rel * 100.0))
        })
        .collect();
    if !wide.is_empty() {
        out.push(Warning {
            message: format!(
                "95% CIs of the mean latency wider than {:.0}%: {}; differences smaller than \
                 that cannot be told apart",
                WIDE_CI_REL * 100.0,
                wide.join(", ")
            ),
            remedy: "raise --reps or -l, and keep the machine otherwise idle".into(),
        });
    }
    if report.cpu_placement == "split" {
        let host = report
            .modes
            .iter()
            .find(|m| m.mode == report.baseline.mode)
            .and_then(|m| m.latency_us)
            .map(|l| format!(" (host: {:.1} µs)", l.mean))
            .unwrap_or_default();
        out.push(Warning {
            message: format!(
                "client and server run on different CPUs: the cross-CPU wake-up dominates every \
                 mode's latency{host} and hides the network path's own cost"
            ),
            remedy: "use --cpu same to measure the network path itself".into(),
        });
    }
    out
}

/// The interleaved schedule's warnings: ratios too wide to conclude, an A/A control that does
/// not come out 1.
fn interleaved_warnings(report: &CompareReport, measured: &[&ModeResult], out: &mut Vec<Warning>) {
    for m in measured {
        let Some(v) = m.vs_host else { continue };
        match v.ratio_ci95 {
            None => out.push(Warning {
                message: format!(
                    "{}: too few rounds for a confidence interval of its ratio",
                    m.mode
                ),
                remedy: "raise --reps or --budget".into(),
            }),
            Some([lo, hi]) if (hi - lo) / 2.0 > WIDE_RATIO_CI => out.push(Warning {
                message: format!(
                    "{}: ratio {:.3} ± {:.1} points (95% CI): too wide to conclude on differences \
                     smaller than that",
                    m.mode,
                    v.ratio,
                    (hi - lo) / 2.0 * 100.0
                ),
                remedy: "raise --budget, and keep the machine otherwise idle".into(),
            }),
            Some(_) => {}
        }
    }
    if let Some(aa) = report.aa_control.filter(|a| !a.within_ci) {
        let ci = aa
            .ratio_ci95
            .map(|[lo, hi]| format!(" [{lo:.4}, {hi:.4}]"))
            .unwrap_or_default();
        out.push(if aa.within_tolerance {
            Warning {
                message: format!(
                    "the A/A control (a second connection from the host's namespace) came out \
                     {:.4}{ci}: two connections of one path differ by {:.2}%, within the \
                     {:.1}-point tolerance; differences between modes smaller than that are not \
                     to be read (the intervals measure this run's noise, not what differs \
                     between connections)",
                    aa.ratio,
                    (aa.ratio - 1.0).abs() * 100.0,
                    AA_TOLERANCE * 100.0
                ),
                remedy: "repeat the comparison to see differences of that size come and go".into(),
            }
        } else {
            Warning {
                message: format!(
                    "the A/A control (a second connection from the host's namespace) came out \
                     {:.4}{ci}, not 1: the measurement is not trustworthy on this machine now; \
                     something treats two identical connections differently (other load in step \
                     with the blocks, CPU frequency changes, interrupts of one socket's queue on \
                     a busy CPU)",
                    aa.ratio
                ),
                remedy: "rerun on an otherwise idle machine, or with another --block-time".into(),
            }
        });
    }
}

/// One sentence per non-baseline mode, e.g. "bridge adds 1.5 µs (+29%) per round trip,
/// significant" or "macvlan: no significant cost (-0.2 µs, -4%, p=0.31)".
pub fn verdict(report: &CompareReport) -> Vec<String> {
    let unit = if report.test == TestKind::TcpCrr.name() {
        "per transaction"
    } else {
        "per round trip"
    };
    let has_baseline = report
        .modes
        .iter()
        .any(|m| m.mode == report.baseline.mode && m.available);
    let mut out = Vec::new();
    if !has_baseline {
        out.push(format!(
            "no {} baseline was measured: nothing to compare with",
            report.baseline.mode
        ));
    }
    for m in report
        .modes
        .iter()
        .filter(|m| m.mode != report.baseline.mode)
    {
        if !m.available {
            out.push(format!(
                "{}: not measured ({})",
                m.mode,
                m.reason.as_deref().unwrap_or("unavailable")
            ));
            continue;
        }
        let Some(v) = m.vs_host else { continue };
        if let Some([lo, hi]) = v.ratio_ci95 {
            let ci = format!(
                "95% CI {:+.1}..{:+.1}%",
                (lo - 1.0) * 100.0,
                (hi - 1.0) * 100.0
            );
            out.push(if v.significant && v.delta_us > 0.0 {
                format!(
                    "{} adds {:.2} µs ({:+.1}%, {ci}) {unit}, significant",
                    m.mode, v.delta_us, v.delta_pct
                )
            } else if v.significant {
                format!(
                    "{} saves {:.2} µs ({:+.1}%, {ci}) {unit}, significant",
                    m.mode, -v.delta_us, v.delta_pct
                )
            } else {
                format!(
                    "{}: no significant cost ({:+.2} µs, {:+.1}%, {ci})",
                    m.mode, v.delta_us, v.delta_pct
                )
            });
            continue;
        }
        let sentence = match v.p_value {
            None => format!(
                "{}: {:+.1} µs ({:+.0}%) {unit}, significance unknown (one repetition)",
                m.mode, v.delta_us, v.delta_pct
            ),
            Some(_) if v.significant && v.delta_us > 0.0 => format!(
                "{} adds {:.1} µs ({:+.0}%) {unit}, significant",
                m.mode, v.delta_us, v.delta_pct
            ),
            Some(_) if v.significant => format!(
                "{} saves {:.1} µs ({:+.0}%) {unit}, significant",
                m.mode, -v.delta_us, v.delta_pct
            ),
            Some(p) => format!(
                "{}: no significant cost ({:+.1} µs, {:+.0}%, p={:.2})",
                m.mode, v.delta_us, v.delta_pct, p
            ),
        };
        out.push(sentence);
    }
    out
}

/// Builds the `--explain` breakdown from variants measured in the same interleaved rounds as
/// the baseline `baseline` (its latency `baseline_us`): each step adds its paired delta to the
/// previous step, each ratio is to the one baseline; shares are of the paired gap of the last
/// step (the complete target mode) to the baseline.
pub fn explain_from_paired(
    target: &str,
    baseline: &str,
    baseline_us: crate::measure::Ci,
    steps: &[ExplainStep],
) -> Explain {
    let gap_us = steps
        .last()
        .map(|s| match &s.vs_baseline {
            Some(p) => p.delta.estimate,
            None => s.latency.estimate - baseline_us.estimate,
        })
        .unwrap_or(0.0);
    let mut prev = baseline_us.estimate;
    let parts = steps
        .iter()
        .map(|s| {
            let (adds_us, adds_ci95) = match &s.vs_previous {
                Some(p) => (p.delta.estimate, p.delta.ci95),
                None => (s.latency.estimate - prev, None),
            };
            prev = s.latency.estimate;
            ExplainPart {
                name: s.name.clone(),
                latency_us: s.latency.estimate,
                ci95: s.latency.half_width(),
                adds_us,
                adds_ci95,
                ratio: s.vs_baseline.map(|p| p.ratio),
                share: if gap_us != 0.0 { adds_us / gap_us } else { 0.0 },
            }
        })
        .collect();
    Explain {
        target: target.to_string(),
        baseline: baseline.to_string(),
        baseline_us: baseline_us.estimate,
        baseline_ci95: baseline_us.half_width(),
        rounds: steps
            .iter()
            .filter_map(|s| s.vs_baseline.map(|p| p.rounds))
            .max(),
        ci_method: None,
        target_us: baseline_us.estimate + gap_us,
        gap_us,
        parts,
        notes: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::{CpuUsage, LatencySummary, Placement};

    pub(crate) fn run(mean_us: f64, tps: f64, spread_ns: u64) -> RunResult {
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        let base = (mean_us * 1000.0) as u64;
        for i in 0..1000u64 {
            h.record(base - spread_ns / 2 + (i * spread_ns) / 1000)
                .unwrap();
        }
        RunResult {
            test: TestKind::TcpRr,
            transactions: 1000,
            warmup_transactions: 0,
            elapsed_s: 1.0,
            trans_per_s: tps,
            latency_us: LatencySummary {
                mean: mean_us,
                rate_mean: mean_us,
                p50: mean_us,
                p99: mean_us,
                ..Default::default()
            },
            cpu: CpuUsage::default(),
            lost: None,
            foreign_datagrams: None,
            throughput_gbps: None,
            request_size: 1,
            response_size: 1,
            clock: "CLOCK_MONOTONIC".into(),
            placement: Placement::default(),
            histogram: Some(h),
        }
    }

    fn mode(name: &str, means: &[f64], backlog: u64) -> ModeInput {
        ModeInput {
            trace_run: None,
            paired: None,
            mode: name.into(),
            unavailable: None,
            reps: means
                .iter()
                .map(|&m| RepInput {
                    run: run(m, 1e6 / m, 400),
                    probes: Some(ProbeDelta {
                        backlog_pkts: backlog * 1000,
                        net_rx: 2000,
                        ..Default::default()
                    }),
                })
                .collect(),
        }
    }

    fn meta(placement: &str) -> ReportMeta {
        ReportMeta {
            test: TestKind::TcpRr,
            request_size: 1,
            response_size: 1,
            reps: 5,
            duration_s: 2.0,
            cpu_placement: placement.into(),
            kernel: "6.18".into(),
            host_name: None,
            schedule: ScheduleKind::Runs,
            block_transactions: None,
            ci_method: None,
            baseline: Baseline::unknown(),
        }
    }

    #[test]
    fn baseline_reads_old_and_new_reports() {
        let old: Baseline = serde_json::from_str("\"host\"").unwrap();
        assert_eq!(old.mode, "host");
        assert_eq!(old.nat_table, None);
        let new = Baseline::chosen(
            crate::lab::cells::NodeState::Nat,
            Some("/run/netns/x".into()),
        );
        let json = serde_json::to_value(&new).unwrap();
        assert_eq!(json["namespace"], "/run/netns/x");
        assert_eq!(json["nat_table"], true);
        assert_eq!(json["conntrack"], true);
        let back: Baseline = serde_json::from_value(json).unwrap();
        assert_eq!(back, new);
        assert_eq!(new.describe(), "host (nat: NAT table loaded, conntrack on)");
        assert!(is_host_row("host (NAT table)") && is_host_row(AA_CONTROL));
        assert!(!is_host_row("bridge"));
    }

    #[test]
    fn run_context_text() {
        let c = RunContext {
            started_utc: String::new(),
            command_line: ["nslat", "compare", "--target", "web=docker:my web", "it's"]
                .map(String::from)
                .to_vec(),
            cpu_count: None,
            cpu_model: None,
        };
        assert_eq!(
            c.command(),
            "nslat compare --target 'web=docker:my web' 'it'\\''s'"
        );
    }

    #[test]
    fn aa_control_is_judged_by_its_interval_and_its_tolerance() {
        let judged = |ratio: f64, lo: f64, hi: f64| {
            let mut r = crate::report::sample_report();
            r.schedule = ScheduleKind::Interleaved;
            r.aa_control = Some(AaControl {
                ratio,
                ratio_ci95: Some([lo, hi]),
                within_ci: lo <= 1.0 && 1.0 <= hi,
                within_tolerance: (ratio - 1.0).abs() <= AA_TOLERANCE,
            });
            warnings(&r)
                .into_iter()
                .filter(|w| w.message.contains("A/A control"))
                .map(|w| w.message)
                .collect::<Vec<_>>()
        };
        assert!(judged(1.0004, 0.998, 1.002).is_empty());
        let near = judged(1.0018, 1.0002, 1.0034);
        assert_eq!(near.len(), 1);
        assert!(near[0].contains("0.18%") && !near[0].contains("not trustworthy"));
        let far = judged(1.02, 1.01, 1.03);
        assert_eq!(far.len(), 1);
        assert!(far[0].contains("not trustworthy"), "{far:?}");
    }

    #[test]
    fn report_statistics_verdict_and_warnings() {
        let inputs = vec![
            mode("host", &[5.12, 5.08, 5.15, 5.10, 5.11], 2),
            mode("bridge", &[6.60, 6.55, 6.71, 6.62, 6.58], 5),
            mode("macvlan", &[5.10, 5.20, 4.95, 5.30, 5.05], 3),
            ModeInput {
                trace_run: None,
                paired: None,
                mode: "ipvlan-l2".into(),
                unavailable: Some("no ipvlan in this kernel".into()),
                reps: vec![],
            },
        ];
        let r = build_report(&meta("same"), &inputs);
        let host = &r.modes[0];
        assert!(host.vs_host.is_none());
        assert!((host.latency_us.unwrap().mean - 5.112).abs() < 1e-9);
        assert!((host.latency_us.unwrap().ci95.unwrap() - 0.0321396757073).abs() < 1e-6);
        assert_eq!(host.probes.backlog_pkts_per_tx, Some(2.0));
        assert_eq!(host.probes.net_rx_per_tx, Some(2.0));
        assert!(!host.cdf.is_empty());
        let bridge = r.modes[1].vs_host.unwrap();
        assert!(bridge.significant && bridge.delta_us > 1.4);
        assert!(!r.modes[2].vs_host.unwrap().significant);
        assert!(!r.modes[3].available);
        assert_eq!(
            r.verdict[0],
            "bridge adds 1.5 µs (+29%) per round trip, significant"
        );
        assert!(
            r.verdict[1].starts_with("macvlan: no significant cost"),
            "{}",
            r.verdict[1]
        );
        assert_eq!(
            r.verdict[2],
            "ipvlan-l2: not measured (no ipvlan in this kernel)"
        );
        // macvlan's ±3.7% interval is wider than WIDE_CI_REL: warned with a remedy.
        assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
        assert!(
            r.warnings[0].message.contains("wider than 2%: macvlan ±")
                && r.warnings[0].remedy.contains("--reps"),
            "{:?}",
            r.warnings
        );

        let split = build_report(&meta("split"), &inputs[..2]);
        assert!(split
            .warnings
            .iter()
            .any(|w| w.remedy.contains("--cpu same")));

        let json = serde_json::to_value(&r).unwrap();
        for key in ["cpu_placement", "test", "reps", "duration_s", "kernel"] {
            assert!(json.get(key).is_some(), "{key}");
        }
        let m = &json["modes"][1];
        for key in [
            "mode",
            "available",
            "reason",
            "trans_per_s",
            "latency_us",
            "vs_host",
            "probes",
        ] {
            assert!(m.get(key).is_some(), "{key}");
        }
        for key in ["mean", "p50", "p99", "p99_9", "ci95"] {
            assert!(m["latency_us"].get(key).is_some(), "{key}");
        }
        for key in ["delta_us", "ratio", "p_value", "significant"] {
            assert!(m["vs_host"].get(key).is_some(), "{key}");
        }
        for key in [
            "backlog_pkts_per_tx",
            "net_rx_per_tx",
            "cpu_us_per_tx",
            "tracepoints_per_tx",
        ] {
            assert!(m["probes"].get(key).is_some(), "{key}");
        }
        let back: CompareReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
    }

    #[test]
    fn foreign_load_and_fractional_counts_flag_the_report() {
        let clean = build_report(
            &meta("same"),
            &[mode("host", &[5.0, 5.1], 2), mode("bridge", &[6.0, 6.1], 5)],
        );
        assert!(clean.flags.is_empty(), "{:?}", clean.flags);

        // 3.98 backlog packets per transaction: another measurement's packets were counted.
        let mut host = mode("host", &[5.0, 5.1], 2);
        for r in &mut host.reps {
            r.probes.as_mut().unwrap().backlog_pkts = 3980;
        }
        let r = build_report(&meta("same"), &[host]);
        assert_eq!(r.flags.len(), 1, "{:?}", r.flags);
        assert!(
            r.flags[0].contains("host 3.98 backlog packets"),
            "{:?}",
            r.flags
        );

        // A second of one CPU, of which the measuring threads used 0.5 s and interrupts 0.1 s:
        // 0.3 s went to someone else.
        let mut host = mode("host", &[5.0, 5.1], 2);
        for r in &mut host.reps {
            r.run.cpu.client_cpu = 250.0;
            r.run.cpu.server_cpu = 250.0;
            let p = r.probes.as_mut().unwrap();
            p.elapsed_s = 1.0;
            p.cpus_counted = 1;
            p.cpu_busy_us = 900_000.0;
            p.cpu_softirq_us = 100_000.0;
        }
        let r = build_report(&meta("same"), &[host]);
        let share = r.modes[0].probes.foreign_cpu_share.unwrap();
        assert!((share - 0.3).abs() < 1e-9, "{share}");
        assert!(r.flags[0].contains("host 30%"), "{:?}", r.flags);
    }

    #[test]
    fn single_rep_and_no_baseline() {
        let r = build_report(&meta("same"), &[mode("bridge", &[6.6], 5)]);
        assert!(r.verdict[0].starts_with("no host baseline"));
        assert!(r.warnings.iter().any(|w| w.remedy.contains("--reps 3")));
        let r = build_report(
            &meta("same"),
            &[mode("host", &[5.0], 2), mode("bridge", &[6.0], 5)],
        );
        assert!(
            r.verdict[0].contains("significance unknown"),
            "{}",
            r.verdict[0]
        );
    }

    #[test]
    fn paired_explain_adds_paired_deltas_against_one_baseline() {
        use crate::measure::{paired, Ci};
        // Block means by round (µs): baseline 10 ± drift, veth +2, bridge +0.5 more.
        let base: Vec<f64> = (0..40).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
        let veth: Vec<f64> = base.iter().map(|x| x + 2.0).collect();
        let bridge: Vec<f64> = veth.iter().map(|x| x + 0.5).collect();
        let step = |name: &str, xs: &[f64], prev: &[f64]| ExplainStep {
            name: name.into(),
            latency: paired::mean_ci(xs).unwrap(),
            vs_baseline: paired::paired(xs, &base),
            vs_previous: paired::paired(xs, prev),
        };
        let e = explain_from_paired(
            "bridge",
            "host, no NAT table",
            paired::mean_ci(&base).unwrap(),
            &[step("veth", &veth, &base), step("+ bridge", &bridge, &veth)],
        );
        assert!((e.gap_us - 2.5).abs() < 1e-9, "{}", e.gap_us);
        assert!((e.parts[1].adds_us - 0.5).abs() < 1e-9);
        let (lo, hi) = e.parts[1].adds_ci95.unwrap();
        assert!(lo > 0.0 && lo <= 0.5 && hi >= 0.5, "{lo} {hi}");
        let shares: f64 = e.parts.iter().map(|p| p.share).sum();
        assert!((shares - 1.0).abs() < 1e-9);
        let r: Ci = e.parts[0].ratio.unwrap();
        assert!(r.estimate > 1.1 && r.ci95.is_some());
        assert_eq!(e.baseline, "host, no NAT table");
        assert_eq!(e.rounds, Some(40));
    }
}
