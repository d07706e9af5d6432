//! The terminal report: a [`View`] as plain text (no colours) with comfy-table tables in a
//! stable layout (no terminal-width wrapping). Plots are left out (the tables carry the figures).

use std::io::Write;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::view::{self, Align, Block, TableView, View};
use super::{Exporter, ReportError};
use crate::compare::CompareReport;

/// Plain text (no colours), stable layout (no terminal-width wrapping).
#[derive(Debug, Clone, Copy, Default)]
pub struct TableExporter;

/// A view's table as a comfy-table table.
pub fn table(t: &TableView) -> Table {
    let mut out = Table::new();
    out.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(t.header.clone());
    for r in &t.rows {
        out.add_row(r.clone());
    }
    let align = match t.align {
        Align::Right => CellAlignment::Right,
        Align::Center => CellAlignment::Center,
    };
    for i in 1..out.column_count() {
        if let Some(c) = out.column_mut(i) {
            c.set_cell_alignment(align);
        }
    }
    out
}

/// Renders a view as terminal text.
pub fn render(v: &View, out: &mut dyn Write) -> Result<(), ReportError> {
    writeln!(out, "{}", v.headline)?;
    for s in &v.sections {
        if let Some(t) = &s.title {
            writeln!(out, "{t}:")?;
        }
        for b in &s.blocks {
            match b {
                Block::Text(t) => writeln!(out, "{t}")?,
                Block::Bullets(items) => {
                    for i in items {
                        writeln!(out, "  {i}")?;
                    }
                }
                Block::Table(t) => writeln!(out, "{}", table(t))?,
                Block::Warnings(ws) => {
                    for w in ws {
                        writeln!(out, "Warning: {}\n  remedy: {}", w.message, w.remedy)?;
                    }
                }
                Block::Plot(_) => {}
            }
        }
    }
    Ok(())
}

impl Exporter for TableExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        render(&view::compare(r), out)
    }
}
