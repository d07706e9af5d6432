//! The terminal report: a headline, the comfy-table table, the verdict and the warnings.

use std::io::Write;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::{display_row, headline, opt, tracepoint_names, Exporter, ReportError, DISPLAY_HEADERS};
use crate::compare::CompareReport;

/// Plain text (no colours), stable layout (no terminal-width wrapping).
#[derive(Debug, Clone, Copy, Default)]
pub struct TableExporter;

fn table(header: Vec<String>) -> Table {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header);
    t
}

fn right_align(t: &mut Table, from: usize) {
    let n = t.column_count();
    for i in from..n {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
}

impl Exporter for TableExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        writeln!(out, "{}", headline(r))?;
        for f in super::flag_lines(r) {
            writeln!(out, "{f}")?;
        }
        let mut t = table(DISPLAY_HEADERS.map(String::from).to_vec());
        for m in &r.modes {
            t.add_row(display_row(m));
        }
        right_align(&mut t, 1);
        writeln!(out, "{t}")?;
        writeln!(
            out,
            "*: significant at p < 0.05 (Welch's t-test over the repetitions' means)"
        )?;
        let tps = tracepoint_names(r);
        if !tps.is_empty() {
            let mut h = vec!["tracepoints per tx".to_string()];
            h.extend(tps.iter().cloned());
            let mut t = table(h);
            for m in r.modes.iter().filter(|m| m.available) {
                let mut c = vec![m.mode.clone()];
                c.extend(
                    tps.iter()
                        .map(|n| opt(m.probes.tracepoints_per_tx.get(n).copied(), 2)),
                );
                t.add_row(c);
            }
            right_align(&mut t, 1);
            writeln!(out, "{t}")?;
        }
        if let Some(e) = &r.explain {
            writeln!(
                out,
                "Where {}'s {:+.2} µs over the host go:",
                e.target, e.gap_us
            )?;
            let mut t = table(
                ["variant", "latency µs", "adds µs", "share"]
                    .map(String::from)
                    .to_vec(),
            );
            t.add_row(vec![
                "host (baseline)".into(),
                format!("{:.2}", e.baseline_us),
                "—".into(),
                "—".into(),
            ]);
            for p in &e.parts {
                t.add_row(vec![
                    p.name.clone(),
                    format!("{:.2}", p.latency_us),
                    format!("{:+.2}", p.adds_us),
                    format!("{:.0}%", p.share * 100.0),
                ]);
            }
            right_align(&mut t, 1);
            writeln!(out, "{t}")?;
            for n in &e.notes {
                writeln!(out, "  {n}")?;
            }
        }
        if let Some(checks) = r.checks.as_ref().and_then(super::checks::render_value) {
            write!(out, "{checks}")?;
        }
        writeln!(
            out,
            "Verdict{}:",
            if r.flags.is_empty() {
                ""
            } else {
                " (FLAGGED: see above)"
            }
        )?;
        for v in &r.verdict {
            writeln!(out, "  {v}")?;
        }
        for w in &r.warnings {
            writeln!(out, "Warning: {}\n  remedy: {}", w.message, w.remedy)?;
        }
        Ok(())
    }
}
