//! `--markdown PATH`: the terminal table's rows as a GitHub-flavoured Markdown table, with the
//! verdict, the warnings and the `--explain` breakdown.

use std::io::Write;

use super::{display_row, headline, opt, tracepoint_names, Exporter, ReportError, DISPLAY_HEADERS};
use crate::compare::CompareReport;

/// Markdown document.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownExporter;

fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

fn row(out: &mut dyn Write, cells: &[String]) -> std::io::Result<()> {
    let cells: Vec<String> = cells.iter().map(|c| cell(c)).collect();
    writeln!(out, "| {} |", cells.join(" | "))
}

impl Exporter for MarkdownExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        writeln!(out, "# nslat compare: {}\n", r.test)?;
        writeln!(out, "{}\n", headline(r))?;
        for f in super::flag_lines(r) {
            writeln!(out, "**{f}**\n")?;
        }
        row(out, &DISPLAY_HEADERS.map(String::from))?;
        writeln!(out, "|{}", "---|".repeat(DISPLAY_HEADERS.len()))?;
        for m in &r.modes {
            row(out, &display_row(m))?;
        }
        writeln!(
            out,
            "\n`*`: significant at p < 0.05 (Welch's t-test over the repetitions' means)."
        )?;
        let tps = tracepoint_names(r);
        if !tps.is_empty() {
            writeln!(out, "\n## Tracepoints per transaction\n")?;
            let mut h = vec!["mode".to_string()];
            h.extend(tps.iter().cloned());
            row(out, &h)?;
            writeln!(out, "|{}", "---|".repeat(h.len()))?;
            for m in r.modes.iter().filter(|m| m.available) {
                let mut c = vec![m.mode.clone()];
                c.extend(
                    tps.iter()
                        .map(|n| opt(m.probes.tracepoints_per_tx.get(n).copied(), 2)),
                );
                row(out, &c)?;
            }
        }
        writeln!(out, "\n## Verdict\n")?;
        for v in &r.verdict {
            writeln!(out, "- {v}")?;
        }
        if !r.warnings.is_empty() {
            writeln!(out, "\n## Warnings\n")?;
            for w in &r.warnings {
                writeln!(out, "- {} (remedy: {})", w.message, w.remedy)?;
            }
        }
        if let Some(e) = &r.explain {
            writeln!(out, "\n## Where {}'s {:.2} µs go\n", e.target, e.gap_us)?;
            row(
                out,
                &["variant", "latency µs", "adds µs", "share of gap"].map(String::from),
            )?;
            writeln!(out, "|---|---|---|---|")?;
            row(
                out,
                &[
                    "host (baseline)".into(),
                    format!("{:.2}", e.baseline_us),
                    "—".into(),
                    "—".into(),
                ],
            )?;
            for p in &e.parts {
                row(
                    out,
                    &[
                        p.name.clone(),
                        format!("{:.2}", p.latency_us),
                        format!("{:+.2}", p.adds_us),
                        format!("{:.0}%", p.share * 100.0),
                    ],
                )?;
            }
            for n in &e.notes {
                writeln!(out, "\n{n}")?;
            }
        }
        Ok(())
    }
}
