//! SVG plots for the HTML report, drawn with plotters' SVG backend (text as `<text>` elements:
//! no font files are loaded). [`svg`] draws one [`Plot`] of the view model as one `<svg>`
//! document.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::view::{BarPlot, CdfPlot, CurvePlot, Plot};
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
        Plot::Cdf(c) => cdf_svg(c),
        Plot::Bars(b) => bars_svg(b),
        Plot::Curves(c) => curves_svg(c),
    }
}

/// A stable HTML id for the plot's figure.
pub fn id(p: &Plot) -> String {
    match p {
        Plot::Cdf(_) => "cdf".into(),
        Plot::Bars(_) => "bars".into(),
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

/// Latency CDF, one line per series. The x axis ends a little past `x_max` (the largest
/// p99.9) so that rare outliers do not squash the curves (points beyond it are not drawn).
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
