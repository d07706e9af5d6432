//! The lab side of the feature checks: Service DNAT, a policy drop rule, the host shim and the
//! hybrid macvlan+veth mode, each shown to work where it should and to fail where it should.

use crate::common;
use crate::lab_util;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use lab_util::{exchange, LabGuard, PeerServer, PORT};
use nslat::firewall::Subnet4;
use nslat::lab::{Lab, LabSpec, Mode};
use nslat::netns;

const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);

/// From `from`, a TCP connect to `to:port` (short timeout): true when it connects.
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

#[test]
fn service_dnat_and_policy_drop_per_mode() {
    if !common::need_root("lab_features_service") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("svc");
    let _guard = LabGuard(name.clone());
    let spec = LabSpec {
        name: name.clone(),
        modes: vec![
            Mode::Host,
            Mode::Bridge,
            Mode::Ptp,
            Mode::Macvlan,
            Mode::MacvlanVeth,
        ],
        ipv6: false,
        host_shim: false,
    };
    let lab = Lab::up(&spec).unwrap();
    let _server = PeerServer::start(lab.remote_netns());
    let fw = lab.firewall();
    fw.set_service_dnat(CLUSTER_IP, 80, lab.remote_addr(), PORT)
        .unwrap();
    let path = |m: Mode| lab.mode(m).unwrap().clone().unwrap().netns;
    // Through the node's netfilter: bridge, ptp, the hybrid's side veth, and the node itself.
    for m in [Mode::Host, Mode::Bridge, Mode::Ptp, Mode::MacvlanVeth] {
        assert!(
            connects(&path(m), CLUSTER_IP, 80),
            "{m}: service should work"
        );
    }
    // macvlan leaves through the parent without passing the node's hooks: no Service.
    assert!(
        !connects(&path(Mode::Macvlan), CLUSTER_IP, 80),
        "macvlan: service should fail"
    );
    // The hybrid keeps its data path on macvlan: the remote sees its wire address.
    assert_eq!(
        exchange(&path(Mode::MacvlanVeth), lab.remote_addr().into()).unwrap(),
        "198.18.0.7"
    );

    // A policy drop for the bridge subnet is enforced for bridge traffic only.
    fw.set_policy_drop(Subnet4 {
        addr: Ipv4Addr::new(198, 18, 1, 0),
        len: 24,
    })
    .unwrap();
    assert!(
        !connects(&path(Mode::Bridge), lab.remote_addr(), PORT),
        "bridge: policy should drop"
    );
    assert!(connects(&path(Mode::Ptp), lab.remote_addr(), PORT));
    // A drop for the wire subnet does not stop macvlan (it bypasses the node's hooks).
    fw.set_policy_drop(Subnet4 {
        addr: Ipv4Addr::new(198, 18, 0, 0),
        len: 24,
    })
    .unwrap();
    assert!(
        connects(&path(Mode::Macvlan), lab.remote_addr(), PORT),
        "macvlan bypasses node policy"
    );
    fw.remove_table(nslat::firewall::POLICY_TABLE).unwrap();
    fw.remove_table(nslat::firewall::SERVICE_TABLE).unwrap();
    assert!(connects(&path(Mode::Bridge), lab.remote_addr(), PORT));
    assert!(!connects(&path(Mode::Bridge), CLUSTER_IP, 80));
    drop(_server);
    drop(_guard);
    root.assert_unchanged();
}

#[test]
fn host_shim_makes_node_to_macvlan_work() {
    if !common::need_root("lab_features_shim") {
        return;
    }
    let root = common::RootSnapshot::take();
    for shim in [false, true] {
        let name = common::unique("shim");
        let _guard = LabGuard(name.clone());
        let spec = LabSpec {
            name: name.clone(),
            modes: vec![Mode::Host, Mode::Macvlan],
            ipv6: false,
            host_shim: shim,
        };
        let lab = Lab::up(&spec).unwrap();
        let ctr = lab.mode(Mode::Macvlan).unwrap().clone().unwrap();
        let _server = PeerServer::start(&ctr.netns);
        let works = exchange(lab.node_netns(), ctr.addr.into());
        if shim {
            assert_eq!(
                works.unwrap(),
                "198.18.0.254",
                "node -> container through the shim"
            );
        } else {
            assert!(
                works.is_err(),
                "a macvlan parent cannot reach its child: {works:?}"
            );
        }
    }
    root.assert_unchanged();
}
