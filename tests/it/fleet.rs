//! `nslat report merge` on reports from real `nslat compare` runs (a small lab, short runs,
//! labelled as three node pairs with --node/--peer), and its refusal of inconsistent inputs.

use crate::common;

use std::path::{Path, PathBuf};

use serde_json::Value;

struct LabDown(String);

impl Drop for LabDown {
    fn drop(&mut self) {
        let _ = common::nslat(&["lab", "down", "--name", &self.0]);
    }
}

/// One short real compare in `lab`, host and bridge, written to `dir/name.json`.
fn compare(lab: &str, dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let json = dir.join(format!("{name}.json"));
    let mut args = vec![
        "compare",
        "--lab",
        lab,
        "--modes",
        "host,bridge",
        "--reps",
        "2",
        "-l",
        "0.3",
        "--warmup",
        "0.1",
        "--replicates",
        "2",
        "--no-other-host",
        "--no-checks",
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--json", json.to_str().unwrap()]);
    common::nslat_ok(&args);
    json
}

fn read(p: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

fn bridge_ratio(report: &Value) -> f64 {
    report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "bridge")
        .unwrap()["vs_host"]["ratio"]
        .as_f64()
        .unwrap()
}

fn merge_fails(files: &[&Path], extra: &[&str]) -> String {
    let mut args = vec!["report", "merge"];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(String::as_str));
    args.extend_from_slice(extra);
    let out = common::nslat(&args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    err
}

#[test]
fn merge_of_three_real_compare_reports_and_inconsistent_inputs() {
    let test = "merge_of_three_real_compare_reports_and_inconsistent_inputs";
    if !common::need_root(test) || !common::need_tool(test, "nft") {
        return;
    }
    let lab = common::unique("flt");
    common::nslat_ok(&["lab", "up", "--name", &lab, "--modes", "host,bridge"]);
    let _down = LabDown(lab.clone());
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();

    let pairs = [("n1", "n2"), ("n1", "n3"), ("n2", "n3")];
    let files: Vec<PathBuf> = pairs
        .iter()
        .map(|(a, b)| compare(&lab, dir, &format!("{a}-{b}"), &["--node", a, "--peer", b]))
        .collect();
    let inputs: Vec<Value> = files.iter().map(|f| read(f)).collect();
    for (r, (a, b)) in inputs.iter().zip(pairs) {
        assert_eq!(r["pair"]["node"], a);
        assert_eq!(r["pair"]["peer"], b);
        assert_eq!(r["pair"]["peer_network"], "host");
    }

    let fleet_json = dir.join("fleet.json");
    let fleet_csv = dir.join("fleet.csv");
    let html = dir.join("html");
    let mut args = vec!["report".to_string(), "merge".into()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend([
        "--json".into(),
        fleet_json.display().to_string(),
        "--csv".into(),
        fleet_csv.display().to_string(),
        "--html".into(),
        html.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = common::nslat_ok(&args);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.starts_with(
            "fleet: TCP_RR 1,1 · CPU placement same · 3 node pairs, 6 paths from 3 files"
        ),
        "{table}"
    );

    // The fleet report: three pairs, worst (largest bridge ratio) first, each with host→host as
    // its baseline and bridge→host with the ratio its input measured and an interval around it.
    let fleet = read(&fleet_json);
    let got: Vec<(String, f64)> = fleet["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                format!(
                    "{}->{}",
                    p["node"].as_str().unwrap(),
                    p["peer"].as_str().unwrap()
                ),
                p["worst_ratio"].as_f64().unwrap(),
            )
        })
        .collect();
    let mut want: Vec<(String, f64)> = inputs
        .iter()
        .zip(pairs)
        .map(|(r, (a, b))| (format!("{a}->{b}"), bridge_ratio(r).max(1.0)))
        .collect();
    want.sort_by(|x, y| y.1.total_cmp(&x.1));
    assert_eq!(got, want, "{fleet}");
    for p in fleet["pairs"].as_array().unwrap() {
        let paths = p["paths"].as_array().unwrap();
        let names: Vec<&str> = paths.iter().map(|x| x["path"].as_str().unwrap()).collect();
        assert_eq!(names, ["host→host", "bridge→host"], "{p}");
        assert!(paths[0]["ratio"].is_null());
        let bridge = &paths[1];
        let ratio = bridge["ratio"].as_f64().unwrap();
        let [lo, hi] = [0, 1].map(|i| bridge["ratio_ci95"][i].as_f64().unwrap());
        assert!(lo < ratio && ratio < hi, "{bridge}");
        // Interleaved (the default): one aggregate run per replicate of the path (--replicates
        // 2 here), its interval over the replicates and the rounds.
        assert_eq!(bridge["reps"], 2);
        assert!(bridge["latency_us"].as_f64().unwrap() > 0.0);
        // The pair's row in the terminal table shows the same ratio.
        let name = format!(
            "{} → {}",
            p["node"].as_str().unwrap(),
            p["peer"].as_str().unwrap()
        );
        assert!(table.contains(&name), "{table}");
        assert!(
            table.contains(&format!("{ratio:.3} [{lo:.3}, {hi:.3}]")),
            "{table}"
        );
    }
    let csv = std::fs::read_to_string(&fleet_csv).unwrap();
    assert_eq!(csv.lines().count(), 1 + 6, "{csv}");
    let page = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert!(page.contains("bridge→host") && page.contains("n2 → n3"));

    // Two reports in one file (a Job's log) merge like two files; an unlabelled report gets
    // its pair from --label.
    let unlabelled = compare(&lab, dir, "plain", &[]);
    assert!(read(&unlabelled).get("pair").is_none());
    let joined = dir.join("joined.json");
    std::fs::write(
        &joined,
        std::fs::read_to_string(&files[0]).unwrap() + &std::fs::read_to_string(&files[2]).unwrap(),
    )
    .unwrap();
    let label = format!("{}=n4->n5", unlabelled.display());
    let out = common::nslat_ok(&[
        "report",
        "merge",
        joined.to_str().unwrap(),
        unlabelled.to_str().unwrap(),
        "--label",
        &label,
    ]);
    let table = String::from_utf8(out.stdout).unwrap();
    assert!(
        table.contains("3 node pairs, 6 paths from 2 files"),
        "{table}"
    );
    assert!(table.contains("n4 → n5"), "{table}");

    // Inconsistent inputs: another test, other sizes; one line, exit 2, nothing written.
    let udp = compare(
        &lab,
        dir,
        "udp",
        &["-t", "UDP_RR", "--node", "n1", "--peer", "n4"],
    );
    let big = compare(
        &lab,
        dir,
        "big",
        &["-r", "64,64", "--node", "n1", "--peer", "n4"],
    );
    let not_written = dir.join("never.json");
    let nw = not_written.display().to_string();
    let err = merge_fails(&[&files[0], &udp], &["--json", &nw]);
    assert!(
        err.contains("inconsistent inputs: udp.json is UDP_RR 1,1")
            && err.contains("n1-n2.json is TCP_RR 1,1"),
        "{err}"
    );
    let err = merge_fails(&[&files[0], &big], &["--json", &nw]);
    assert!(err.contains("big.json is TCP_RR 64,64"), "{err}");
    assert!(!not_written.exists());
    // The same pair and path twice; a report without a pair; a file that is not a report.
    let err = merge_fails(&[&files[0], &joined], &[]);
    assert!(err.contains("host→host across n1->n2 is in both"), "{err}");
    let err = merge_fails(&[&unlabelled], &[]);
    assert!(
        err.contains("--label") && err.contains("plain.json=NODE->PEER"),
        "{err}"
    );
    let not_json = dir.join("notes.txt");
    std::fs::write(&not_json, "hello\n").unwrap();
    let err = merge_fails(&[&files[0], &not_json], &[]);
    assert!(
        err.contains("not an `nslat compare --json` report"),
        "{err}"
    );
    let err = merge_fails(&[&dir.join("missing.json")], &[]);
    assert!(err.contains("missing.json: cannot read it"), "{err}");
}
