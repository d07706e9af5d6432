//! SVG plots for the HTML report, drawn with plotters' SVG backend (text as `<text>` elements:
//! no font files are loaded). Each function returns one `<svg>` document as a string.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;

use super::ReportError;
use crate::compare::CompareReport;

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

/// (mode index, mode name, CDF points).
type Series<'a> = (usize, &'a str, &'a [(f64, f64)]);

/// Latency CDF, one line per measured mode. The x axis ends a little past the largest p99.9 so
/// that rare outliers do not squash the curves (points beyond it are not drawn).
pub fn cdf_svg(r: &CompareReport) -> Result<String, ReportError> {
    let series: Vec<Series> = r
        .modes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.available && !m.cdf.is_empty())
        .map(|(i, m)| (i, m.mode.as_str(), m.cdf.as_slice()))
        .collect();
    let x_min = series
        .iter()
        .filter_map(|(_, _, c)| c.first().map(|p| p.0))
        .fold(f64::INFINITY, f64::min);
    let x_max = r
        .modes
        .iter()
        .filter(|m| m.available && !m.cdf.is_empty())
        .filter_map(|m| m.latency_us.map(|l| l.p99_9))
        .fold(f64::NEG_INFINITY, f64::max);
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
            .caption(
                format!(
                    "Latency CDF, {} {},{} (all transactions)",
                    r.test, r.request_size, r.response_size
                ),
                ("sans-serif", 22),
            )
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
        for (i, name, points) in &series {
            let c = color(*i);
            chart
                .draw_series(LineSeries::new(
                    points.iter().copied().filter(|(x, _)| *x <= x_max),
                    c.stroke_width(2),
                ))
                .map_err(plot_err)?
                .label(*name)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(3))
                });
        }
        if !series.is_empty() {
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

/// Mean latency per mode as bars, with the 95 % CI as error bars.
pub fn bars_svg(r: &CompareReport) -> Result<String, ReportError> {
    let bars: Vec<(usize, &str, f64, f64)> = r
        .modes
        .iter()
        .enumerate()
        .filter(|(_, m)| m.available)
        .filter_map(|(i, m)| {
            m.latency_us
                .map(|l| (i, m.mode.as_str(), l.mean, l.ci95.unwrap_or(0.0)))
        })
        .collect();
    let y_max = bars.iter().map(|b| b.2 + b.3).fold(0.0, f64::max).max(1e-3) * 1.15;
    // A segmented `0..k` range has k + 1 slots (its end is inclusive).
    let n = bars.len().max(1);
    let last = n.saturating_sub(1).max(1);
    let names: Vec<String> = bars.iter().map(|b| b.1.to_string()).collect();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(
                "Mean latency per round trip, with 95% confidence interval",
                ("sans-serif", 22),
            )
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
        for (slot, (i, _, mean, ci)) in bars.iter().enumerate() {
            let c = color(*i);
            let mut bar = Rectangle::new(
                [
                    (SegmentValue::Exact(slot), 0.0),
                    (SegmentValue::Exact(slot + 1), *mean),
                ],
                c.mix(0.75).filled(),
            );
            bar.set_margin(0, 0, 18, 18);
            chart.draw_series(std::iter::once(bar)).map_err(plot_err)?;
            let center = || SegmentValue::CenterOf(slot);
            let (lo, hi) = (mean - ci, mean + ci);
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
                        + Text::new(format!("{mean:.2}"), (-14, -22), ("sans-serif", 14)),
                ))
                .map_err(plot_err)?;
        }
        root.present().map_err(plot_err)?;
    }
    Ok(svg)
}
