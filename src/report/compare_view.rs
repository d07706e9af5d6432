//! The view of a compare report, built once: header facts, flags, the recommendation, the main
//! table (every column, or the compact one), verdict, tracepoints, explain and plots, and the
//! `--target` section from targets.rs. This module owns the cells' formatting (decimals, dashes,
//! signs); it does no I/O.

use super::view::{
    Align, Bar, BarPlot, Block, CdfPlot, CdfSeries, Fact, PercentilePlot, PercentileSeries, Plot,
    Section, TableView, View, WarningView,
};
use super::{display_row, headline, opt, tracepoint_names, DISPLAY_HEADERS};
use crate::compare::{CompareReport, ScheduleKind};

/// How much of the main table to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every column (files: Markdown, HTML; the terminal with `--wide`).
    Wide,
    /// The terminal's default: the columns that answer the question, and of the counters only
    /// those that tell the modes apart in this run.
    Compact,
}

/// The view of a [`CompareReport`], every column.
pub fn compare(r: &CompareReport) -> View {
    compare_with(r, Detail::Wide)
}

/// The columns of the compact main table: mode, latency, p99, vs host, the counters.
const COMPACT: [usize; 7] = [0, 1, 3, 6, 8, 9, 10];

/// Whether a column of the main table says something in this run: not the same value (e.g.
/// "—" everywhere: `path CPU µs` without `--waterfall`) in every measured row.
fn informative(r: &CompareReport, rows: &[Vec<String>], col: usize) -> bool {
    let measured: Vec<&Vec<String>> = r
        .modes
        .iter()
        .zip(rows)
        .filter(|(m, _)| m.available)
        .map(|(_, row)| row)
        .collect();
    !(measured.len() > 1 && measured.iter().all(|row| row[col] == measured[0][col]))
}

/// The view of a [`CompareReport`] at a level of detail.
pub fn compare_with(r: &CompareReport, detail: Detail) -> View {
    let mut sections = Vec::new();
    let flags = super::flag_lines(r);
    if !flags.is_empty() {
        sections.push(Section::new(
            None,
            flags.into_iter().map(Block::Text).collect(),
        ));
    }
    // Computed once, when the comparison finished the report.
    if !r.recommendation.is_empty() {
        sections.push(Section::new(
            Some("Recommendation".into()),
            vec![Block::Bullets(r.recommendation.clone())],
        ));
    }
    let mut main = main_blocks(r);
    if detail == Detail::Compact {
        if let Some(Block::Table(t)) = main.first_mut() {
            let keep: Vec<usize> = COMPACT
                .into_iter()
                .filter(|&c| c < 8 || informative(r, &t.rows, c))
                .collect();
            let left_out: Vec<&str> = (0..t.header.len())
                .filter(|c| !keep.contains(c))
                .map(|c| DISPLAY_HEADERS[c])
                .collect();
            t.header = keep.iter().map(|&c| t.header[c].clone()).collect();
            t.rows = t
                .rows
                .iter()
                .map(|row| keep.iter().map(|&c| row[c].clone()).collect())
                .collect();
            if !left_out.is_empty() {
                main.insert(
                    1,
                    Block::Text(format!(
                        "(left out: {}; --wide shows every column)",
                        left_out.join(", ")
                    )),
                );
            }
        }
    }
    sections.push(Section::new(None, main));
    if let Some(targets) = super::targets::section(r) {
        sections.push(targets);
    }
    if let Some(w) = super::waterfall::section(r) {
        sections.push(w);
    }
    let why = crate::compare::recommend::why_lines(r);
    if !why.is_empty() {
        sections.push(Section::new(
            Some("Why (backlog packets per round trip, from /proc/net/softnet_stat)".into()),
            vec![Block::Bullets(why)],
        ));
    }
    let tps = tracepoint_names(r);
    if !tps.is_empty() {
        let mut header = vec!["mode".to_string()];
        header.extend(tps.iter().cloned());
        let rows = r
            .modes
            .iter()
            .filter(|m| m.available)
            .map(|m| {
                let mut c = vec![m.mode.clone()];
                c.extend(
                    tps.iter()
                        .map(|n| opt(m.probes.tracepoints_per_tx.get(n).copied(), 2)),
                );
                c
            })
            .collect();
        sections.push(Section::new(
            Some("Tracepoints per transaction".into()),
            vec![Block::Table(TableView::figures(header, rows))],
        ));
    }
    if let Some(e) = &r.explain {
        sections.push(explain_section(e));
    }
    match r.checks.as_ref() {
        Some(crate::check::ChecksOutcome::Matrix(m)) => {
            let (header, rows) = super::checks::table_rows(m);
            let mut blocks = vec![Block::Table(TableView {
                header,
                rows,
                align: Align::Center,
            })];
            let notes = super::checks::notes(m);
            if !notes.is_empty() {
                blocks.push(Block::Bullets(notes));
            }
            sections.push(Section::new(Some(super::checks::title(m)), blocks));
        }
        Some(crate::check::ChecksOutcome::Failed { error }) => sections.push(Section::new(
            None,
            vec![Block::Text(format!("Feature checks not run: {error}"))],
        )),
        None => {}
    }
    sections.push(Section::new(
        Some(if r.flags.is_empty() {
            "Verdict".into()
        } else {
            "Verdict (FLAGGED: see above)".into()
        }),
        vec![Block::Bullets(r.verdict.clone())],
    ));
    if !r.warnings.is_empty() {
        sections.push(Section::new(
            None,
            vec![Block::Warnings(
                r.warnings
                    .iter()
                    .map(|w| WarningView {
                        message: w.message.clone(),
                        remedy: w.remedy.clone(),
                    })
                    .collect(),
            )],
        ));
    }
    View {
        title: format!(
            "nslat compare: {} {},{}",
            r.test, r.request_size, r.response_size
        ),
        headline: headline(r),
        facts: facts(r),
        sections,
    }
}

/// The run's particulars for the page header: what the report knows of them.
fn facts(r: &CompareReport) -> Vec<Fact> {
    let fact = |label: &str, value: String| Fact {
        label: label.into(),
        value,
    };
    let mut out = Vec::new();
    let ctx = r.context.as_ref();
    if let Some(c) = ctx {
        out.push(fact(
            "Date (UTC)",
            c.started_utc
                .replace('T', " ")
                .trim_end_matches('Z')
                .to_string(),
        ));
        if !c.command_line.is_empty() {
            out.push(fact("Command", c.command()));
        }
    }
    let mut machine = vec![r.host_name.clone().unwrap_or_else(|| "unnamed host".into())];
    if !r.kernel.is_empty() {
        machine.push(format!("kernel {}", r.kernel));
    }
    if let Some(c) = ctx {
        match (c.cpu_count, &c.cpu_model) {
            (Some(n), Some(m)) => machine.push(format!("{n} CPUs ({m})")),
            (Some(n), None) => machine.push(format!("{n} CPUs")),
            (None, Some(m)) => machine.push(m.clone()),
            (None, None) => {}
        }
    }
    out.push(fact("Machine", machine.join(" · ")));
    out.push(fact(
        "CPU placement",
        super::placement_text(&r.cpu_placement),
    ));
    out.push(fact("Baseline", r.baseline.describe()));
    if let Some(p) = &r.pair {
        out.push(fact(
            "Node pair",
            format!("{} → {} ({} network)", p.node, p.peer, p.peer_network),
        ));
    }
    out
}

/// The main table, its footnote and the two plots.
fn main_blocks(r: &CompareReport) -> Vec<Block> {
    let table = TableView::figures(
        DISPLAY_HEADERS.map(String::from).to_vec(),
        r.modes.iter().map(display_row).collect(),
    );
    let measured = || r.modes.iter().enumerate().filter(|(_, m)| m.available);
    let cdf = CdfPlot {
        title: format!(
            "Latency CDF, {} {},{} (up to the largest p99; the tail is in the plot above)",
            r.test, r.request_size, r.response_size
        ),
        series: measured()
            .filter(|(_, m)| !m.cdf.is_empty())
            .map(|(i, m)| CdfSeries {
                name: m.mode.clone(),
                color: i,
                points: m.cdf.clone(),
            })
            .collect(),
        x_max: measured()
            .filter(|(_, m)| !m.cdf.is_empty())
            .filter_map(|(_, m)| m.latency_us.map(|l| l.p99))
            .reduce(f64::max),
    };
    let percentiles = PercentilePlot {
        title: format!(
            "Latency by percentile, {} {},{} (all transactions, log tail axis)",
            r.test, r.request_size, r.response_size
        ),
        series: measured()
            .map(|(i, m)| PercentileSeries {
                name: m.mode.clone(),
                color: i,
                points: percentile_points(m),
                transactions: m.reps.iter().map(|rep| rep.transactions).sum(),
            })
            .filter(|s| !s.points.is_empty())
            .collect(),
    };
    let bars = BarPlot {
        title: "Mean latency per round trip, with 95% confidence interval".into(),
        bars: measured()
            .filter_map(|(i, m)| {
                m.latency_us.map(|l| Bar {
                    name: m.mode.clone(),
                    color: i,
                    mean: l.mean,
                    ci95: l.ci95.unwrap_or(0.0),
                })
            })
            .collect(),
    };
    vec![
        Block::Table(table),
        Block::Text(match r.schedule {
            ScheduleKind::Interleaved => {
                format!("*: significant: {}", super::SIGNIFICANT_INTERLEAVED)
            }
            ScheduleKind::Runs => format!("*: {}", super::SIGNIFICANT_RUNS),
        }),
        Block::Plot(Plot::Percentiles(percentiles)),
        Block::Plot(Plot::Cdf(cdf)),
        Block::Plot(Plot::Bars(bars)),
    ]
}

/// The `--explain` breakdown: one baseline throughout, named in the title and its row.
fn explain_section(e: &crate::compare::Explain) -> Section {
    let pm = |c: Option<f64>| c.map(|h| format!(" ±{h:.2}")).unwrap_or_default();
    let mut rows = vec![vec![
        format!("{} (baseline)", e.baseline),
        format!("{:.2}{}", e.baseline_us, pm(e.baseline_ci95)),
        super::DASH.into(),
        super::DASH.into(),
        super::DASH.into(),
    ]];
    rows.extend(e.parts.iter().map(|p| {
        let ratio = match p.ratio {
            Some(r) => match r.ci95 {
                Some((lo, hi)) => format!("{:.3} [{lo:.3}, {hi:.3}]", r.estimate),
                None => format!("{:.3}", r.estimate),
            },
            None => super::DASH.into(),
        };
        let adds = match p.adds_ci95 {
            Some((lo, hi)) => format!("{:+.2} [{lo:+.2}, {hi:+.2}]", p.adds_us),
            None => format!("{:+.2}", p.adds_us),
        };
        vec![
            p.name.clone(),
            format!("{:.2}{}", p.latency_us, pm(p.ci95)),
            ratio,
            adds,
            format!("{:.0}%", p.share * 100.0),
        ]
    }));
    let mut blocks = vec![Block::Table(TableView::figures(
        [
            "variant",
            "latency µs ±95%",
            "× baseline [95% CI]",
            "adds µs [95% CI]",
            "share of gap",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    ))];
    blocks.extend(e.notes.iter().cloned().map(Block::Text));
    if let Some(m) = &e.ci_method {
        blocks.push(Block::Text(format!("intervals: {m}")));
    }
    Section::new(
        Some(format!(
            "Where {}'s {:+.2} µs over the baseline go (baseline: '{}', the explain run's own, \
             not the main table's host)",
            e.target, e.gap_us, e.baseline
        )),
        blocks,
    )
}

/// A mode's percentile distribution below 100%: the histogram's (kept since reports carry
/// it), else the CDF's points turned round (older reports).
fn percentile_points(m: &crate::compare::ModeResult) -> Vec<(f64, f64)> {
    let points: Vec<(f64, f64)> = if m.percentiles.is_empty() {
        m.cdf.iter().map(|&(us, q)| (q, us)).collect()
    } else {
        m.percentiles.clone()
    };
    points.into_iter().filter(|(q, _)| *q < 1.0).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compare_view_has_each_table_once() {
        let v = compare(&super::super::sample_report());
        let tables: usize = v
            .sections
            .iter()
            .flat_map(|s| &s.blocks)
            .filter(|b| matches!(b, Block::Table(_)))
            .count();
        // main, tracepoints, explain
        assert_eq!(tables, 3);
        let titles: Vec<_> = v.sections.iter().filter_map(|s| s.title.clone()).collect();
        assert!(titles.contains(&"Verdict".to_string()), "{titles:?}");
        assert!(titles.iter().any(|t| t.starts_with("Where bridge's")));
        for s in &v.sections {
            for b in &s.blocks {
                if let Block::Table(t) = b {
                    assert!(t.rows.iter().all(|r| r.len() == t.header.len()));
                }
            }
        }
    }
}
