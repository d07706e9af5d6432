//! A sweep's result, as `--json` writes it: the axis, the conditions, and one point per
//! measured (style or mode, N or K, test) with its latency figures and spread.

use serde::{Deserialize, Serialize};

use super::services::Style;
pub use crate::probe::backlog::BacklogSamples;

/// What a sweep varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Axis {
    /// The number of Services kube-proxy programmed, per style.
    Services,
    /// The number of neighbour containers streaming, per mode.
    Load,
    /// The offered request rate of an open-loop test, per mode.
    Rate,
}

impl Axis {
    pub fn name(self) -> &'static str {
        match self {
            Axis::Services => "services",
            Axis::Load => "load",
            Axis::Rate => "rate",
        }
    }
}

/// Latency of one path at one point, µs. `mean` is the mean of the schedule's block means and
/// `ci95` the half-width of its 95 % interval (batch means over the interleaved rounds), `None`
/// with too few rounds; the percentiles come from every timed transaction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: f64,
    pub p99: f64,
    pub p99_9: f64,
    pub ci95: Option<f64>,
}

/// A path against the point's reference path over the same rounds (paired).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct VsReference {
    /// Mean latency ratio (path / reference).
    pub ratio: f64,
    /// 95 % interval of the ratio.
    pub ratio_ci95: Option<(f64, f64)>,
    /// Mean difference, µs.
    pub delta_us: f64,
    pub delta_ci95: Option<(f64, f64)>,
}

/// The backlog counters of /proc/net/softnet_stat over a point (all CPUs of the selection; the
/// file is machine-wide: other traffic on the machine counts too).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Backlog {
    /// Packets taken from the backlogs / NIC queues (`processed`).
    pub processed: u64,
    /// Packets dropped because a backlog was full.
    pub dropped: u64,
    /// NET_RX softirq runs that ended with work left (budget or time).
    pub time_squeeze: u64,
    /// Seconds the counters span.
    pub elapsed_s: f64,
}

/// Load axis: queueing on the victim's CPU while the victim was measured, the explanation of a
/// latency gap that drops and time squeeze do not show. Counters of that CPU alone (the victim's
/// client and server run there); other traffic on the machine that lands on it counts too.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Queueing {
    /// The victim's CPU.
    pub cpu: usize,
    /// Packets the stack received on that CPU (`/proc/net/softnet_stat` `processed`, one per
    /// device pass) per victim transaction: the victim's own passes plus the neighbours'
    /// packets processed between its transactions.
    pub pkts_per_tx: f64,
    /// NET_RX softirqs raised on that CPU per victim transaction (`/proc/softirqs`).
    pub net_rx_per_tx: f64,
    /// Share (0..1) of that CPU's time spent in softirq (`/proc/stat`, 10 ms ticks).
    pub softirq_share: f64,
    /// Mean packets waiting in that CPU's backlog, sampled from the other CPU every
    /// millisecond (`softnet_stat`'s backlog length column); `None` without samples.
    pub backlog_len_mean: Option<f64>,
    /// Share (0..1) of those samples that found packets waiting.
    pub backlog_busy_share: Option<f64>,
    /// The samples themselves (count, non-empty count, sum, max).
    pub backlog_samples: BacklogSamples,
}

/// One measured point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Point {
    /// Services axis: the kube-proxy style.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub style: Option<Style>,
    /// Load axis: the victim's (and its neighbours') mode.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub mode: Option<String>,
    /// Services installed, or neighbours streaming.
    pub n: usize,
    pub test: String,
    /// Load axis: where the neighbours run relative to the victim (`same` or `other` CPU).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub placement: Option<String>,
    /// The measured path (through the ClusterIP; the victim).
    pub latency_us: Latency,
    pub transactions: u64,
    /// Interleaved rounds the figures come from.
    pub rounds: usize,
    /// Services axis: time to load the rules, s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub load_s: Option<f64>,
    /// Services axis: the same container straight to the endpoint, in the same rounds.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub direct_latency_us: Option<Latency>,
    /// Services axis: through the ClusterIP against straight to the endpoint.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_direct: Option<VsReference>,
    /// Load axis: the backlog counters while the victim was measured.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub backlog: Option<Backlog>,
    /// Load axis: what the node's wire interface sent while the victim was measured, Gbit/s
    /// (the victim's and the neighbours' traffic, counted by the kernel).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wire_gbps: Option<f64>,
    /// Load axis: the neighbours' summed throughput, Gbit/s.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub neighbours_gbps: Option<f64>,
    /// Load axis: queueing on the victim's CPU (per victim transaction, sampled backlog).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub queueing: Option<Queueing>,
    /// Rate axis: the open-loop figures (flattened into the point: `offered_rps`, ...).
    #[serde(flatten, default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<RateFigures>,
    /// Rate axis: the point's timed rounds in consecutive sub-windows (10 by default), in time
    /// order: what the knee detection reads (a VM stall moves one window's p99, not six).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<RateWindow>,
}

/// Rate axis: one sub-window of a point (a group of consecutive interleaved rounds).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateWindow {
    /// Latency from intended send times over the window, µs.
    pub p50_us: f64,
    pub p99_us: f64,
    /// Responses per second of the window's blocks' wall time.
    pub achieved_rps: f64,
    pub completed: u64,
    /// Timeouts and drops.
    pub lost: u64,
}

/// Rate axis: what one mode did at one offered rate. Latencies (`Point::latency_us`) are timed
/// from each request's intended send time, so queueing delay is in them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateFigures {
    /// Requests per second the schedule offered.
    pub offered_rps: f64,
    /// Responses per second of wall time (each block: from its start to its last response,
    /// plus one request interval: its n requests occupy n slots).
    pub achieved_rps: f64,
    /// CPU time per request, µs: the client thread's plus the server threads'.
    pub cpu_us_per_req: f64,
    pub client_cpu_us_per_req: f64,
    /// `None` when the server's figures did not come back.
    pub server_cpu_us_per_req: Option<f64>,
    /// Share (0..1) of the client thread's wall time it was on a CPU: near 1 means the
    /// generator, not the path, set the pace.
    pub generator_busy: f64,
    /// The latest a request left after its intended time, µs (the generator's lag).
    pub max_issue_lag_us: f64,
    /// Requests sent, answered in time, timed out, and dropped (never sent: a full ring).
    pub sent: u64,
    pub completed: u64,
    pub timeouts: u64,
    pub dropped: u64,
    /// Open-loop connections (each its own server thread).
    pub connections: usize,
    /// Against the host at the same offered rate, over the same rounds (mean latency).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_host: Option<VsReference>,
    /// Backlog counters over this mode's timed blocks, per request (machine-wide counters; one
    /// mode ran at a time).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub counters: Option<RateCounters>,
    /// A second measurement of a rate already measured: `auto` confirms a mode's first
    /// crossing of its bound (or of its wall) before it believes it.
    #[serde(skip_serializing_if = "std::ops::Not::not", default)]
    pub repeat: bool,
}

/// Kernel counters per request over a mode's timed blocks at one rate.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RateCounters {
    /// Packets the stack took from backlogs and queues (softnet_stat `processed`).
    pub backlog_pkts_per_req: f64,
    /// NET_RX softirqs raised.
    pub net_rx_per_req: f64,
    /// Softirq CPU time (10 ms ticks of /proc/stat summed over many blocks), µs.
    pub softirq_us_per_req: f64,
    /// Backlog drops and time squeezes in total.
    pub dropped: u64,
    pub time_squeeze: u64,
}

/// Rate axis: one of a mode's capacity markers, requests/s, with where it lies and its ratio
/// to the host's.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Marker {
    /// The marker (knee, wall: the highest offered rate measured before the crossing; kept:
    /// the achieved rate); `None`: the crossing came at the lowest rate measured.
    pub rps: Option<f64>,
    /// Where the marker lies: knee and wall between the last rate before the crossing and the
    /// first rate past it (`hi` `None`: never crossed, `rps` is a lower bound); kept: the 95 %
    /// interval of the mean over the windows.
    pub lo: Option<f64>,
    pub hi: Option<f64>,
    /// The first crossing was measured twice and crossed both times.
    pub confirmed: bool,
    /// `rps` over the host's.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_host: Option<f64>,
    /// The ratio's interval: [lo / host's hi, hi / host's lo].
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub vs_host_range: Option<(f64, f64)>,
}

/// Rate axis: one mode's capacity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Knee {
    pub mode: String,
    /// Its idle p99: the median window p99 over the rates from 2,000 to 8,000/s (or, without
    /// any, up to 4× the lowest rate measured), µs.
    pub idle_p99_us: f64,
    /// The bound: `bound_factor` × idle p99, µs.
    pub bound_us: f64,
    /// Latency knee: a rate is over when at least 6 of its 10 windows' p99 exceed the bound.
    pub knee: Marker,
    /// Throughput wall: a rate is short when at least 6 of 10 windows achieve under 99 % of it.
    pub wall: Marker,
    /// What it still sustains just past the wall: the achieved rate at the wall's first short
    /// rate.
    pub kept: Marker,
    /// Backlog packets and NET_RX softirqs per request at the idle rates (each path's device
    /// passes: under load sends coalesce and the counts fall).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub backlog_pkts_per_req: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub net_rx_per_req: Option<f64>,
    /// CPU per request (client + server threads) at the knee, µs.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpu_us_per_req: Option<f64>,
}

/// A whole sweep.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepReport {
    pub axis: Axis,
    /// Seconds of measuring per point (all paths together).
    pub duration_s: f64,
    /// How the client and server threads were pinned, in words.
    pub cpus: String,
    pub kernel: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub host_name: Option<String>,
    pub points: Vec<Point>,
    /// Lines a reader needs to read the figures right (method, caveats).
    pub notes: Vec<String>,
    /// Points that could not be measured, with the reason.
    pub unavailable: Vec<String>,
    /// Rate axis: each mode's knee and saturation.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub knees: Vec<Knee>,
}

impl SweepReport {
    /// The series of the report: (style or mode [+ placement], test) in first-seen order.
    pub fn series(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for p in &self.points {
            let key = (p.series_name(), p.test.clone());
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }
}

impl Point {
    /// `iptables`, `bridge`, or `bridge, same CPU`.
    pub fn series_name(&self) -> String {
        let base = match (&self.style, &self.mode) {
            (Some(s), _) => s.name().to_string(),
            (None, Some(m)) => m.clone(),
            (None, None) => "?".into(),
        };
        match &self.placement {
            Some(pl) => format!("{base}, {pl} CPU"),
            None => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_names_the_axis_and_skips_what_the_axis_lacks() {
        let r = crate::report::sweep::sample_services();
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["axis"], "services");
        let p = &v["points"][0];
        assert_eq!(p["style"], "iptables");
        assert!(p.get("mode").is_none());
        assert!(p["latency_us"]["p99_9"].is_number());
        assert!(p["load_s"].is_number());
        let back: SweepReport = serde_json::from_value(v).unwrap();
        assert_eq!(back, r);
        let l = serde_json::to_value(crate::report::sweep::sample_load()).unwrap();
        assert_eq!(l["axis"], "load");
        assert_eq!(l["points"][0]["mode"], "bridge");
        assert!(l["points"][0].get("style").is_none());
    }
}
