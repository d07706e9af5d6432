//! The probes on the live kernel: loopback traffic moves the counters, and the softnet counters
//! read inside another network namespace are the same global data.

use crate::common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use nslat::probe::{self, ProbeConfig, Snapshot};

const ROUND_TRIPS: u64 = 3000;

/// 1-byte TCP ping-pong over 127.0.0.1 (loopback only), `n` round trips.
fn loopback_pingpong(n: u64) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        for _ in 0..n {
            s.read_exact(&mut b).unwrap();
            s.write_all(&b).unwrap();
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut b = [7u8; 1];
    for _ in 0..n {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
    }
    server.join().unwrap();
}

#[test]
fn loopback_traffic_moves_every_counter() {
    if !common::need_root("loopback_traffic_moves_every_counter") {
        return;
    }
    let root = common::RootSnapshot::take();
    let tracefs_mounts = || {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .filter(|l| l.contains(" - tracefs "))
            .count()
    };
    let mounted_before = tracefs_mounts();
    let cfg = ProbeConfig::with_tracepoints(None, &probe::tracepoints::DEFAULT);
    assert_eq!(
        tracefs_mounts(),
        mounted_before,
        "tracefs was mounted in a private mount namespace, not in ours"
    );
    assert!(
        cfg.tracepoints.is_some(),
        "tracepoints should be countable as root here: {:?}",
        cfg.tracepoints_unavailable
    );
    let before = Snapshot::take(&cfg).unwrap();
    loopback_pingpong(ROUND_TRIPS);
    let after = Snapshot::take(&cfg).unwrap();
    let d = Snapshot::delta(&before, &after);
    eprintln!("{d:#?}");
    // Each round trip puts at least two data segments through loopback's netif_rx -> backlog.
    // Other traffic on the machine only adds, so these are lower bounds.
    assert!(
        d.backlog_pkts >= 2 * ROUND_TRIPS,
        "backlog {}",
        d.backlog_pkts
    );
    assert!(d.net_rx > 0, "NET_RX softirqs");
    for name in ["net:netif_rx", "net:net_dev_xmit", "net:netif_receive_skb"] {
        assert!(
            d.tracepoints[name] >= 2 * ROUND_TRIPS,
            "{name}: {}",
            d.tracepoints[name]
        );
    }
    assert!(d.tracepoints["irq:softirq_entry"] > 0);
    let per = d.per_tx(ROUND_TRIPS);
    assert!(per.backlog_pkts >= 2.0);
    assert!(d.elapsed_s > 0.0);
    root.assert_unchanged();
}

#[test]
fn softnet_is_global_not_per_namespace() {
    if !common::need_root("softnet_is_global_not_per_namespace") {
        return;
    }
    let root = common::RootSnapshot::take();
    struct Guard(String);
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = nslat::netns::delete(&self.0);
        }
    }
    let g = Guard(common::unique("probe"));
    let path = nslat::netns::create(&g.0).unwrap();
    let before = probe::softnet::read().unwrap();
    let inside: Vec<probe::softnet::SoftnetCpu> = nslat::netns::run_in(
        Some(&path),
        || -> Result<_, Box<dyn std::error::Error + Send + Sync>> { Ok(probe::softnet::read()?) },
    )
    .unwrap();
    let after = probe::softnet::read().unwrap();
    assert_eq!(inside.len(), before.len());
    for ((b, i), a) in before.iter().zip(&inside).zip(&after) {
        // A fresh namespace has seen no packets; per-namespace data would read ~0 here.
        assert!(
            b.processed <= i.processed && i.processed <= a.processed,
            "{b:?} {i:?} {a:?}"
        );
    }
    root.assert_unchanged();
}

#[test]
fn unavailable_tracepoints_are_one_line_and_the_rest_works() {
    // As root: the id file does not exist; without root: tracefs cannot be mounted. Either way
    // the snapshot says why in one line and still reads the /proc counters.
    let cfg = ProbeConfig::with_tracepoints(None, &["net:no_such_tracepoint"]);
    assert!(cfg.tracepoints.is_none());
    let why = cfg.tracepoints_unavailable.clone().unwrap();
    assert!(
        why.starts_with("tracepoints not counted:") && !why.contains('\n'),
        "{why}"
    );
    eprintln!("{why}");
    let s = Snapshot::take(&cfg).unwrap();
    assert_eq!(s.notes, vec![why.clone()]);
    assert!(!s.softnet.is_empty() && !s.softirqs.is_empty() && !s.cpu.is_empty());
    let d = Snapshot::delta(&s, &Snapshot::take(&cfg).unwrap());
    assert!(d.tracepoints.is_empty());
    assert_eq!(d.notes, vec![why]);
}
