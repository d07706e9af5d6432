//! Labs after a crash: `nslat lab list` shows a killed compare's lab as stale, the next compare
//! removes it and says so; `lab status` lists only namespaces that exist. Needs root.

use crate::common;
use crate::lab_util;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_util::{leftovers, LabGuard};

fn list_json() -> Vec<serde_json::Value> {
    let out = common::nslat_ok(&["lab", "list", "--json"]);
    serde_json::from_slice(&out.stdout).expect("lab list --json is JSON")
}

fn listed(name: &str) -> Option<serde_json::Value> {
    list_json().into_iter().find(|l| l["name"] == name)
}

#[test]
fn a_killed_compares_lab_is_listed_stale_and_the_next_compare_removes_it() {
    if !common::need_root("killed_compare_lab") {
        return;
    }
    let mut first = Command::new(common::nslat_bin())
        .args([
            "compare",
            "--modes",
            "host,bridge",
            "--reps",
            "1",
            "-l",
            "30",
            "--warmup",
            "0",
            "--no-checks",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = first.id();
    let name = format!("cmp{pid}");
    let _guard = LabGuard(name.clone());

    // Wait until its lab is built (it waits for the measurement lock first).
    let t = Instant::now();
    loop {
        if let Some(l) = listed(&name) {
            if l["complete"] == true {
                assert_eq!(l["status"], "alive", "{l}");
                assert_eq!(l["owner_pid"], pid, "{l}");
                break;
            }
        }
        assert!(
            t.elapsed() < Duration::from_secs(150),
            "the compare never built its lab"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    first.kill().unwrap(); // SIGKILL: no cleanup
    first.wait().unwrap();
    assert!(!leftovers(&name).is_empty(), "nothing left to clean up");

    let l = listed(&name).expect("the killed compare's lab is listed");
    assert_eq!(l["status"], "stale", "{l}");
    let table = common::nslat_ok(&["lab", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(
        table
            .lines()
            .any(|r| r.contains(&name) && r.contains(&format!("pid {pid}")) && r.contains("stale")),
        "{table}"
    );

    let out = common::nslat_ok(&[
        "compare",
        "--modes",
        "host",
        "--reps",
        "1",
        "-l",
        "0.2",
        "--warmup",
        "0",
        "--no-checks",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("removed stale lab '{name}'")),
        "the second compare did not say it removed the stale lab: {err}"
    );
    assert_eq!(leftovers(&name), Vec::<String>::new());
    assert!(listed(&name).is_none());
}

#[test]
fn lab_status_lists_only_namespaces_that_exist() {
    if !common::need_root("lab_status_existing") {
        return;
    }
    let name = common::unique("stat");
    let _guard = LabGuard(name.clone());
    // ipvlan may be missing from this kernel: then its namespace is recorded but never created.
    common::nslat_ok(&["lab", "up", "--name", &name, "--modes", "host,ipvlan-l2"]);
    let out = common::nslat_ok(&["lab", "status", "--name", &name, "--json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces = doc["namespaces"].as_array().unwrap();
    assert!(!namespaces.is_empty());
    for ns in namespaces {
        let ns = ns.as_str().unwrap();
        assert!(
            std::path::Path::new("/run/netns").join(ns).exists(),
            "lab status lists {ns}, which does not exist"
        );
    }
    let text = common::nslat_ok(&["lab", "status", "--name", &name]);
    let text = String::from_utf8_lossy(&text.stdout);
    assert!(text.contains("NAT none"), "{text}");
    let l = listed(&name).expect("listed");
    assert_eq!(l["status"], "kept", "{l}");
    assert!(common::nslat_ok(&["lab", "down", "--name", &name])
        .status
        .success());
}
