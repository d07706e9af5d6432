//! The terminal report: a [`View`] as plain text (no colours) with comfy-table tables in a
//! stable layout (no terminal-width wrapping). Plots are left out (the tables carry the figures).

use std::io::Write;

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use super::view::{Align, Block, TableView, View};
use super::{Exporter, ReportError};
use crate::compare::CompareReport;

/// Plain text (no colours), stable layout (no terminal-width wrapping).
#[derive(Debug, Clone, Copy, Default)]
pub struct TableExporter;

/// The terminal report for a terminal: the compact view (or every column), tables arranged
/// and text wrapped to the terminal's width so that no line is longer than it.
#[derive(Debug, Clone, Copy)]
pub struct TerminalExporter {
    pub detail: super::compare_view::Detail,
    /// Columns of the terminal (`None`: not a terminal, lines as long as they come).
    pub width: Option<u16>,
}

impl Exporter for TerminalExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        render_to(
            &super::compare_view::compare_with(r, self.detail),
            out,
            self.width,
        )
    }
}

/// `text` broken at spaces into lines of at most `width` characters, the first prefixed by
/// `first`, the rest by `rest` (a word longer than a line stays whole).
pub fn wrap(text: &str, width: Option<u16>, first: &str, rest: &str) -> String {
    let Some(width) = width.map(usize::from) else {
        return format!("{first}{text}");
    };
    let mut out = String::new();
    let mut line = first.to_string();
    let mut empty = true;
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if !empty && len + 1 + word.chars().count() > width {
            out.push_str(&line);
            out.push('\n');
            line = rest.to_string();
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(word);
        empty = false;
    }
    out.push_str(&line);
    out
}

/// A view's table as a comfy-table table.
pub fn table(t: &TableView) -> Table {
    table_to(t, None)
}

/// A view's table, arranged to fit `width` columns when given.
pub fn table_to(t: &TableView, width: Option<u16>) -> Table {
    let mut out = Table::new();
    out.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_header(t.header.clone());
    match width {
        Some(w) => {
            out.set_content_arrangement(ContentArrangement::Dynamic)
                .set_width(w);
        }
        None => {
            out.set_content_arrangement(ContentArrangement::Disabled);
        }
    }
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
    render_to(v, out, None)
}

/// Renders a view as terminal text no wider than `width` (when given).
pub fn render_to(v: &View, out: &mut dyn Write, width: Option<u16>) -> Result<(), ReportError> {
    writeln!(out, "{}", wrap(&v.headline, width, "", "  "))?;
    for s in &v.sections {
        if let Some(t) = &s.title {
            writeln!(out, "{}", wrap(&format!("{t}:"), width, "", "  "))?;
        }
        for b in &s.blocks {
            match b {
                Block::Text(t) => writeln!(out, "{}", wrap(t, width, "", "  "))?,
                Block::Bullets(items) => {
                    for i in items {
                        writeln!(out, "{}", wrap(i, width, "  ", "    "))?;
                    }
                }
                Block::Table(t) => writeln!(out, "{}", table_to(t, width))?,
                Block::Warnings(ws) => {
                    for w in ws {
                        writeln!(
                            out,
                            "{}",
                            wrap(&format!("Warning: {}", w.message), width, "", "  ")
                        )?;
                        writeln!(
                            out,
                            "{}",
                            wrap(&format!("remedy: {}", w.remedy), width, "  ", "    ")
                        )?;
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
        render(&super::compare_view::compare(r), out)
    }
}
