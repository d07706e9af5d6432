//! The fleet report's formats: one display table (terminal and HTML), flat CSV rows at full
//! precision, and JSON. Writes to any `Write`; never reads or measures anything.

use std::io::Write;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::merge::{FleetPath, FleetReport, RatioCiSource};
use super::FleetError;
use crate::report::html::escape;

const DASH: &str = "–";

/// The human-readable table's columns.
pub const DISPLAY_HEADERS: [&str; 7] = [
    "node → peer",
    "path",
    "latency µs (95% CI)",
    "p99 µs",
    "ratio (95% CI)",
    "p-value",
    "reps / rounds",
];

/// One line saying what was merged.
pub fn headline(f: &FleetReport) -> String {
    let paths: usize = f.pairs.iter().map(|p| p.paths.len()).sum();
    let cpu = f
        .cpu_placement
        .as_deref()
        .map(|c| format!(" · CPU placement {c}"))
        .unwrap_or_default();
    let n = |count: usize, one: &str, many: &str| {
        format!("{count} {}", if count == 1 { one } else { many })
    };
    format!(
        "fleet: {} {},{}{cpu} · {}, {} from {} · worst pair first",
        f.test,
        f.request_size,
        f.response_size,
        n(f.pairs.len(), "node pair", "node pairs"),
        n(paths, "path", "paths"),
        n(f.sources.len(), "file", "files"),
    )
}

fn p_value(p: Option<f64>) -> String {
    match p {
        Some(p) if p < 0.001 => "<0.001".into(),
        Some(p) => format!("{p:.3}"),
        None => DASH.into(),
    }
}

fn ratio_cell(p: &FleetPath) -> String {
    if p.mode == p.baseline {
        return "1 (baseline)".into();
    }
    let Some(r) = p.ratio else {
        return DASH.into();
    };
    let star = if p.significant { " *" } else { "" };
    match p.ratio_ci95 {
        Some([lo, hi]) => format!("{r:.3} [{lo:.3}, {hi:.3}]{star}"),
        None => format!("{r:.3}{star}"),
    }
}

/// The display rows, pair by pair (the pair named on its first row only).
pub fn display_rows(f: &FleetReport) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for pair in &f.pairs {
        for (i, p) in pair.paths.iter().enumerate() {
            let name = if i == 0 {
                format!("{} → {}", pair.node, pair.peer)
            } else {
                String::new()
            };
            if !p.available {
                // The reason is a footnote: a long cell would widen the whole column.
                let mut row = vec![name, p.path.clone(), "not available".to_string()];
                row.resize(DISPLAY_HEADERS.len(), DASH.into());
                rows.push(row);
                continue;
            }
            let latency = match (p.latency_us, p.latency_ci95) {
                (Some(m), Some(h)) => format!("{m:.2} ± {h:.2}"),
                (Some(m), None) => format!("{m:.2}"),
                _ => DASH.into(),
            };
            rows.push(vec![
                name,
                p.path.clone(),
                latency,
                p.latency_p99_us
                    .map(|v| format!("{v:.2}"))
                    .unwrap_or_else(|| DASH.into()),
                ratio_cell(p),
                p_value(p.p_value),
                match p.rounds {
                    Some(r) => format!("{r} rounds"),
                    None => p.reps.to_string(),
                },
            ]);
        }
    }
    rows
}

fn footnotes(f: &FleetReport) -> Vec<String> {
    let paths = || f.pairs.iter().flat_map(|p| &p.paths);
    let mut notes = vec![
        "ratio: the path's mean latency / its baseline's (the node itself to the same peer \
         network)"
            .to_string(),
    ];
    if paths().any(|p| p.rounds.is_some()) {
        notes.push(format!(
            "rounds: interleaved reports, each path measured in blocks alternating with its \
             baseline's; *: {}",
            crate::report::SIGNIFICANT_INTERLEAVED
        ));
    }
    if paths().any(|p| p.rounds.is_none() && p.mode != p.baseline) {
        notes.push(format!(
            "reps: reports of separate runs; *: {}",
            crate::report::SIGNIFICANT_RUNS
        ));
    }
    for pair in &f.pairs {
        for p in pair.paths.iter().filter(|p| !p.available) {
            notes.push(format!(
                "{} → {} {}: not available ({})",
                pair.node,
                pair.peer,
                p.path,
                p.reason.as_deref().unwrap_or("not measured")
            ));
        }
    }
    let propagated = f
        .pairs
        .iter()
        .flat_map(|p| &p.paths)
        .any(|p| p.ratio_ci_source == Some(RatioCiSource::Propagated));
    if propagated {
        notes.push(
            "ratio intervals propagated from the two means' 95% intervals (the inputs carry \
             no ratio interval of their own)"
                .to_string(),
        );
    }
    notes
}

/// The terminal table.
pub fn write_table(f: &FleetReport, out: &mut dyn Write) -> Result<(), FleetError> {
    writeln!(out, "{}", headline(f))?;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(DISPLAY_HEADERS.to_vec());
    for row in display_rows(f) {
        t.add_row(row);
    }
    for i in 2..DISPLAY_HEADERS.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(out, "{t}")?;
    for n in footnotes(f) {
        writeln!(out, "{n}")?;
    }
    Ok(())
}

/// JSON: the [`FleetReport`] itself.
pub fn write_json(f: &FleetReport, out: &mut dyn Write) -> Result<(), FleetError> {
    serde_json::to_writer_pretty(&mut *out, f)?;
    writeln!(out)?;
    Ok(())
}

/// The CSV columns: one row per pair and path.
pub const CSV_HEADERS: [&str; 22] = [
    "node",
    "peer",
    "path",
    "mode",
    "peer_network",
    "baseline",
    "test",
    "request_size",
    "response_size",
    "available",
    "reason",
    "latency_us_mean",
    "latency_us_ci95",
    "latency_us_p99",
    "reps",
    "ratio",
    "ratio_ci95_low",
    "ratio_ci95_high",
    "p_value",
    "significant",
    "source",
    "rounds",
];

fn num(v: Option<f64>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

/// CSV with a header row, full precision, empty cells for missing values.
pub fn write_csv(f: &FleetReport, out: &mut dyn Write) -> Result<(), FleetError> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(CSV_HEADERS)?;
    for pair in &f.pairs {
        for p in &pair.paths {
            w.write_record([
                pair.node.clone(),
                pair.peer.clone(),
                p.path.clone(),
                p.mode.clone(),
                p.peer_network.to_string(),
                p.baseline.clone(),
                f.test.clone(),
                f.request_size.to_string(),
                f.response_size.to_string(),
                p.available.to_string(),
                p.reason.clone().unwrap_or_default(),
                num(p.latency_us),
                num(p.latency_ci95),
                num(p.latency_p99_us),
                p.reps.to_string(),
                num(p.ratio),
                num(p.ratio_ci95.map(|c| c[0])),
                num(p.ratio_ci95.map(|c| c[1])),
                num(p.p_value),
                p.significant.to_string(),
                p.source.clone(),
                p.rounds.map(|r| r.to_string()).unwrap_or_default(),
            ])?;
        }
    }
    w.flush()?;
    Ok(())
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1100px;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:4px 8px}\
td{text-align:right}td:nth-child(-n+2){text-align:left}th{background:#eee}";

/// A self-contained HTML page (no scripts, no external files) with the display table.
pub fn write_html(f: &FleetReport, out: &mut dyn Write) -> Result<(), FleetError> {
    let title = escape(&headline(f));
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title}</title><style>{STYLE}</style></head><body>\n<h1>nslat fleet report</h1>\n<p>{title}</p>"
    )?;
    writeln!(
        out,
        "<table>\n<tr>{}</tr>",
        DISPLAY_HEADERS
            .iter()
            .map(|h| format!("<th>{}</th>", escape(h)))
            .collect::<String>()
    )?;
    for row in display_rows(f) {
        writeln!(
            out,
            "<tr>{}</tr>",
            row.iter()
                .map(|c| format!("<td>{}</td>", escape(c)))
                .collect::<String>()
        )?;
    }
    writeln!(out, "</table>")?;
    for n in footnotes(f) {
        writeln!(out, "<p>{}</p>", escape(&n))?;
    }
    writeln!(
        out,
        "<p>Sources: {}</p>\n</body></html>",
        escape(&f.sources.join(", "))
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PeerNetwork;
    use crate::fleet::merge::FleetPair;

    fn path(mode: &str, ratio: Option<f64>) -> FleetPath {
        FleetPath {
            path: format!("{mode}→host"),
            mode: mode.into(),
            peer_network: PeerNetwork::Host,
            baseline: "host".into(),
            available: true,
            reason: None,
            latency_us: Some(10.0 * ratio.unwrap_or(1.0)),
            latency_ci95: Some(0.1),
            latency_p99_us: Some(20.0),
            reps: 5,
            rounds: None,
            ratio,
            ratio_ci95: ratio.map(|r| [r - 0.01, r + 0.01]),
            ratio_ci_source: ratio.map(|_| RatioCiSource::Propagated),
            p_value: ratio.map(|_| 0.0001),
            significant: ratio.is_some(),
            source: "a<b>.json".into(),
        }
    }

    fn fleet() -> FleetReport {
        FleetReport {
            test: "TCP_RR".into(),
            request_size: 1,
            response_size: 1,
            cpu_placement: Some("same".into()),
            sources: vec!["a<b>.json".into()],
            pairs: vec![FleetPair {
                node: "a".into(),
                peer: "b".into(),
                worst_ratio: 1.25,
                paths: vec![path("host", None), path("pod", Some(1.25))],
            }],
        }
    }

    #[test]
    fn display_rows_name_the_pair_once_and_show_intervals() {
        let rows = display_rows(&fleet());
        assert_eq!(rows[0][..2], ["a → b".to_string(), "host→host".into()]);
        assert_eq!(rows[0][4], "1 (baseline)");
        assert_eq!(rows[1][0], "");
        assert_eq!(rows[1][2], "12.50 ± 0.10");
        assert_eq!(rows[1][4], "1.250 [1.240, 1.260] *");
        assert_eq!(rows[1][5], "<0.001");
    }

    #[test]
    fn csv_json_and_html_round_trip_or_escape() {
        let f = fleet();
        let mut csv_out = Vec::new();
        write_csv(&f, &mut csv_out).unwrap();
        let mut rd = csv::Reader::from_reader(&csv_out[..]);
        assert_eq!(rd.headers().unwrap().len(), CSV_HEADERS.len());
        let rows: Vec<csv::StringRecord> = rd.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[1][15], "1.25");
        assert_eq!(&rows[0][15], "");

        let mut json = Vec::new();
        write_json(&f, &mut json).unwrap();
        let back: FleetReport = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, f);

        let mut html = Vec::new();
        write_html(&f, &mut html).unwrap();
        let html = String::from_utf8(html).unwrap();
        assert!(html.contains("a&lt;b&gt;.json") && !html.contains("a<b>.json"));
        assert!(html.contains("1.250 [1.240, 1.260] *"));
    }
}
