//! `nslat attach --mode ipvlan-l2|ipvlan-l3 --service-veth`: the ipvlan+veth hybrid on a running
//! "container". Uses no nftables (the guest kernel has none): the node reaches the hybrid over the
//! veth and a plain ipvlan container not at all; the container reaches the node over the veth and
//! the remote over ipvlan; detach leaves nothing. Skipped with a printed reason on kernels without
//! ipvlan, unless NSLAT_REQUIRE_IPVLAN=1 (`tests/vm/guest-tests attach_hybrid_ipvlan` runs it in
//! a guest kernel that has ipvlan).

use crate::common;
use crate::lab_util;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::nslat;
use lab_util::{echoes, ip_in, Container, Echo, LabGuard};
use nslat::lab::{Lab, LabSpec, Mode};
use nslat::netlink::Netlink;

const PORT: u16 = 7004;

/// Connect and read timeouts of the one-byte exchanges: generous, the guest runs under emulation.
const TIMEOUT: Duration = Duration::from_secs(1);

#[test]
fn ipvlan_service_veth_reaches_the_node() {
    if !common::need_root("attach_hybrid_ipvlan") {
        return;
    }
    let required = std::env::var("NSLAT_REQUIRE_IPVLAN").is_ok_and(|v| v == "1");
    let root = common::RootSnapshot::take();
    let name = common::unique("hyi");
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
    let _remote_echo = Echo::start(lab.remote_netns(), PORT);
    let _node_echo = Echo::start(&node, PORT);
    let mut node_nl = Netlink::open_in(&node).unwrap();
    let links_before = node_nl.link_names().unwrap();

    for (mode, hy_addr, pl_addr) in [
        ("ipvlan-l2", "198.18.0.70", "198.18.0.71"),
        ("ipvlan-l3", "198.18.0.72", "198.18.0.73"),
    ] {
        let hybrid = Container::new(common::unique("hi"));
        let plain = Container::new(common::unique("pi"));
        let attach = |c: &Container, addr: &str, extra: &[&str]| {
            let cidr = format!("{addr}/24");
            let mut args = vec![
                "attach",
                "--netns",
                &c.name,
                "--mode",
                mode,
                "--parent",
                "eth0",
                "--parent-netns",
                &node_s,
                "--addr",
                &cidr,
            ];
            args.extend_from_slice(extra);
            nslat(&args)
        };
        let o = attach(&hybrid, hy_addr, &["--service-veth"]);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        if !o.status.success() && err.contains("no ipvlan support") && !required {
            eprintln!("SKIPPED attach_hybrid_ipvlan: {}", err.trim());
            return;
        }
        assert!(o.status.success(), "{mode}: {err}");
        let o = attach(&plain, pl_addr, &[]);
        assert!(
            o.status.success(),
            "{mode}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let hy: Ipv4Addr = hy_addr.parse().unwrap();
        let pl: Ipv4Addr = pl_addr.parse().unwrap();
        if mode == "ipvlan-l3" {
            // L3 children answer no ARP: the remote's network must route their addresses to the
            // node (here: neighbour entries with the node's MAC, which ipvlan-l3 children share).
            let ni = node_nl.link_index("eth0").unwrap();
            let mac = node_nl.link_mac(ni).unwrap();
            let mut rnl = Netlink::open_in(lab.remote_netns()).unwrap();
            let ri = rnl.link_index("eth0").unwrap();
            for a in [hy, pl] {
                rnl.add_neighbour(ri, a.into(), mac).unwrap();
            }
        }

        // Data path on ipvlan to the remote, for both.
        echoes(&hybrid.path, lab.remote_addr(), PORT, TIMEOUT).expect(mode);
        echoes(&plain.path, lab.remote_addr(), PORT, TIMEOUT).expect(mode);
        // Node traffic over the veth: both ways for the hybrid, not at all for plain ipvlan.
        echoes(&hybrid.path, lab.node_addr(), PORT, TIMEOUT).expect(mode);
        assert!(
            echoes(&plain.path, lab.node_addr(), PORT, TIMEOUT).is_err(),
            "{mode}: plain ipvlan -> node should fail"
        );
        let _in_hybrid = Echo::start(&hybrid.path, PORT);
        let _in_plain = Echo::start(&plain.path, PORT);
        echoes(&node, hy, PORT, TIMEOUT).expect(mode);
        assert!(
            echoes(&node, pl, PORT, TIMEOUT).is_err(),
            "{mode}: node -> plain ipvlan should fail"
        );
        let routes = ip_in(&hybrid.path, &["-4", "route", "show"]);
        assert!(
            routes.contains(&format!(
                "198.19.0.0/16 via 198.18.0.1 dev svc-nslat0 src {hy_addr} onlink"
            )),
            "{mode}: {routes}"
        );

        assert!(nslat(&["detach", "--netns", &hybrid.name]).status.success());
        assert!(nslat(&["detach", "--netns", &plain.name]).status.success());
        assert_eq!(node_nl.link_names().unwrap(), links_before, "{mode}");
        let node_routes = ip_in(&node, &["-4", "route", "show"]);
        assert!(!node_routes.contains(hy_addr), "{mode}: {node_routes}");
    }
    drop(node_nl);
    root.assert_unchanged();
}
