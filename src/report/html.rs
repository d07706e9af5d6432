//! `--html DIR`: one self-contained page (no scripts, no external files): headline, verdict,
//! warnings, the table, a latency CDF per mode and a bar chart of mean latency with 95 % CIs,
//! both inline SVG drawn by [`super::plots`].

use std::io::Write;

use super::{
    display_row, headline, opt, plots, tracepoint_names, Exporter, ReportError, DISPLAY_HEADERS,
};
use crate::compare::CompareReport;

/// Self-contained HTML page.
#[derive(Debug, Clone, Copy, Default)]
pub struct HtmlExporter;

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Drops the XML prologue plotters may emit, so the SVG can sit inside HTML.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

const STYLE: &str = "body{font-family:sans-serif;margin:2em auto;max-width:1000px;color:#222}\
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:4px 8px}\
td{text-align:right}td:first-child{text-align:left}th{background:#eee}\
.warn{background:#fff4e0;border-left:4px solid #e69f00;padding:6px 10px;margin:6px 0}\
figure{margin:1.5em 0}";

fn table(out: &mut dyn Write, header: &[String], rows: &[Vec<String>]) -> std::io::Result<()> {
    writeln!(
        out,
        "<table>\n<tr>{}</tr>",
        header
            .iter()
            .map(|h| format!("<th>{}</th>", escape(h)))
            .collect::<String>()
    )?;
    for r in rows {
        writeln!(
            out,
            "<tr>{}</tr>",
            r.iter()
                .map(|c| format!("<td>{}</td>", escape(c)))
                .collect::<String>()
        )?;
    }
    writeln!(out, "</table>")
}

impl Exporter for HtmlExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        let cdf = plots::cdf_svg(r)?;
        let bars = plots::bars_svg(r)?;
        let title = format!(
            "nslat compare: {} {},{}",
            r.test, r.request_size, r.response_size
        );
        writeln!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
        )?;
        writeln!(
            out,
            "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
            escape(&title)
        )?;
        writeln!(
            out,
            "<h1>{}</h1>\n<p>{}</p>",
            escape(&title),
            escape(&headline(r))
        )?;
        for f in super::flag_lines(r) {
            writeln!(out, "<div class=\"warn\"><b>{}</b></div>", escape(&f))?;
        }
        writeln!(out, "<h2>Verdict</h2>\n<ul>")?;
        for v in &r.verdict {
            writeln!(out, "<li>{}</li>", escape(v))?;
        }
        writeln!(out, "</ul>")?;
        for w in &r.warnings {
            writeln!(
                out,
                "<div class=\"warn\">{}<br>Remedy: {}</div>",
                escape(&w.message),
                escape(&w.remedy)
            )?;
        }
        let rows: Vec<Vec<String>> = r.modes.iter().map(display_row).collect();
        table(out, &DISPLAY_HEADERS.map(String::from), &rows)?;
        writeln!(
            out,
            "<p>*: significant at p &lt; 0.05 (Welch's t-test over the repetitions' means).</p>"
        )?;
        writeln!(out, "<figure id=\"cdf\">{}</figure>", inline_svg(&cdf))?;
        writeln!(out, "<figure id=\"bars\">{}</figure>", inline_svg(&bars))?;
        let tps = tracepoint_names(r);
        if !tps.is_empty() {
            writeln!(out, "<h2>Tracepoints per transaction</h2>")?;
            let mut h = vec!["mode".to_string()];
            h.extend(tps.iter().cloned());
            let rows: Vec<Vec<String>> = r
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
            table(out, &h, &rows)?;
        }
        if let Some(e) = &r.explain {
            writeln!(
                out,
                "<h2>Where {}'s {:+.2} µs over the host go</h2>",
                escape(&e.target),
                e.gap_us
            )?;
            let mut rows = vec![vec![
                "host (baseline)".to_string(),
                format!("{:.2}", e.baseline_us),
                "—".into(),
                "—".into(),
            ]];
            rows.extend(e.parts.iter().map(|p| {
                vec![
                    p.name.clone(),
                    format!("{:.2}", p.latency_us),
                    format!("{:+.2}", p.adds_us),
                    format!("{:.0}%", p.share * 100.0),
                ]
            }));
            table(
                out,
                &["variant", "latency µs", "adds µs", "share of gap"].map(String::from),
                &rows,
            )?;
            for n in &e.notes {
                writeln!(out, "<p>{}</p>", escape(n))?;
            }
        }
        match r.checks.as_ref().map(super::checks::from_value) {
            Some(Ok(Some(m))) => {
                writeln!(out, "<h2>{}</h2>", escape(&super::checks::title(&m)))?;
                let (h, rows) = super::checks::table_rows(&m);
                table(out, &h, &rows)?;
                writeln!(out, "<ul>")?;
                for n in super::checks::notes(&m) {
                    writeln!(out, "<li>{}</li>", escape(&n))?;
                }
                writeln!(out, "</ul>")?;
            }
            Some(Err(e)) => writeln!(out, "<p>Feature checks not run: {}</p>", escape(&e))?,
            _ => {}
        }
        writeln!(out, "</body>\n</html>")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
