//! Exporters of a [`CompareReport`]: terminal table, JSON, CSV, Markdown and a self-contained
//! HTML page with SVG plots. One [`Exporter`] per format, all writing to any `Write`. The
//! human-readable formats render one [`view::View`] (built once per report).

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::compare::{CompareReport, ModeResult};

pub mod checks;
pub mod compare_view;
pub mod csv;
pub mod html;
pub mod json;
pub mod markdown;
pub mod plots;
pub mod sweep;
pub mod table;
pub mod targets;
pub mod view;
pub mod waterfall;

pub use self::csv::CsvExporter;
pub use self::html::HtmlExporter;
pub use self::json::JsonExporter;
pub use self::markdown::MarkdownExporter;
pub use self::table::{TableExporter, TerminalExporter};

/// What a star means in an interleaved report (and what `significant` is computed from there).
pub const SIGNIFICANT_INTERLEAVED: &str =
    "the ratio's 95% CI (over the replicates, or batch means over the paired rounds of one \
     instance) excludes 1";
/// What a star means in a report of separate runs.
pub const SIGNIFICANT_RUNS: &str =
    "significant at p < 0.05 (Welch's t-test over the repetitions' means)";

/// Errors of the exporters.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("encoding CSV: {0}")]
    Csv(#[from] ::csv::Error),
    #[error("drawing a plot: {0}")]
    Plot(String),
    /// (The I/O error is part of the message, not a `source`, so an error chain prints it once.)
    #[error("{path}: {error}")]
    Path { path: String, error: std::io::Error },
}

/// Writes a report in one format.
pub trait Exporter {
    fn export(&self, report: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError>;
}

/// Exports to a file at `path` (created or truncated).
pub fn export_to_path(
    exporter: &dyn Exporter,
    report: &CompareReport,
    path: &Path,
) -> Result<(), ReportError> {
    let err = |error| ReportError::Path {
        path: path.display().to_string(),
        error,
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(err)?);
    exporter.export(report, &mut f)?;
    f.flush().map_err(err)
}

/// `--html DIR`: creates DIR if needed and writes DIR/index.html; returns that path.
pub fn write_html_dir(report: &CompareReport, dir: &Path) -> Result<PathBuf, ReportError> {
    std::fs::create_dir_all(dir).map_err(|error| ReportError::Path {
        path: dir.display().to_string(),
        error,
    })?;
    let path = dir.join("index.html");
    export_to_path(&HtmlExporter, report, &path)?;
    Ok(path)
}

/// The column titles of the human-readable table (terminal, Markdown, HTML).
pub(crate) const DISPLAY_HEADERS: [&str; 11] = [
    "mode",
    "latency µs (95% CI)",
    "p50 µs",
    "p99 µs",
    "p99.9 µs",
    "trans/s",
    "vs host",
    "p-value",
    "backlog pkts/tx",
    "NET_RX/tx",
    "path CPU µs",
];

pub(crate) const DASH: &str = "—";

pub(crate) fn opt(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.decimals$}"),
        _ => DASH.to_string(),
    }
}

fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
        None => DASH.into(),
    }
}

/// One display row per mode, cells formatted for people.
pub(crate) fn display_row(m: &ModeResult) -> Vec<String> {
    if !m.available {
        // The reason is in the verdict line; a long cell here would widen the whole column.
        let mut row = vec![m.mode.clone(), "not available".to_string()];
        row.resize(DISPLAY_HEADERS.len(), DASH.to_string());
        return row;
    }
    let lat = m.latency_us;
    let latency = match lat {
        Some(l) => match l.ci95 {
            Some(h) => format!("{:.2} ± {:.2}", l.mean, h),
            None => format!("{:.2}", l.mean),
        },
        None => DASH.into(),
    };
    let tps = match m.trans_per_s {
        Some(t) => format!("{:.0}", t.mean),
        None => DASH.into(),
    };
    let vs = match m.vs_host {
        Some(v) => format!(
            "{:+.2} µs ({:+.1}%){}",
            v.delta_us,
            v.delta_pct,
            if v.significant { " *" } else { "" }
        ),
        None => DASH.into(),
    };
    vec![
        m.mode.clone(),
        latency,
        opt(lat.map(|l| l.p50), 2),
        opt(lat.map(|l| l.p99), 2),
        opt(lat.map(|l| l.p99_9), 2),
        tps,
        vs,
        p_value(m.vs_host.and_then(|v| v.p_value)),
        opt(m.probes.backlog_pkts_per_tx, 2),
        opt(m.probes.net_rx_per_tx, 2),
        // CPU work on the round trip's critical path, from --waterfall's tracepoints (the stages
        // that run code, not the waits). /proc/stat's busy time per transaction
        // (`probes.cpu_us_per_tx` in JSON/CSV) is not shown: with client and server on one CPU
        // that CPU never idles during a round trip, so it is the latency again.
        opt(m.waterfall.as_ref().map(|w| w.cpu_work_us), 2),
    ]
}

/// A CPU placement for people, e.g. "same (client and server on one CPU)".
pub(crate) fn placement_text(placement: &str) -> String {
    match placement {
        "same" => "same (client and server on one CPU)".into(),
        "split" => "split (client and server on different CPUs)".into(),
        other => other.into(),
    }
}

/// The one-line description of the run, e.g. "TCP_RR 1,1 · 5 reps × 2 s · CPU placement: same".
pub(crate) fn headline(r: &CompareReport) -> String {
    let placement = placement_text(&r.cpu_placement);
    let host = r
        .host_name
        .as_deref()
        .map(|h| format!(" · machine {h}"))
        .unwrap_or_default();
    let schedule = match r.schedule {
        crate::compare::ScheduleKind::Runs => format!("{} reps × {} s", r.reps, r.duration_s),
        crate::compare::ScheduleKind::Interleaved => format!(
            "interleaved: {} rounds of {}-transaction blocks ({:.1} ms), paired CIs by {}",
            r.reps,
            r.block_transactions
                .map(|b| b.to_string())
                .unwrap_or_else(|| "time-sliced".into()),
            r.duration_s * 1e3,
            r.ci_method.as_deref().unwrap_or("batch means")
        ),
    };
    let baseline = if r.baseline.nat_table.is_some() {
        format!(" · baseline: {}", r.baseline.describe())
    } else {
        String::new()
    };
    format!(
        "{} {},{} · {schedule}{baseline} · CPU placement: {} · kernel {}{}",
        r.test, r.request_size, r.response_size, placement, r.kernel, host
    )
}

/// The lines that say a report's figures are not clean, one per reason (empty when clean).
pub(crate) fn flag_lines(r: &CompareReport) -> Vec<String> {
    r.flags
        .iter()
        .map(|f| format!("FLAGGED (figures not clean): {f}"))
        .collect()
}

/// The union of tracepoint names over the modes, sorted.
pub(crate) fn tracepoint_names(r: &CompareReport) -> Vec<String> {
    let mut names: Vec<String> = r
        .modes
        .iter()
        .flat_map(|m| m.probes.tracepoints_per_tx.keys().cloned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// The sample report's `--explain` breakdown: four steps paired with "host, no NAT table".
fn sample_explain() -> crate::compare::Explain {
    use crate::measure::{Ci, Paired};
    let ci = |x: f64, h: f64| Ci {
        estimate: x,
        ci95: Some((x - h, x + h)),
    };
    let pair = |delta: f64, ratio: f64| Paired {
        rounds: 400,
        batches: 40,
        ratio: ci(ratio, 0.004),
        delta: ci(delta, 0.03),
        p_value: Some(0.0),
        replicates: 1,
        epochs: 0,
    };
    let step = |name: &str, us: f64, prev_us: f64| crate::compare::ExplainStep {
        name: name.into(),
        latency: ci(us, 0.04),
        vs_baseline: Some(pair(us - 5.1, us / 5.1)),
        vs_previous: Some(pair(us - prev_us, us / prev_us)),
    };
    let mut e = crate::compare::explain_from_paired(
        "bridge",
        "host, no NAT table",
        ci(5.1, 0.03),
        &[
            step("veth (ptp, routed)", 6.0, 5.1),
            step("+ bridge", 6.3, 6.0),
            step("+ conntrack (NAT table loaded)", 6.5, 6.3),
            step("+ MASQUERADE (Docker's rule)", 6.6, 6.5),
        ],
    );
    e.ci_method = Some("batch means (40 batches of 10 rounds)".into());
    e
}

/// A fixed report for tests and examples (numbers are made up, shapes are real).
#[doc(hidden)]
pub fn sample_report() -> CompareReport {
    use crate::compare::*;
    use std::collections::BTreeMap;
    let cdf = |base: f64| -> Vec<(f64, f64)> {
        (0..=20)
            .map(|i| {
                let q = i as f64 / 20.0;
                (base + 0.8 * q + if i == 20 { 3.0 } else { 0.0 }, q)
            })
            .collect()
    };
    // A real histogram per mode (made-up values: a body 0.8 µs wide above `base`, one
    // transaction in 1000 3 µs slower, one in 10000 20 µs slower) for the percentile plot.
    let percentiles = |base: f64| -> Vec<(f64, f64)> {
        let mut h = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
            .expect("valid bounds");
        for i in 0..400_000u64 {
            let mut ns = base * 1e3 + (i * 7919 % 800) as f64;
            if i % 1000 == 999 {
                ns += 3e3;
            }
            if i % 10_000 == 9999 {
                ns += 20e3;
            }
            h.record(ns as u64).expect("in bounds");
        }
        crate::stats::percentile_points_us(&h, crate::stats::PERCENTILE_TICKS)
    };
    let mode = |name: &str, mean: f64, ci: f64, backlog: f64, vs: Option<VsHost>| ModeResult {
        mode: name.into(),
        available: true,
        reason: None,
        trans_per_s: Some(Estimate {
            mean: 1e6 / mean,
            ci95: Some(1e6 / mean * ci / mean),
        }),
        latency_us: Some(LatencyEstimate {
            mean,
            p50: mean - 0.1,
            p99: mean + 1.5,
            p99_9: mean + 4.0,
            ci95: Some(ci),
        }),
        vs_host: vs,
        probes: ProbeFigures {
            backlog_pkts_per_tx: Some(backlog),
            net_rx_per_tx: Some(backlog / 2.0),
            cpu_us_per_tx: Some(mean * 0.98),
            foreign_cpu_share: None,
            tracepoints_per_tx: BTreeMap::from([
                ("net:netif_rx".to_string(), backlog / 2.0),
                ("net:netif_receive_skb".to_string(), backlog),
            ]),
        },
        reps: vec![RepFigures {
            transactions: 400_000,
            trans_per_s: 1e6 / mean,
            latency_mean_us: mean,
            latency_p50_us: mean - 0.1,
            latency_p99_us: mean + 1.5,
            backlog_pkts_per_tx: Some(backlog),
            net_rx_per_tx: Some(backlog / 2.0),
            cpu_us_per_tx: Some(mean * 0.98),
            foreign_cpu_share: None,
        }],
        cdf: cdf(mean - 0.5),
        percentiles: percentiles(mean - 0.5),
        target: None,
        waterfall: None,
        family: None,
        wire: None,
    };
    let vs = |d: f64, p: f64| VsHost {
        delta_us: d,
        delta_pct: d / 5.1 * 100.0,
        ratio: (5.1 + d) / 5.1,
        p_value: Some(p),
        significant: p < 0.05,
        ratio_ci95: None,
        delta_us_ci95: None,
        rounds: None,
        replicates: None,
        epochs: None,
    };
    let mut report = CompareReport {
        test: "TCP_RR".into(),
        request_size: 1,
        response_size: 1,
        reps: 5,
        duration_s: 2.0,
        cpu_placement: "same".into(),
        kernel: "6.18.0-test".into(),
        host_name: Some("lab-machine".into()),
        baseline: crate::compare::Baseline::chosen(
            crate::lab::cells::NodeState::Bare,
            Some("/run/netns/nslat-sample-c.0-node".into()),
        ),
        verdict: vec![
            "bridge adds 1.5 µs (+29%) per round trip, significant".into(),
            "ptp adds 0.9 µs (+18%) per round trip, significant".into(),
            "macvlan: no significant cost (-0.1 µs, -2%, p=0.31)".into(),
            "ipvlan-l2: not measured (no ipvlan support in this kernel)".into(),
        ],
        warnings: vec![Warning {
            message: "macvlan: mean latency 5.00 µs ± 2.4% (95% CI) between repetitions".into(),
            remedy: "raise --reps or -l, and keep the machine otherwise idle".into(),
        }],
        modes: vec![
            mode("host", 5.1, 0.03, 2.0, None),
            mode("bridge", 6.6, 0.05, 5.0, Some(vs(1.5, 0.00001))),
            mode("ptp", 6.0, 0.04, 4.0, Some(vs(0.9, 0.0002))),
            mode("macvlan", 5.0, 0.12, 3.0, Some(vs(-0.1, 0.31))),
            ModeResult {
                mode: "ipvlan-l2".into(),
                available: false,
                reason: Some("no ipvlan support in this kernel".into()),
                trans_per_s: None,
                latency_us: None,
                vs_host: None,
                probes: ProbeFigures::default(),
                reps: vec![],
                cdf: vec![],
                percentiles: vec![],
                target: None,
                waterfall: None,
                family: None,
                wire: None,
            },
        ],
        explain: Some(sample_explain()),
        checks: None,
        schedule: Default::default(),
        block_transactions: None,
        ci_method: None,
        aa_control: None,
        flags: Vec::new(),
        pair: None,
        context: Some(RunContext {
            started_utc: "2026-12-01T20:21:25Z".into(),
            command_line: [
                "nslat",
                "compare",
                "--modes",
                "host,bridge,ptp,macvlan,ipvlan-l2",
                "--explain",
                "--html",
                "report/",
            ]
            .map(String::from)
            .to_vec(),
            cpu_count: Some(2),
            cpu_model: Some("Example CPU @ 2.00GHz".into()),
        }),
        recommendation: Vec::new(),
    };
    report.recommendation = crate::compare::recommend::lines(&report);
    report
}
