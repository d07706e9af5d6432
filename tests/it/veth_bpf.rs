//! veth-bpf's programs do what they claim, shown by the node's own per-namespace counters during
//! a real TCP_RR run (not by the global softnet counters, which other load on the machine moves):
//!
//! - `nic_ingress` (bpf_redirect_peer on the NIC) keeps responses off the host veth: the host
//!   veth transmits (= enqueues into the container's backlog) ~0 packets per transaction, where
//!   ptp's transmits 1; the node forwards nothing on the way in.
//! - `veth_ingress` (bpf_redirect_neigh on the host veth) keeps requests out of the node's IP
//!   forwarding: `Ip: ForwDatagrams` stays ~0 per transaction, where ptp forwards 2.
//!
//! Detaching a program, or loading the pass-through variant (`NSLAT_BPF_PASS_ONLY=1`), brings
//! ptp's figures back: the test fails if a program is not attached or passes instead of
//! redirecting.

use crate::common;
use crate::lab_util;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use lab_util::LabGuard;
use nslat::bench::server::{Server, ServerConfig};
use nslat::bench::{client, RunSpec, TestKind};
use nslat::bpf::{self, Hook};
use nslat::lab::{Lab, LabSpec, Mode};
use nslat::netns;

/// (IP datagrams forwarded by the node, packets the host veth `veth` transmitted).
fn node_counters(node: &Path, veth: &'static str) -> (u64, u64) {
    netns::run_in(
        Some(node),
        move || -> Result<(u64, u64), netns::NetnsError> {
            let snmp = std::fs::read_to_string("/proc/thread-self/net/snmp").expect("snmp");
            let dev = std::fs::read_to_string("/proc/thread-self/net/dev").expect("net/dev");
            Ok((forwarded(&snmp), lab_util::dev_packets(&dev, veth).1))
        },
    )
    .unwrap()
}

/// `Ip: ForwDatagrams` from /proc/net/snmp (a header line, then a value line).
fn forwarded(snmp: &str) -> u64 {
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip:"));
    let (names, values) = (ip.next().unwrap(), ip.next().unwrap());
    let i = names
        .split_whitespace()
        .position(|n| n == "ForwDatagrams")
        .unwrap();
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

/// Per transaction of a short TCP_RR from `mode`'s container: (forwarded, host veth tx).
fn per_transaction(lab: &Lab, mode: Mode, veth: &'static str, server: SocketAddr) -> (f64, f64) {
    let info = lab.available(mode).expect("mode built").clone();
    let mut spec = RunSpec::new(
        SocketAddr::new(info.server.into(), server.port()),
        TestKind::TcpRr,
        Duration::from_millis(400),
    );
    // No warm-up: the counters cover the whole run, the division all its transactions.
    spec.warmup = Duration::ZERO;
    spec.netns = Some(info.netns.clone());
    let before = node_counters(lab.node_netns(), veth);
    let r = client::run(&spec).expect("TCP_RR");
    let after = node_counters(lab.node_netns(), veth);
    let tx = r.transactions.max(1) as f64;
    assert!(
        r.transactions > 1000,
        "{mode}: only {} transactions",
        r.transactions
    );
    (
        (after.0 - before.0) as f64 / tx,
        (after.1 - before.1) as f64 / tx,
    )
}

fn veth_bpf() -> Mode {
    "veth-bpf".parse().unwrap()
}

#[test]
fn each_program_redirects_and_detaching_it_shows() {
    if !common::need_root("veth_bpf_programs") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("vbpf");
    let _guard = LabGuard(name.clone());
    let lab = Lab::up(&LabSpec {
        name: name.clone(),
        modes: vec![Mode::Ptp, veth_bpf()],
        ipv6: false,
        host_shim: false,
    })
    .expect("lab up");
    if let Some(Err(why)) = lab.mode(veth_bpf()) {
        common::prerequisite("veth_bpf_programs", false, why);
        return;
    }
    let listen: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let server = netns::run_in(Some(lab.remote_netns()), move || {
        Server::bind(ServerConfig::new(listen))
    })
    .expect("server");
    let port = server.local_addr();
    let handle = server.spawn();

    let (fwd, tx) = per_transaction(&lab, Mode::Ptp, "veth-ptp", port);
    eprintln!("ptp: forwarded {fwd:.3}/tx, host veth tx {tx:.3}/tx");
    assert!(
        (1.9..2.1).contains(&fwd),
        "ptp forwards request and response: {fwd}"
    );
    assert!(
        (0.95..1.05).contains(&tx),
        "ptp's host veth carries every response: {tx}"
    );

    let node = lab.node_netns().to_path_buf();
    let (fwd, tx) = per_transaction(&lab, veth_bpf(), "veth-bpf", port);
    eprintln!("veth-bpf: forwarded {fwd:.3}/tx, host veth tx {tx:.3}/tx");
    assert!(fwd < 0.01, "both directions bypass forwarding: {fwd}");
    assert!(
        tx < 0.01,
        "redirect_peer keeps responses off the host veth: {tx}"
    );

    assert!(bpf::detach(&node, "eth0", Hook::Ingress, "nic_ingress").unwrap());
    let (fwd, tx) = per_transaction(&lab, veth_bpf(), "veth-bpf", port);
    eprintln!("without nic_ingress: forwarded {fwd:.3}/tx, host veth tx {tx:.3}/tx");
    assert!(
        (0.95..1.05).contains(&tx),
        "responses go through the host veth again: {tx}"
    );
    assert!(
        (0.95..1.05).contains(&fwd),
        "responses are forwarded again, requests still redirected: {fwd}"
    );

    assert!(bpf::detach(&node, "veth-bpf", Hook::Ingress, "veth_ingress").unwrap());
    let (fwd, _) = per_transaction(&lab, veth_bpf(), "veth-bpf", port);
    eprintln!("without both: forwarded {fwd:.3}/tx");
    assert!(
        (1.9..2.1).contains(&fwd),
        "requests are forwarded again: {fwd}"
    );
    assert!(!bpf::detach(&node, "eth0", Hook::Ingress, "nic_ingress").unwrap());

    handle.stop();
    drop(lab);
    nslat::lab::down(&name).expect("down");
    root.assert_unchanged();
}

#[test]
fn the_pass_through_variant_changes_nothing_ptp_would_not() {
    if !common::need_root("veth_bpf_pass_only") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("vbpp");
    let _guard = LabGuard(name.clone());
    // A separate process, so the variant's env var stays out of this test process.
    let out = std::process::Command::new(common::nslat_bin())
        .args(["lab", "up", "--name", &name, "--modes", "veth-bpf"])
        .env("NSLAT_BPF_PASS_ONLY", "1")
        .output()
        .expect("nslat lab up");
    assert!(out.status.success(), "{out:?}");
    let lab = Lab::open(&name).expect("open");
    if let Some(Err(why)) = lab.mode(veth_bpf()) {
        common::prerequisite("veth_bpf_pass_only", false, why);
        return;
    }
    let listen: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let server = netns::run_in(Some(lab.remote_netns()), move || {
        Server::bind(ServerConfig::new(listen))
    })
    .expect("server");
    let port = server.local_addr();
    let handle = server.spawn();
    let (fwd, tx) = per_transaction(&lab, veth_bpf(), "veth-bpf", port);
    eprintln!("pass-only: forwarded {fwd:.3}/tx, host veth tx {tx:.3}/tx");
    assert!(
        (1.9..2.1).contains(&fwd) && (0.95..1.05).contains(&tx),
        "pass-only is ptp: {fwd} {tx}"
    );
    handle.stop();
    nslat::lab::down(&name).expect("down");
    root.assert_unchanged();
}

#[test]
fn counters_parse() {
    let snmp = "Ip: Forwarding DefaultTTL InReceives ForwDatagrams\nIp: 1 64 100 42\nIcmp: x\n";
    assert_eq!(forwarded(snmp), 42);
    let dev = "Inter-|   Receive |  Transmit\n face |bytes packets errs drop fifo frame compressed multicast|bytes packets\n veth-bpf: 10 2 0 0 0 0 0 0 30 7 0 0 0 0 0 0\n";
    assert_eq!(lab_util::dev_packets(dev, "veth-bpf"), (2, 7));
}
