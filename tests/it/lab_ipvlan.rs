//! ipvlan modes (L2, L3, L3S, ipvlan+veth) and `attach --mode ipvlan-*`. Skipped with a printed
//! reason on kernels without ipvlan, unless NSLAT_REQUIRE_IPVLAN=1 (the VM harness sets it and
//! runs this file alone in a guest kernel that has ipvlan). Uses no nftables, so it also runs in
//! a guest without nf_tables.

use crate::common;
use crate::lab_util;

use std::process::Command;

use lab_util::{exchange, leftovers, LabGuard, NetnsGuard, PeerServer};
use nslat::lab::{self, Lab, LabSpec, Mode};
use nslat::netlink::{Netlink, Route};
use nslat::netns;

const IPVLAN_MODES: [Mode; 4] = [
    Mode::IpvlanL2,
    Mode::IpvlanL3,
    Mode::IpvlanL3s,
    Mode::IpvlanVeth,
];

/// Builds the lab; `None` (after printing why) when the kernel has no ipvlan and it is not required.
fn ipvlan_lab(test: &str, name: &str) -> Option<Lab> {
    // macvlan too: it must coexist (a parent with ipvlan children takes no macvlan, so ipvlan
    // modes get their own wire ports).
    let mut modes = vec![Mode::Host, Mode::Macvlan];
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
        if let Some(a6) = info.addr6 {
            let seen6 = exchange(&info.netns, lab.remote_addr6().unwrap().into()).unwrap();
            assert_eq!(seen6, a6.to_string(), "{mode} over IPv6");
        }
    }
    let mv = lab.mode(Mode::Macvlan).unwrap().clone().unwrap();
    assert_eq!(
        exchange(&mv.netns, lab.remote_addr().into()).unwrap(),
        mv.addr.to_string()
    );
    drop(server);
    // Each ipvlan mode really runs in its own mode (the mode is per parent).
    for (mode, want) in [
        (Mode::IpvlanL2, "l2"),
        (Mode::IpvlanL3, "l3"),
        (Mode::IpvlanL3s, "l3s"),
    ] {
        let info = lab.mode(mode).unwrap().clone().unwrap();
        let out = Command::new("ip")
            .args([
                "-d",
                "-n",
                info.netns.file_name().unwrap().to_str().unwrap(),
                "link",
                "show",
                "eth0",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains(&format!("ipvlan  mode {want} ")),
            "{mode}: {text}"
        );
    }
    // The host shim (an ipvlan L2 of the node's own on the ipvlan-l2 port): node -> container.
    let l2 = lab.mode(Mode::IpvlanL2).unwrap().clone().unwrap();
    let ctr_server = PeerServer::start(&l2.netns);
    assert_eq!(
        exchange(lab.node_netns(), l2.addr.into()).unwrap(),
        "198.18.0.253"
    );
    drop(ctr_server);
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
    let root = common::RootSnapshot::take();
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
            "ipvl-l2",
            "--parent-netns",
            &node,
            "--addr",
            "198.18.0.70/24",
            "--host-shim",
            "198.18.0.71",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    // The remote's way back to the new address is the ipvlan-l2 port (the user's network
    // would know this; the lab's remote does not).
    let mut remote = Netlink::open_in(lab.remote_netns()).unwrap();
    let port = remote.link_index("ipvl-l2").unwrap();
    remote
        .add_route(&Route::dev("198.18.0.70".parse().unwrap(), 32, port))
        .unwrap();
    assert_eq!(
        exchange(&ctr_path, lab.remote_addr().into()).unwrap(),
        "198.18.0.70"
    );
    {
        let _ctr_server = PeerServer::start(&ctr_path);
        assert_eq!(
            exchange(lab.node_netns(), "198.18.0.70".parse().unwrap()).unwrap(),
            "198.18.0.71",
            "node -> attached ipvlan through its host shim"
        );
    }
    let out = Command::new(common::nslat_bin())
        .args(["detach", "--netns", &ctr])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(exchange(&ctr_path, lab.remote_addr().into()).is_err());
    drop(server);
    root.assert_unchanged();
}
