//! The sweeps on real labs, small N and K: the Service rules are what makes the ClusterIP
//! answer (it does not before they are loaded or after they are removed), both styles load in
//! the node namespace only, `nslat sweep services` measures every point and leaves nothing
//! behind, and `nslat sweep load`'s neighbours really stream (their throughput and the backlog
//! packets they add), and an interrupted sweep removes its lab.

use crate::common;
use crate::lab_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use lab_util::{LabGuard, PeerServer, PORT};
use nslat::lab::{Lab, LabSpec, Mode};
use nslat::netns;
use nslat::sweep::{self, services, Style, CLUSTER_IP, CONTROL_PORT};

fn connects(from: &std::path::Path, to: Ipv4Addr, port: u16) -> bool {
    netns::run_in(Some(from), move || -> Result<bool, netns::NetnsError> {
        Ok(TcpStream::connect_timeout(
            &SocketAddr::new(IpAddr::V4(to), port),
            Duration::from_millis(300),
        )
        .is_ok())
    })
    .unwrap()
}

fn in_node(lab: &Lab, args: &[&str]) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec"])
        .arg(lab.node_netns().file_name().unwrap())
        .args(args)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn lab_namespaces(name: &str) -> Vec<String> {
    netns::list_with_prefix(&format!("nslat-{name}-"))
}

#[test]
fn the_rules_are_what_makes_the_cluster_ip_answer() {
    if !common::need_root("sweep_rules")
        || !common::need_tool("sweep_rules", "nft")
        || !common::need_tool("sweep_rules", "iptables-nft-restore")
    {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("swr");
    let _guard = LabGuard(name.clone());
    let mut spec = LabSpec::new(&name);
    spec.modes = vec![Mode::Bridge];
    let lab = Lab::up(&spec).unwrap();
    let _server = PeerServer::start(lab.remote_netns());
    let bridge = lab.available(Mode::Bridge).unwrap().netns.clone();
    let node = lab.node_netns().to_path_buf();
    assert!(
        !connects(&bridge, CLUSTER_IP, CONTROL_PORT),
        "nothing answers on the ClusterIP before the rules"
    );
    let n = 50;
    let plan = sweep::service_plan(n, PORT);
    let measured_ports = plan.measured.ports.len();
    for style in Style::ALL {
        services::install(&node, style, &plan).unwrap();
        assert!(
            connects(&bridge, CLUSTER_IP, CONTROL_PORT),
            "{style}: the ClusterIP answers through the rules"
        );
        match style {
            Style::Iptables => {
                let chain = in_node(
                    &lab,
                    &["nft", "list", "chain", "ip", "nat", "KUBE-SERVICES"],
                );
                assert_eq!(
                    chain.matches("jump KUBE-SVC-").count(),
                    n + measured_ports,
                    "{chain}"
                );
                assert!(
                    in_node(&lab, &["nft", "list", "tables"]).contains("table ip nat"),
                    "iptables-nft tables in the node"
                );
            }
            Style::Nftables => {
                let map = in_node(
                    &lab,
                    &["nft", "list", "map", "ip", "kube-proxy", "service-ips"],
                );
                assert_eq!(map.matches("goto service-").count(), n + measured_ports);
                assert!(
                    !in_node(&lab, &["nft", "list", "tables"]).contains("table ip nat"),
                    "installing one style removes the other's tables"
                );
            }
        }
        services::remove(&node).unwrap();
        assert!(
            !connects(&bridge, CLUSTER_IP, CONTROL_PORT),
            "{style}: the ClusterIP stops answering when the rules go"
        );
        let tables = in_node(&lab, &["nft", "list", "tables"]);
        assert!(
            !tables.contains("kube-proxy") && !tables.contains("ip nat"),
            "{tables}"
        );
    }
    root.assert_unchanged();
}

#[test]
fn sweep_services_measures_every_point_and_leaves_nothing() {
    if !common::need_root("sweep_services")
        || !common::need_tool("sweep_services", "iptables-nft-restore")
    {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("sws");
    let _guard = LabGuard(name.clone());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("s.json");
    let csv = dir.path().join("s.csv");
    let html = dir.path().join("html");
    common::nslat_ok(&[
        "sweep",
        "services",
        "--counts",
        "0,60",
        "-t",
        "TCP_CRR,TCP_RR",
        "-l",
        "1",
        "--lab",
        &name,
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let r: sweep::SweepReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r.axis, sweep::Axis::Services);
    assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
    assert_eq!(r.points.len(), 2 * 2 * 2, "styles × counts × tests");
    for p in &r.points {
        // Measured on the interleaved seam: many short blocks, and an interval from them.
        assert!(p.rounds >= 20, "{} rounds", p.rounds);
        assert!(p.latency_us.ci95.is_some(), "{:?}", p.latency_us);
        let v = p.vs_direct.unwrap();
        assert!(v.ratio > 0.0 && v.ratio_ci95.is_some());
        assert!(p.style.is_some());
        assert!(p.latency_us.p50 > 0.0 && p.latency_us.p99 >= p.latency_us.p50);
        assert!(p.transactions > 0 && p.rounds >= 4);
        assert!(p.load_s.is_some_and(|s| s > 0.0));
        assert!(p.direct_latency_us.is_some() && p.vs_direct.is_some());
    }
    let rows = std::fs::read_to_string(&csv).unwrap().lines().count();
    assert_eq!(rows, 1 + r.points.len());
    let page = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert_eq!(page.matches("<svg").count(), 4, "two curve plots per test");
    assert!(
        lab_namespaces(&name).is_empty(),
        "the sweep removed its lab"
    );
    root.assert_unchanged();
}

#[test]
fn sweep_load_neighbours_stream_through_the_node() {
    if !common::need_root("sweep_load") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("swl");
    let _guard = LabGuard(name.clone());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("l.json");
    common::nslat_ok(&[
        "sweep",
        "load",
        "--modes",
        "bridge",
        "--neighbours",
        "0,2",
        "--placements",
        "other",
        "-l",
        "1",
        "--lab",
        &name,
        "--json",
        json.to_str().unwrap(),
    ]);
    let r: sweep::SweepReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r.axis, sweep::Axis::Load);
    assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
    assert_eq!(r.points.len(), 2);
    let (k0, k2) = (&r.points[0], &r.points[1]);
    assert_eq!((k0.n, k2.n), (0, 2));
    assert!(k0.neighbours_gbps.is_none());
    let gbps = k2.neighbours_gbps.unwrap();
    assert!(gbps > 0.05, "the neighbours streamed ({gbps} Gbit/s)");
    // The node's own wire counter (the kernel's, not the streams' reports) shows them too.
    let (w0, w2) = (k0.wire_gbps.unwrap(), k2.wire_gbps.unwrap());
    assert!(
        w2 > 0.05 && w2 > 5.0 * w0,
        "the node's eth0 sent {w2} Gbit/s with two neighbours, {w0} without"
    );
    assert!(k0.backlog.is_some() && k2.backlog.is_some());
    // Queueing on the victim's CPU: the victim's own packets are received there (bridge: the
    // container's veth, docker0 and the wire on the way out and back: at least 5 device passes
    // per transaction, whatever else the machine runs), and its backlog was sampled throughout.
    for p in [k0, k2] {
        let q = p.queueing.expect("queueing on the victim's CPU");
        assert_eq!(q.cpu, 0);
        assert!(
            q.pkts_per_tx >= 4.9,
            "{} packets per transaction",
            q.pkts_per_tx
        );
        assert!(q.net_rx_per_tx > 0.0 && (0.0..=1.0).contains(&q.softirq_share));
        assert!(
            q.backlog_samples.samples >= 200,
            "{} samples in 1 s",
            q.backlog_samples.samples
        );
        assert!(q.backlog_busy_share.is_some() && q.backlog_len_mean.is_some());
    }
    assert!(
        lab_namespaces(&name).is_empty(),
        "neighbours removed with the lab"
    );
    root.assert_unchanged();
}

#[test]
fn an_interrupted_sweep_removes_its_lab_and_rules() {
    if !common::need_root("sweep_interrupt") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("swi");
    let _guard = LabGuard(name.clone());
    let child = Command::new(common::nslat_bin())
        .args([
            "sweep",
            "services",
            "--counts",
            "0,10,20,30,40",
            "-l",
            "2",
            "--lab",
            &name,
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the lab exists (the node namespace is there), then a little into a point.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !netns::path_of(&format!("nslat-{name}-node")).exists() {
        assert!(Instant::now() < deadline, "the sweep never built its lab");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(800));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(lab_namespaces(&name).is_empty(), "lab removed: {stderr}");
    root.assert_unchanged();
}

#[test]
fn load_modes_without_neighbours_are_refused_with_the_reason() {
    if !common::need_root("sweep_load_modes") {
        return;
    }
    let root = common::RootSnapshot::take();
    for (mode, why) in [("vxlan", "pod subnet"), ("veth-bpf", "tc programs")] {
        let name = common::unique("swm");
        let _guard = LabGuard(name.clone());
        let out = common::nslat(&["sweep", "load", "--modes", mode, "--lab", &name]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{mode}: {stderr}");
        assert_eq!(
            stderr.trim().lines().count(),
            1,
            "{mode}: one line: {stderr}"
        );
        assert!(
            stderr.contains(mode)
                && stderr.contains(why)
                && stderr.contains("host, bridge, ptp and macvlan"),
            "{stderr}"
        );
        assert!(lab_namespaces(&name).is_empty(), "{mode}: nothing built");
    }
    root.assert_unchanged();
}
