//! netkit modes (`netkit`, `netkit-bpf`): built, carrying TCP over IPv4 and IPv6, their backlog
//! fingerprints against routed veth (`ptp`), and their feature-check rows. Skipped with a
//! printed reason on kernels without netkit (Linux < 6.7, or built without it), unless
//! NSLAT_REQUIRE_NETKIT=1: the guest-kernel harness (tests/vm/guest-tests) sets it and runs this
//! file in Debian's 6.12 kernel. Only counters and function are asserted: a guest's timing is
//! emulation, never latency.

use crate::common;
use crate::lab_util;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use lab_util::{exchange, leftovers, LabGuard, PeerServer};
use nslat::bpf::netkit::{self as programs, NetkitRedirect};
use nslat::check::{self, CheckMatrix, ModeChecks};
use nslat::lab::{self, Lab, LabSpec, Mode};
use nslat::netlink::Netlink;
use nslat::netns;
use nslat::probe::{self, ProbeConfig, Snapshot};

const MODES: [Mode; 4] = [Mode::Host, Mode::Ptp, Mode::Netkit, Mode::NetkitBpf];

/// Round trips per fingerprint (1-byte request, 1-byte response, TCP_NODELAY).
const ROUND_TRIPS: u64 = 2000;

/// Builds the lab; `None` (after printing why) when the kernel has no netkit and it is not required.
fn netkit_lab(test: &str, name: &str) -> Option<Lab> {
    let spec = LabSpec {
        name: name.to_string(),
        modes: MODES.to_vec(),
        ipv6: true,
        host_shim: false,
    };
    let lab = Lab::up(&spec).expect("lab up");
    if let Some(Err(reason)) = lab.mode(Mode::Netkit) {
        let required = std::env::var("NSLAT_REQUIRE_NETKIT").is_ok_and(|v| v == "1");
        assert!(!required, "{test}: NSLAT_REQUIRE_NETKIT=1 but {reason}");
        assert!(reason.contains("netkit"), "{reason}");
        assert_eq!(
            lab.mode(Mode::NetkitBpf).unwrap().as_ref().unwrap_err(),
            reason
        );
        eprintln!("SKIPPED {test}: {reason} (run tests/vm/guest-tests lab_netkit)");
        let _ = lab::down(name);
        return None;
    }
    Some(lab)
}

/// Pins the calling thread to CPU 0 (client and server share it, as `compare` does, so every
/// packet of the exchange is counted on that CPU).
fn pin_cpu0() {
    let mut set = nix::sched::CpuSet::new();
    set.set(0).unwrap();
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).unwrap();
}

/// `n` 1-byte TCP round trips from a client in `from` to a server in `server_ns` at `to`,
/// between probe snapshots of CPU 0; returns the counters per round trip.
fn fingerprint(from: &Path, server_ns: &Path, to: IpAddr, n: u64) -> probe::PerTx {
    let listener = netns::run_in(
        Some(server_ns),
        move || -> Result<TcpListener, netns::NetnsError> {
            Ok(TcpListener::bind(SocketAddr::new(to, 0)).expect("bind in the remote"))
        },
    )
    .unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        pin_cpu0();
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        for _ in 0..n {
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
    });
    let cfg = ProbeConfig::with_tracepoints(Some(vec![0]), &probe::tracepoints::DEFAULT);
    let from = from.to_path_buf();
    let per = netns::run_in(
        Some(&from),
        move || -> Result<probe::PerTx, netns::NetnsError> {
            pin_cpu0();
            let mut c =
                TcpStream::connect_timeout(&SocketAddr::new(to, port), Duration::from_secs(5))
                    .unwrap();
            c.set_nodelay(true).unwrap();
            c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut b = [7u8; 1];
            // warm-up: the connection's first segments and ACKs stay out of the count
            for _ in 0..20 {
                c.write_all(&b).unwrap();
                c.read_exact(&mut b).unwrap();
            }
            let before = Snapshot::take(&cfg).unwrap();
            for _ in 20..n {
                c.write_all(&b).unwrap();
                c.read_exact(&mut b).unwrap();
            }
            let after = Snapshot::take(&cfg).unwrap();
            Ok(Snapshot::delta(&before, &after).per_tx(n - 20))
        },
    )
    .unwrap();
    server.join().unwrap();
    per
}

fn netif_rx(p: &probe::PerTx) -> Option<f64> {
    p.tracepoints.get("net:netif_rx").copied()
}

#[test]
fn netkit_modes_carry_tcp_with_their_backlog_fingerprints() {
    if !common::need_root("lab_netkit_fingerprints") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("nk");
    let guard = LabGuard(name.clone());
    let Some(lab) = netkit_lab("lab_netkit_fingerprints", &name) else {
        return;
    };
    let server = PeerServer::start(lab.remote_netns());
    for mode in [Mode::Ptp, Mode::Netkit, Mode::NetkitBpf] {
        let info = lab
            .mode(mode)
            .unwrap()
            .clone()
            .unwrap_or_else(|r| panic!("{mode}: {r}"));
        let seen = exchange(&info.netns, lab.remote_addr().into()).unwrap();
        assert_eq!(seen, info.addr.to_string(), "{mode}");
        let a6 = info.addr6.expect("netkit modes have IPv6");
        let seen6 = exchange(&info.netns, lab.remote_addr6().unwrap().into()).unwrap();
        assert_eq!(seen6, a6.to_string(), "{mode} over IPv6");
    }
    drop(server);
    // They really are netkit pairs in L3 mode (the container's eth0 is the peer).
    for mode in [Mode::Netkit, Mode::NetkitBpf] {
        let info = lab.mode(mode).unwrap().clone().unwrap();
        let ns = info
            .netns
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        let out = Command::new("ip")
            .args(["-d", "-n", &ns, "link", "show", "eth0"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("NOARP"),
            "{mode}: an L3 netkit has no ARP: {text}"
        );
        let kind = Command::new("ip")
            .args(["-n", &ns, "-j", "-d", "link", "show", "eth0"])
            .output()
            .unwrap();
        let kind = String::from_utf8_lossy(&kind.stdout);
        assert!(
            kind.contains("\"info_kind\":\"netkit\""),
            "{mode}: not a netkit device: {kind}"
        );
    }

    let remote = lab.remote_addr();
    let mut fp = Vec::new();
    for mode in [Mode::Ptp, Mode::Netkit, Mode::NetkitBpf] {
        let info = lab.mode(mode).unwrap().clone().unwrap();
        let p = fingerprint(&info.netns, lab.remote_netns(), remote.into(), ROUND_TRIPS);
        eprintln!(
            "{mode}: {:.2} backlog packets, {:.2} netif_rx, {:.2} netif_receive_skb per round trip (n = {})",
            p.backlog_pkts,
            netif_rx(&p).unwrap_or(f64::NAN),
            p.tracepoints.get("net:netif_receive_skb").copied().unwrap_or(f64::NAN),
            ROUND_TRIPS - 20
        );
        fp.push(p);
    }
    let (ptp, nk, nkb) = (&fp[0], &fp[1], &fp[2]);
    // Without a program, netkit forwards through __netif_rx, as veth: the same fingerprint.
    assert!(
        (nk.backlog_pkts - ptp.backlog_pkts).abs() <= 0.1 * ptp.backlog_pkts,
        "netkit without BPF should queue like veth: netkit {:.2} vs ptp {:.2} backlog packets per round trip",
        nk.backlog_pkts,
        ptp.backlog_pkts
    );
    // With the programs, the container's packets leave by bpf_redirect_neigh and the remote's
    // reach it by bpf_redirect_peer: one backlog hop fewer each way.
    assert!(
        nkb.backlog_pkts <= ptp.backlog_pkts - 0.8,
        "netkit-bpf should skip the backlog: netkit-bpf {:.2} vs ptp {:.2} backlog packets per round trip",
        nkb.backlog_pkts,
        ptp.backlog_pkts
    );
    if let (Some(p), Some(k), Some(b)) = (netif_rx(ptp), netif_rx(nk), netif_rx(nkb)) {
        assert!(
            (k - p).abs() <= 0.1 * p,
            "netif_rx: netkit {k:.2} vs ptp {p:.2}"
        );
        assert!(
            b <= 0.6 * p,
            "netif_rx: netkit-bpf {b:.2} should be about half of ptp's {p:.2}"
        );
    }

    // The programs are what makes the difference: detached, netkit-bpf queues like netkit.
    let nkb_info = lab.mode(Mode::NetkitBpf).unwrap().clone().unwrap();
    let redirect = {
        let mut node = Netlink::open_in(lab.node_netns()).unwrap();
        NetkitRedirect {
            nic_ifindex: node.link_index("eth0").unwrap(),
            primary_ifindex: node.link_index("nk-netkit-bpf").unwrap(),
            ctr4: nkb_info.addr,
            ctr6: nkb_info.addr6,
        }
    };
    assert_eq!(
        programs::attached(lab.node_netns(), redirect).unwrap(),
        2,
        "netkit-bpf: one program on the peer, one on the NIC's TCX ingress"
    );
    assert_eq!(programs::detach(lab.node_netns(), redirect).unwrap(), 2);
    assert_eq!(programs::attached(lab.node_netns(), redirect).unwrap(), 0);
    let detached = fingerprint(
        &nkb_info.netns,
        lab.remote_netns(),
        remote.into(),
        ROUND_TRIPS,
    );
    eprintln!(
        "netkit-bpf, programs detached: {:.2} backlog packets, {:.2} netif_rx per round trip (n = {})",
        detached.backlog_pkts,
        netif_rx(&detached).unwrap_or(f64::NAN),
        ROUND_TRIPS - 20
    );
    assert!(
        (detached.backlog_pkts - nk.backlog_pkts).abs() <= 0.1 * nk.backlog_pkts,
        "without its programs netkit-bpf should queue like netkit: {:.2} vs {:.2}",
        detached.backlog_pkts,
        nk.backlog_pkts
    );

    let report = lab::down(&name).unwrap();
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(leftovers(&name), Vec::<String>::new());
    drop(guard);
    root.assert_unchanged();
}

fn row(m: &CheckMatrix, mode: Mode) -> &ModeChecks {
    m.modes.iter().find(|r| r.mode == mode.name()).expect("row")
}

#[test]
fn netkit_check_matrix() {
    if !common::need_root("lab_netkit_checks") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("nkc");
    let guard = LabGuard(name.clone());
    let Some(lab) = netkit_lab("lab_netkit_checks", &name) else {
        return;
    };
    let modes = [Mode::Ptp, Mode::Netkit, Mode::NetkitBpf];
    let m = check::run(&lab, &modes).expect("checks run");
    for mode in modes {
        let r = row(&m, mode);
        eprintln!("{mode}: {r:?}");
        assert!(r.available, "{mode}: {r:?}");
        for (check, got) in [
            ("container_to_remote", r.container_to_remote),
            ("remote_to_container", r.remote_to_container),
            ("node_to_container", r.node_to_container),
            ("container_to_node", r.container_to_node),
        ] {
            assert_eq!(got, Some(true), "{mode}: {check}: {r:?}");
        }
        assert_eq!(
            r.macs,
            Some(1),
            "{mode}: routed, only the node's MAC: {r:?}"
        );
    }
    // netkit without a program is routed veth: the node's hooks see everything.
    let nk = row(&m, Mode::Netkit);
    assert_eq!(nk.service, Some(true), "{nk:?}");
    assert_eq!(nk.policy, Some(true), "{nk:?}");
    assert_eq!(nk.policy_service, Some(true), "{nk:?}");
    // netkit-bpf: the peer's program sends the container's packets straight out of the NIC,
    // past the node's netfilter, so the node's Service DNAT and forward policy never see them
    // (Cilium does both in BPF instead); each failure says so.
    let b = row(&m, Mode::NetkitBpf);
    assert_eq!(b.service, Some(false), "{b:?}");
    assert!(b.why["service"].contains("netfilter"), "{b:?}");
    assert_eq!(b.policy, Some(false), "{b:?}");
    assert!(b.why["policy"].contains("netfilter"), "{b:?}");
    drop(guard);
    root.assert_unchanged();
}
