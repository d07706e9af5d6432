//! The default (interleaved, paired) schedule on a real lab: the ratios find the costs the
//! mechanism predicts, the A/A control comes out 1, and the backlog fingerprints stay those of
//! each path (host 2, bridge 5, ptp 4, macvlan 3 packets per transaction).

use crate::common;

use std::process::Command;

use serde_json::Value;

fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .find(|m| m["mode"] == name)
        .unwrap_or_else(|| panic!("no mode {name} in {report}"))
}

fn ratio_ci(report: &Value, name: &str) -> (f64, f64) {
    let ci = &mode(report, name)["vs_host"]["ratio_ci95"];
    (
        ci[0]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: no ratio_ci95")),
        ci[1]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: no ratio_ci95")),
    )
}

/// One default compare of the four classic modes (budget cut to keep the test short).
fn compare(lab: &str, json: &std::path::Path) -> Value {
    let out = Command::new(common::nslat_bin())
        .args(["compare", "--modes", "host,bridge,ptp,macvlan"])
        .args(["--budget", "5", "--lab", lab, "--lock-wait", "300"])
        .arg("--json")
        .arg(json)
        .output()
        .expect("run nslat compare");
    assert!(
        out.status.success(),
        "compare failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        nslat::netns::list_with_prefix(&format!("nslat-{lab}-")).is_empty(),
        "lab left behind"
    );
    serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap()
}

#[test]
fn interleaved_compare_finds_the_costs_and_passes_its_aa_control() {
    if !common::need_root("interleaved_compare_finds_the_costs_and_passes_its_aa_control") {
        return;
    }
    let root = common::RootSnapshot::take();
    let dir = tempfile::tempdir().unwrap();
    let lab = common::unique("ilv");
    let mut report = compare(&lab, &dir.path().join("a.json"));
    // Two connections of one path can differ by a few tenths of a percent for the whole run
    // (where their sockets and threads landed), which an interval of this run's noise need not
    // cover: the control must be within the tolerance of 1, and where its interval excludes 1
    // the report must say so. A 95% result misses by chance now and then: a second,
    // independent compare decides.
    if report["aa_control"]["within_tolerance"] != true {
        eprintln!(
            "A/A control outside its tolerance once: {}",
            report["aa_control"]
        );
        report = compare(&lab, &dir.path().join("b.json"));
    }
    assert_eq!(report["schedule"], "interleaved");
    assert!(report["block_transactions"].as_u64().unwrap_or(0) >= 1);
    let aa = &report["aa_control"];
    let r = aa["ratio"].as_f64().unwrap();
    assert_eq!(
        aa["within_tolerance"],
        true,
        "A/A ratio {r} is not 1 within {}: {aa}",
        nslat::compare::AA_TOLERANCE
    );
    let warned = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w["message"].as_str().unwrap_or("").contains("A/A control"));
    assert_eq!(
        warned,
        aa["within_ci"] != true,
        "the A/A warning must appear exactly when its interval excludes 1: {aa}"
    );
    if aa["within_ci"] != true {
        eprintln!("A/A control within tolerance, outside its CI (reported): {aa}");
    }

    for slower in ["bridge", "ptp"] {
        let (lo, hi) = ratio_ci(&report, slower);
        assert!(
            lo > 1.0,
            "{slower} not significantly slower than host: ratio CI [{lo}, {hi}]"
        );
    }
    let (bridge_lo, _) = ratio_ci(&report, "bridge");
    let (_, ptp_hi) = ratio_ci(&report, "ptp");
    assert!(
        bridge_lo > ptp_hi,
        "bridge (one more hop and the bridge) not slower than ptp"
    );
    for (name, expected) in [
        ("host", 2.0),
        ("bridge", 5.0),
        ("ptp", 4.0),
        ("macvlan", 3.0),
    ] {
        let got = mode(&report, name)["probes"]["backlog_pkts_per_tx"]
            .as_f64()
            .unwrap_or_else(|| panic!("{name}: no backlog figure"));
        assert!(
            (got - expected).abs() < 0.15,
            "{name}: {got} backlog packets per transaction, expected {expected}"
        );
    }
    root.assert_unchanged();
}
