//! ipvlan modes (L2, L3, L3S, ipvlan+veth) and `attach --mode ipvlan-*`. Skipped with a printed
//! reason on kernels without ipvlan, unless NSLAT_REQUIRE_IPVLAN=1 (the VM harness sets it and
//! runs this file alone in a guest kernel that has ipvlan). Uses no nftables, so it also runs in
//! a guest without nf_tables.

mod common;
mod lab_util;

use std::process::Command;

use lab_util::{exchange, leftovers, LabGuard, NetnsGuard, PeerServer};
use nslat::lab::{self, Lab, LabSpec, Mode};
use nslat::netns;

const IPVLAN_MODES: [Mode; 4] = [
    Mode::IpvlanL2,
    Mode::IpvlanL3,
    Mode::IpvlanL3s,
    Mode::IpvlanVeth,
];

/// Builds the lab; `None` (after printing why) when the kernel has no ipvlan and it is not required.
fn ipvlan_lab(test: &str, name: &str) -> Option<Lab> {
    let mut modes = vec![Mode::Host];
    modes.extend(IPVLAN_MODES);
    let spec = LabSpec {
        name: name.to_string(),
        modes,
        ipv6: true,
        host_shim: true,
    };
    let lab = Lab::up(&spec).expect("lab up");
    if let Some(Err(reason)) = lab.mode(Mode::IpvlanL2) {
        let required = std::env::var("NSLAT_REQUIRE_IPVLAN").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: NSLAT_REQUIRE_IPVLAN=1 but {reason}");
        eprintln!("SKIPPED {test}: {reason}");
        return None;
    }
    Some(lab)
}

#[test]
fn ipvlan_modes_talk_tcp_to_the_remote() {
    if !common::need_root("lab_ipvlan_modes") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("ipvl");
    let guard = LabGuard(name.clone());
    let Some(lab) = ipvlan_lab("lab_ipvlan_modes", &name) else {
        return;
    };
    let server = PeerServer::start(lab.remote_netns());
    for mode in IPVLAN_MODES {
        let info = lab
            .mode(mode)
            .unwrap()
            .clone()
            .unwrap_or_else(|r| panic!("{mode}: {r}"));
        let seen = exchange(&info.netns, lab.remote_addr().into()).unwrap();
        assert_eq!(seen, info.addr.to_string(), "{mode}");
        if mode != Mode::IpvlanVeth {
            let seen6 = exchange(&info.netns, lab.remote_addr6().unwrap().into()).unwrap();
            assert_eq!(seen6, info.addr6.unwrap().to_string(), "{mode} over IPv6");
        }
    }
    drop(server);
    let report = lab::down(&name).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(leftovers(&name), Vec::<String>::new());
    drop(guard);
    root.assert_unchanged();
}

#[test]
fn attach_ipvlan_into_a_container_namespace() {
    if !common::need_root("lab_ipvlan_attach") {
        return;
    }
    let name = common::unique("ipat");
    let _guard = LabGuard(name.clone());
    let Some(lab) = ipvlan_lab("lab_ipvlan_attach", &name) else {
        return;
    };
    let ctr = common::unique("ictr");
    let _c = NetnsGuard(ctr.clone());
    let ctr_path = netns::create(&ctr).unwrap();
    let server = PeerServer::start(lab.remote_netns());
    let node = lab.node_netns().display().to_string();
    let out = Command::new(common::nslat_bin())
        .args([
            "attach",
            "--netns",
            &ctr,
            "--mode",
            "ipvlan-l2",
            "--parent",
            "eth0",
            "--parent-netns",
            &node,
            "--addr",
            "198.18.0.70/24",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        exchange(&ctr_path, lab.remote_addr().into()).unwrap(),
        "198.18.0.70"
    );
    let out = Command::new(common::nslat_bin())
        .args(["detach", "--netns", &ctr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(exchange(&ctr_path, lab.remote_addr().into()).is_err());
    drop(server);
}
