//! `nslat compare` end to end with short runs: a real lab, the real engine, every exporter, and
//! the lab gone afterwards.

mod common;

use std::process::Command;

use serde_json::Value;

/// The measuring tests pin client and server to the same CPU: run them one at a time, or each
/// would count the other's packets.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn lab_namespaces(lab: &str) -> Vec<String> {
    nslat::netns::list_with_prefix(&format!("nslat-{lab}-"))
}

fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .find(|m| m["mode"] == name)
        .unwrap_or_else(|| panic!("no mode {name} in {report}"))
}

fn backlog(report: &Value, name: &str) -> f64 {
    mode(report, name)["probes"]["backlog_pkts_per_tx"]
        .as_f64()
        .unwrap_or_else(|| panic!("no backlog figure for {name}"))
}

#[test]
fn compare_measures_explains_and_exports_then_cleans_up() {
    if !common::need_root("compare_measures_explains_and_exports_then_cleans_up") {
        return;
    }
    let _serial = serial();
    let root = common::RootSnapshot::take();
    let dir = tempfile::tempdir().unwrap();
    let lab = common::unique("cmp");
    let out = |f: &str| dir.path().join(f);
    let status = Command::new(common::nslat_bin())
        .args([
            "compare",
            "--modes",
            "host,bridge,ptp,macvlan,ipvlan-l2",
            "--reps",
            "2",
        ])
        .args(["-l", "0.3", "--warmup", "0.1", "--lab", &lab])
        .arg("--json")
        .arg(out("r.json"))
        .arg("--csv")
        .arg(out("r.csv"))
        .arg("--markdown")
        .arg(out("r.md"))
        .arg("--html")
        .arg(out("html"))
        .output()
        .expect("run nslat compare");
    let stdout = String::from_utf8_lossy(&status.stdout);
    let stderr = String::from_utf8_lossy(&status.stderr);
    assert!(
        status.status.success(),
        "compare failed:\n{stdout}\n{stderr}"
    );
    assert!(lab_namespaces(&lab).is_empty(), "lab left behind");

    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(out("r.json")).unwrap()).unwrap();
    for key in [
        "cpu_placement",
        "test",
        "reps",
        "duration_s",
        "kernel",
        "modes",
    ] {
        assert!(!report[key].is_null(), "top-level key {key} missing");
    }
    assert_eq!(report["cpu_placement"], "same");
    assert_eq!(report["test"], "TCP_RR");
    for name in ["host", "bridge", "ptp", "macvlan"] {
        let m = mode(&report, name);
        assert_eq!(m["available"], true, "{name}: {m}");
        let lat = &m["latency_us"];
        let (p50, p99, p999) = (
            lat["p50"].as_f64().unwrap(),
            lat["p99"].as_f64().unwrap(),
            lat["p99_9"].as_f64().unwrap(),
        );
        assert!(
            p50 > 0.0 && p50 <= p99 && p99 <= p999,
            "{name}: percentiles out of order: {lat}"
        );
        assert!(
            m["trans_per_s"]["mean"].as_f64().unwrap() > 1000.0,
            "{name}: {m}"
        );
        if name != "host" {
            for k in ["delta_us", "ratio", "p_value", "significant"] {
                assert!(
                    !m["vs_host"][k].is_null(),
                    "{name}: vs_host.{k} missing: {m}"
                );
            }
        }
        for k in [
            "backlog_pkts_per_tx",
            "net_rx_per_tx",
            "cpu_us_per_tx",
            "tracepoints_per_tx",
        ] {
            assert!(!m["probes"][k].is_null(), "{name}: probes.{k} missing: {m}");
        }
    }
    // The path shows in the backlog: every extra interface queues each packet once more.
    let (h, mv, p, b) = (
        backlog(&report, "host"),
        backlog(&report, "macvlan"),
        backlog(&report, "ptp"),
        backlog(&report, "bridge"),
    );
    assert!(
        h < mv && mv < p && p < b,
        "backlog per tx not ordered host < macvlan < ptp < bridge: {h} {mv} {p} {b}"
    );
    // ipvlan: measured where the kernel has it, otherwise a row with the reason.
    let ipv = mode(&report, "ipvlan-l2");
    if ipv["available"] == false {
        assert!(ipv["reason"].as_str().unwrap().contains("ipvlan"), "{ipv}");
    }
    // The feature matrix is in the report and beside the table.
    assert!(
        report["checks"]["modes"].is_array(),
        "no check matrix: {}",
        report["checks"]
    );
    assert!(stdout.contains("Feature checks"), "{stdout}");
    assert!(stdout.contains("Verdict:"), "{stdout}");

    let csv = std::fs::read_to_string(out("r.csv")).unwrap();
    assert_eq!(
        csv.lines().count(),
        1 + 5 + 1,
        "header + one row per mode + the A/A control's:\n{csv}"
    );
    let md = std::fs::read_to_string(out("r.md")).unwrap();
    assert!(md.contains("| bridge"), "{md}");
    let html = std::fs::read_to_string(out("html").join("index.html")).unwrap();
    assert!(
        html.contains("Feature checks"),
        "check matrix missing from the HTML page"
    );
    assert!(
        html.matches("<svg").count() >= 2,
        "plots missing from the HTML page"
    );
    root.assert_unchanged();
}

#[test]
fn explain_attributes_the_bridge_gap_and_restores_nat() {
    if !common::need_root("explain_attributes_the_bridge_gap_and_restores_nat") {
        return;
    }
    let root = common::RootSnapshot::take();
    let _serial = serial();
    use nslat::compare::{self, CompareOptions, RepsChoice, SilentProgress};
    use nslat::lab::Mode;
    use std::time::Duration;

    let lab = common::unique("exp");
    let opts = CompareOptions {
        modes: vec![Mode::Host, Mode::Bridge],
        duration: Duration::from_millis(200),
        warmup: Duration::from_millis(50),
        reps: RepsChoice::Fixed(2),
        explain: true,
        checks: false,
        lab: Some(lab.clone()),
        ..Default::default()
    };
    let reports = compare::run(&opts, &SilentProgress).expect("compare --explain");
    assert!(lab_namespaces(&lab).is_empty(), "lab left behind");
    let explain = reports[0].explain.as_ref().expect("explain breakdown");
    let names: Vec<&str> = explain.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(
        names[0].contains("veth") && names[3].contains("MASQUERADE"),
        "{names:?}"
    );
    let shares: f64 = explain.parts.iter().map(|p| p.share).sum();
    assert!(
        (shares - 1.0).abs() < 1e-9,
        "shares add up to the gap: {shares}"
    );
    assert!(
        explain.notes.iter().any(|n| n.contains("NAT table")),
        "{:?}",
        explain.notes
    );
    assert!(
        explain.notes.iter().any(|n| n.contains("backlog")),
        "{:?}",
        explain.notes
    );
    root.assert_unchanged();
}

#[test]
fn compare_on_a_kept_lab_leaves_it_and_its_nat_as_they_were() {
    if !common::need_root("compare_on_a_kept_lab_leaves_it_and_its_nat_as_they_were") {
        return;
    }
    let root = common::RootSnapshot::take();
    let _serial = serial();
    let lab = common::unique("keep");
    let bin = common::nslat_bin();
    common::nslat_ok(&["lab", "up", "--name", &lab, "--modes", "host,bridge"]);
    // --explain on a lab without ptp fails before measuring anything.
    let refused = Command::new(bin)
        .args([
            "compare",
            "--lab",
            &lab,
            "--explain",
            "--reps",
            "1",
            "-l",
            "0.2",
            "--no-checks",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(refused.status.code(), Some(2), "{err}");
    assert!(
        err.contains("needs the ptp mode") && !err.contains("µs"),
        "{err}"
    );
    let _ = common::nslat(&["lab", "down", "--name", &lab]);
    common::nslat_ok(&["lab", "up", "--name", &lab, "--modes", "host,bridge,ptp"]);
    let run = Command::new(bin)
        .args([
            "compare",
            "--lab",
            &lab,
            "--modes",
            "host,bridge",
            "--reps",
            "1",
            "-l",
            "0.2",
            "--warmup",
            "0",
            "--explain",
            "--no-checks",
        ])
        .output()
        .unwrap();
    let kept = lab_namespaces(&lab);
    let ruleset = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("nslat-{lab}-node"),
            "nft",
            "list",
            "ruleset",
        ])
        .output()
        .unwrap();
    let _ = common::nslat(&["lab", "down", "--name", &lab]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(!kept.is_empty(), "compare removed a lab it did not build");
    let rules = String::from_utf8_lossy(&ruleset.stdout);
    assert!(
        rules.contains("masquerade"),
        "NAT level not restored after --explain:\n{rules}"
    );
    root.assert_unchanged();
}
