//! The `--target` part of a report as one view section: per target, its ratio to the host with
//! the CI, the lab's figure for the mode it looks like beside it, and where and what its path is
//! (interface kind, peer or parent, bridge, NAT). Every exporter (terminal, Markdown, HTML)
//! renders this section; none builds its own targets table.

use super::view::{Block, Section, TableView};
use super::DASH;
use crate::compare::CompareReport;

fn ratio(r: Option<f64>, ci: Option<f64>) -> String {
    match (r, ci) {
        (Some(r), Some(c)) => format!("{r:.3} ± {c:.3}"),
        (Some(r), None) => format!("{r:.3}"),
        _ => DASH.into(),
    }
}

/// The column titles of the targets table.
pub const HEADERS: [&str; 7] = [
    "target",
    "spec",
    "looks like",
    "ratio to host (95% CI)",
    "lab's ratio (95% CI)",
    "difference",
    "backlog pkts/tx",
];

/// The targets section: the table, one line per target saying where its namespace is and what
/// its path is (with why it failed and what could not be read), and how the ratios were paired.
/// `None` when the report measured no target.
pub fn section(r: &CompareReport) -> Option<Section> {
    let rows: Vec<_> = r
        .modes
        .iter()
        .filter_map(|m| m.target.as_ref().map(|t| (m, t)))
        .collect();
    if rows.is_empty() {
        return None;
    }
    let table = rows
        .iter()
        .map(|(m, tg)| {
            let real = if m.available {
                ratio(tg.ratio, tg.ratio_ci95)
            } else {
                "failed".into()
            };
            let lab = tg
                .lab
                .as_ref()
                .map(|l| ratio(Some(l.ratio), l.ratio_ci95))
                .unwrap_or_else(|| match tg.looks_like.as_deref() {
                    Some("host") => "1 (is host)".into(),
                    _ => DASH.into(),
                });
            let diff = match (tg.ratio, &tg.lab) {
                (Some(a), Some(l)) if m.available => {
                    format!("{:+.1} points", (a - l.ratio) * 100.0)
                }
                _ => DASH.into(),
            };
            vec![
                m.mode.clone(),
                tg.spec.clone(),
                tg.looks_like.clone().unwrap_or_else(|| DASH.into()),
                real,
                lab,
                diff,
                super::opt(tg.path.backlog_pkts_per_tx, 2),
            ]
        })
        .collect();
    let mut paths = Vec::new();
    for (m, tg) in &rows {
        paths.push(format!(
            "{}: {} via {}: {}",
            m.mode,
            tg.resolved_netns,
            tg.resolved_by,
            tg.path.summary()
        ));
        if let Some(why) = m.reason.as_deref().filter(|_| !m.available) {
            paths.push(format!("{}: {why}", m.mode));
        }
        for n in &tg.path.notes {
            paths.push(format!("{}: note: {n}", m.mode));
        }
    }
    Some(Section::new(
        Some("Targets (your containers)".into()),
        vec![
            Block::Table(TableView::figures(
                HEADERS.map(String::from).to_vec(),
                table,
            )),
            Block::Bullets(paths),
            Block::Text(
                "ratios are paired by round (each round measures every path once); the lab's \
                 ratio is its mode over lab/host against the lab's own remote"
                    .into(),
            ),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::super::view::Block;
    use crate::target::{LabFigure, PathDescription, TargetReport};

    /// The sample report with one target row that looks like the bridge.
    fn with_target() -> crate::compare::CompareReport {
        let mut r = super::super::sample_report();
        let mut row = r.modes[1].clone();
        row.mode = "web".into();
        row.target = Some(TargetReport {
            spec: "docker:web".into(),
            resolved_netns: "/proc/4242/ns/net (net:[4026532345])".into(),
            resolved_by: "docker inspect State.Pid 4242".into(),
            looks_like: Some("bridge".into()),
            path: PathDescription {
                interface: Some("eth0".into()),
                kind: Some("veth".into()),
                bridge: Some("docker0".into()),
                backlog_pkts_per_tx: Some(2.0),
                ..Default::default()
            },
            lab: Some(LabFigure {
                mode: "bridge".into(),
                ratio: 1.29,
                ratio_ci95: Some(0.01),
                latency_us: 6.6,
            }),
            ratio: Some(1.31),
            ratio_ci95: Some(0.012),
        });
        r.modes.push(row);
        r
    }

    #[test]
    fn one_targets_section_for_every_exporter() {
        let r = with_target();
        let v = super::super::compare_view::compare(&r);
        let s = v
            .sections
            .iter()
            .find(|s| s.title.as_deref() == Some("Targets (your containers)"))
            .expect("targets section");
        let Some(Block::Table(t)) = s.blocks.first() else {
            panic!("a table first");
        };
        assert_eq!(
            t.rows[0],
            [
                "web",
                "docker:web",
                "bridge",
                "1.310 ± 0.012",
                "1.290 ± 0.010",
                "+2.0 points",
                "2.00"
            ]
        );
        let path = "web: /proc/4242/ns/net (net:[4026532345]) via docker inspect State.Pid 4242: \
                    veth eth0 on bridge docker0, no NAT";
        let render = |e: &dyn super::super::Exporter| {
            let mut out = Vec::new();
            e.export(&r, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let md = render(&super::super::MarkdownExporter);
        assert!(
            md.contains("| web | docker:web | bridge | 1.310 ± 0.012 |"),
            "{md}"
        );
        assert!(md.contains(path), "{md}");
        let html = render(&super::super::HtmlExporter);
        assert!(html.contains("<td>docker:web</td><td>bridge</td><td>1.310 ± 0.012</td>"));
        assert!(html.contains(path), "{html}");
        let text = render(&super::super::TableExporter);
        assert!(
            text.contains("1.310 ± 0.012") && text.contains(path),
            "{text}"
        );
        assert!(super::section(&super::super::sample_report()).is_none());
    }
}
