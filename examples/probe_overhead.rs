//! What the probes read on a real loopback TCP ping-pong, and what counting tracepoints costs.
//!
//! `cargo run --release --example probe_overhead [ROUND_TRIPS]` (root, for the perf counters).
//! Client and server threads are pinned to CPU 0 (the `--cpu same` placement); traffic stays on
//! 127.0.0.1. Alternates runs without and with the tracepoint counters open and prints the mean
//! round-trip time of each, and the per-transaction probe figures.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use nix::sched::{sched_setaffinity, CpuSet};
use nix::unistd::Pid;
use nslat::probe::{self, ProbeConfig, Snapshot};

fn pin(cpu: usize) {
    let mut set = CpuSet::new();
    set.set(cpu).expect("cpu in range");
    sched_setaffinity(Pid::from_raw(0), &set).expect("sched_setaffinity");
}

/// Returns the mean round-trip time in µs of `n` 1-byte round trips, both ends on CPU 0.
fn pingpong(n: u64, cfg: &ProbeConfig) -> (f64, probe::ProbeDelta) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        pin(0);
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b).unwrap();
        }
    });
    pin(0);
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut b = [7u8; 1];
    for _ in 0..1000 {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
    }
    let before = Snapshot::take(cfg).unwrap();
    let t = Instant::now();
    for _ in 0..n {
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
    }
    let us = t.elapsed().as_secs_f64() * 1e6 / n as f64;
    let after = Snapshot::take(cfg).unwrap();
    drop(c);
    server.join().unwrap();
    (us, Snapshot::delta(&before, &after))
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let plain = ProbeConfig::new(Some(vec![0]));
    let traced = ProbeConfig::with_tracepoints(Some(vec![0]), &probe::tracepoints::DEFAULT);
    if let Some(why) = &traced.tracepoints_unavailable {
        println!("{why}");
    }
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for _ in 0..5 {
        let (us, d) = pingpong(n, &plain);
        a.push(us);
        let p = d.per_tx(n);
        println!(
            "no tracepoints:   {us:.3} µs/rt  backlog/tx {:.3}  NET_RX/tx {:.3}  CPU µs/tx {:.2}",
            p.backlog_pkts, p.net_rx, p.cpu_us
        );
        let (us, d) = pingpong(n, &traced);
        b.push(us);
        let p = d.per_tx(n);
        println!(
            "with tracepoints: {us:.3} µs/rt  backlog/tx {:.3}  NET_RX/tx {:.3}  CPU µs/tx {:.2}  {:?}",
            p.backlog_pkts, p.net_rx, p.cpu_us, p.tracepoints
        );
    }
    let (ca, cb) = (
        nslat::stats::mean_ci95(&a).unwrap(),
        nslat::stats::mean_ci95(&b).unwrap(),
    );
    let v = nslat::stats::vs_baseline(&b, &a).unwrap();
    println!(
        "mean: {:.3} ± {:.3} µs without, {:.3} ± {:.3} µs with tracepoint counters: {:+.3} µs ({:+.1}%), p = {:.3}",
        ca.mean,
        ca.ci95.unwrap_or(f64::NAN),
        cb.mean,
        cb.ci95.unwrap_or(f64::NAN),
        v.delta,
        (v.ratio - 1.0) * 100.0,
        v.p_value.unwrap_or(f64::NAN)
    );
}
