//! The check matrix of the BPF and overlay modes: veth-bpf keeps node <-> container and remote
//! reach but loses the node's Service DNAT and netfilter policy (its redirects skip the node's
//! hooks), each failure explained; vxlan keeps everything (it is routed through the node).

use crate::common;
use crate::lab_util;

use lab_util::LabGuard;
use nslat::lab::{Lab, LabSpec, Mode};

#[test]
fn veth_bpf_loses_service_and_policy_vxlan_keeps_all() {
    if !common::need_root("check_datapaths") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("ckdp");
    let _guard = LabGuard(name.clone());
    let (bpf, vxlan): (Mode, Mode) = ("veth-bpf".parse().unwrap(), "vxlan".parse().unwrap());
    let lab = Lab::up(&LabSpec {
        name: name.clone(),
        modes: vec![bpf, vxlan],
        ipv6: false,
        host_shim: false,
    })
    .expect("lab up");
    if let Some(Err(why)) = lab.mode(bpf) {
        common::prerequisite("check_datapaths", false, why);
        return;
    }
    let m = nslat::check::run(&lab, &[bpf, vxlan]).expect("checks");
    let (b, v) = (&m.modes[0], &m.modes[1]);
    assert_eq!(b.service, Some(false), "{b:?}");
    assert!(b.why["service"].contains("bpf_redirect_neigh"), "{b:?}");
    assert_eq!(b.policy, Some(false), "{b:?}");
    assert!(b.why["policy"].contains("forward hook"), "{b:?}");
    for (what, got) in [
        ("node_to_container", b.node_to_container),
        ("container_to_node", b.container_to_node),
        ("container_to_remote", b.container_to_remote),
        ("remote_to_container", b.remote_to_container),
    ] {
        assert_eq!(got, Some(true), "veth-bpf {what}: {b:?}");
    }
    assert_eq!(b.macs, Some(1));
    for (what, got) in [
        ("service", v.service),
        ("node_to_container", v.node_to_container),
        ("container_to_node", v.container_to_node),
        ("container_to_remote", v.container_to_remote),
        ("remote_to_container", v.remote_to_container),
        ("policy", v.policy),
        ("policy_service", v.policy_service),
    ] {
        assert_eq!(got, Some(true), "vxlan {what}: {v:?}");
    }
    drop(lab);
    nslat::lab::down(&name).expect("down");
    root.assert_unchanged();
}
