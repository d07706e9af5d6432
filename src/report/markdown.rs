//! `--markdown PATH`: a [`View`] as GitHub-flavoured Markdown (plots left out: the tables carry
//! the figures).

use std::io::Write;

use super::view::{Block, View};
use super::{Exporter, ReportError};
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

/// Renders a view as Markdown.
pub fn render(v: &View, out: &mut dyn Write) -> Result<(), ReportError> {
    writeln!(out, "# {}\n", v.title)?;
    writeln!(out, "{}", v.headline)?;
    if !v.facts.is_empty() {
        writeln!(out)?;
        for f in &v.facts {
            let value = if f.label == "Command" {
                format!("`{}`", f.value)
            } else {
                f.value.clone()
            };
            writeln!(out, "- {}: {value}", f.label)?;
        }
    }
    for s in &v.sections {
        if let Some(t) = &s.title {
            writeln!(out, "\n## {t}")?;
        }
        for b in &s.blocks {
            match b {
                Block::Text(t) => writeln!(out, "\n{}", t.replace('*', "\\*"))?,
                Block::Bullets(items) => {
                    writeln!(out)?;
                    for i in items {
                        writeln!(out, "- {i}")?;
                    }
                }
                Block::Table(t) => {
                    writeln!(out)?;
                    row(out, &t.header)?;
                    writeln!(out, "|{}", "---|".repeat(t.header.len()))?;
                    for r in &t.rows {
                        row(out, r)?;
                    }
                }
                Block::Warnings(ws) => {
                    writeln!(out, "\n## Warnings\n")?;
                    for w in ws {
                        writeln!(out, "- {} (remedy: {})", w.message, w.remedy)?;
                    }
                }
                Block::Plot(_) => {}
            }
        }
    }
    Ok(())
}

impl Exporter for MarkdownExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        render(&super::compare_view::compare(r), out)
    }
}
