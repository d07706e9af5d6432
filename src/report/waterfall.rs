//! The waterfall's part of a compare report (`--waterfall`): a section of the view (compact
//! stacked bars as text, the summary and stage tables, each mode's delta to the host, and a
//! stacked-bar plot for the HTML page), the plot's SVG, and the CSV of the stages.
//!
//! It reads `ModeResult::waterfall` only; the figures are made in src/waterfall.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::view::{Block, Plot, Section, StackedPlot, StackedRow, TableView};
use crate::compare::CompareReport;
use crate::waterfall::{delta_line, StageKind, Waterfall};

/// The kinds in bar order, with the letter the text bar uses.
const KINDS: [(StageKind, char); 11] = [
    (StageKind::User, 'U'),
    (StageKind::Send, 'S'),
    (StageKind::Device, 'D'),
    (StageKind::SoftirqDelay, 'q'),
    (StageKind::BacklogWait, 'B'),
    (StageKind::Processing, 'P'),
    (StageKind::SocketReceive, 'R'),
    (StageKind::Wakeup, 'W'),
    (StageKind::RecvReturn, 'r'),
    (StageKind::Syscall, 'o'),
    (StageKind::Remote, 'M'),
];

/// The letter of time no stage covers.
const UNATTRIBUTED: char = '.';

/// Width of the longest text bar.
const BAR_WIDTH: usize = 60;

fn modes(r: &CompareReport) -> Vec<(&str, &Waterfall)> {
    r.modes
        .iter()
        .filter_map(|m| m.waterfall.as_deref().map(|w| (m.mode.as_str(), w)))
        .collect()
}

/// Time per round trip by kind, then the unattributed rest.
fn by_kind(w: &Waterfall) -> Vec<f64> {
    let mut v: Vec<f64> = KINDS
        .iter()
        .map(|(k, _)| w.stages.iter().filter(|s| s.kind == *k).map(|s| s.us).sum())
        .collect();
    v.push(w.unattributed_us.max(0.0));
    v
}

/// One text bar: each kind's letter repeated in proportion to its time (cumulative rounding,
/// so the bar's length is the total's).
pub fn text_bar(parts: &[f64], scale: f64) -> String {
    let letters: Vec<char> = KINDS
        .iter()
        .map(|(_, c)| *c)
        .chain([UNATTRIBUTED])
        .collect();
    let mut out = String::new();
    let (mut acc, mut drawn) = (0.0, 0usize);
    for (i, p) in parts.iter().enumerate() {
        acc += p;
        let upto = (acc * scale).round() as usize;
        for _ in drawn..upto {
            out.push(letters[i]);
        }
        drawn = drawn.max(upto);
    }
    out
}

fn legend() -> String {
    let mut s: Vec<String> = KINDS
        .iter()
        .map(|(k, c)| format!("{c} {}", k.words()))
        .collect();
    s.push(format!("{UNATTRIBUTED} unattributed"));
    s.join(", ")
}

fn fmt_ci(mean: f64, ci: Option<f64>) -> String {
    match ci {
        Some(c) => format!("{mean:.2} ± {c:.2}"),
        None => format!("{mean:.2}"),
    }
}

/// The waterfall section, or `None` when no mode has a waterfall.
pub fn section(r: &CompareReport) -> Option<Section> {
    let ms = modes(r);
    if ms.is_empty() {
        return None;
    }
    let mut blocks = Vec::new();
    let longest = ms
        .iter()
        .map(|(_, w)| w.traced_rtt_us.max(w.attributed_us))
        .fold(0.0, f64::max);
    let scale = if longest > 0.0 {
        BAR_WIDTH as f64 / longest
    } else {
        0.0
    };
    let width = ms.iter().map(|(m, _)| m.len()).max().unwrap_or(4);
    let mut bars = String::new();
    for (m, w) in &ms {
        let _ = writeln!(
            bars,
            "{m:<width$} {:>6.2} µs |{}",
            w.traced_rtt_us,
            text_bar(&by_kind(w), scale)
        );
    }
    let _ = write!(bars, "({})", legend());
    blocks.push(Block::Text(bars));

    let header = [
        "mode",
        "traced µs",
        "untraced µs",
        "overhead µs (95% CI)",
        "attributed",
        "backlog waits/rt",
        "path CPU µs",
        "round trips",
    ];
    let rows = ms
        .iter()
        .map(|(m, w)| {
            vec![
                m.to_string(),
                format!("{:.2}", w.traced_rtt_us),
                format!("{:.2}", w.untraced_rtt_us),
                fmt_ci(w.overhead_us.mean, w.overhead_us.ci95),
                format!("{:.1}%", 100.0 * w.attributed_share()),
                format!("{:.2}", w.backlog_waits_per_rt),
                format!("{:.2}", w.cpu_work_us),
                w.round_trips.to_string(),
            ]
        })
        .collect();
    blocks.push(Block::Table(TableView::figures(
        header.iter().map(|s| s.to_string()).collect(),
        rows,
    )));

    // Stages by (kind, device kind): µs per round trip (occurrences per round trip).
    let mut groups: BTreeMap<(StageKind, String), Vec<String>> = BTreeMap::new();
    for (i, (_, w)) in ms.iter().enumerate() {
        for ((k, dk), (per_rt, us)) in w.groups() {
            let cells = groups
                .entry((k, dk))
                .or_insert_with(|| vec!["–".to_string(); ms.len()]);
            cells[i] = format!("{us:.2} ({per_rt:.2}×)");
        }
    }
    let mut header = vec!["stage (µs per round trip, occurrences)".to_string()];
    header.extend(ms.iter().map(|(m, _)| m.to_string()));
    let rows = groups
        .into_iter()
        .map(|((k, dk), cells)| {
            let name = if dk.is_empty() {
                k.words().to_string()
            } else {
                format!("{} ({dk})", k.words())
            };
            std::iter::once(name).chain(cells).collect()
        })
        .collect();
    blocks.push(Block::Table(TableView::figures(header, rows)));

    let deltas: Vec<String> = ms
        .iter()
        .flat_map(|(m, w)| {
            let host = w.vs_host.as_ref().map(|d| delta_line(m, d));
            let lab = w.vs_lab.as_ref().map(|d| {
                let against = d.against.as_deref().unwrap_or("the lab");
                format!("vs {against}: {}", delta_line(m, d))
            });
            host.into_iter().chain(lab)
        })
        .collect();
    if !deltas.is_empty() {
        blocks.push(Block::Bullets(deltas));
    }
    blocks.push(Block::Plot(Plot::Stacked(plot(&ms))));
    blocks.push(Block::Text(
        "Method: after the timed rounds, each path runs TCP_RR in blocks with BPF programs \
         (tp_btf) on the net, irq, sched and raw_syscalls tracepoints alternating with blocks \
         without (ABBA); the programs follow the round trip's critical path (the packet by its \
         address, the threads by id) and sum each stage's time in the kernel. A stage's µs is \
         its total over the traced round trips; its interval is Student's t over the traced \
         blocks. Stages add up to the traced round trip; what they do not cover is \
         unattributed. Overhead: traced − untraced per block pair. Path CPU: the stages that run \
         code (not the backlog wait, softirq delay or wake-up). Remote mode (--target, \
         --remote): the server's machine cannot be followed; the time from the wire device's \
         transmit to the server's first packet back is one stage (remote)."
            .into(),
    ));
    Some(Section::new(
        Some("Where the microseconds go (--waterfall)".into()),
        blocks,
    ))
}

fn plot(ms: &[(&str, &Waterfall)]) -> StackedPlot {
    StackedPlot {
        title: "Round trip by stage (traced, µs)".into(),
        legend: KINDS
            .iter()
            .map(|(k, _)| k.words().to_string())
            .chain(["unattributed".to_string()])
            .collect(),
        rows: ms
            .iter()
            .map(|(m, w)| StackedRow {
                name: m.to_string(),
                segments: by_kind(w),
            })
            .collect(),
    }
}

/// Colours per legend entry (Okabe–Ito, then greys).
const PALETTE: [&str; 12] = [
    "#0072b2", "#56b4e9", "#009e73", "#e69f00", "#d55e00", "#cc79a7", "#f0e442", "#999999",
    "#555555", "#bbbbbb", "#7b3294", "#eeeeee",
];

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The stacked bars as one SVG document: one horizontal bar per mode, segments in legend order,
/// an axis in µs, the legend below.
pub fn stacked_svg(p: &StackedPlot) -> String {
    let (w, left, right, top, bar_h, gap) = (900.0, 150.0, 60.0, 40.0, 26.0, 12.0);
    let total = p
        .rows
        .iter()
        .map(|r| r.segments.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1e-9);
    let scale = (w - left - right) / total;
    let axis_y = top + p.rows.len() as f64 * (bar_h + gap);
    let legend_rows = p.legend.len().div_ceil(4);
    let h = axis_y + 40.0 + legend_rows as f64 * 20.0 + 10.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="16" text-anchor="middle">{}</text>"#,
        w / 2.0,
        esc(&p.title)
    );
    for (i, row) in p.rows.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text>"#,
            left - 8.0,
            y + bar_h * 0.7,
            esc(&row.name)
        );
        let mut x = left;
        for (j, v) in row.segments.iter().enumerate() {
            let len = v * scale;
            if len <= 0.0 {
                continue;
            }
            let _ = writeln!(
                s,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{len:.1}" height="{bar_h}" fill="{}" stroke="white" stroke-width="0.5"><title>{}: {v:.2} µs</title></rect>"#,
                PALETTE[j % PALETTE.len()],
                esc(p.legend.get(j).map(String::as_str).unwrap_or(""))
            );
            x += len;
        }
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{}" font-size="11">{:.2}</text>"#,
            x + 4.0,
            y + bar_h * 0.7,
            row.segments.iter().sum::<f64>()
        );
    }
    // Axis: ticks at a round step.
    let step = [0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        .into_iter()
        .find(|st| total / st <= 10.0)
        .unwrap_or(200.0);
    let _ = writeln!(
        s,
        r#"<line x1="{left}" y1="{axis_y}" x2="{}" y2="{axis_y}" stroke="black"/>"#,
        left + total * scale
    );
    let mut t = 0.0;
    while t <= total + 1e-9 {
        let x = left + t * scale;
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{axis_y}" x2="{x:.1}" y2="{}" stroke="black"/><text x="{x:.1}" y="{}" font-size="11" text-anchor="middle">{t}</text>"#,
            axis_y + 5.0,
            axis_y + 18.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="11">µs</text>"#,
        left + total * scale + 8.0,
        axis_y + 18.0
    );
    for (j, name) in p.legend.iter().enumerate() {
        let (col, row) = (j % 4, j / 4);
        let x = left + col as f64 * 170.0;
        let y = axis_y + 34.0 + row as f64 * 20.0;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{}" width="12" height="12" fill="{}" stroke="gray" stroke-width="0.5"/><text x="{}" y="{y}">{}</text>"#,
            y - 10.0,
            PALETTE[j % PALETTE.len()],
            x + 17.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// The stages of every traced mode as CSV: one row per mode and stage, then one `unattributed`
/// row per mode.
pub fn csv(r: &CompareReport) -> String {
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "mode",
        "stage",
        "kind",
        "device",
        "device_kind",
        "role",
        "per_rt",
        "us",
        "ci95",
        "each_us",
        "traced_rtt_us",
        "untraced_rtt_us",
    ]);
    for (m, wf) in modes(r) {
        let (t, u) = (
            format!("{:.4}", wf.traced_rtt_us),
            format!("{:.4}", wf.untraced_rtt_us),
        );
        for s in &wf.stages {
            let _ = w.write_record([
                m,
                &s.name,
                s.kind.name(),
                s.device.as_deref().unwrap_or(""),
                s.device_kind.as_deref().unwrap_or(""),
                s.role.as_deref().unwrap_or(""),
                &format!("{:.4}", s.per_rt),
                &format!("{:.4}", s.us),
                &s.ci95.map(|c| format!("{c:.4}")).unwrap_or_default(),
                &format!("{:.4}", s.each_us),
                &t,
                &u,
            ]);
        }
        let _ = w.write_record([
            m,
            "unattributed",
            "unattributed",
            "",
            "",
            "",
            "",
            &format!("{:.4}", wf.unattributed_us),
            "",
            "",
            &t,
            &u,
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// Writes [`csv`] beside the compare's CSV (`out.csv` → `out.waterfall.csv`) when a mode has a
/// waterfall; returns the path written.
pub fn write_csv_beside(
    r: &CompareReport,
    csv_path: &std::path::Path,
) -> std::io::Result<Option<std::path::PathBuf>> {
    if modes(r).is_empty() {
        return Ok(None);
    }
    let stem = csv_path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "compare".into());
    let path = csv_path.with_file_name(format!("{stem}.waterfall.csv"));
    std::fs::write(&path, csv(r))?;
    Ok(Some(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_text_bar_is_as_long_as_its_total_and_in_kind_order() {
        let mut parts = vec![0.0; 12];
        parts[0] = 1.0; // user
        parts[4] = 2.0; // backlog wait
        parts[11] = 1.0; // unattributed
        let bar = text_bar(&parts, 5.0);
        assert_eq!(bar, "UUUUUBBBBBBBBBB.....");
        // Rounding never loses the total.
        let bar = text_bar(&[0.33, 0.33, 0.34], 10.0);
        assert_eq!(bar.chars().count(), 10);
    }

    #[test]
    fn the_svg_has_a_bar_per_mode_and_a_legend_entry_per_kind() {
        let p = StackedPlot {
            title: "t".into(),
            legend: vec!["a".into(), "b".into()],
            rows: vec![
                StackedRow {
                    name: "host".into(),
                    segments: vec![1.0, 2.0],
                },
                StackedRow {
                    name: "bridge".into(),
                    segments: vec![1.5, 2.5],
                },
            ],
        };
        let svg = stacked_svg(&p);
        assert_eq!(svg.matches("<title>").count(), 4);
        assert!(svg.contains(">host<") && svg.contains(">bridge<"));
        assert!(svg.contains(">a<") && svg.contains(">b<"));
        assert!(svg.ends_with("</svg>\n"));
    }
}
