//! `compare --remote`: the real two-machine case, tested in a lab by treating the node namespace
//! as "this machine" and the remote namespace's `nslat serve` as the second machine.

use crate::common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Cleanup {
    lab: String,
    server: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = common::nslat(&["lab", "down", "--name", &self.lab]);
    }
}

fn wait_for_port(ns: &str, addr: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let path = nslat::netns::resolve(ns).unwrap();
    loop {
        let p = path.clone();
        let ok = nslat::netns::run_in(Some(&p), move || {
            Ok::<_, nslat::netns::NetnsError>(
                std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            )
        })
        .unwrap();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nslat serve did not come up at {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A lab with the host mode only and `nslat serve` in its remote namespace (the second
/// machine), reachable from the node (this machine): the cleanup (server killed, lab down on
/// drop), the node's namespace, and the server's address (port by the process id + `port_offset`).
fn remote_lab(prefix: &str, port_offset: u32) -> (Cleanup, String, std::net::SocketAddr) {
    let lab = common::unique(prefix);
    let mut cleanup = Cleanup {
        lab: lab.clone(),
        server: None,
    };
    common::nslat_ok(&["lab", "up", "--name", &lab, "--modes", "host"]);
    let node_ns = format!("nslat-{lab}-node");
    let port = 20000 + ((std::process::id() + port_offset) % 20000) as u16;
    let listen: std::net::SocketAddr = format!("198.18.0.2:{port}").parse().unwrap();
    cleanup.server = Some(
        Command::new(common::nslat_bin())
            .args([
                "serve",
                "--netns",
                &format!("nslat-{lab}-remote"),
                "--listen",
            ])
            .arg(listen.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for_port(&node_ns, listen);
    (cleanup, node_ns, listen)
}

#[test]
fn compare_against_a_real_remote_attaches_modes_to_the_nic() {
    if !common::need_root("compare_against_a_real_remote_attaches_modes_to_the_nic") {
        return;
    }
    let root = common::RootSnapshot::take();
    let bin = common::nslat_bin();
    let (cleanup, node_ns, listen) = remote_lab("rmt", 0);

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new(bin)
        .args([
            "compare",
            "--remote",
            &listen.to_string(),
            "--parent",
            "eth0",
            "--addr",
            "198.18.0.50/24",
        ])
        .args([
            "--machine-netns",
            &node_ns,
            "--modes",
            "host,macvlan,bridge,ipvlan-l2",
            "--reps",
            "2",
            "-l",
            "0.3",
            "--warmup",
            "0.1",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let mode = |name: &str| {
        report["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mode"] == name)
            .unwrap()
            .clone()
    };
    for name in ["host", "macvlan"] {
        let m = mode(name);
        assert_eq!(m["available"], true, "{name}: {m}");
        assert!(m["trans_per_s"]["mean"].as_f64().unwrap() > 1000.0, "{m}");
    }
    assert_eq!(mode("bridge")["available"], false);
    assert!(mode("bridge")["reason"]
        .as_str()
        .unwrap()
        .contains("--remote"));
    // One measuring loop: the attached mode in the same interleaved rounds as the host, with
    // the A/A control and a paired ratio.
    assert_eq!(report["schedule"], "interleaved", "{report}");
    let aa = mode("host (A/A)");
    assert_eq!(aa["available"], true, "{aa}");
    let mv = mode("macvlan");
    assert!(mv["vs_host"]["ratio_ci95"].is_array(), "{mv}");
    assert!(mv["vs_host"]["rounds"].as_u64().unwrap() > 10, "{mv}");
    // ipvlan cannot share the parent with macvlan: its own group (its own host baseline), or one
    // line why where the kernel has no ipvlan.
    let ipv = mode("ipvlan-l2");
    if ipv["available"] == true {
        assert!(ipv["vs_host"]["ratio_ci95"].is_array(), "{ipv}");
        assert!(
            report["warnings"]
                .to_string()
                .contains("schedule of its own"),
            "{}",
            report["warnings"]
        );
    } else {
        assert!(
            ipv["reason"]
                .as_str()
                .unwrap()
                .contains("attaching it to eth0"),
            "{ipv}"
        );
    }
    assert!(
        report["warnings"]
            .to_string()
            .contains("temporary namespaces"),
        "{}",
        report["warnings"]
    );

    // The temporary container namespaces and the attach records are gone; the node's eth0 is intact.
    // Temporary containers are named nslat-r<pid>-<mode>.
    let leftovers: Vec<String> = nslat::netns::list_with_prefix("nslat-r")
        .into_iter()
        .filter(|n| {
            n["nslat-r".len()..]
                .split('-')
                .next()
                .is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    assert!(leftovers.is_empty(), "left behind: {leftovers:?}");
    let links = Command::new("ip")
        .args(["-n", &node_ns, "-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        links.contains("eth0") && !links.contains("macvlan"),
        "{links}"
    );
    drop(cleanup);
    root.assert_unchanged();
}

#[test]
fn remote_needs_parent_and_addr() {
    let out = Command::new(common::nslat_bin())
        .args(["compare", "--remote", "198.18.0.2"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--parent") && err.contains("--addr"), "{err}");
}

#[test]
fn remote_waterfall_has_one_remote_stage_and_this_machines_hops() {
    if !common::need_root("remote_waterfall_has_one_remote_stage_and_this_machines_hops") {
        return;
    }
    let root = common::RootSnapshot::take();
    let bin = common::nslat_bin();
    let (cleanup, node_ns, listen) = remote_lab("rwf", 7);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let out = Command::new(bin)
        .args(["compare", "--remote", &listen.to_string()])
        .args(["--parent", "eth0", "--addr", "198.18.0.50/24"])
        .args(["--machine-netns", &node_ns, "--modes", "host,macvlan"])
        .args(["--waterfall", "--waterfall-pairs", "4"])
        .args(["--reps", "2", "-l", "0.3", "--warmup", "0.1"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let report = if report.is_array() {
        report[0].clone()
    } else {
        report
    };
    for name in ["host", "macvlan"] {
        let m = report["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mode"] == name)
            .unwrap();
        let w = &m["waterfall"];
        assert_eq!(w["remote"], true, "{name}: {w}");
        let share = w["attributed_us"].as_f64().unwrap() / w["traced_rtt_us"].as_f64().unwrap();
        assert!(
            share > 0.9 && share < 1.02,
            "{name}: {share} attributed\n{w:#}"
        );
        let per_rt = |kind: &str, dk: Option<&str>| -> f64 {
            w["stages"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["kind"] == kind && dk.is_none_or(|d| s["device_kind"] == d))
                .map(|s| s["per_rt"].as_f64().unwrap())
                .sum()
        };
        // The other machine is one stage per round trip, left by the wire (node's eth0).
        assert!(
            (per_rt("remote", Some("wire")) - 1.0).abs() < 0.03,
            "{name}: {w:#}"
        );
        // This machine's hops: the answer's backlog wait on the wire (a veth here), once.
        assert!(
            (per_rt("backlog_wait", None) - 1.0).abs() < 0.05,
            "{name}: {w:#}"
        );
        // Only the client is followed: no server stages.
        assert!(
            !w["stages"].to_string().contains("\"server\""),
            "{name}: {w:#}"
        );
    }
    let mv = &report["modes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mode"] == "macvlan")
        .unwrap()["waterfall"];
    assert!(mv["vs_host"]["groups"].is_array(), "{mv}");
    drop(cleanup);
    root.assert_unchanged();
}
