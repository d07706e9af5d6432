//! `nslat compare --family both` (issue #22): every default mode measured over IPv4 and IPv6 in
//! the same interleaved rounds, each IPv6 row against the host's IPv6. Fails when an IPv6 path
//! secretly ran over IPv4: the data socket's two ends must be 2001:2::/48 addresses, and the
//! client's namespace must have counted (in /proc/net/snmp6) two IPv6 packets per transaction
//! and (in /proc/net/snmp) next to no IPv4 ones, and the reverse for the IPv4 rows. The
//! options that cannot measure IPv6 are refused in one line.

use crate::common;

use serde_json::Value;

fn row<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .expect("modes")
        .iter()
        .find(|m| m["mode"] == name)
        .unwrap_or_else(|| panic!("no row {name} in {report}"))
}

/// The path of row `name` used `family` on the wire, and only it.
fn assert_wire(report: &Value, name: &str, family: u64) {
    let m = row(report, name);
    assert_eq!(m["available"], true, "{name}: {m}");
    assert_eq!(m["family"], family, "{name}: family: {m}");
    let w = &m["wire"];
    assert_eq!(w["socket_family"], family, "{name}: socket family: {w}");
    for end in ["local", "peer"] {
        let a = w["socket"][end].as_str().unwrap_or_default();
        let ok = if family == 6 {
            a.starts_with("[2001:2:")
        } else {
            a.starts_with("198.18.")
        };
        assert!(
            ok,
            "{name}: socket {end} {a} is not a lab IPv{family} address: {w}"
        );
    }
    let (mine, other) = if family == 6 {
        ("ipv6", "ipv4")
    } else {
        ("ipv4", "ipv6")
    };
    let pk = &w["packets_per_tx"];
    let (own, foreign) = (pk[mine].as_f64().unwrap(), pk[other].as_f64().unwrap());
    assert!(
        (1.9..2.5).contains(&own),
        "{name}: {own} {mine} packets per transaction, not a request and a response: {pk}"
    );
    assert!(
        foreign < 0.05,
        "{name}: {foreign} {other} packets per transaction on an IPv{family} path: {pk}"
    );
    let ratio = m["vs_host"]["ratio"].as_f64();
    if !name.starts_with("host") {
        assert!(
            ratio.is_some_and(|r| r > 0.8 && r < 2.5),
            "{name}: no ratio to the host: {m}"
        );
    }
}

#[test]
fn family_both_measures_every_mode_over_ipv6_and_not_ipv4_in_disguise() {
    let test = "family_both_measures_every_mode_over_ipv6_and_not_ipv4_in_disguise";
    if !common::need_root(test) {
        return;
    }
    let snap = common::RootSnapshot::take();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let csv = dir.path().join("r.csv");
    let out = std::process::Command::new(common::nslat_bin())
        .args(["compare", "--family", "both"])
        .args(["--modes", "host,bridge,ptp,macvlan,veth-bpf"])
        .args(["--replicates", "2", "--budget", "2", "--lock-wait", "300"])
        .arg("--json")
        .arg(&json)
        .arg("--csv")
        .arg(&csv)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let report = if doc.is_array() { &doc[0] } else { &doc };
    for mode in ["host", "bridge", "ptp", "macvlan"] {
        assert_wire(report, mode, 4);
        assert_wire(report, &format!("{mode} (IPv6)"), 6);
    }
    // A mode the lab gives no IPv6 path: its IPv6 row says why, its IPv4 row is measured.
    let vb = row(report, "veth-bpf (IPv6)");
    assert_eq!(vb["available"], false, "{vb}");
    assert!(vb["reason"].as_str().unwrap_or("").contains("IPv6"), "{vb}");
    // The checks per family: IPv6 reach rows, Service and policy IPv4 only (null).
    let checks = report["checks"]["modes"].as_array().expect("checks");
    let ptp6 = checks
        .iter()
        .find(|c| c["mode"] == "ptp (IPv6)")
        .expect("ptp (IPv6) checks");
    assert_eq!(ptp6["container_to_remote"], true, "{ptp6}");
    assert_eq!(ptp6["node_to_container"], true, "{ptp6}");
    assert!(
        ptp6["service"].is_null() && ptp6["policy"].is_null(),
        "{ptp6}"
    );
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert!(
        csv.lines().next().unwrap().contains(",family"),
        "CSV has no family column"
    );
    assert!(stdout.contains("bridge (IPv6)"), "{stdout}");
    snap.assert_unchanged();
}

#[test]
fn family_is_refused_where_it_cannot_measure() {
    for (args, says) in [
        (&["--family", "6", "--explain"][..], "--explain"),
        (
            &["--family", "both", "--schedule", "runs"][..],
            "--schedule runs",
        ),
        (&["--family", "6", "--remote", "192.0.2.7"][..], "--remote"),
        (&["--family", "5"][..], "family"),
    ] {
        let mut a = vec!["compare"];
        a.extend_from_slice(args);
        let out = common::nslat(&a);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(says), "{a:?}: {err}");
    }
}
