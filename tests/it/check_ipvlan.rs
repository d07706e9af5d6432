//! The feature-check matrix for the ipvlan modes. Skipped with a printed reason on kernels
//! without ipvlan, unless NSLAT_REQUIRE_IPVLAN=1 (the guest-kernel harness in tests/vm sets it).

use crate::common;

use nslat::check::{self, CheckMatrix, ModeChecks};
use nslat::lab::{self, Lab, LabSpec, Mode};

struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

const MODES: [Mode; 5] = [
    Mode::Host,
    Mode::IpvlanL2,
    Mode::IpvlanL3,
    Mode::IpvlanL3s,
    Mode::IpvlanVeth,
];

/// Builds the lab, or `None` (after printing why) when the kernel has no ipvlan and it is not required.
fn ipvlan_lab(test: &str, host_shim: bool) -> Option<(Lab, LabGuard)> {
    let name = common::unique("cipv");
    let guard = LabGuard(name.clone());
    let mut spec = LabSpec::new(&name);
    spec.modes = MODES.to_vec();
    spec.host_shim = host_shim;
    let lab = Lab::up(&spec).expect("lab up");
    if let Some(Err(reason)) = lab.mode(Mode::IpvlanL2) {
        let required = std::env::var("NSLAT_REQUIRE_IPVLAN").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: NSLAT_REQUIRE_IPVLAN=1 but {reason}");
        eprintln!("SKIPPED {test}: {reason} (run tests/vm/guest-tests check_ipvlan)");
        return None;
    }
    Some((lab, guard))
}

fn row(m: &CheckMatrix, mode: Mode) -> &ModeChecks {
    m.modes.iter().find(|r| r.mode == mode.name()).expect("row")
}

#[test]
fn ipvlan_loses_services_and_node_access() {
    if !common::need_root("ipvlan_loses_services_and_node_access") {
        return;
    }
    let root = common::RootSnapshot::take();
    let Some((lab, guard)) = ipvlan_lab("ipvlan_loses_services_and_node_access", false) else {
        return;
    };
    let m = check::run(&lab, &MODES).expect("checks run");
    assert_eq!(
        row(&m, Mode::Host).service,
        Some(true),
        "{:?}",
        row(&m, Mode::Host)
    );
    for mode in [Mode::IpvlanL2, Mode::IpvlanL3, Mode::IpvlanL3s] {
        let r = row(&m, mode);
        assert!(r.available, "{mode}: {r:?}");
        assert_eq!(r.container_to_remote, Some(true), "{mode}: {r:?}");
        assert_eq!(
            r.node_to_container,
            Some(false),
            "{mode}: no node access without a shim: {r:?}"
        );
        assert_eq!(r.macs, Some(1), "{mode} shares the parent's MAC: {r:?}");
    }
    // L2 and L3 bypass the node's netfilter; L3S runs the node's hooks (l3mdev), so the
    // Service DNAT applies to it: the reason L3S exists.
    for mode in [Mode::IpvlanL2, Mode::IpvlanL3] {
        let r = row(&m, mode);
        assert_eq!(
            r.service,
            Some(false),
            "{mode} bypasses the node's Service DNAT: {r:?}"
        );
        assert!(r.why["service"].contains("netfilter"), "{mode}: {r:?}");
    }
    let l3s = row(&m, Mode::IpvlanL3s);
    assert_eq!(
        l3s.service,
        Some(true),
        "ipvlan-l3s passes the node's hooks: {l3s:?}"
    );
    let hy = row(&m, Mode::IpvlanVeth);
    assert_eq!(
        hy.service,
        Some(true),
        "the hybrid's veth carries Service traffic: {hy:?}"
    );
    assert_eq!(hy.container_to_remote, Some(true), "{hy:?}");
    drop(guard);
    root.assert_unchanged();
}

#[test]
fn host_shim_gives_the_node_its_ipvlan_containers_back() {
    if !common::need_root("host_shim_gives_the_node_its_ipvlan_containers_back") {
        return;
    }
    let Some((lab, _guard)) =
        ipvlan_lab("host_shim_gives_the_node_its_ipvlan_containers_back", true)
    else {
        return;
    };
    let m = check::run(&lab, &[Mode::IpvlanL2]).expect("checks run");
    let r = row(&m, Mode::IpvlanL2);
    assert_eq!(r.node_to_container, Some(true), "with --host-shim: {r:?}");
    assert_eq!(r.container_to_node, Some(true), "with --host-shim: {r:?}");
    assert_eq!(
        r.service,
        Some(false),
        "a shim does not bring Services back: {r:?}"
    );
}
