//! `nslat compare` end to end with short runs: a real lab, the real engine, every exporter, and
//! the lab gone afterwards.

use crate::common;

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
            "--replicates",
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
        1 + 5 + 1 + 1,
        "header + one row per mode + the host on the other node state + the A/A control's:\n{csv}"
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
    use nslat::compare::{self, CompareOptions, LabPlan, RepsChoice, SilentProgress, Stamp};
    use nslat::lab::Mode;
    use std::time::Duration;

    let lab = common::unique("exp");
    let opts = CompareOptions {
        epoch_exe: Some(crate::common::nslat_bin().into()),
        modes: vec![Mode::Host, Mode::Bridge],
        duration: Duration::from_millis(200),
        warmup: Duration::from_millis(50),
        reps: RepsChoice::Fixed(2),
        explain: true,
        checks: false,
        ..Default::default()
    };
    let plan = LabPlan {
        name: Some(lab.clone()),
        keep: false,
    };
    let reports = compare::run(&opts, &plan, &Stamp::default(), &SilentProgress)
        .expect("compare --explain")
        .reports;
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
    let node_ruleset = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &format!("nslat-{lab}-node"),
                "nft",
                "list",
                "ruleset",
            ])
            .output()
            .unwrap()
            .stdout
    };
    let before = (lab_namespaces(&lab), node_ruleset());
    // --explain with the run-by-run schedule is refused before anything is built.
    let refused = Command::new(bin)
        .args([
            "compare",
            "--lab",
            &lab,
            "--explain",
            "--schedule",
            "runs",
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
        err.contains("--schedule runs") && !err.contains("µs") && err.lines().count() == 1,
        "{err}"
    );
    assert_eq!((lab_namespaces(&lab), node_ruleset()), before);
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
    let after = (lab_namespaces(&lab), node_ruleset());
    let _ = common::nslat(&["lab", "down", "--name", &lab]);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        !after.0.is_empty(),
        "compare removed a lab it did not build"
    );
    assert!(
        String::from_utf8_lossy(&after.1).contains("masquerade"),
        "the kept lab lost its MASQUERADE rule"
    );
    // The explain variants were built beside the lab and removed: the lab is as it was.
    assert_eq!(after, before, "--explain changed the kept lab");
    root.assert_unchanged();
}

/// The nftables ruleset of namespace `path` (a /run/netns path).
fn ruleset_of(path: &std::path::Path) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(["nft", "list", "ruleset"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn explain_variants_all_exist_at_once_and_answer_together() {
    if !common::need_root("explain_variants_all_exist_at_once_and_answer_together")
        || !common::need_tool("explain_variants_all_exist_at_once", "nft")
    {
        return;
    }
    use nslat::lab::explain::{ExplainSet, VARIANTS};
    use nslat::lab::{plan, Lab, LabSpec, Mode, NatLevel};
    use std::io::{Read, Write};
    use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
    use std::time::Duration;

    let root = common::RootSnapshot::take();
    let _serial = serial();
    let name = common::unique("xall");
    struct Down(String);
    impl Drop for Down {
        fn drop(&mut self) {
            let _ = nslat::lab::down(&self.0);
        }
    }
    let mut spec = LabSpec::new(&name);
    spec.modes = vec![Mode::Host, Mode::Bridge];
    let lab = Lab::up(&spec).expect("lab up");
    let _down = Down(name.clone());
    let state = || std::fs::read_to_string(nslat::lab::state::state_path(&name)).unwrap();
    let before = (state(), ruleset_of(lab.node_netns()), lab_namespaces(&name));

    let set = ExplainSet::build(&lab).expect("explain variants");
    let paths = set.paths();
    assert_eq!(paths.len(), VARIANTS.len());
    let during = lab_namespaces(&name);
    for p in &paths {
        let ns = p
            .info
            .netns
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(during.contains(&ns), "{}: {ns} missing", p.variant.label);
    }
    // While the variants exist the lab is locked: `lab down` is refused, not raced.
    assert!(matches!(
        nslat::lab::down(&name),
        Err(nslat::lab::LabError::Busy(_))
    ));
    // Each node's NAT level is in its own ruleset.
    let none = ruleset_of(set.node(NatLevel::None).unwrap());
    let ct = ruleset_of(set.node(NatLevel::ConntrackOnly).unwrap());
    let masq = ruleset_of(set.node(NatLevel::Masquerade).unwrap());
    assert!(!none.contains("table ip nslat "), "{none}");
    assert!(
        ct.contains("nslat-none") && !ct.contains("198.18.1.0/24"),
        "{ct}"
    );
    assert!(
        masq.contains("masquerade") && masq.contains("198.18.1.0/24"),
        "{masq}"
    );

    // One listener per remote; every variant connects and holds its connection open while the
    // others connect; then every one exchanges bytes.
    let listeners: Vec<(std::path::PathBuf, TcpListener)> = set
        .remotes()
        .into_iter()
        .map(|r| {
            let l = nslat::netns::run_in(Some(r), || {
                TcpListener::bind("0.0.0.0:0").map_err(anyhow::Error::from)
            })
            .unwrap();
            (r.to_path_buf(), l)
        })
        .collect();
    let mut pairs = Vec::new();
    for p in &paths {
        let l = &listeners.iter().find(|(r, _)| r == p.remote).unwrap().1;
        let addr = SocketAddr::new(p.info.server.into(), l.local_addr().unwrap().port());
        let client = nslat::netns::run_in(Some(&p.info.netns), move || {
            TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(anyhow::Error::from)
        })
        .unwrap_or_else(|e| panic!("{}: {e}", p.variant.label));
        let (server, peer) = l.accept().unwrap();
        // MASQUERADE rewrites the container's address to the node's; no other variant does.
        let want: IpAddr =
            if p.variant.mode == Mode::Bridge && p.variant.nat == NatLevel::Masquerade {
                plan::NODE.into()
            } else {
                p.info.addr.into()
            };
        assert_eq!(peer.ip(), want, "{}", p.variant.label);
        pairs.push((p.variant.label, client, server));
    }
    for (label, client, server) in &mut pairs {
        for s in [&*client, &*server] {
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        }
        client.write_all(label.as_bytes()).unwrap();
        let mut got = vec![0u8; label.len()];
        server.read_exact(&mut got).unwrap();
        server.write_all(&got).unwrap();
        let mut back = vec![0u8; label.len()];
        client.read_exact(&mut back).unwrap();
        assert_eq!(back, label.as_bytes(), "{label}");
    }
    drop(pairs);
    drop(listeners);
    drop(paths);
    drop(set);
    // Gone with the set; the lab is exactly as it was.
    assert_eq!(
        (state(), ruleset_of(lab.node_netns()), lab_namespaces(&name)),
        before
    );
    drop(_down);
    assert!(lab_namespaces(&name).is_empty());
    root.assert_unchanged();
}

#[test]
fn explain_steps_for_veth_and_bridge_are_positive_on_a_real_lab() {
    if !common::need_root("explain_steps_for_veth_and_bridge_are_positive_on_a_real_lab") {
        return;
    }
    let root = common::RootSnapshot::take();
    let _serial = serial();
    use nslat::compare::{self, CompareOptions, LabPlan, RepsChoice, SilentProgress, Stamp};
    use nslat::lab::Mode;
    use std::time::Duration;

    // A one-in-twenty miss of a true effect (or a burst from another engineer's build) is
    // decided by a second compare.
    let mut last = String::new();
    for attempt in 1..=2 {
        let lab = common::unique("xpos");
        let opts = CompareOptions {
            epoch_exe: Some(crate::common::nslat_bin().into()),
            modes: vec![Mode::Host],
            duration: Duration::from_millis(300),
            warmup: Duration::from_millis(100),
            reps: RepsChoice::Fixed(3),
            explain: true,
            checks: false,
            ..Default::default()
        };
        let plan = LabPlan {
            name: Some(lab.clone()),
            keep: false,
        };
        let reports = compare::run(&opts, &plan, &Stamp::default(), &SilentProgress)
            .expect("compare --explain")
            .reports;
        assert!(lab_namespaces(&lab).is_empty(), "lab left behind");
        let e = reports[0].explain.clone().expect("explain breakdown");
        assert_eq!(e.baseline, "host, no NAT table");
        assert!(e.rounds.unwrap_or(0) >= 20, "{:?}", e.rounds);
        let lo = |i: usize| e.parts[i].adds_ci95.map(|(lo, _)| lo);
        last = e
            .parts
            .iter()
            .map(|p| format!("{} {:+.2} {:?}", p.name, p.adds_us, p.adds_ci95))
            .collect::<Vec<_>>()
            .join("; ");
        eprintln!("attempt {attempt}: {last}");
        assert!(e.parts[0].name.contains("veth") && e.parts[1].name.contains("bridge"));
        if lo(0).is_some_and(|l| l > 0.0) && lo(1).is_some_and(|l| l > 0.0) {
            root.assert_unchanged();
            return;
        }
    }
    panic!("the veth and bridge steps were not both significantly positive twice: {last}");
}
