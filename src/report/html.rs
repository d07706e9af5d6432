//! `--html DIR`: a [`View`] as one self-contained page (no scripts, no external files): a
//! header (title, headline and the run's facts: date, command line, machine, CPU placement),
//! the sections' tables and text in the view's order (the recommendation first), and the plots
//! as inline SVG drawn by [`super::plots`].

use std::io::Write;

use super::view::{Block, TableView, View};
use super::{plots, Exporter, ReportError};
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
figure{margin:1.5em 0}\
table.facts td,table.facts th{border:none;text-align:left;padding:2px 12px 2px 0;background:none}\
table.facts th{color:#555;font-weight:normal;white-space:nowrap;vertical-align:top}\
code{font-size:0.95em;overflow-wrap:anywhere}";

fn table(out: &mut dyn Write, t: &TableView) -> std::io::Result<()> {
    writeln!(
        out,
        "<table>\n<tr>{}</tr>",
        t.header
            .iter()
            .map(|h| format!("<th>{}</th>", escape(h)))
            .collect::<String>()
    )?;
    for r in &t.rows {
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

/// Renders a view as an HTML page.
pub fn render(v: &View, out: &mut dyn Write) -> Result<(), ReportError> {
    writeln!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">"
    )?;
    writeln!(
        out,
        "<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>",
        escape(&v.title)
    )?;
    writeln!(
        out,
        "<header>\n<h1>{}</h1>\n<p>{}</p>",
        escape(&v.title),
        escape(&v.headline)
    )?;
    if !v.facts.is_empty() {
        writeln!(out, "<table class=\"facts\">")?;
        for f in &v.facts {
            let value = if f.label == "Command" {
                format!("<code>{}</code>", escape(&f.value))
            } else {
                escape(&f.value)
            };
            writeln!(
                out,
                "<tr><th>{}</th><td>{value}</td></tr>",
                escape(&f.label)
            )?;
        }
        writeln!(out, "</table>")?;
    }
    writeln!(out, "</header>")?;
    for s in &v.sections {
        if let Some(t) = &s.title {
            writeln!(out, "<h2>{}</h2>", escape(t))?;
        }
        for b in &s.blocks {
            match b {
                Block::Text(t) => writeln!(out, "<p>{}</p>", escape(t))?,
                Block::Bullets(items) => {
                    writeln!(out, "<ul>")?;
                    for i in items {
                        writeln!(out, "<li>{}</li>", escape(i))?;
                    }
                    writeln!(out, "</ul>")?;
                }
                Block::Table(t) => table(out, t)?,
                Block::Warnings(ws) => {
                    for w in ws {
                        writeln!(
                            out,
                            "<div class=\"warn\">{}<br>Remedy: {}</div>",
                            escape(&w.message),
                            escape(&w.remedy)
                        )?;
                    }
                }
                Block::Plot(p) => writeln!(
                    out,
                    "<figure id=\"{}\">{}</figure>",
                    plots::id(p),
                    inline_svg(&plots::svg(p)?)
                )?,
            }
        }
    }
    writeln!(out, "</body>\n</html>")?;
    Ok(())
}

impl Exporter for HtmlExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        render(&super::compare_view::compare(r), out)
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
