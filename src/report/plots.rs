//! SVG plots for the HTML report, drawn with plotters' SVG backend (text as `<text>` elements:
//! no font files are loaded). [`svg`] draws one [`Plot`] of the view model as one `<svg>`
//! document.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, SegmentValue};
use plotters::prelude::*;

use super::view::{BarPlot, CdfPlot, CurvePlot, PercentilePlot, Plot};
use super::ReportError;

/// Plot size in pixels.
pub const SIZE: (u32, u32) = (900, 480);

/// Distinct, colour-blind-friendly series colours (Okabe–Ito).
const COLORS: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(230, 159, 0),
    RGBColor(86, 180, 233),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// The colour of the i-th mode (stable between the two plots).
pub fn color(i: usize) -> RGBColor {
    COLORS[i % COLORS.len()]
}

fn plot_err<E: std::fmt::Display>(e: E) -> ReportError {
    ReportError::Plot(e.to_string())
}

/// The plot as one `<svg>` document.
pub fn svg(p: &Plot) -> Result<String, ReportError> {
    match p {
        Plot::Percentiles(p) => percentiles_svg(p),
        Plot::Cdf(c) => cdf_svg(c),
        Plot::Bars(b) => bars_svg(b),
        Plot::Curves(c) => curves_svg(c),
        Plot::Stacked(p) => Ok(super::waterfall::stacked_svg(p)),
    }
}

/// A stable HTML id for the plot's figure.
pub fn id(p: &Plot) -> String {
    match p {
        Plot::Percentiles(_) => "percentiles".into(),
        Plot::Cdf(_) => "cdf".into(),
        Plot::Bars(_) => "bars".into(),
        Plot::Stacked(_) => "waterfall".into(),
        Plot::Curves(c) => format!(
            "curve-{}",
            c.title
                .chars()
                .map(|ch| if ch.is_ascii_alphanumeric() {
                    ch.to_ascii_lowercase()
                } else {
                    '-'
                })
                .collect::<String>()
        ),
    }
}

/// Where quantile `q` (< 1) sits on the percentile plot's x axis: log10(1/(1-q)), so 90% is
/// at 1, 99% at 2, 99.9% at 3.
pub fn tail_x(q: f64) -> f64 {
    -(1.0 - q).log10()
}

/// The percentile a tail-axis position names: 0 → "0%", 1 → "90%", 3 → "99.9%".
fn tail_label(x: f64) -> String {
    let q = 1.0 - 10f64.powf(-x);
    let pct = q * 100.0;
    // As many decimals as the nines need (99.99% has two), none for whole percents.
    let decimals = (x.round() as i64 - 2).max(0) as usize;
    let text = format!("{pct:.decimals$}");
    format!("{text}%")
}

/// The tail axis' ticks up to `decades` nines: 0%, 50%, 90%, 99%, 99.9%, ...
fn tail_ticks(decades: u32) -> Vec<f64> {
    let mut ticks = vec![0.0, tail_x(0.5)];
    ticks.extend((1..=decades).map(f64::from));
    ticks
}

/// An axis from `lo` to `hi`, linear or logarithmic, with a tick (and a mesh line) at each of
/// `ticks`: the percentile plot's tail axis (positions from [`tail_x`]) and its log latency
/// axis (ticks at 1, 2 and 5 of each decade, which plotters' own log axis does not offer).
struct Ticked {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
}

impl Ticked {
    fn log_latency(lo: f64, hi: f64) -> Self {
        let mut ticks = Vec::new();
        let mut decade = 10f64.powf(lo.log10().floor());
        while decade <= hi {
            for m in [1.0, 2.0, 5.0] {
                let t = decade * m;
                if t >= lo && t <= hi {
                    ticks.push(t);
                }
            }
            decade *= 10.0;
        }
        Ticked {
            lo,
            hi,
            log: true,
            ticks,
        }
    }

    fn position(&self, v: f64) -> f64 {
        if self.log {
            (v.max(f64::MIN_POSITIVE).ln() - self.lo.ln()) / (self.hi.ln() - self.lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        }
    }
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = f64::from(limit.1 - limit.0);
        limit.0 + (self.position(*v) * span).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        if hint.weight().allow_light_points() || hint.max_num_points() == 0 {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// A latency tick's label: no decimals from 10 µs up.
fn latency_label(us: f64) -> String {
    if us >= 10.0 {
        format!("{us:.0}")
    } else {
        format!("{us:.1}")
    }
}

/// Latency by percentile, one line per series, as HdrHistogram's percentile distribution
/// plots: x at 1/(1-p) on a log scale (labelled as percentiles, the nines evenly spaced), y
/// the latency in µs (a log axis when the lines span 50× or more). The axis ends at the first
/// decade past the highest percentile measured (at least 99.9%).
pub fn percentiles_svg(p: &PercentilePlot) -> Result<String, ReportError> {
    let pts = || p.series.iter().flat_map(|s| s.points.iter());
    let x_hi = pts()
        .map(|&(q, _)| tail_x(q))
        .fold(0.0, f64::max)
        .ceil()
        .clamp(3.0, 7.0);
    let decades = x_hi as u32;
    let y_lo = pts().map(|q| q.1).fold(f64::INFINITY, f64::min);
    let y_hi = pts().map(|q| q.1).fold(f64::NEG_INFINITY, f64::max);
    let log_y = super::view::wants_log(pts().map(|q| q.1));
    let (y0, y1) = if !y_hi.is_finite() {
        (0.0, 1.0)
    } else if log_y {
        (y_lo / 1.2, y_hi * 1.2)
    } else {
        (0.0, y_hi.max(1e-3) * 1.08)
    };
    let x_range = || Ticked {
        lo: 0.0,
        hi: x_hi,
        log: false,
        ticks: tail_ticks(decades),
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&p.title, ("sans-serif", 22))
            .margin(16)
            .margin_right(32)
            .x_label_area_size(48)
            .y_label_area_size(64);
        let label = |x: &f64| tail_label(*x);
        let y_label = |y: &f64| latency_label(*y);
        macro_rules! draw {
            ($yr:expr) => {{
                let mut chart = builder
                    .build_cartesian_2d(x_range(), $yr)
                    .map_err(plot_err)?;
                chart
                    .configure_mesh()
                    .x_label_formatter(&label)
                    .y_label_formatter(&y_label)
                    .x_desc("percentile (log scale of 1/(1-p): each step right is one more nine)")
                    .y_desc("latency per round trip (µs)")
                    .axis_desc_style(("sans-serif", 16))
                    .label_style(("sans-serif", 14))
                    .draw()
                    .map_err(plot_err)?;
                for s in &p.series {
                    let c = color(s.color);
                    chart
                        .draw_series(LineSeries::new(
                            s.points.iter().map(|&(q, us)| (tail_x(q), us)),
                            c.stroke_width(2),
                        ))
                        .map_err(plot_err)?
                        .label(format!("{} ({} transactions)", s.name, s.transactions))
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                        });
                }
                if !p.series.is_empty() {
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperLeft)
                        .background_style(WHITE.mix(0.9))
                        .border_style(BLACK)
                        .label_font(("sans-serif", 16))
                        .draw()
                        .map_err(plot_err)?;
                }
            }};
        }
        if log_y {
            draw!(Ticked::log_latency(y0, y1))
        } else {
            draw!(y0..y1)
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Latency CDF, one line per series. The x axis ends a little past `x_max` (the largest
/// p99) so that rare outliers do not squash the curves (points beyond it are not drawn; the
/// percentile plot shows the tail).
pub fn cdf_svg(p: &CdfPlot) -> Result<String, ReportError> {
    let x_min = p
        .series
        .iter()
        .filter_map(|s| s.points.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let x_max = p.x_max.unwrap_or(f64::NEG_INFINITY);
    let (x_min, x_max) = if x_min.is_finite() && x_max.is_finite() && x_max > x_min {
        let pad = (x_max - x_min) * 0.05;
        ((x_min - pad).max(0.0), x_max + pad)
    } else {
        (0.0, 1.0)
    };
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&p.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d(x_min..x_max, 0.0..1.0)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc("latency per round trip (µs)")
            .y_desc("fraction of transactions ≤ x")
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        for s in &p.series {
            let c = color(s.color);
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().copied().filter(|(x, _)| *x <= x_max),
                    c.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(s.name.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
        }
        if !p.series.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::LowerRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 16))
                .draw()
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// Mean latency per series as bars, with the 95 % CI as error bars.
pub fn bars_svg(p: &BarPlot) -> Result<String, ReportError> {
    let bars = &p.bars;
    let y_max = bars
        .iter()
        .map(|b| b.mean + b.ci95)
        .fold(0.0, f64::max)
        .max(1e-3)
        * 1.15;
    // A segmented `0..k` range has k + 1 slots (its end is inclusive).
    let n = bars.len().max(1);
    let last = n.saturating_sub(1).max(1);
    let names: Vec<String> = bars.iter().map(|b| b.name.clone()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&p.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(64)
            .build_cartesian_2d((0..last).into_segmented(), 0.0..y_max)
            .map_err(plot_err)?;
        let label = |v: &SegmentValue<usize>| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                names.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        };
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(n)
            .x_label_formatter(&label)
            .y_desc("mean latency (µs)")
            .x_desc("mode")
            .axis_desc_style(("sans-serif", 16))
            .label_style(("sans-serif", 14))
            .draw()
            .map_err(plot_err)?;
        for (slot, b) in bars.iter().enumerate() {
            let c = color(b.color);
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(slot), 0.0),
                    (SegmentValue::Exact(slot + 1), b.mean),
                ],
                c.mix(0.75).filled(),
            );
            bar.set_margin(0, 0, 18, 18);
            chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
            let center = || SegmentValue::CenterOf(slot);
            let (lo, hi) = (b.mean - b.ci95, b.mean + b.ci95);
            chart
                .draw_series(std::iter::once(PathElement::new(
                    vec![(center(), lo), (center(), hi)],
                    BLACK.stroke_width(2),
                )))
                .map_err(plot_err)?;
            for y in [lo, hi] {
                chart
                    .draw_series(std::iter::once(
                        EmptyElement::at((center(), y))
                            + PathElement::new(vec![(-8, 0), (8, 0)], BLACK.stroke_width(2)),
                    ))
                    .map_err(plot_err)?;
            }
            chart
                .draw_series(std::iter::once(
                    EmptyElement::at((center(), hi))
                        + Text::new(format!("{:.2}", b.mean), (-14, -22), ("sans-serif", 14)),
                ))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

/// The axis ranges of a curve plot: x over the points, y from 0 (or, on a log axis, a little
/// under the lowest band) to a little over the highest band.
fn curve_ranges(p: &CurvePlot, log_y: bool) -> ((f64, f64), (f64, f64)) {
    let pts = || p.series.iter().flat_map(|s| s.points.iter());
    let x_lo = pts().map(|q| q.x).fold(f64::INFINITY, f64::min);
    let x_hi = pts().map(|q| q.x).fold(f64::NEG_INFINITY, f64::max);
    let y_lo = pts().map(|q| q.lo.min(q.y)).fold(f64::INFINITY, f64::min);
    let y_hi = pts()
        .map(|q| q.hi.max(q.y))
        .fold(f64::NEG_INFINITY, f64::max);
    let x = if x_lo.is_finite() && x_hi > x_lo {
        (x_lo, x_hi)
    } else if x_lo.is_finite() {
        (x_lo * 0.5, x_lo * 1.5 + 1.0)
    } else {
        (0.0, 1.0)
    };
    let y = if !y_hi.is_finite() {
        (if log_y { 0.1 } else { 0.0 }, 1.0)
    } else if log_y {
        (y_lo.max(1e-3) / 1.3, y_hi * 1.3)
    } else {
        (0.0, y_hi.max(1e-3) * 1.12)
    };
    let x = if p.log_x { (x.0.max(1e-9), x.1) } else { x };
    (x, y)
}

/// y against x per series: a line with markers and a translucent 95 % CI band; log axes as
/// the plot asks (the y axis goes log when the values span 50× or more).
pub fn curves_svg(p: &CurvePlot) -> Result<String, ReportError> {
    let log_y = super::view::wants_log(p.series.iter().flat_map(|s| s.points.iter().map(|q| q.y)));
    let ((x0, x1), (y0, y1)) = curve_ranges(p, log_y);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut builder = ChartBuilder::on(&root);
        builder
            .caption(&p.title, ("sans-serif", 22))
            .margin(16)
            .x_label_area_size(48)
            .y_label_area_size(72);
        macro_rules! draw {
            ($xr:expr, $yr:expr) => {{
                let mut chart = builder.build_cartesian_2d($xr, $yr).map_err(plot_err)?;
                chart
                    .configure_mesh()
                    .x_desc(p.x_label.as_str())
                    .y_desc(p.y_label.as_str())
                    .axis_desc_style(("sans-serif", 16))
                    .label_style(("sans-serif", 14))
                    .draw()
                    .map_err(plot_err)?;
                for s in &p.series {
                    let c = color(s.color);
                    let pts: Vec<_> = s
                        .points
                        .iter()
                        .filter(|q| (!p.log_x || q.x > 0.0) && (!log_y || q.lo > 0.0))
                        .copied()
                        .collect();
                    if pts.len() > 1 {
                        let mut band: Vec<(f64, f64)> = pts.iter().map(|q| (q.x, q.hi)).collect();
                        band.extend(pts.iter().rev().map(|q| (q.x, q.lo)));
                        chart
                            .draw_series(std::iter::once(Polygon::new(band, c.mix(0.2).filled())))
                            .map_err(plot_err)?;
                    }
                    for q in &pts {
                        chart
                            .draw_series(std::iter::once(PathElement::new(
                                vec![(q.x, q.lo), (q.x, q.hi)],
                                c.stroke_width(1),
                            )))
                            .map_err(plot_err)?;
                    }
                    chart
                        .draw_series(LineSeries::new(
                            pts.iter().map(|q| (q.x, q.y)),
                            c.stroke_width(2),
                        ))
                        .map_err(plot_err)?
                        .label(s.name.as_str())
                        .legend(move |(x, y)| {
                            PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                        });
                    chart
                        .draw_series(pts.iter().map(|q| Circle::new((q.x, q.y), 4, c.filled())))
                        .map_err(plot_err)?;
                }
                if !p.series.is_empty() {
                    chart
                        .configure_series_labels()
                        .position(SeriesLabelPosition::UpperLeft)
                        .background_style(WHITE.mix(0.9))
                        .border_style(BLACK)
                        .label_font(("sans-serif", 16))
                        .draw()
                        .map_err(plot_err)?;
                }
            }};
        }
        match (p.log_x, log_y) {
            (false, false) => draw!(x0..x1, y0..y1),
            (true, false) => draw!((x0..x1).log_scale(), y0..y1),
            (false, true) => draw!(x0..x1, (y0..y1).log_scale()),
            (true, true) => draw!((x0..x1).log_scale(), (y0..y1).log_scale()),
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::super::view::{Curve, CurvePlot, CurvePoint, Plot};

    fn plot(log_x: bool, ys: &[f64]) -> Plot {
        Plot::Curves(CurvePlot {
            title: "p50 vs N".into(),
            x_label: "Services".into(),
            y_label: "µs".into(),
            log_x,
            series: vec![Curve {
                name: "iptables".into(),
                color: 0,
                points: ys
                    .iter()
                    .enumerate()
                    .map(|(i, y)| CurvePoint {
                        x: (i as f64 + 1.0) * 1000.0,
                        y: *y,
                        lo: y * 0.9,
                        hi: y * 1.1,
                    })
                    .collect(),
            }],
        })
    }

    #[test]
    fn log_latency_axis_ticks_one_two_five() {
        let a = super::Ticked::log_latency(12.0, 6000.0);
        assert_eq!(
            a.ticks,
            [20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0]
        );
        assert!((a.position(12.0)).abs() < 1e-12 && (a.position(6000.0) - 1.0).abs() < 1e-12);
        assert_eq!(super::latency_label(5.0), "5.0");
        assert_eq!(super::latency_label(200.0), "200");
    }

    #[test]
    fn tail_axis_labels_the_nines() {
        use super::{tail_label, tail_x};
        assert_eq!(tail_label(0.0), "0%");
        assert_eq!(tail_label(tail_x(0.5)), "50%");
        assert_eq!(tail_label(1.0), "90%");
        assert_eq!(tail_label(2.0), "99%");
        assert_eq!(tail_label(3.0), "99.9%");
        assert_eq!(tail_label(5.0), "99.999%");
        assert!((tail_x(0.999) - 3.0).abs() < 1e-9);
    }

    #[test]
    fn percentile_plot_draws_a_line_per_series_on_the_tail_axis() {
        use super::super::view::{PercentilePlot, PercentileSeries};
        let series = |name: &str, color, base: f64| PercentileSeries {
            name: name.into(),
            color,
            points: (0..40)
                .map(|i| {
                    let q = 1.0 - 0.5f64.powf(i as f64 / 4.0);
                    (q, base + i as f64 * 0.1)
                })
                .collect(),
            transactions: 20_000,
        };
        let svg = super::svg(&Plot::Percentiles(PercentilePlot {
            title: "by percentile".into(),
            series: vec![series("host", 0, 5.0), series("bridge", 1, 6.5)],
        }))
        .unwrap();
        // A series' line: a polyline in its colour through all its points (the mesh and the
        // legend marks are polylines of two points).
        let long_lines: Vec<&str> = svg
            .split("<polyline")
            .skip(1)
            .filter(|p| {
                p.split(" points=\"")
                    .nth(1)
                    .is_some_and(|pts| pts.split('"').next().unwrap_or("").split(' ').count() >= 40)
            })
            .collect();
        assert_eq!(long_lines.len(), 2, "one line per series");
        for (line, colour) in long_lines.iter().zip(["#0072B2", "#D55E00"]) {
            assert!(line.to_uppercase().contains(colour), "{line}");
        }
        for label in ["50%", "90%", "99%", "99.9%"] {
            assert!(svg.contains(&format!("\n{label}\n")), "tick {label}: {svg}");
        }
        assert!(svg.contains("bridge (20000 transactions)"), "legend");
    }

    #[test]
    fn curves_draw_a_band_a_line_and_markers_on_any_axes() {
        for (log_x, ys) in [
            (false, vec![50.0, 60.0, 70.0]),
            (true, vec![1.0, 10.0, 300.0]),
        ] {
            let svg = super::svg(&plot(log_x, &ys)).unwrap();
            assert!(svg.contains("<polygon"), "CI band");
            assert!(svg.contains("<polyline"), "line");
            assert_eq!(svg.matches("<circle").count(), 3, "markers");
            assert!(svg.contains("iptables"), "legend");
        }
    }
}
