//! The report view model: what a report says, as titled sections of tables, text, warnings and
//! plots. Each human-readable exporter (terminal table, Markdown, HTML) renders a [`View`]; none
//! of them rebuilds a table from the report data. The machine formats (JSON, CSV) serialize the
//! data itself, not the view.
//!
//! This module owns only the shape of a view; the builders fill it in: compare_view.rs (a
//! compare report), targets.rs (its `--target` section), sweep.rs (a sweep). It knows no
//! report and does no I/O.

/// A whole report: a title, a one-line description of the run, then the sections in order.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub title: String,
    pub headline: String,
    /// The run's particulars as (label, value): date, command line, machine, CPU placement
    /// (the HTML page's and the Markdown file's header; the terminal's headline says the same
    /// in one line). Empty when the report does not know them.
    pub facts: Vec<Fact>,
    pub sections: Vec<Section>,
}

/// One particular of the run, e.g. ("Date (UTC)", "2026-12-01 20:21:25").
#[derive(Debug, Clone, PartialEq)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

/// A titled (or untitled, for the opening section) run of blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Section {
    pub title: Option<String>,
    pub blocks: Vec<Block>,
}

impl Section {
    pub fn new(title: Option<String>, blocks: Vec<Block>) -> Self {
        Section { title, blocks }
    }
}

/// One piece of a section.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A paragraph (a footnote, a note).
    Text(String),
    /// An unordered list (the verdict, notes).
    Bullets(Vec<String>),
    Table(TableView),
    /// Warnings, each with its remedy.
    Warnings(Vec<WarningView>),
    /// A plot: drawn by the HTML page, left out of the text formats (their tables carry the
    /// same figures).
    Plot(Plot),
}

/// A table of formatted cells: the first column names the row, the others hold figures.
#[derive(Debug, Clone, PartialEq)]
pub struct TableView {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// How the columns after the first are aligned in the terminal.
    pub align: Align,
}

impl TableView {
    /// A table of figures (right-aligned after the first column).
    pub fn figures(header: Vec<String>, rows: Vec<Vec<String>>) -> Self {
        TableView {
            header,
            rows,
            align: Align::Right,
        }
    }
}

/// Alignment of a table's value columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Right,
    Center,
}

/// A warning and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct WarningView {
    pub message: String,
    pub remedy: String,
}

/// A plot's data, independent of the drawing library ([`super::plots`] draws it).
#[derive(Debug, Clone, PartialEq)]
pub enum Plot {
    /// Latency by percentile per mode, on a log tail axis (HdrHistogram's percentile
    /// distribution plot).
    Percentiles(PercentilePlot),
    /// Latency CDF per mode.
    Cdf(CdfPlot),
    /// Mean latency per mode with 95 % CI error bars.
    Bars(BarPlot),
    /// y against x per series (a sweep: latency against Service count or neighbours), with a
    /// CI band per series.
    Curves(CurvePlot),
    /// Horizontal stacked bars (the waterfall: one bar per mode, a segment per stage kind).
    Stacked(StackedPlot),
}

/// Stacked bars: `rows[i].segments[j]` is legend entry j's part of row i.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedPlot {
    pub title: String,
    pub legend: Vec<String>,
    pub rows: Vec<StackedRow>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackedRow {
    pub name: String,
    pub segments: Vec<f64>,
}

/// One line per series: latency against percentile, the x axis at 1/(1-p) on a log scale so
/// that 90%, 99%, 99.9%, 99.99% are evenly spaced (the tail gets as much room as the body).
#[derive(Debug, Clone, PartialEq)]
pub struct PercentilePlot {
    pub title: String,
    pub series: Vec<PercentileSeries>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PercentileSeries {
    pub name: String,
    pub color: usize,
    /// (quantile < 1, latency µs), quantiles increasing.
    pub points: Vec<(f64, f64)>,
    /// Transactions behind the line.
    pub transactions: u64,
}

/// One CDF line per series; points beyond `x_max` are not drawn (rare outliers would squash
/// the curves).
#[derive(Debug, Clone, PartialEq)]
pub struct CdfPlot {
    pub title: String,
    pub series: Vec<CdfSeries>,
    pub x_max: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CdfSeries {
    pub name: String,
    /// Index into the colour palette (stable between the plots of one report).
    pub color: usize,
    /// (latency µs, fraction ≤ latency).
    pub points: Vec<(f64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BarPlot {
    pub title: String,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub name: String,
    pub color: usize,
    pub mean: f64,
    pub ci95: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CurvePlot {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// Logarithmic x axis (the points must have x > 0 to be drawn).
    pub log_x: bool,
    pub series: Vec<Curve>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub name: String,
    pub color: usize,
    pub points: Vec<CurvePoint>,
}

/// One point with its 95 % CI band (`lo..hi`; equal to `y` when unknown).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CurvePoint {
    pub x: f64,
    pub y: f64,
    pub lo: f64,
    pub hi: f64,
}

/// Whether values spanning this range are better shown on a log axis: all positive (a log axis
/// cannot show 0) and at least 50× apart.
pub fn wants_log(xs: impl IntoIterator<Item = f64>) -> bool {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for x in xs {
        if x <= 0.0 || !x.is_finite() {
            return false;
        }
        lo = lo.min(x);
        hi = hi.max(x);
    }
    lo.is_finite() && hi / lo >= 50.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_only_for_wide_ranges() {
        assert!(wants_log([1.0, 1000.0, 30000.0]));
        assert!(
            !wants_log([0.0, 1000.0, 30000.0]),
            "0 has no place on a log axis"
        );
        assert!(!wants_log([1.0, 2.0, 4.0]));
        assert!(!wants_log([0.0]));
    }
}
