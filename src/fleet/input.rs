//! Reading `nslat compare --json` files for a fleet report: only the keys the fleet table needs,
//! so keys that later versions add (schedules, targets, rounds) are ignored and keys they make
//! optional are tolerated. A file may hold several JSON documents one after another (what a
//! Kubernetes Job prints to its log: one report per peer network).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::FleetError;
use crate::compare::{PairLabel, PeerNetwork};

/// One compare report as the fleet report reads it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ReportView {
    pub test: String,
    pub request_size: usize,
    pub response_size: usize,
    #[serde(default)]
    pub duration_s: Option<f64>,
    #[serde(default)]
    pub cpu_placement: Option<String>,
    #[serde(default)]
    pub host_name: Option<String>,
    /// The baseline row's name: reports write `baseline` as an object (`{"mode": "host", …}`),
    /// older ones as the name alone.
    #[serde(default, deserialize_with = "baseline_mode")]
    pub baseline: Option<String>,
    #[serde(default)]
    pub pair: Option<PairLabel>,
    pub modes: Vec<ModeView>,
}

fn baseline_mode<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let v: Option<serde_json::Value> = Option::deserialize(d)?;
    Ok(match v {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Object(o)) => {
            o.get("mode").and_then(|m| m.as_str()).map(String::from)
        }
        _ => None,
    })
}

/// One mode (or target) of a compare report.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModeView {
    pub mode: String,
    pub available: bool,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub latency_us: Option<LatencyView>,
    #[serde(default)]
    pub vs_host: Option<VsHostView>,
    #[serde(default)]
    pub reps: Vec<RepView>,
}

/// A mode's latency: mean over repetitions with its 95 % CI half-width, and the p99.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct LatencyView {
    pub mean: f64,
    #[serde(default)]
    pub ci95: Option<f64>,
    #[serde(default)]
    pub p99: Option<f64>,
}

/// A mode against the report's baseline.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct VsHostView {
    pub ratio: f64,
    #[serde(default)]
    pub delta_us: Option<f64>,
    #[serde(default)]
    pub p_value: Option<f64>,
    #[serde(default)]
    pub significant: bool,
    /// `[low, high]`, when the compare run computed the ratio's interval itself.
    #[serde(default)]
    pub ratio_ci95: Option<[f64; 2]>,
    /// Paired rounds behind the ratio (interleaved schedule).
    #[serde(default)]
    pub rounds: Option<usize>,
}

/// A repetition: only counted.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct RepView {}

/// The reports of one input file, with the pair label the user gave for it (`--label`).
#[derive(Debug, Clone, PartialEq)]
pub struct InputFile {
    pub path: PathBuf,
    pub reports: Vec<ReportView>,
}

impl InputFile {
    /// A short name for messages and the `source` column: the file name.
    pub fn name(&self) -> String {
        display_name(&self.path)
    }
}

pub(crate) fn display_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Parses the JSON documents in `text` (one or more, whitespace between them).
pub fn parse_reports(path: &Path, text: &str) -> Result<Vec<ReportView>, FleetError> {
    let mut out = Vec::new();
    for doc in serde_json::Deserializer::from_str(text).into_iter::<ReportView>() {
        let doc = doc.map_err(|e| FleetError::NotCompareJson {
            path: path.display().to_string(),
            why: e.to_string(),
        })?;
        out.push(doc);
    }
    if out.is_empty() {
        return Err(FleetError::NotCompareJson {
            path: path.display().to_string(),
            why: "the file is empty".into(),
        });
    }
    Ok(out)
}

/// Reads one input file.
pub fn read_file(path: &Path) -> Result<InputFile, FleetError> {
    let text = std::fs::read_to_string(path).map_err(|e| FleetError::Read {
        path: path.display().to_string(),
        why: e.to_string(),
    })?;
    Ok(InputFile {
        path: path.to_path_buf(),
        reports: parse_reports(path, &text)?,
    })
}

/// `--label FILE=NODE->PEER`: names the pair of a file whose reports carry none (or overrides it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLabel {
    pub file: PathBuf,
    pub node: String,
    pub peer: String,
}

impl std::str::FromStr for FileLabel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("--label '{s}': give FILE=NODE->PEER, e.g. a-b.json=node-a->node-b");
        let (file, pair) = s.rsplit_once('=').ok_or_else(bad)?;
        let (node, peer) = pair.split_once("->").ok_or_else(bad)?;
        let (node, peer) = (node.trim(), peer.trim());
        if file.is_empty() || node.is_empty() || peer.is_empty() {
            return Err(bad());
        }
        Ok(FileLabel {
            file: PathBuf::from(file),
            node: node.to_string(),
            peer: peer.to_string(),
        })
    }
}

/// The pair a report was measured across: the `--label` for its file, else its own `pair`.
pub fn pair_of(
    file: &InputFile,
    report: &ReportView,
    labels: &[FileLabel],
) -> Result<PairLabel, FleetError> {
    let network = report
        .pair
        .as_ref()
        .map(|p| p.peer_network)
        .unwrap_or(PeerNetwork::Host);
    if let Some(l) = labels.iter().find(|l| same_file(&l.file, &file.path)) {
        return Ok(PairLabel {
            node: l.node.clone(),
            peer: l.peer.clone(),
            peer_network: network,
        });
    }
    report.pair.clone().ok_or_else(|| FleetError::NoPair {
        path: file.path.display().to_string(),
    })
}

pub(crate) fn same_file(a: &Path, b: &Path) -> bool {
    a == b
        || match (a.canonicalize(), b.canonicalize()) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"{"test":"TCP_RR","request_size":1,"response_size":1,"modes":[
        {"mode":"host","available":true,"latency_us":{"mean":5.0,"ci95":0.1}}]}"#;

    #[test]
    fn the_snapshot_report_parses() {
        // The JSON exporter's reviewed insta snapshot: its body after the `---` header.
        let snap = include_str!("../../tests/snapshots/report__json.snap");
        let text = snap
            .splitn(3, "---\n")
            .nth(2)
            .expect("an insta snapshot body");
        let r = parse_reports(Path::new("report.json"), text).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].test, "TCP_RR");
        let bridge = &r[0].modes[1];
        assert_eq!(bridge.mode, "bridge");
        assert!(bridge.vs_host.unwrap().ratio > 1.2);
        assert_eq!(bridge.reps.len(), 1);
        assert!(!r[0].modes[4].available);
    }

    #[test]
    fn new_keys_are_tolerated_and_read_where_known() {
        let text = r#"{"test":"TCP_RR","request_size":1,"response_size":1,"schedule":"paired",
            "block_transactions":64,"aa_control":{"ratio":1.0,"within_ci":true},
            "cpu_placement":"same","pair":{"node":"a","peer":"b","peer_network":"pod"},
            "modes":[{"mode":"pod","available":true,"target":{"spec":"pid:42"},
              "latency_us":{"mean":6.0,"ci95":0.1},
              "vs_host":{"ratio":1.2,"ratio_ci95":[1.18,1.22],"rounds":12,"significant":true}}]}"#;
        let r = &parse_reports(Path::new("x.json"), text).unwrap()[0];
        assert_eq!(r.pair.as_ref().unwrap().peer_network, PeerNetwork::Pod);
        assert_eq!(r.modes[0].vs_host.unwrap().ratio_ci95, Some([1.18, 1.22]));
    }

    #[test]
    fn several_documents_in_one_file() {
        let text = format!("{MINIMAL}\n{MINIMAL}\n");
        assert_eq!(parse_reports(Path::new("x"), &text).unwrap().len(), 2);
    }

    #[test]
    fn not_compare_json_is_one_clear_error() {
        for text in [
            "",
            "{\"modes\": []}",
            "hello",
            "{\"test\":\"TCP_RR\"} trailing",
        ] {
            let e = parse_reports(Path::new("bad.json"), text).unwrap_err();
            let msg = e.to_string();
            assert!(
                msg.starts_with("bad.json: not an `nslat compare --json` report"),
                "{msg}"
            );
            assert!(!msg.contains('\n'), "{msg}");
        }
    }

    #[test]
    fn labels_parse() {
        let l: FileLabel = "out/a-b.json=node-a->node-b".parse().unwrap();
        assert_eq!(l.file, PathBuf::from("out/a-b.json"));
        assert_eq!((l.node.as_str(), l.peer.as_str()), ("node-a", "node-b"));
        for bad in [
            "a.json",
            "a.json=node-a",
            "=a->b",
            "a.json=->b",
            "a.json=a->",
        ] {
            assert!(bad.parse::<FileLabel>().is_err(), "{bad}");
        }
    }
}
