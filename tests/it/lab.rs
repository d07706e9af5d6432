//! Integration tests for `nslat lab` (root): real namespaces, links, routes and nftables.

use crate::common;
use crate::lab_util;

use std::net::IpAddr;
use std::process::Command;

use lab_util::{exchange, leftovers, LabGuard, NetnsGuard, PeerServer};
use nslat::lab::{self, Lab, LabSpec, Mode, NatLevel};
use nslat::netlink::{sysctl, Netlink};
use nslat::netns;

fn spec(name: &str, modes: &[Mode], ipv6: bool) -> LabSpec {
    LabSpec {
        name: name.to_string(),
        modes: modes.to_vec(),
        ipv6,
        host_shim: false,
    }
}

#[test]
fn every_available_mode_talks_tcp_to_the_remote_and_down_leaves_nothing() {
    if !common::need_root("lab_every_mode") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("all");
    let guard = LabGuard(name.clone());
    let lab = Lab::up(&spec(&name, Mode::ALL, true)).expect("lab up");
    let server = PeerServer::start(lab.remote_netns());
    let mut built = 0;
    for (mode, status) in lab.modes() {
        match status {
            Ok(info) => {
                built += 1;
                let seen = exchange(&info.netns, lab.remote_addr().into()).unwrap();
                // Through the bridge the remote sees the node (MASQUERADE); elsewhere the container.
                let expect: IpAddr = if mode == Mode::Bridge {
                    lab.node_addr().into()
                } else {
                    info.addr.into()
                };
                assert_eq!(seen, expect.to_string(), "{mode}");
                // Modes that carry IPv4 only (ipvlan-l3/l3s, the vxlan overlay) have no addr6.
                if let Some(addr6) = info.addr6 {
                    let seen6 = exchange(&info.netns, lab.remote_addr6().unwrap().into()).unwrap();
                    // The bridge's IPv6 is NAT66-masqueraded too (table ip6 nslat).
                    let expect6 = if mode == Mode::Bridge {
                        nslat::lab::plan::v6(lab.node_addr()).to_string()
                    } else {
                        addr6.to_string()
                    };
                    assert_eq!(seen6, expect6, "{mode} over IPv6");
                }
            }
            Err(reason) if mode.needs_ipvlan() => {
                assert!(reason.contains("CONFIG_IPVLAN"), "{reason}");
            }
            // netkit (Linux 6.7+) is tested where the kernel has it: tests/lab_netkit.rs.
            Err(reason) if mode.name().starts_with("netkit") => {
                assert!(reason.contains("CONFIG_NETKIT"), "{reason}");
            }
            Err(reason) => panic!("{mode} unavailable: {reason}"),
        }
    }
    assert!(built >= 5, "only {built} modes built");
    drop(server);
    let report = lab::down(&name).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.removed.len() >= 5);
    assert_eq!(leftovers(&name), Vec::<String>::new());
    // Idempotent.
    let again = lab::down(&name).unwrap();
    assert!(again.removed.is_empty() && again.errors.is_empty());
    drop(guard);
    root.assert_unchanged();
}

fn lab_node(name: &str) -> std::path::PathBuf {
    nslat::netns::path_of(&format!("nslat-{name}-node"))
}

#[test]
fn nat_levels_change_what_the_remote_sees() {
    if !common::need_root("lab_nat_levels") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("nat");
    let _guard = LabGuard(name.clone());
    let mut lab = Lab::up(&spec(&name, &[Mode::Bridge], false)).expect("lab up");
    let server = PeerServer::start(lab.remote_netns());
    let ctr = lab.mode(Mode::Bridge).unwrap().clone().unwrap();
    let remote: IpAddr = lab.remote_addr().into();
    assert_eq!(lab.nat(), NatLevel::Masquerade);
    assert_eq!(exchange(&ctr.netns, remote).unwrap(), "198.18.0.1");
    // Whether the node tracks connections: its conntrack count grows with a new connection.
    let tracked = || {
        sysctl::read_in(
            lab_node(&name).as_path(),
            "net.netfilter.nf_conntrack_count",
        )
        .unwrap()
        .trim()
        .parse::<u64>()
        .unwrap()
    };
    for (level, seen, has_table, tracks) in [
        (NatLevel::None, "198.18.1.2", false, false),
        (NatLevel::ConntrackOnly, "198.18.1.2", true, true),
        (NatLevel::Masquerade, "198.18.0.1", true, true),
    ] {
        lab.set_nat(level).unwrap();
        let before = tracked();
        assert_eq!(exchange(&ctr.netns, remote).unwrap(), seen, "{level:?}");
        let grew = tracked() > before;
        assert_eq!(
            grew,
            tracks,
            "{level:?}: conntrack count {before} -> {}",
            tracked()
        );
        let rules = lab.firewall().ruleset_json().unwrap();
        assert_eq!(rules.contains("\"nslat\""), has_table, "{level:?}: {rules}");
    }
    // The state file follows.
    assert_eq!(Lab::open(&name).unwrap().nat(), NatLevel::Masquerade);
    drop(server);
    lab::down(&name).unwrap();
    assert_eq!(leftovers(&name), Vec::<String>::new());
    root.assert_unchanged();
}

#[test]
fn sysctls_are_written_in_the_lab_namespace_only() {
    if !common::need_root("lab_sysctl") {
        return;
    }
    let root = common::RootSnapshot::take();
    let root_forward = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let name = common::unique("sys");
    let _guard = LabGuard(name.clone());
    let lab = Lab::up(&spec(&name, &[Mode::Host], false)).unwrap();
    assert_eq!(
        sysctl::read_in(lab.node_netns(), "net.ipv4.ip_forward").unwrap(),
        "1"
    );
    assert_eq!(
        sysctl::read_in(lab.remote_netns(), "net.ipv4.ip_forward").unwrap(),
        "0"
    );
    // The root namespace's value, read by this (root-namespace) thread, did not change.
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        root_forward
    );
    // And `ip netns exec` (a fresh process) agrees with what our thread wrote.
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("nslat-{name}-node"),
            "cat",
            "/proc/sys/net/ipv4/ip_forward",
        ])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "1");
    root.assert_unchanged();
}

#[test]
fn lab_open_and_name_collisions() {
    if !common::need_root("lab_open") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("open");
    let _guard = LabGuard(name.clone());
    let lab = Lab::up(&spec(&name, &[Mode::Host, Mode::Ptp], false)).unwrap();
    let opened = Lab::open(&name).unwrap();
    assert_eq!(opened.mode(Mode::Ptp), lab.mode(Mode::Ptp));
    assert!(opened.mode(Mode::Macvlan).is_none());
    assert_eq!(opened.remote_netns(), lab.remote_netns());
    let err = Lab::up(&spec(&name, &[Mode::Host], false)).unwrap_err();
    assert!(matches!(err, lab::LabError::Exists(_)), "{err}");
    // The failed second `up` changed nothing.
    assert!(Lab::open(&name).is_ok());
    assert!(exchange_ok(&lab));
    let out = Command::new(common::nslat_bin())
        .args(["lab", "status", "--name", &name, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["remote"]["addr"], "198.18.0.2");
    assert_eq!(j["modes"][1]["mode"], "ptp");
    assert_eq!(j["modes"][1]["available"], true);
    assert_eq!(j["modes"][1]["addr"], "198.18.2.2");
    assert!(matches!(
        Lab::open("nslat-no-such-lab"),
        Err(lab::LabError::NotFound(_))
    ));
    root.assert_unchanged();
}

fn exchange_ok(lab: &Lab) -> bool {
    let _s = PeerServer::start(lab.remote_netns());
    let ptp = lab.mode(Mode::Ptp).unwrap().clone().unwrap();
    exchange(&ptp.netns, lab.remote_addr().into()).is_ok()
}

#[test]
fn down_sweeps_namespaces_without_a_state_file() {
    if !common::need_root("lab_sweep") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("sweep");
    let _guard = LabGuard(name.clone());
    Lab::up(&spec(&name, &[Mode::Host, Mode::Bridge], false)).unwrap();
    std::fs::remove_file(lab::state::state_path(&name)).unwrap();
    // A namespace of another lab whose name starts like ours must survive.
    let other = format!("nslat-{name}-x-node");
    let _o = NetnsGuard(other.clone());
    netns::create(&other).unwrap();
    let report = lab::down(&name).unwrap();
    assert_eq!(report.removed.len(), 3, "{report:?}");
    assert!(
        leftovers(&name).iter().all(|l| l.contains(&other)),
        "{:?}",
        leftovers(&name)
    );
    assert!(netns::path_of(&other).exists());
    root.assert_unchanged();
}

#[test]
fn attach_and_detach_a_container_namespace() {
    if !common::need_root("lab_attach") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("att");
    let _guard = LabGuard(name.clone());
    let lab = Lab::up(&spec(&name, &[Mode::Host, Mode::Bridge], false)).unwrap();
    let ctr = common::unique("ctr");
    let _c = NetnsGuard(ctr.clone());
    let ctr_path = netns::create(&ctr).unwrap();
    let server = PeerServer::start(lab.remote_netns());
    let node = lab.node_netns().display().to_string();
    let bin = common::nslat_bin();
    let run = |args: &[&str]| {
        let o = Command::new(bin).args(args).output().unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr),
        )
    };
    // macvlan on the node's eth0, then the bridge docker0 with a gateway: both reach the remote.
    let (code, out) = run(&[
        "attach",
        "--netns",
        &ctr,
        "--mode",
        "macvlan",
        "--parent",
        "eth0",
        "--parent-netns",
        &node,
        "--addr",
        "198.18.0.60/24",
        "--host-shim",
        "198.18.0.61",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        exchange(&ctr_path, lab.remote_addr().into()).unwrap(),
        "198.18.0.60"
    );
    // The host shim: the node reaches its macvlan container (from the shim's address).
    {
        let _ctr_server = PeerServer::start(&ctr_path);
        assert_eq!(
            exchange(lab.node_netns(), "198.18.0.60".parse().unwrap()).unwrap(),
            "198.18.0.61"
        );
    }
    let node_links = Netlink::open_in(lab.node_netns())
        .unwrap()
        .link_names()
        .unwrap();
    let (code, out) = run(&["detach", "--netns", &ctr]);
    assert_eq!(code, Some(0), "{out}");
    // detach removed the shim from the node too.
    assert_eq!(
        Netlink::open_in(lab.node_netns())
            .unwrap()
            .link_names()
            .unwrap()
            .len()
            + 1,
        node_links.len()
    );
    let (code, out) = run(&[
        "attach",
        "--netns",
        &ctr_path.display().to_string(),
        "--mode",
        "bridge",
        "--parent",
        "docker0",
        "--parent-netns",
        &node,
        "--addr",
        "198.18.1.60/24",
        "--gateway",
        "198.18.1.1",
        "--ifname",
        "eth0",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        exchange(&ctr_path, lab.remote_addr().into()).unwrap(),
        "198.18.0.1"
    );
    let mut nl = Netlink::open_in(&ctr_path).unwrap();
    let mut node_nl = Netlink::open_in(lab.node_netns()).unwrap();
    let node_links_attached = node_nl.link_names().unwrap();
    assert!(nl.link_exists("eth0").unwrap());
    let (code, out) = run(&["detach", "--netns", &ctr]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(nl.link_names().unwrap(), vec!["lo".to_string()]);
    // The bridge-side veth went too.
    assert_eq!(
        node_nl.link_names().unwrap().len() + 1,
        node_links_attached.len()
    );
    let (code, out) = run(&["detach", "--netns", &ctr]);
    assert_eq!(code, Some(2), "{out}");
    assert!(out.contains("nothing attached"), "{out}");
    drop(server);
    drop(_guard);
    drop(_c);
    root.assert_unchanged();
}

#[test]
fn bad_input_is_one_line_exit_2_and_changes_nothing() {
    if !common::need_root("lab_bad_input") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("bad");
    let _guard = LabGuard(name.clone());
    Lab::up(&spec(&name, &[Mode::Host], false)).unwrap();
    let ctr = common::unique("bctr");
    let _c = NetnsGuard(ctr.clone());
    netns::create(&ctr).unwrap();
    let node = format!("nslat-{name}-node");
    let file = tempfile::NamedTempFile::new().unwrap();
    let file = file.path().display().to_string();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["lab", "up", "--name", "bad name"], "invalid lab name"),
        (vec!["lab", "up", "--name", &name], "already exists"),
        (
            vec!["lab", "up", "--name", "x", "--modes", "host,nope"],
            "unknown mode",
        ),
        (vec!["lab", "status", "--name", "nslat-none"], "not found"),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9",
            ],
            "bad address",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.300/24",
            ],
            "bad address",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth9",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
            ],
            "parent interface 'eth9' not found",
        ),
        (
            vec![
                "attach",
                "--netns",
                &file,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
            ],
            "not a network namespace",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "vxlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
            ],
            "unknown attach mode",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
                "--gateway",
                "2001:2::1",
            ],
            "bad gateway",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
                "--ifname",
                "lo",
            ],
            "already exists",
        ),
        (
            vec![
                "attach",
                "--pid",
                "4000000",
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--addr",
                "198.18.0.9/24",
            ],
            "not found",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "bridge",
                "--parent",
                "docker0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.1.9/24",
                "--host-shim",
                "198.18.1.10",
            ],
            "--host-shim applies",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
                "--host-shim",
                "nope",
            ],
            "bad --host-shim",
        ),
        (
            vec![
                "attach",
                "--netns",
                &ctr,
                "--mode",
                "macvlan",
                "--parent",
                "eth0",
                "--parent-netns",
                &node,
                "--addr",
                "198.18.0.9/24",
                "--host-shim",
                "2001:2::9",
            ],
            "bad --host-shim",
        ),
    ];
    let ours = || {
        let mut v = netns::list_with_prefix(&format!("nslat-{name}-"));
        v.extend(netns::list_with_prefix("nslat-x-"));
        v.extend(netns::list_with_prefix(&ctr));
        v
    };
    let before = ours();
    let ctr_links = Netlink::open_in(&netns::path_of(&ctr))
        .unwrap()
        .link_names()
        .unwrap();
    for (args, want) in cases {
        let o = Command::new(common::nslat_bin())
            .args(&args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
    assert_eq!(ours(), before);
    assert_eq!(
        Netlink::open_in(&netns::path_of(&ctr))
            .unwrap()
            .link_names()
            .unwrap(),
        ctr_links
    );
    assert!(
        !std::path::Path::new(nslat::attach::ATTACH_DIR).exists()
            || std::fs::read_dir(nslat::attach::ATTACH_DIR)
                .unwrap()
                .flatten()
                .all(|e| !e.file_name().to_string_lossy().contains(&ctr))
    );
    root.assert_unchanged();
}
