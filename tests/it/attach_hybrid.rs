//! `nslat attach --service-veth`: the macvlan+veth hybrid attached to a running "container".
//! The container reaches a Service (DNAT in the node) through the veth and the node reaches the
//! container; a plain macvlan attach does not reach the Service; detach leaves nothing behind.

use crate::common;
use crate::lab_util;

use std::net::Ipv4Addr;
use std::process::Output;
use std::time::Duration;

use common::nslat;
use lab_util::{echoes, ip_in, Container, Echo, LabGuard};
use nslat::firewall::{NatLevel, Subnet4};
use nslat::lab::{Lab, LabSpec, Mode};
use nslat::netlink::Netlink;
use nslat::netns;

const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
const ECHO_PORT: u16 = 7002;
const HYBRID_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 60);
const PLAIN_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 61);

/// Connect and read timeouts of the one-byte exchanges (expected failures wait this long).
const TIMEOUT: Duration = Duration::from_millis(500);

fn ok(o: &Output) -> String {
    let out = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(
        o.status.success(),
        "nslat failed: {}\n{out}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

#[test]
fn service_veth_reaches_the_service_plain_macvlan_does_not() {
    if !common::need_root("attach_hybrid") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("hyb");
    let _lab_guard = LabGuard(name.clone());
    let spec = LabSpec {
        name: name.clone(),
        modes: vec![Mode::Host],
        ipv6: false,
        host_shim: false,
    };
    let lab = Lab::up(&spec).unwrap();
    let node = lab.node_netns().to_path_buf();
    let node_s = node.display().to_string();
    let _echo = Echo::start(lab.remote_netns(), ECHO_PORT);
    lab.firewall()
        .set_service_dnat(CLUSTER_IP, 80, lab.remote_addr(), ECHO_PORT)
        .unwrap();
    let mut node_nl = Netlink::open_in(&node).unwrap();
    let links_before = node_nl.link_names().unwrap();

    let hybrid = Container::new(common::unique("hc"));
    let plain = Container::new(common::unique("pc"));

    // Bad input: one line, exit 2, nothing made.
    let bad = nslat(&[
        "attach",
        "--netns",
        &hybrid.name,
        "--mode",
        "macvlan",
        "--parent",
        "eth0",
        "--parent-netns",
        &node_s,
        "--addr",
        "198.18.0.60/24",
        "--service-veth",
        "--service-cidr",
        "198.19.0.10/16",
    ]);
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("198.19.0.0/16"), "{err}");
    assert_eq!(node_nl.link_names().unwrap(), links_before);
    assert_eq!(
        Netlink::open_in(&hybrid.path)
            .unwrap()
            .link_names()
            .unwrap(),
        vec!["lo".to_string()]
    );

    // The hybrid.
    let out = ok(&nslat(&[
        "attach",
        "--netns",
        &hybrid.name,
        "--mode",
        "macvlan",
        "--parent",
        "eth0",
        "--parent-netns",
        &node_s,
        "--addr",
        "198.18.0.60/24",
        "--gateway",
        "198.18.0.2",
        "--service-veth",
    ]));
    assert!(out.contains("service veth"), "{out}");
    let routes = ip_in(&hybrid.path, &["-4", "route", "show"]);
    assert!(
        routes.contains("198.19.0.0/16 via 198.18.0.1 dev svc-nslat0 src 198.18.0.60 onlink"),
        "{routes}"
    );
    // Plain macvlan, same parent, same gateway.
    ok(&nslat(&[
        "attach",
        "--netns",
        &plain.name,
        "--mode",
        "macvlan",
        "--parent",
        "eth0",
        "--parent-netns",
        &node_s,
        "--addr",
        "198.18.0.61/24",
        "--gateway",
        "198.18.0.2",
    ]));

    // Strict reverse-path filtering on both sides: the /32 routes must satisfy it.
    for ns in [&node, &hybrid.path] {
        nslat::netlink::sysctl::write_in(ns, &[("net.ipv4.conf.all.rp_filter", "1")]).unwrap();
    }
    // Both reach the remote directly over macvlan (the attach itself works) ...
    echoes(&hybrid.path, lab.remote_addr(), ECHO_PORT, TIMEOUT).unwrap();
    echoes(&plain.path, lab.remote_addr(), ECHO_PORT, TIMEOUT).unwrap();
    // The Service traffic now passes the node's DNAT, but the backend (on the macvlan's L2) answers
    // the container's address directly, past the node's conntrack: the node must also SNAT it
    // (kube-proxy does for sources outside --cluster-cidr, or with --masquerade-all).
    assert!(
        echoes(&hybrid.path, CLUSTER_IP, 80, TIMEOUT).is_err(),
        "hybrid without SNAT in the node: the backend's answer bypasses the node"
    );
    lab.firewall()
        .set_nat(
            NatLevel::Masquerade,
            Subnet4 {
                addr: HYBRID_ADDR,
                len: 32,
            },
            "eth0",
        )
        .unwrap();
    // ... only the hybrid reaches the Service (the node's DNAT) ...
    echoes(&hybrid.path, CLUSTER_IP, 80, TIMEOUT).expect("hybrid: service should work");
    assert!(
        echoes(&plain.path, CLUSTER_IP, 80, TIMEOUT).is_err(),
        "plain macvlan: service should fail (it never passes the node's hooks)"
    );
    // ... and only the hybrid is reachable from the node.
    let _in_hybrid = Echo::start(&hybrid.path, ECHO_PORT);
    let _in_plain = Echo::start(&plain.path, ECHO_PORT);
    echoes(&node, HYBRID_ADDR, ECHO_PORT, TIMEOUT).expect("node -> hybrid should work");
    assert!(
        echoes(&node, PLAIN_ADDR, ECHO_PORT, TIMEOUT).is_err(),
        "node -> plain macvlan should fail"
    );
    let node_routes = ip_in(&node, &["-4", "route", "show"]);
    assert!(node_routes.contains("198.18.0.60 dev nsv"), "{node_routes}");

    // Detach both: nothing left in the node, the root namespace untouched.
    ok(&nslat(&["detach", "--netns", &hybrid.name]));
    ok(&nslat(&["detach", "--netns", &plain.name]));
    assert_eq!(node_nl.link_names().unwrap(), links_before);
    let node_routes = ip_in(&node, &["-4", "route", "show"]);
    assert!(!node_routes.contains("198.18.0.60"), "{node_routes}");
    for c in [&hybrid, &plain] {
        assert_eq!(
            Netlink::open_in(&c.path).unwrap().link_names().unwrap(),
            vec!["lo".to_string()]
        );
    }
    drop(node_nl);
    root.assert_unchanged();
}

/// A parent namespace of our own (its `eth0` a veth to a wire namespace): a parent without an
/// IPv4 address, `--host-shim` with `--service-veth`, and forwarding off in the parent.
#[test]
fn service_veth_checks_the_parent() {
    if !common::need_root("attach_hybrid_parent") {
        return;
    }
    let root = common::RootSnapshot::take();
    let parent = Container::new(common::unique("hp"));
    let wire = Container::new(common::unique("hw"));
    let ctr = Container::new(common::unique("hk"));
    let mut pnl = Netlink::open_in(&parent.path).unwrap();
    let wire_fd = std::fs::File::open(&wire.path).unwrap();
    pnl.create_veth("eth0", "eth0", Some(std::os::fd::AsFd::as_fd(&wire_fd)))
        .unwrap();
    let eth0 = pnl.link_index("eth0").unwrap();
    pnl.set_up(eth0, true).unwrap();
    let links_before = pnl.link_names().unwrap();
    let attach = |extra: &[&str]| {
        let mut args = vec![
            "attach",
            "--netns",
            &ctr.name,
            "--mode",
            "macvlan",
            "--parent",
            "eth0",
            "--parent-netns",
            &parent.name,
            "--addr",
            "198.18.7.60/24",
            "--service-veth",
        ];
        args.extend_from_slice(extra);
        nslat(&args)
    };
    let unchanged = |pnl: &mut Netlink| {
        assert_eq!(pnl.link_names().unwrap(), links_before);
        assert_eq!(
            Netlink::open_in(&ctr.path).unwrap().link_names().unwrap(),
            vec!["lo".to_string()]
        );
    };
    let fails_with = |o: Output, what: &str| {
        assert_eq!(o.status.code(), Some(2));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(what), "{err}");
    };

    // No IPv4 address on the parent: nothing to route the Service network to.
    fails_with(attach(&[]), "has no IPv4 address");
    unchanged(&mut pnl);
    pnl.add_address(eth0, Ipv4Addr::new(198, 18, 7, 1).into(), 24)
        .unwrap();
    fails_with(attach(&["--host-shim", "198.18.7.2"]), "drop --host-shim");
    unchanged(&mut pnl);
    fails_with(attach(&["--service-cidr", "2001:2::/64"]), "IPv4 network");
    unchanged(&mut pnl);

    // Forwarding off in the parent: a one-line warning, nslat does not change it.
    nslat::netlink::sysctl::write_in(&parent.path, &[("net.ipv4.ip_forward", "0")]).unwrap();
    let o = attach(&["--service-cidr", "10.96.0.0/12"]);
    ok(&o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("warning: net.ipv4.ip_forward is 0"), "{err}");
    assert_eq!(
        nslat::netlink::sysctl::read_in(&parent.path, "net.ipv4.ip_forward").unwrap(),
        "0"
    );
    let routes = ip_in(&ctr.path, &["-4", "route", "show"]);
    assert!(
        routes.contains("10.96.0.0/12 via 198.18.7.1 dev svc-nslat0 src 198.18.7.60 onlink"),
        "{routes}"
    );
    assert!(
        routes.contains("198.18.7.1 dev svc-nslat0 scope link src 198.18.7.60"),
        "{routes}"
    );
    ok(&nslat(&["detach", "--netns", &ctr.name]));
    unchanged(&mut pnl);
    let proutes = ip_in(&parent.path, &["-4", "route", "show"]);
    assert!(!proutes.contains("198.18.7.60"), "{proutes}");
    fails_with(
        attach(&["--service-cidr", "198.18.0.0/16"]),
        "contains the container's own address",
    );
    unchanged(&mut pnl);

    // The parent namespace disappears (its links and the veth pair with it): detach still works.
    ok(&attach(&[]));
    drop(pnl);
    netns::delete(&parent.name).unwrap();
    ok(&nslat(&["detach", "--netns", &ctr.name]));
    assert_eq!(
        Netlink::open_in(&ctr.path).unwrap().link_names().unwrap(),
        vec!["lo".to_string()]
    );
    root.assert_unchanged();
}
