//! Merging compare reports into one fleet report: one row per node pair and path, every ratio
//! with its 95 % interval, the worst pairs first. Refuses inputs that do not measure the same
//! thing (another test, other sizes, another CPU placement) or that measure one path twice.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::input::{pair_of, same_file, FileLabel, InputFile, ModeView, ReportView};
use super::FleetError;
use crate::compare::{PeerNetwork, BASELINE};

/// The whole fleet report (what `report merge --json` writes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetReport {
    pub test: String,
    pub request_size: usize,
    pub response_size: usize,
    pub cpu_placement: Option<String>,
    /// The input files, in the order given.
    pub sources: Vec<String>,
    /// Node pairs, the worst first (largest ratio of any path to its baseline).
    pub pairs: Vec<FleetPair>,
}

/// One node pair: every path measured across it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPair {
    pub node: String,
    pub peer: String,
    /// The largest `ratio` of the pair's paths (1 when no path has a ratio).
    pub worst_ratio: f64,
    pub paths: Vec<FleetPath>,
}

/// Where a ratio's 95 % interval comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RatioCiSource {
    /// The compare run's own `vs_host.ratio_ci95`.
    Compare,
    /// First-order error propagation of the two means' intervals:
    /// ratio ± ratio × sqrt((ci_mode/mean_mode)² + (ci_base/mean_base)²), the low end at least 0.
    Propagated,
}

/// One path across a pair: a mode (or target) of the node against one of the peer's networks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FleetPath {
    /// `<mode>→<peer network>`, e.g. `pod→host`.
    pub path: String,
    pub mode: String,
    pub peer_network: PeerNetwork,
    /// The path this one is compared with (the same peer network from the node itself).
    pub baseline: String,
    pub available: bool,
    pub reason: Option<String>,
    pub latency_us: Option<f64>,
    pub latency_ci95: Option<f64>,
    pub latency_p99_us: Option<f64>,
    /// Repetitions measured.
    pub reps: usize,
    /// Paired rounds (interleaved schedule: one aggregate run per path, compared round by round
    /// with the baseline; the baseline's row shows its report's rounds).
    pub rounds: Option<usize>,
    /// Mean latency / the baseline's (`None` for the baseline itself).
    pub ratio: Option<f64>,
    pub ratio_ci95: Option<[f64; 2]>,
    pub ratio_ci_source: Option<RatioCiSource>,
    pub p_value: Option<f64>,
    pub significant: bool,
    /// The input file it came from.
    pub source: String,
}

/// The kind of measurement every input must share.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shape {
    test: String,
    request_size: usize,
    response_size: usize,
    cpu_placement: Option<String>,
}

impl Shape {
    fn of(r: &ReportView) -> Shape {
        Shape {
            test: r.test.clone(),
            request_size: r.request_size,
            response_size: r.response_size,
            cpu_placement: r.cpu_placement.clone(),
        }
    }

    fn describe(&self) -> String {
        let cpu = self
            .cpu_placement
            .as_deref()
            .map(|c| format!(", cpu {c}"))
            .unwrap_or_default();
        format!(
            "{} {},{}{cpu}",
            self.test, self.request_size, self.response_size
        )
    }
}

/// Merges the reports of `files` (each labelled by its own `pair` or a `--label`).
pub fn merge(files: &[InputFile], labels: &[FileLabel]) -> Result<FleetReport, FleetError> {
    for l in labels {
        if !files.iter().any(|f| same_file(&l.file, &f.path)) {
            return Err(FleetError::LabelWithoutFile {
                path: l.file.display().to_string(),
            });
        }
    }
    let mut reference: Option<(Shape, String)> = None;
    let mut pairs: BTreeMap<(String, String), Vec<FleetPath>> = BTreeMap::new();
    for file in files {
        for report in &file.reports {
            let shape = Shape::of(report);
            match &reference {
                None => reference = Some((shape, file.name())),
                Some((first, first_file)) if *first != shape => {
                    return Err(FleetError::Inconsistent {
                        file: file.name(),
                        shape: shape.describe(),
                        first_file: first_file.clone(),
                        first_shape: first.describe(),
                    })
                }
                Some(_) => {}
            }
            let pair = pair_of(file, report, labels)?;
            let rows = pairs
                .entry((pair.node.clone(), pair.peer.clone()))
                .or_default();
            let baseline = report.baseline.as_deref().unwrap_or(BASELINE);
            // The A/A control (a second host connection) checks the method, and the host on a
            // node of the other netfilter state is a reference beside the baseline: neither is
            // a path between nodes.
            for m in report
                .modes
                .iter()
                .filter(|m| m.mode == baseline || !crate::compare::is_host_row(&m.mode))
            {
                let row = path_row(m, report, baseline, pair.peer_network, &file.name());
                if let Some(dup) = rows.iter().find(|r| r.path == row.path) {
                    return Err(FleetError::Duplicate {
                        node: pair.node.clone(),
                        peer: pair.peer.clone(),
                        path: row.path.clone(),
                        first_file: dup.source.clone(),
                        file: file.name(),
                    });
                }
                rows.push(row);
            }
        }
    }
    let Some((shape, _)) = reference else {
        return Err(FleetError::NoInput);
    };
    let mut pairs: Vec<FleetPair> = pairs
        .into_iter()
        .map(|((node, peer), mut paths)| {
            paths.sort_by_key(path_order);
            let worst_ratio = paths.iter().filter_map(|p| p.ratio).fold(1.0_f64, f64::max);
            FleetPair {
                node,
                peer,
                worst_ratio,
                paths,
            }
        })
        .collect();
    // Worst first; ties in node-then-peer order (the BTreeMap's), kept by the stable sort.
    pairs.sort_by(|a, b| b.worst_ratio.total_cmp(&a.worst_ratio));
    Ok(FleetReport {
        test: shape.test,
        request_size: shape.request_size,
        response_size: shape.response_size,
        cpu_placement: shape.cpu_placement,
        sources: files.iter().map(InputFile::name).collect(),
        pairs,
    })
}

/// Rows of a pair: by peer network (host, then pod), the baseline first, then by mode name.
fn path_order(p: &FleetPath) -> (PeerNetwork, bool, String) {
    (p.peer_network, p.mode != p.baseline, p.mode.clone())
}

fn path_row(
    m: &ModeView,
    report: &ReportView,
    baseline: &str,
    network: PeerNetwork,
    source: &str,
) -> FleetPath {
    let base_latency = report
        .modes
        .iter()
        .find(|b| b.mode == baseline && b.available)
        .and_then(|b| b.latency_us);
    let vs = m.vs_host.filter(|_| m.available && m.mode != baseline);
    let rounds = if m.mode == baseline {
        report
            .modes
            .iter()
            .filter_map(|o| o.vs_host.and_then(|v| v.rounds))
            .max()
    } else {
        vs.and_then(|v| v.rounds)
    };
    let (ratio_ci95, ratio_ci_source) = match vs {
        None => (None, None),
        Some(v) => match v.ratio_ci95 {
            Some(ci) => (Some(ci), Some(RatioCiSource::Compare)),
            None => match propagated_ci(v.ratio, m.latency_us, base_latency) {
                Some(ci) => (Some(ci), Some(RatioCiSource::Propagated)),
                None => (None, None),
            },
        },
    };
    FleetPath {
        path: format!("{}→{}", m.mode, network),
        mode: m.mode.clone(),
        peer_network: network,
        baseline: baseline.to_string(),
        available: m.available,
        reason: m.reason.clone(),
        latency_us: m.latency_us.map(|l| l.mean),
        latency_ci95: m.latency_us.and_then(|l| l.ci95),
        latency_p99_us: m.latency_us.and_then(|l| l.p99),
        reps: m.reps.len(),
        rounds,
        ratio: vs.map(|v| v.ratio),
        ratio_ci95,
        ratio_ci_source,
        p_value: vs.and_then(|v| v.p_value),
        significant: vs.is_some_and(|v| v.significant),
        source: source.to_string(),
    }
}

/// The ratio's 95 % interval from the two means' intervals (first-order propagation).
fn propagated_ci(
    ratio: f64,
    mode: Option<super::input::LatencyView>,
    base: Option<super::input::LatencyView>,
) -> Option<[f64; 2]> {
    let (m, b) = (mode?, base?);
    let (cm, cb) = (m.ci95?, b.ci95?);
    if m.mean <= 0.0 || b.mean <= 0.0 {
        return None;
    }
    let half = ratio * ((cm / m.mean).powi(2) + (cb / b.mean).powi(2)).sqrt();
    // A ratio of latencies is positive: with intervals as wide as the means, the first-order
    // interval would reach below 0.
    Some([(ratio - half).max(0.0), ratio + half])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::PairLabel;
    use std::path::{Path, PathBuf};

    fn report(node: &str, peer: &str, net: PeerNetwork, modes: &[(&str, f64)]) -> ReportView {
        let host = modes[0].1;
        let text = serde_json::json!({
            "test": "TCP_RR", "request_size": 1, "response_size": 1, "cpu_placement": "same",
            "baseline": "host",
            "pair": PairLabel { node: node.into(), peer: peer.into(), peer_network: net },
            "modes": modes.iter().map(|(name, lat)| {
                let vs = (*name != "host").then(|| serde_json::json!({
                    "ratio": lat / host, "p_value": 0.001, "significant": true }));
                serde_json::json!({"mode": name, "available": true,
                    "latency_us": {"mean": lat, "ci95": lat * 0.01, "p99": lat * 1.5},
                    "vs_host": vs, "reps": [{}, {}, {}]})
            }).collect::<Vec<_>>()
        });
        serde_json::from_value(text).unwrap()
    }

    fn file(name: &str, reports: Vec<ReportView>) -> InputFile {
        InputFile {
            path: PathBuf::from(name),
            reports,
        }
    }

    #[test]
    fn pairs_are_sorted_worst_first_and_paths_in_a_fixed_order() {
        let files = vec![
            file(
                "a.json",
                vec![
                    report(
                        "a",
                        "b",
                        PeerNetwork::Host,
                        &[("host", 10.0), ("pod", 11.0)],
                    ),
                    report("a", "b", PeerNetwork::Pod, &[("host", 11.0), ("pod", 12.1)]),
                ],
            ),
            file(
                "c.json",
                vec![report(
                    "a",
                    "c",
                    PeerNetwork::Host,
                    &[("host", 10.0), ("pod", 15.0)],
                )],
            ),
        ];
        let f = merge(&files, &[]).unwrap();
        assert_eq!(f.pairs.len(), 2);
        assert_eq!(
            (f.pairs[0].node.as_str(), f.pairs[0].peer.as_str()),
            ("a", "c")
        );
        assert!((f.pairs[0].worst_ratio - 1.5).abs() < 1e-12);
        let paths: Vec<&str> = f.pairs[1].paths.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["host→host", "pod→host", "host→pod", "pod→pod"]);
        let pod = &f.pairs[1].paths[1];
        assert_eq!(pod.reps, 3);
        assert_eq!(pod.ratio_ci_source, Some(RatioCiSource::Propagated));
        let [lo, hi] = pod.ratio_ci95.unwrap();
        // 1.1 × sqrt(0.01² + 0.01²)
        assert!(
            (hi - lo - 2.0 * 1.1 * 0.02_f64.sqrt() * 0.1).abs() < 1e-9,
            "{lo} {hi}"
        );
        assert!(f.pairs[1].paths[0].ratio.is_none());
    }

    #[test]
    fn a_propagated_interval_stays_positive() {
        let lat = |mean: f64, ci95: f64| super::super::input::LatencyView {
            mean,
            ci95: Some(ci95),
            p99: None,
        };
        let [lo, hi] = propagated_ci(1.5, Some(lat(15.0, 10.0)), Some(lat(10.0, 10.0))).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 2.5, "{hi}");
    }

    #[test]
    fn a_compare_ratio_interval_is_used_as_given() {
        let mut r = report(
            "a",
            "b",
            PeerNetwork::Host,
            &[("host", 10.0), ("pod", 11.0)],
        );
        r.modes[1].vs_host.as_mut().unwrap().ratio_ci95 = Some([1.05, 1.15]);
        let f = merge(&[file("a.json", vec![r])], &[]).unwrap();
        let p = &f.pairs[0].paths[1];
        assert_eq!(p.ratio_ci95, Some([1.05, 1.15]));
        assert_eq!(p.ratio_ci_source, Some(RatioCiSource::Compare));
    }

    #[test]
    fn inconsistent_inputs_are_refused_in_one_line() {
        let a = report("a", "b", PeerNetwork::Host, &[("host", 10.0)]);
        let mut udp = report("a", "c", PeerNetwork::Host, &[("host", 10.0)]);
        udp.test = "UDP_RR".into();
        let mut big = report("a", "c", PeerNetwork::Host, &[("host", 10.0)]);
        big.response_size = 1024;
        for other in [udp, big] {
            let e = merge(
                &[file("a.json", vec![a.clone()]), file("c.json", vec![other])],
                &[],
            )
            .unwrap_err();
            let msg = e.to_string();
            assert!(msg.starts_with("inconsistent inputs: c.json is "), "{msg}");
            assert!(msg.contains("a.json is TCP_RR 1,1"), "{msg}");
            assert!(!msg.contains('\n'));
        }
        let e = merge(
            &[
                file("a.json", vec![a.clone()]),
                file("b.json", vec![a.clone()]),
            ],
            &[],
        )
        .unwrap_err();
        assert!(
            e.to_string()
                .contains("host→host across a->b is in both a.json and b.json"),
            "{e}"
        );
    }

    #[test]
    fn labels_name_unlabelled_files() {
        let mut r = report("x", "y", PeerNetwork::Host, &[("host", 10.0)]);
        r.pair = None;
        let files = [file("a.json", vec![r])];
        let e = merge(&files, &[]).unwrap_err();
        assert!(e.to_string().contains("--label a.json=NODE->PEER"), "{e}");
        let label = FileLabel {
            file: Path::new("a.json").into(),
            node: "n1".into(),
            peer: "n2".into(),
        };
        let f = merge(&files, &[label]).unwrap();
        assert_eq!(f.pairs[0].node, "n1");
        let stray = FileLabel {
            file: Path::new("zz.json").into(),
            node: "n1".into(),
            peer: "n2".into(),
        };
        assert!(merge(&files, &[stray]).is_err());
    }
}
