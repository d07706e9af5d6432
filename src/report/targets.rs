//! The `--target` part of a report: per target, its ratio to the host with the CI, the lab's
//! figure for the mode it looks like beside it, and where and what its path is.

use std::io::Write;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::ReportError;
use crate::compare::CompareReport;

fn ratio(r: Option<f64>, ci: Option<f64>) -> String {
    match (r, ci) {
        (Some(r), Some(c)) => format!("{r:.3} ± {c:.3}"),
        (Some(r), None) => format!("{r:.3}"),
        _ => "-".into(),
    }
}

/// Writes the targets table and one description line per target; nothing without targets.
pub fn write_targets(r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
    let rows: Vec<_> = r
        .modes
        .iter()
        .filter_map(|m| m.target.as_ref().map(|t| (m, t)))
        .collect();
    if rows.is_empty() {
        return Ok(());
    }
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(vec![
            "target",
            "spec",
            "looks like",
            "ratio to host (95% CI)",
            "lab's ratio (95% CI)",
            "difference",
            "backlog pkts/tx",
        ]);
    for (m, tg) in &rows {
        let real = if m.available {
            ratio(tg.ratio, tg.ratio_ci95)
        } else {
            "failed".into()
        };
        let lab = tg
            .lab
            .as_ref()
            .map(|l| ratio(Some(l.ratio), l.ratio_ci95))
            .unwrap_or_else(|| match tg.looks_like.as_deref() {
                Some("host") => "1 (is host)".into(),
                _ => "-".into(),
            });
        let diff = match (tg.ratio, &tg.lab) {
            (Some(a), Some(l)) if m.available => format!("{:+.1} points", (a - l.ratio) * 100.0),
            _ => "-".into(),
        };
        t.add_row(vec![
            m.mode.clone(),
            tg.spec.clone(),
            tg.looks_like.clone().unwrap_or_else(|| "-".into()),
            real,
            lab,
            diff,
            tg.path
                .backlog_pkts_per_tx
                .map(|b| format!("{b:.2}"))
                .unwrap_or_else(|| "-".into()),
        ]);
    }
    for i in 3..7 {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    writeln!(out, "{t}")?;
    for (m, tg) in &rows {
        writeln!(
            out,
            "{}: {} via {}: {}",
            m.mode,
            tg.resolved_netns,
            tg.resolved_by,
            tg.path.summary()
        )?;
        if let Some(why) = m.reason.as_deref().filter(|_| !m.available) {
            writeln!(out, "{}: {why}", m.mode)?;
        }
        for n in &tg.path.notes {
            writeln!(out, "{}: note: {n}", m.mode)?;
        }
    }
    writeln!(
        out,
        "ratios are paired by round (each round measures every path once); the lab's ratio is its mode over lab/host against the lab's own remote"
    )?;
    Ok(())
}
