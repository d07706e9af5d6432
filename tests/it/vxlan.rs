//! The vxlan mode really is an overlay: during a TCP_RR from its container to the server in the
//! remote's pod subnet, every request arrives decapsulated on the remote's vxlan0 and every
//! response on the node's (one packet per transaction each way), while ptp's traffic never
//! touches vxlan0. Interface counters of the lab's own namespaces, not global ones.

use crate::common;
use crate::lab_util;

use std::net::SocketAddr;
use std::time::Duration;

use lab_util::{link_packets, LabGuard};
use nslat::bench::server::{Server, ServerConfig};
use nslat::bench::{client, RunSpec, TestKind};
use nslat::lab::{Lab, LabSpec, Mode};
use nslat::netns;

#[test]
fn requests_and_responses_cross_the_tunnel() {
    if !common::need_root("vxlan_overlay") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("vxl");
    let _guard = LabGuard(name.clone());
    let vxlan: Mode = "vxlan".parse().unwrap();
    let lab = Lab::up(&LabSpec {
        name: name.clone(),
        modes: vec![Mode::Ptp, vxlan],
        ipv6: false,
        host_shim: false,
    })
    .expect("lab up");
    let listen: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let server = netns::run_in(Some(lab.remote_netns()), move || {
        Server::bind(ServerConfig::new(listen))
    })
    .expect("server");
    let port = server.local_addr().port();
    let handle = server.spawn();

    // (remote vxlan0 rx, node vxlan0 rx) per transaction of a run from `mode`.
    let run = |mode: Mode| -> (f64, f64) {
        let info = lab.available(mode).expect("built").clone();
        let mut spec = RunSpec::new(
            SocketAddr::new(info.server.into(), port),
            TestKind::TcpRr,
            Duration::from_millis(400),
        );
        spec.warmup = Duration::ZERO;
        spec.netns = Some(info.netns.clone());
        let (r0, n0) = (
            link_packets(lab.remote_netns(), "vxlan0").0,
            link_packets(lab.node_netns(), "vxlan0").0,
        );
        let r = client::run(&spec).expect("TCP_RR");
        let (r1, n1) = (
            link_packets(lab.remote_netns(), "vxlan0").0,
            link_packets(lab.node_netns(), "vxlan0").0,
        );
        assert!(r.transactions > 1000, "{mode}: {}", r.transactions);
        let tx = r.transactions as f64;
        ((r1 - r0) as f64 / tx, (n1 - n0) as f64 / tx)
    };
    let server_addr = lab.available(vxlan).unwrap().server;
    assert_eq!(server_addr.octets()[..3], [198, 18, 11], "{server_addr}");
    let (remote_rx, node_rx) = run(vxlan);
    eprintln!("vxlan: remote vxlan0 rx {remote_rx:.3}/tx, node vxlan0 rx {node_rx:.3}/tx");
    assert!((0.95..1.05).contains(&remote_rx), "requests: {remote_rx}");
    assert!((0.95..1.05).contains(&node_rx), "responses: {node_rx}");
    let (remote_rx, node_rx) = run(Mode::Ptp);
    eprintln!("ptp: remote vxlan0 rx {remote_rx:.3}/tx, node vxlan0 rx {node_rx:.3}/tx");
    assert!(remote_rx < 0.01 && node_rx < 0.01, "ptp is not tunnelled");

    handle.stop();
    nslat::lab::down(&name).expect("down");
    root.assert_unchanged();
}
