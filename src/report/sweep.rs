//! The view and the CSV of a [`SweepReport`]: a table per test, curves of latency against the
//! swept N (or K) per style or mode with CI bands, the notes. The terminal, Markdown and HTML
//! renderers draw the view like any other ([`super::table::render`] and friends).

use std::io::Write;
use std::path::{Path, PathBuf};

use super::view::{Block, Curve, CurvePlot, CurvePoint, Plot, Section, TableView, View};
use super::{opt, ReportError, DASH};
use crate::sweep::model::{
    Axis, Backlog, Knee, Latency, Marker, Point, Queueing, RateFigures, SweepReport, VsReference,
};

fn lat_cell(l: &Latency) -> String {
    match l.ci95 {
        Some(h) => format!("{:.2} ± {:.2}", l.mean, h),
        None => format!("{:.2}", l.mean),
    }
}

fn ratio_cell(v: Option<&VsReference>) -> String {
    match v {
        Some(v) => match v.ratio_ci95 {
            Some((lo, hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", v.ratio),
            None => format!("{:.3}", v.ratio),
        },
        None => DASH.into(),
    }
}

fn backlog_cell(b: Option<&Backlog>) -> String {
    match b {
        Some(b) => format!("{} / {}", b.dropped, b.time_squeeze),
        None => DASH.into(),
    }
}

fn percent(v: Option<f64>) -> String {
    opt(v.map(|x| x * 100.0), 1)
}

fn queueing_cells(q: Option<&Queueing>) -> [String; 5] {
    match q {
        Some(q) => [
            format!("{:.2}", q.pkts_per_tx),
            format!("{:.3}", q.net_rx_per_tx),
            percent(Some(q.softirq_share)),
            percent(q.backlog_busy_share),
            opt(q.backlog_len_mean, 3),
        ],
        None => std::array::from_fn(|_| DASH.to_string()),
    }
}

fn headers(axis: Axis) -> Vec<String> {
    let v: &[&str] = match axis {
        Axis::Services => &[
            "style",
            "Services",
            "latency µs (95% CI)",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "direct µs",
            "vs direct (95% CI)",
            "load s",
            "rounds",
        ],
        Axis::Load => &[
            "mode",
            "neighbours",
            "latency µs (95% CI)",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "neighbours Gbit/s",
            "drops / squeeze",
            "victim CPU pkts/tx",
            "NET_RX/tx",
            "softirq %",
            "backlog busy %",
            "backlog len",
        ],
        Axis::Rate => &[
            "mode",
            "offered /s",
            "achieved /s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "window p99 µs (median)",
            "mean µs (95% CI)",
            "vs host (95% CI)",
            "CPU µs/req",
            "timeouts",
            "backlog pkts/req",
            "NET_RX/req",
            "generator busy %",
        ],
    };
    v.iter().map(|s| s.to_string()).collect()
}

fn rate_row(p: &Point, r: &RateFigures) -> Vec<String> {
    let l = &p.latency_us;
    let c = r.counters.as_ref();
    vec![
        if r.repeat {
            format!("{} (again)", p.series_name())
        } else {
            p.series_name()
        },
        format!("{:.0}", r.offered_rps),
        format!("{:.0}", r.achieved_rps),
        format!("{:.1}", l.p50),
        format!("{:.1}", l.p99),
        format!("{:.1}", l.p99_9),
        opt(window_median_p99(p), 1),
        lat_cell(l),
        ratio_cell(r.vs_host.as_ref()),
        format!("{:.2}", r.cpu_us_per_req),
        (r.timeouts + r.dropped).to_string(),
        opt(c.map(|c| c.backlog_pkts_per_req), 2),
        opt(c.map(|c| c.net_rx_per_req), 3),
        percent(Some(r.generator_busy)),
    ]
}

/// The median of a point's window p99s, µs (`None` without windows).
pub fn window_median_p99(p: &Point) -> Option<f64> {
    let mut v: Vec<f64> = p.windows.iter().map(|w| w.p99_us).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// A knee or wall: the last rate under and the first over (`?`: that crossing was measured
/// once).
fn bracket_cell(m: &Marker) -> String {
    let q = if m.confirmed { "" } else { " ?" };
    match (m.lo, m.hi) {
        (Some(lo), Some(hi)) => format!("{lo:.0}–{hi:.0}{q}"),
        (Some(lo), None) => format!("≥ {lo:.0} (not reached)"),
        (None, Some(hi)) => format!("< {hi:.0}{q}"),
        (None, None) => DASH.into(),
    }
}

fn kept_cell(m: &Marker) -> String {
    match (m.rps, m.lo, m.hi) {
        (Some(v), Some(lo), Some(hi)) => format!("{v:.0} ± {:.0}", (hi - lo) / 2.0),
        (Some(v), _, _) => format!("{v:.0}"),
        _ => DASH.into(),
    }
}

fn marker_ratio_cell(m: &Marker) -> String {
    match (m.vs_host, m.vs_host_range) {
        (Some(r), Some((lo, hi))) => format!("{r:.3} [{lo:.3}, {hi:.3}]"),
        (Some(r), None) => format!("{r:.3}"),
        _ => DASH.into(),
    }
}

/// The capacity table: each mode's knee, wall and what it kept, each beside the host's.
fn knee_rows(knees: &[Knee]) -> TableView {
    let header = [
        "mode",
        "idle p99 µs",
        "bound µs",
        "knee /s (last under–first over)",
        "knee vs host",
        "wall /s (≥ 99% achieved–under)",
        "wall vs host",
        "kept /s (at the wall)",
        "kept vs host",
        "backlog pkts/req (idle)",
        "NET_RX/req",
        "CPU µs/req at knee",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows = knees
        .iter()
        .map(|k| {
            vec![
                k.mode.clone(),
                format!("{:.1}", k.idle_p99_us),
                format!("{:.1}", k.bound_us),
                bracket_cell(&k.knee),
                marker_ratio_cell(&k.knee),
                bracket_cell(&k.wall),
                marker_ratio_cell(&k.wall),
                kept_cell(&k.kept),
                marker_ratio_cell(&k.kept),
                opt(k.backlog_pkts_per_req, 2),
                opt(k.net_rx_per_req, 3),
                opt(k.cpu_us_per_req, 2),
            ]
        })
        .collect();
    TableView::figures(header, rows)
}

/// A point's place on the x axis: the offered rate, or N / K.
fn x_of(p: &Point) -> f64 {
    p.rate.map_or(p.n as f64, |r| r.offered_rps)
}

fn row(axis: Axis, p: &Point) -> Vec<String> {
    if let (Axis::Rate, Some(r)) = (axis, p.rate.as_ref()) {
        return rate_row(p, r);
    }
    let l = &p.latency_us;
    let mut r = vec![
        p.series_name(),
        p.n.to_string(),
        lat_cell(l),
        format!("{:.2}", l.p50),
        format!("{:.2}", l.p99),
        format!("{:.2}", l.p99_9),
    ];
    match axis {
        Axis::Services => {
            r.push(opt(p.direct_latency_us.map(|d| d.mean), 2));
            r.push(ratio_cell(p.vs_direct.as_ref()));
            r.push(opt(p.load_s, 2));
            r.push(p.rounds.to_string());
        }
        Axis::Load => {
            r.push(opt(p.neighbours_gbps, 2));
            r.push(backlog_cell(p.backlog.as_ref()));
            r.extend(queueing_cells(p.queueing.as_ref()));
        }
        Axis::Rate => {}
    }
    r
}

/// Picks a point's figure and its CI half-width.
type Pick = fn(&Point) -> (f64, Option<f64>);

/// Curves of one figure of the points of `test`, one per series.
fn curves(
    r: &SweepReport,
    test: &str,
    title: String,
    y_label: &str,
    pick: impl Fn(&Point) -> (f64, Option<f64>),
) -> CurvePlot {
    let series: Vec<String> = r
        .series()
        .into_iter()
        .filter(|(_, t)| t == test)
        .map(|(s, _)| s)
        .collect();
    let curves: Vec<Curve> = series
        .iter()
        .enumerate()
        .map(|(i, name)| Curve {
            name: name.clone(),
            color: i,
            points: r
                .points
                .iter()
                .filter(|p| p.test == test && &p.series_name() == name)
                .filter(|p| !p.rate.is_some_and(|r| r.repeat))
                .map(|p| {
                    let (y, h) = pick(p);
                    let h = h.unwrap_or(0.0);
                    CurvePoint {
                        x: x_of(p),
                        y,
                        lo: y - h,
                        hi: y + h,
                    }
                })
                .filter(|c| c.y.is_finite())
                .collect(),
        })
        .collect();
    let log_x = super::view::wants_log(r.points.iter().map(x_of));
    CurvePlot {
        title,
        x_label: match r.axis {
            Axis::Services => "Services installed (N)".into(),
            Axis::Load => "neighbour containers streaming (K)".into(),
            Axis::Rate => "offered rate (requests/s)".into(),
        },
        y_label: y_label.into(),
        log_x,
        series: curves,
    }
}

/// The view of a sweep.
pub fn view(r: &SweepReport) -> View {
    let mut tests: Vec<String> = Vec::new();
    for p in &r.points {
        if !tests.contains(&p.test) {
            tests.push(p.test.clone());
        }
    }
    let mut sections = Vec::new();
    for t in &tests {
        let rows = r
            .points
            .iter()
            .filter(|p| &p.test == t)
            .map(|p| row(r.axis, p))
            .collect();
        let mut blocks = vec![Block::Table(TableView::figures(headers(r.axis), rows))];
        if r.axis == Axis::Rate {
            blocks.extend(rate_plots(r, t));
            sections.push(Section::new(Some(t.clone()), blocks));
            continue;
        }
        let what = match r.axis {
            Axis::Services => "through the ClusterIP",
            Axis::Load | Axis::Rate => "of the victim",
        };
        blocks.push(Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t}: mean latency {what}, with 95% CI"),
            "mean latency (µs)",
            |p| (p.latency_us.mean, p.latency_us.ci95),
        ))));
        let (label, pick): (&str, Pick) = match r.axis {
            Axis::Services => ("p50", |p| (p.latency_us.p50, None)),
            Axis::Load | Axis::Rate => ("p99", |p| (p.latency_us.p99, None)),
        };
        blocks.push(Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t}: {label} latency {what}"),
            &format!("{label} latency (µs)"),
            pick,
        ))));
        if r.axis == Axis::Load && r.points.iter().any(|p| p.queueing.is_some()) {
            blocks.push(Block::Plot(Plot::Curves(curves(
                r,
                t,
                format!("{t}: packets received on the victim's CPU per victim transaction"),
                "packets per transaction",
                |p| (p.queueing.map_or(f64::NAN, |q| q.pkts_per_tx), None),
            ))));
        }
        sections.push(Section::new(Some(t.clone()), blocks));
    }
    if !r.knees.is_empty() {
        sections.insert(
            0,
            Section::new(
                Some("Capacity: knee (p99 bound), wall (99% achieved), kept".into()),
                vec![Block::Table(knee_rows(&r.knees))],
            ),
        );
    }
    if !r.notes.is_empty() {
        sections.push(Section::new(
            Some("How to read it".into()),
            vec![Block::Bullets(r.notes.clone())],
        ));
    }
    if !r.unavailable.is_empty() {
        sections.push(Section::new(
            Some("Not measured".into()),
            vec![Block::Bullets(r.unavailable.clone())],
        ));
    }
    let host = r
        .host_name
        .as_deref()
        .map(|h| format!(" · host {h}"))
        .unwrap_or_default();
    View {
        title: format!("nslat sweep {}", r.axis.name()),
        headline: format!(
            "{} s of measuring per point · {} · kernel {}{}",
            r.duration_s, r.cpus, r.kernel, host
        ),
        facts: Vec::new(),
        sections,
    }
}

/// The rate axis's curves: p99, p50 and p99.9 against the offered rate (a log latency axis
/// when the values span decades, as they do past a knee), the achieved rate, CPU per request.
fn rate_plots(r: &SweepReport, t: &str) -> Vec<Block> {
    let rate = |p: &Point, f: fn(&RateFigures) -> f64| p.rate.as_ref().map_or(f64::NAN, f);
    vec![
        Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t} open loop: p99 latency (from intended send times) against offered rate"),
            "p99 latency (µs)",
            |p| (p.latency_us.p99, None),
        ))),
        Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t} open loop: median window p99 against offered rate"),
            "window p99, median (µs)",
            |p| (window_median_p99(p).unwrap_or(f64::NAN), None),
        ))),
        Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t} open loop: p50 latency against offered rate"),
            "p50 latency (µs)",
            |p| (p.latency_us.p50, None),
        ))),
        Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t} open loop: p99.9 latency against offered rate"),
            "p99.9 latency (µs)",
            |p| (p.latency_us.p99_9, None),
        ))),
        Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t} open loop: achieved against offered rate"),
            "achieved rate (responses/s)",
            move |p| (rate(p, |r| r.achieved_rps), None),
        ))),
        Block::Plot(Plot::Curves(curves(
            r,
            t,
            format!("{t} open loop: CPU per request (client + server threads)"),
            "CPU µs per request",
            move |p| (rate(p, |r| r.cpu_us_per_req), None),
        ))),
    ]
}

const CSV_HEADER: [&str; 47] = [
    "axis",
    "style",
    "mode",
    "placement",
    "n",
    "test",
    "latency_us_mean",
    "latency_us_ci95",
    "latency_us_p50",
    "latency_us_p99",
    "latency_us_p99_9",
    "transactions",
    "rounds",
    "load_s",
    "direct_us_mean",
    "direct_us_p50",
    "vs_direct_ratio",
    "vs_direct_ratio_lo",
    "vs_direct_ratio_hi",
    "vs_direct_delta_us",
    "backlog_processed",
    "backlog_dropped",
    "backlog_time_squeeze",
    "neighbours_gbps",
    "wire_gbps",
    "victim_cpu",
    "victim_cpu_pkts_per_tx",
    "victim_cpu_net_rx_per_tx",
    "victim_cpu_softirq_share",
    "victim_backlog_len_mean",
    "victim_backlog_busy_share",
    "victim_backlog_samples",
    "offered_rps",
    "achieved_rps",
    "cpu_us_per_req",
    "client_cpu_us_per_req",
    "server_cpu_us_per_req",
    "sent",
    "completed",
    "timeouts",
    "dropped",
    "vs_host_ratio",
    "backlog_pkts_per_req",
    "net_rx_per_req",
    "repeat",
    "windows",
    "window_p99_median_us",
];

fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| x.to_string())
        .unwrap_or_default()
}

/// `--csv PATH`: one row per point, full precision, empty cells where the axis has no value.
pub fn write_csv(r: &SweepReport, out: &mut dyn Write) -> Result<(), ReportError> {
    let mut w = ::csv::Writer::from_writer(out);
    w.write_record(CSV_HEADER)?;
    for p in &r.points {
        let l = &p.latency_us;
        let v = p.vs_direct.as_ref();
        let b = p.backlog.as_ref();
        let q = p.queueing.as_ref();
        w.write_record([
            r.axis.name().to_string(),
            p.style.map(|s| s.name().to_string()).unwrap_or_default(),
            p.mode.clone().unwrap_or_default(),
            p.placement.clone().unwrap_or_default(),
            p.n.to_string(),
            p.test.clone(),
            num(Some(l.mean)),
            num(l.ci95),
            num(Some(l.p50)),
            num(Some(l.p99)),
            num(Some(l.p99_9)),
            p.transactions.to_string(),
            p.rounds.to_string(),
            num(p.load_s),
            num(p.direct_latency_us.map(|d| d.mean)),
            num(p.direct_latency_us.map(|d| d.p50)),
            num(v.map(|v| v.ratio)),
            num(v.and_then(|v| v.ratio_ci95.map(|c| c.0))),
            num(v.and_then(|v| v.ratio_ci95.map(|c| c.1))),
            num(v.map(|v| v.delta_us)),
            b.map(|b| b.processed.to_string()).unwrap_or_default(),
            b.map(|b| b.dropped.to_string()).unwrap_or_default(),
            b.map(|b| b.time_squeeze.to_string()).unwrap_or_default(),
            num(p.neighbours_gbps),
            num(p.wire_gbps),
            q.map(|q| q.cpu.to_string()).unwrap_or_default(),
            num(q.map(|q| q.pkts_per_tx)),
            num(q.map(|q| q.net_rx_per_tx)),
            num(q.map(|q| q.softirq_share)),
            num(q.and_then(|q| q.backlog_len_mean)),
            num(q.and_then(|q| q.backlog_busy_share)),
            q.map(|q| q.backlog_samples.samples.to_string())
                .unwrap_or_default(),
            num(p.rate.map(|r| r.offered_rps)),
            num(p.rate.map(|r| r.achieved_rps)),
            num(p.rate.map(|r| r.cpu_us_per_req)),
            num(p.rate.map(|r| r.client_cpu_us_per_req)),
            num(p.rate.and_then(|r| r.server_cpu_us_per_req)),
            p.rate.map(|r| r.sent.to_string()).unwrap_or_default(),
            p.rate.map(|r| r.completed.to_string()).unwrap_or_default(),
            p.rate.map(|r| r.timeouts.to_string()).unwrap_or_default(),
            p.rate.map(|r| r.dropped.to_string()).unwrap_or_default(),
            num(p.rate.and_then(|r| r.vs_host.map(|v| v.ratio))),
            num(p
                .rate
                .and_then(|r| r.counters.map(|c| c.backlog_pkts_per_req))),
            num(p.rate.and_then(|r| r.counters.map(|c| c.net_rx_per_req))),
            p.rate
                .map(|r| if r.repeat { "1" } else { "0" }.to_string())
                .unwrap_or_default(),
            p.rate
                .map(|_| p.windows.len().to_string())
                .unwrap_or_default(),
            num(window_median_p99(p)),
        ])?;
    }
    w.flush()?;
    Ok(())
}

/// Writes a sweep's `--json`, `--csv` and `--html DIR` (DIR/index.html) outputs; returns the
/// HTML page's path when one was written.
pub fn write_outputs(
    r: &SweepReport,
    json: Option<&Path>,
    csv: Option<&Path>,
    html: Option<&Path>,
) -> Result<Option<PathBuf>, ReportError> {
    let create = |path: &Path| {
        std::fs::File::create(path)
            .map(std::io::BufWriter::new)
            .map_err(|error| ReportError::Path {
                path: path.display().to_string(),
                error,
            })
    };
    if let Some(p) = json {
        let mut f = create(p)?;
        serde_json::to_writer_pretty(&mut f, r)?;
        f.write_all(b"\n")?;
        f.flush()?;
    }
    if let Some(p) = csv {
        let mut f = create(p)?;
        write_csv(r, &mut f)?;
        f.flush()?;
    }
    match html {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|error| ReportError::Path {
                path: dir.display().to_string(),
                error,
            })?;
            let path = dir.join("index.html");
            let mut f = create(&path)?;
            super::html::render(&view(r), &mut f)?;
            f.flush()?;
            Ok(Some(path))
        }
        None => Ok(None),
    }
}

fn sample_latency(mean: f64, ci: f64) -> Latency {
    Latency {
        mean,
        p50: mean * 0.97,
        p99: mean * 1.6,
        p99_9: mean * 2.4,
        ci95: Some(ci),
    }
}

/// A fixed Service sweep for tests and examples (numbers made up, shapes real).
#[doc(hidden)]
pub fn sample_services() -> SweepReport {
    use crate::sweep::services::Style;
    let mut points = Vec::new();
    for (style, slope) in [(Style::Iptables, 0.009), (Style::Nftables, 0.0)] {
        for n in [0usize, 1000, 5000, 10000, 30000] {
            let mean = 40.0 + slope * n as f64;
            points.push(Point {
                style: Some(style),
                mode: None,
                n,
                test: "TCP_CRR".into(),
                placement: None,
                latency_us: sample_latency(mean, 0.8),
                transactions: 20_000,
                rounds: 200,
                load_s: Some(n as f64 / 20_000.0 + 0.01),
                direct_latency_us: Some(sample_latency(39.0, 0.7)),
                vs_direct: Some(VsReference {
                    ratio: mean / 39.0,
                    ratio_ci95: Some((mean / 39.0 - 0.01, mean / 39.0 + 0.01)),
                    delta_us: mean - 39.0,
                    delta_ci95: Some((mean - 39.5, mean - 38.5)),
                }),
                backlog: None,
                wire_gbps: None,
                neighbours_gbps: None,
                queueing: None,
                rate: None,
                windows: Vec::new(),
            });
        }
    }
    SweepReport {
        axis: Axis::Services,
        duration_s: 3.0,
        cpus: "client CPU 0, server CPU 1".into(),
        kernel: "6.18.0-test".into(),
        host_name: Some("lab-machine".into()),
        points,
        notes: vec!["the measured Service is last in KUBE-SERVICES (worst-case walk)".into()],
        unavailable: vec![],
        knees: Vec::new(),
    }
}

/// A fixed load sweep for tests and examples (numbers made up, shapes real).
#[doc(hidden)]
pub fn sample_load() -> SweepReport {
    let mut points = Vec::new();
    for (mode, slope) in [("bridge", 9.0), ("macvlan", 2.0)] {
        for k in [0usize, 1, 2, 4] {
            let mean = 20.0 + slope * k as f64;
            points.push(Point {
                style: None,
                mode: Some(mode.into()),
                n: k,
                test: "TCP_RR".into(),
                placement: Some("same".into()),
                latency_us: sample_latency(mean, 0.5),
                transactions: 100_000,
                rounds: 1,
                load_s: None,
                direct_latency_us: None,
                vs_direct: None,
                backlog: Some(Backlog {
                    processed: 1_000_000 * k as u64 + 1000,
                    dropped: 0,
                    time_squeeze: 10 * k as u64,
                    elapsed_s: 3.0,
                }),
                wire_gbps: Some(0.05 + 5.0 * k as f64),
                neighbours_gbps: (k > 0).then_some(5.0 * k as f64),
                queueing: Some(Queueing {
                    cpu: 0,
                    pkts_per_tx: 4.0 + slope * k as f64,
                    net_rx_per_tx: 0.5,
                    softirq_share: 0.1 * k as f64,
                    backlog_len_mean: Some(0.01 * slope * k as f64),
                    backlog_busy_share: Some(0.01 * slope * k as f64),
                    backlog_samples: crate::sweep::model::BacklogSamples {
                        samples: 3000,
                        nonzero: (30.0 * slope * k as f64) as u64,
                        sum: (30.0 * slope * k as f64) as u64,
                        max: k as u32,
                    },
                }),
                rate: None,
                windows: Vec::new(),
            });
        }
    }
    SweepReport {
        axis: Axis::Load,
        duration_s: 3.0,
        cpus: "victim client CPU 0, servers CPU 1".into(),
        kernel: "6.18.0-test".into(),
        host_name: None,
        points,
        notes: vec![],
        unavailable: vec!["ipvlan-l2: kernel has no ipvlan support".into()],
        knees: Vec::new(),
    }
}

/// A fixed rate sweep for tests and examples (numbers made up, shapes real: flat until the
/// knee, then a wall).
#[doc(hidden)]
pub fn sample_rate() -> SweepReport {
    use crate::sweep::model::{RateCounters, RateFigures, RateWindow};
    let mut points = Vec::new();
    for (mode, cap) in [("host", 100_000.0), ("bridge", 70_000.0)] {
        for rate in [10_000.0, 40_000.0, 80_000.0, 120_000.0] {
            let rho: f64 = rate / cap;
            let p99 = if rho < 1.0 {
                30.0 / (1.0 - rho)
            } else {
                50_000.0
            };
            points.push(Point {
                style: None,
                mode: Some(mode.into()),
                n: rate as usize,
                test: "TCP_RR".into(),
                placement: None,
                latency_us: Latency {
                    mean: p99 / 2.0,
                    p50: p99 / 2.5,
                    p99,
                    p99_9: p99 * 1.5,
                    ci95: Some(0.5),
                },
                transactions: (rate / 10.0) as u64,
                rounds: 20,
                load_s: None,
                direct_latency_us: None,
                vs_direct: None,
                backlog: None,
                wire_gbps: None,
                neighbours_gbps: None,
                queueing: None,
                windows: vec![
                    RateWindow {
                        p50_us: p99 / 2.5,
                        p99_us: p99,
                        achieved_rps: rate.min(cap),
                        completed: (rate / 100.0) as u64,
                        lost: 0,
                    };
                    10
                ],
                rate: Some(RateFigures {
                    offered_rps: rate,
                    achieved_rps: rate.min(cap),
                    cpu_us_per_req: 8.0 * 100_000.0 / cap,
                    client_cpu_us_per_req: 3.0,
                    server_cpu_us_per_req: Some(8.0 * 100_000.0 / cap - 3.0),
                    generator_busy: 0.3,
                    max_issue_lag_us: 12.0,
                    sent: (rate / 10.0) as u64,
                    completed: (rate / 10.0) as u64,
                    timeouts: 0,
                    dropped: 0,
                    connections: 1,
                    vs_host: (mode != "host").then_some(VsReference {
                        ratio: 1.3,
                        ratio_ci95: Some((1.25, 1.35)),
                        delta_us: 9.0,
                        delta_ci95: Some((8.0, 10.0)),
                    }),
                    counters: Some(RateCounters {
                        backlog_pkts_per_req: if mode == "host" { 2.0 } else { 5.0 },
                        net_rx_per_req: 1.0,
                        softirq_us_per_req: 2.0,
                        dropped: 0,
                        time_squeeze: 0,
                    }),
                    repeat: false,
                }),
            });
        }
    }
    SweepReport {
        knees: crate::sweep::knee::knees(&points, &["host".into(), "bridge".into()], 3.0),
        axis: Axis::Rate,
        duration_s: 1.0,
        cpus: "client CPU 0, servers CPU 1".into(),
        kernel: "6.18.0-test".into(),
        host_name: None,
        points,
        notes: vec![],
        unavailable: vec![],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweep_view_has_a_table_and_two_curve_plots_per_test() {
        let v = view(&sample_services());
        let s = &v.sections[0];
        assert_eq!(s.title.as_deref(), Some("TCP_CRR"));
        let Block::Table(t) = &s.blocks[0] else {
            panic!("table first")
        };
        assert_eq!(t.rows.len(), 10);
        assert!(t.rows.iter().all(|r| r.len() == t.header.len()));
        let plots: Vec<&CurvePlot> = s
            .blocks
            .iter()
            .filter_map(|b| match b {
                Block::Plot(Plot::Curves(c)) => Some(c),
                _ => None,
            })
            .collect();
        assert_eq!(plots.len(), 2);
        assert_eq!(plots[0].series.len(), 2, "one curve per style");
        assert_eq!(plots[0].series[0].points.len(), 5);
        assert!(!plots[0].log_x, "N = 0 cannot go on a log axis");
        let p = plots[0].series[0].points[1];
        assert!(p.lo < p.y && p.y < p.hi, "CI band");
    }

    #[test]
    fn csv_has_every_point_and_empty_cells_off_axis() {
        let mut buf = Vec::new();
        write_csv(&sample_load(), &mut buf).unwrap();
        let mut rd = ::csv::Reader::from_reader(buf.as_slice());
        let h = rd.headers().unwrap().clone();
        let col = |n: &str| h.iter().position(|x| x == n).unwrap();
        let rows: Vec<::csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 8);
        assert_eq!(&rows[0][col("axis")], "load");
        assert_eq!(&rows[0][col("style")], "");
        assert_eq!(&rows[3][col("n")], "4");
        assert_eq!(&rows[3][col("backlog_time_squeeze")], "40");
        assert_eq!(&rows[0][col("load_s")], "");
        assert_eq!(&rows[3][col("victim_cpu_pkts_per_tx")], "40");
        assert_eq!(&rows[3][col("victim_backlog_samples")], "3000");
    }

    #[test]
    fn text_formats_render_the_sweep() {
        let mut buf = Vec::new();
        super::super::table::render(&view(&sample_load()), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.contains("bridge, same CPU"), "{text}");
        assert!(text.contains("Not measured:"), "{text}");
        let mut buf = Vec::new();
        super::super::html::render(&view(&sample_load()), &mut buf).unwrap();
        let html = String::from_utf8(buf).unwrap();
        assert_eq!(
            html.matches("<svg").count(),
            3,
            "mean, p99 and the victim CPU's packets per transaction"
        );
    }

    #[test]
    fn rate_sweep_has_knees_curves_on_a_log_latency_axis_and_the_json_keys() {
        let r = sample_rate();
        let v = view(&r);
        assert_eq!(
            v.sections[0].title.as_deref(),
            Some("Capacity: knee (p99 bound), wall (99% achieved), kept")
        );
        let Block::Table(cap) = &v.sections[0].blocks[0] else {
            panic!("the capacity table")
        };
        assert_eq!(cap.rows[1][0], "bridge");
        // Knee and wall as (last under–first over), measured once: "?"; the ratio's interval.
        assert_eq!(cap.rows[1][3], "40000–80000 ?");
        assert_eq!(cap.rows[0][5], "80000–120000 ?");
        assert_eq!(cap.rows[1][5], "40000–80000 ?");
        assert_eq!(cap.rows[1][6], "0.500 [0.333, 1.000]");
        assert_eq!(
            cap.rows[1][7], "70000 ± 0",
            "kept: the achieved rate at the wall"
        );
        let s = &v.sections[1];
        let Block::Table(t) = &s.blocks[0] else {
            panic!("table first")
        };
        assert_eq!(t.rows.len(), 8);
        assert!(t.rows.iter().all(|r| r.len() == t.header.len()));
        let Block::Plot(Plot::Curves(p99)) = &s.blocks[1] else {
            panic!("p99 curves next")
        };
        assert_eq!(p99.series.len(), 2);
        assert_eq!(p99.series[0].points[0].x, 10_000.0, "x is the offered rate");
        let svg = super::super::plots::curves_svg(p99).unwrap();
        assert!(svg.contains("<polyline"));
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["axis"], "rate");
        let p = &json["points"][1];
        for k in ["mode", "offered_rps", "achieved_rps", "cpu_us_per_req"] {
            assert!(!p[k].is_null(), "{k} in {p}");
        }
        for k in ["p50", "p99", "p99_9", "mean", "ci95"] {
            assert!(p["latency_us"][k].is_number(), "latency_us.{k}");
        }
        let back: SweepReport = serde_json::from_value(json).unwrap();
        assert_eq!(back, r);
        let mut buf = Vec::new();
        write_csv(&r, &mut buf).unwrap();
        let mut rd = ::csv::Reader::from_reader(buf.as_slice());
        let h = rd.headers().unwrap().clone();
        let col = |n: &str| h.iter().position(|x| x == n).unwrap();
        let rows: Vec<::csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 8);
        assert_eq!(&rows[2][col("offered_rps")], "80000");
        assert_eq!(&rows[2][col("axis")], "rate");
        // Off the rate axis the new columns are empty.
        let mut buf = Vec::new();
        write_csv(&sample_load(), &mut buf).unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert!(text.lines().nth(1).unwrap().ends_with(",,,,,,,,,,,"));
    }
}
