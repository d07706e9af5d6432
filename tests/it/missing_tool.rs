//! A missing tool makes what needs it "not available" and leaves the rest measured (issue #22):
//! `nslat compare` with the `nft` program hidden (an empty, non-executable file bound over it in
//! a private mount namespace, so nothing outside this test sees it) measures host, ptp and
//! macvlan, names bridge and the NAT-table host as not available with the reason, and still
//! runs the feature checks that load no rules.

use crate::common;

use std::process::Command;

use serde_json::Value;

/// `PROGRAM ARGS` in a private mount namespace where `nft` cannot run.
fn without_nft(program: &str, args: &[&str]) -> std::process::Output {
    let nft = Command::new("sh")
        .args(["-c", "command -v nft"])
        .output()
        .expect("sh");
    let nft = String::from_utf8_lossy(&nft.stdout).trim().to_string();
    assert!(!nft.is_empty(), "nft is not installed");
    let empty = std::env::temp_dir().join(common::unique("nonft"));
    std::fs::write(&empty, b"").unwrap();
    let script = r#"mount --bind "$1" "$2" && shift 2 && exec "$@""#;
    let out = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&empty)
        .arg(&nft)
        .arg(program)
        .args(args)
        .output()
        .expect("unshare");
    let _ = std::fs::remove_file(&empty);
    out
}

fn mode<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == name)
        .unwrap_or_else(|| panic!("no {name} in the report"))
}

/// `nslat compare ARGS` with nft hidden, which must succeed: its (first) report, read from
/// its JSON (a temporary file named by `tag`), and its standard output.
fn compare_without_nft(tag: &str, args: &[&str]) -> (Value, String) {
    let json = std::env::temp_dir().join(format!("{}.json", common::unique(tag)));
    let mut all = vec!["compare"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--lock-wait", "300", "--json", json.to_str().unwrap()]);
    let out = without_nft(common::nslat_bin(), &all);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "compare without nft failed:\n{stdout}\n{stderr}"
    );
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let _ = std::fs::remove_file(&json);
    let report = if doc.is_array() { doc[0].clone() } else { doc };
    (report, stdout)
}

/// Root, and the tools the hiding of nft needs (else `test` skips with the reason).
fn can_hide_nft(test: &str) -> bool {
    common::need_root(test) && common::need_tool(test, "nft") && common::need_tool(test, "unshare")
}

#[test]
fn compare_without_nft_measures_the_rest_and_names_bridge_not_available() {
    let test = "compare_without_nft_measures_the_rest_and_names_bridge_not_available";
    if !can_hide_nft(test) {
        return;
    }
    let snap = common::RootSnapshot::take();
    // The hiding itself works: nft cannot run in there.
    let probe = without_nft("nft", &["--version"]);
    assert!(
        !probe.status.success(),
        "nft still ran with an empty file bound over it"
    );

    let (doc, stdout) = compare_without_nft(
        "nonft",
        &[
            "--modes",
            "host,bridge,ptp,macvlan",
            "--replicates",
            "2",
            "--budget",
            "3",
        ],
    );
    let report = &doc;
    for m in ["ptp", "macvlan"] {
        let r = mode(report, m)["vs_host"]["ratio"].as_f64();
        assert!(
            r.is_some_and(|r| r > 0.8 && r < 2.0),
            "{m} not measured: {report}"
        );
    }
    for m in ["bridge", "host (NAT table)"] {
        let row = mode(report, m);
        assert_eq!(row["available"], false, "{m} measured without nft?");
        let why = row["reason"].as_str().unwrap_or_default();
        assert!(
            why.contains("nft") && why.contains("install nftables"),
            "{m}: {why}"
        );
    }
    // The checks that load no rules ran; the Service and policy checks say why not.
    let checks = &report["checks"];
    assert!(
        checks["rules_unavailable"]
            .as_str()
            .is_some_and(|w| w.contains("nft")),
        "{checks}"
    );
    let ptp = checks["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "ptp")
        .unwrap();
    assert_eq!(ptp["container_to_remote"], true, "{ptp}");
    assert_eq!(ptp["node_to_container"], true, "{ptp}");
    assert!(ptp["service"].is_null() && ptp["policy"].is_null(), "{ptp}");
    assert!(
        stdout.contains("bridge") && stdout.contains("not available"),
        "{stdout}"
    );
    snap.assert_unchanged();
}

#[test]
fn compare_family_both_without_nft_measures_ipv6_of_the_rest() {
    let test = "compare_family_both_without_nft_measures_ipv6_of_the_rest";
    if !can_hide_nft(test) {
        return;
    }
    let snap = common::RootSnapshot::take();
    let (doc, _) = compare_without_nft(
        "nonft6",
        &[
            "--family",
            "both",
            "--modes",
            "host,bridge,ptp",
            "--replicates",
            "2",
            "--budget",
            "2",
            "--no-checks",
        ],
    );
    let report = &doc;
    let r = mode(report, "ptp (IPv6)")["vs_host"]["ratio"].as_f64();
    assert!(r.is_some_and(|r| r > 0.8 && r < 2.0), "{report}");
    for m in ["bridge", "bridge (IPv6)"] {
        let row = mode(report, m);
        assert_eq!(row["available"], false, "{m} measured without nft?");
        assert!(
            row["reason"].as_str().unwrap_or_default().contains("nft"),
            "{row}"
        );
    }
    snap.assert_unchanged();
}
