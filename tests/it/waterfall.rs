//! The waterfall on a real lab: host, ptp, bridge and macvlan traced with the tp_btf programs. Every hop
//! of a path must be a stage exactly once per round trip (a missing or doubled hop fails), ptp
//! waits in a backlog exactly twice more than host per round trip, and the stages cover the
//! traced round trip. A tracepoint the kernel does not have makes the load fail with one line.

use crate::common;

use std::net::{IpAddr, SocketAddr};

use nslat::bench::server::{Server, ServerConfig};
use nslat::lab::{self, Lab, LabSpec, Mode};
use nslat::netns;
use nslat::waterfall::run::{self as wf_run, TraceSpec};
use nslat::waterfall::{StageKind, Waterfall};

struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

fn per_rt(wf: &Waterfall, kind: StageKind, device_kind: Option<&str>) -> f64 {
    wf.stages
        .iter()
        .filter(|s| {
            s.kind == kind && (device_kind.is_none() || s.device_kind.as_deref() == device_kind)
        })
        .map(|s| s.per_rt)
        .sum()
}

/// Each stage's occurrences per round trip must be a whole number (1 per hop): a hop seen on
/// half the round trips or twice is a defect. 3% slack for round trips cut by block edges and
/// the occasional lost event.
fn assert_whole(mode: &str, wf: &Waterfall) {
    let hop = |k: StageKind| {
        matches!(
            k,
            StageKind::Device | StageKind::BacklogWait | StageKind::Processing
        )
    };
    for s in wf.stages.iter().filter(|s| hop(s.kind)) {
        if s.per_rt < 0.2 {
            continue; // an ACK's or a lost event's rare stage
        }
        let r = s.per_rt.round();
        assert!(
            (s.per_rt - r).abs() < 0.03 && r >= 1.0,
            "{mode}: stage '{}' happens {:.3} times per round trip\n{wf:#?}",
            s.name,
            s.per_rt
        );
    }
}

#[test]
fn host_ptp_and_bridge_waterfalls_have_every_hop_once() {
    if !common::need_root("host_ptp_and_bridge_waterfalls_have_every_hop_once") {
        return;
    }
    let name = common::unique("wf");
    let mut spec = LabSpec::new(&name);
    spec.modes = vec![Mode::Host, Mode::Ptp, Mode::Bridge, Mode::Macvlan];
    let _guard = LabGuard(name.clone());
    let lab = Lab::up(&spec).expect("lab up");
    let remote = lab.remote_netns().to_path_buf();
    let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    let server = netns::run_in(Some(&remote), move || {
        Server::bind(ServerConfig::new(listen))
    })
    .expect("server");
    let port = server.local_addr().port();
    let handle = server.spawn();
    let mut out = Vec::new();
    for mode in [Mode::Host, Mode::Ptp, Mode::Bridge, Mode::Macvlan] {
        let info = lab.mode(mode).unwrap().as_ref().unwrap().clone();
        let mut t = TraceSpec::new(
            Some(info.netns.clone()),
            SocketAddr::new(IpAddr::V4(info.server), port),
        );
        t.block = std::time::Duration::from_millis(60);
        t.pairs = 4;
        t.wire = vec![lab.node_netns().to_path_buf(), remote.clone()];
        let wf = wf_run::run(&t).unwrap_or_else(|e| panic!("{mode}: {e}"));
        eprintln!(
            "{mode}: traced {:.2} µs, untraced {:.2}, attributed {:.1}%, backlog waits {:.3}",
            wf.traced_rtt_us,
            wf.untraced_rtt_us,
            100.0 * wf.attributed_share(),
            wf.backlog_waits_per_rt
        );
        for s in &wf.stages {
            eprintln!("  {:<60} {:>6.3}/rt {:>7.3} µs", s.name, s.per_rt, s.us);
        }
        assert_whole(mode.name(), &wf);
        assert!(
            wf.round_trips > 1000,
            "{mode}: {} round trips",
            wf.round_trips
        );
        assert!(
            wf.attributed_share() > 0.85 && wf.attributed_share() < 1.02,
            "{mode}: {:.3} of the round trip attributed",
            wf.attributed_share()
        );
        // Both threads are followed: their user space, send calls and socket receives (a
        // receiver is woken, or finds the packet when it returns from the call it was in).
        for kind in [StageKind::User, StageKind::Send, StageKind::SocketReceive] {
            let n = per_rt(&wf, kind, None);
            assert!(
                (n - 2.0).abs() < 0.05,
                "{mode}: {kind:?} {n:.3} per round trip"
            );
        }
        out.push(wf);
    }
    handle.stop();
    let waits: Vec<f64> = out.iter().map(|w| w.backlog_waits_per_rt).collect();
    // host: the wire's veth, once each way.
    assert!(
        (waits[0] - 2.0).abs() < 0.05,
        "host backlog waits {waits:?}"
    );
    assert!((per_rt(&out[0], StageKind::Device, Some("wire")) - 2.0).abs() < 0.05);
    // ptp: + the container's veth pair, once each way.
    assert!(
        (waits[1] - waits[0] - 2.0).abs() < 0.05,
        "ptp vs host {waits:?}"
    );
    assert!((per_rt(&out[1], StageKind::Device, Some("veth")) - 2.0).abs() < 0.05);
    // bridge: the same waits as ptp; the bridge device on the way in (br0 transmits to the
    // port) and one more receive pass on the way out (the port hands the frame to br0).
    assert!(
        (waits[2] - waits[0] - 2.0).abs() < 0.05,
        "bridge vs host {waits:?}"
    );
    assert!((per_rt(&out[2], StageKind::Device, Some("bridge")) - 1.0).abs() < 0.05);
    assert!(
        per_rt(&out[2], StageKind::Processing, None)
            > per_rt(&out[1], StageKind::Processing, None) + 0.9,
        "bridge has one more processing stage than ptp"
    );
    // macvlan: the child's transmit is a hop of its own (queued on the wire from the send
    // call); its receive happens inside the wire's pass (rx_handler): no wait of its own.
    assert!(
        (waits[3] - waits[0]).abs() < 0.05,
        "macvlan vs host {waits:?}"
    );
    assert!((per_rt(&out[3], StageKind::Device, Some("macvlan")) - 1.0).abs() < 0.05);
    assert!(
        out[3].resync < out[3].round_trips / 100,
        "macvlan resyncs {}",
        out[3].resync
    );
}

#[test]
fn a_missing_tracepoint_is_refused_in_one_line() {
    if !common::need_root("a_missing_tracepoint_is_refused_in_one_line") {
        return;
    }
    let mut tps: Vec<&str> = nslat::bpf::waterfall::PROGRAMS
        .iter()
        .map(|(_, t)| *t)
        .collect();
    tps[6] = "nslat_no_such_tracepoint";
    let err = nslat::bpf::waterfall::Tracer::load(Some(&tps))
        .unwrap_err()
        .to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("nslat_no_such_tracepoint"), "{err}");
    // The real names load.
    nslat::bpf::waterfall::Tracer::load(None).expect("the waterfall's programs load as root");
}

/// `nslat compare --waterfall` on a fresh lab, with `env` set; returns (JSON, stderr).
fn compare_waterfall(tag: &str, env: &[(&str, &str)]) -> (serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("c.json");
    let lab = common::unique(tag);
    let out = std::process::Command::new(common::nslat_bin())
        .args([
            "compare",
            "--modes",
            "host,ptp",
            "--waterfall",
            "--waterfall-pairs",
            "4",
            "--no-checks",
        ])
        .args(["--budget", "3", "--lab", &lab, "--lock-wait", "300"])
        .arg("--json")
        .arg(&json)
        .envs(env.iter().copied())
        .output()
        .expect("run nslat compare");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "compare failed:\n{}\n{stderr}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        nslat::netns::list_with_prefix(&format!("nslat-{lab}-")).is_empty(),
        "lab left behind"
    );
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    (v, stderr)
}

#[test]
fn compare_waterfall_puts_each_modes_stages_in_its_json_row() {
    if !common::need_root("compare_waterfall_puts_each_modes_stages_in_its_json_row") {
        return;
    }
    let (v, _) = compare_waterfall("wfc", &[]);
    let modes = v["modes"].as_array().unwrap();
    for name in ["host", "ptp"] {
        let m = modes.iter().find(|m| m["mode"] == name).unwrap();
        let w = &m["waterfall"];
        for key in [
            "traced_rtt_us",
            "untraced_rtt_us",
            "attributed_us",
            "unattributed_us",
        ] {
            assert!(w[key].is_f64(), "{name}: {key} in {w}");
        }
        let stages = w["stages"].as_array().unwrap();
        assert!(stages.len() >= 8, "{name}: {stages:?}");
        for s in stages {
            for key in ["name", "kind", "per_rt", "us", "ci95"] {
                assert!(s.get(key).is_some(), "{name}: stage without {key}: {s}");
            }
        }
        let sum: f64 = stages.iter().map(|s| s["us"].as_f64().unwrap()).sum();
        assert!((sum - w["attributed_us"].as_f64().unwrap()).abs() < 1e-6);
        if name == "ptp" {
            assert!(w["vs_host"]["groups"]
                .as_array()
                .is_some_and(|g| !g.is_empty()));
        }
    }
}

#[test]
fn a_refused_waterfall_is_one_line_and_the_compare_goes_on() {
    if !common::need_root("a_refused_waterfall_is_one_line_and_the_compare_goes_on") {
        return;
    }
    // A real refusal: the kernel has no tracepoint of that name, so loading the program fails.
    let (v, stderr) = compare_waterfall(
        "wfr",
        &[(
            nslat::waterfall::run::TRACEPOINT_OVERRIDE_ENV,
            "nslat_no_such_tracepoint",
        )],
    );
    let modes = v["modes"].as_array().unwrap();
    assert!(modes.iter().all(|m| m.get("waterfall").is_none()));
    assert!(modes
        .iter()
        .any(|m| m["mode"] == "ptp" && m["latency_us"]["mean"].is_f64()));
    let warnings: Vec<&str> = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["message"].as_str())
        .filter(|m| m.contains("waterfall"))
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("waterfall not available: tracepoint nslat_no_such_tracepoint"),
        "{}",
        warnings[0]
    );
    assert!(!warnings[0].contains('\n'));
    let noted = stderr
        .lines()
        .filter(|l| l.contains("waterfall not available"))
        .count();
    assert_eq!(noted, 1, "{stderr}");
}

#[test]
fn explain_waterfall_sets_each_ablation_step_beside_its_stage_sums() {
    if !common::need_root("explain_waterfall_sets_each_ablation_step_beside_its_stage_sums") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("e.json");
    let lab = common::unique("wfe");
    let out = std::process::Command::new(common::nslat_bin())
        .args([
            "compare",
            "--modes",
            "host,bridge",
            "--explain",
            "--waterfall",
            "--waterfall-pairs",
            "4",
        ])
        .args([
            "--no-checks",
            "--budget",
            "2",
            "--lab",
            &lab,
            "--lock-wait",
            "300",
        ])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run nslat compare");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let v = if v.is_array() { v[0].clone() } else { v };
    let e = &v["explain"];
    let w = &e["waterfall"];
    let steps = w["steps"].as_array().unwrap_or_else(|| panic!("{e:#}"));
    let parts = e["parts"].as_array().unwrap();
    assert_eq!(steps.len(), parts.len(), "{w:#}");
    for (s, p) in steps.iter().zip(parts) {
        assert_eq!(s["name"], p["name"]);
        assert_eq!(s["ablation_us"], p["adds_us"]);
        for k in ["traced_us", "stages_us", "overhead_us"] {
            assert!(s[k].is_f64(), "{k}: {s}");
        }
    }
    // The veth step adds the container's veth pair: two backlog waits more than the baseline.
    let waits: Vec<f64> = w["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["backlog_waits_per_rt"].as_f64().unwrap())
        .collect();
    assert!((waits[1] - waits[0] - 2.0).abs() < 0.05, "{waits:?}");
    assert!(e["notes"].to_string().contains("--waterfall per step"));
}
