//! Does measuring in short interleaved blocks change a path's latency? Per-mode means of the
//! interleaved schedule against steady runs of the same path, in one process, alternating at the
//! second scale so that the machine's drift (several percent from one minute to the next on a
//! shared VM) hits both alike.
//!
//! `cargo run --release --example block_size -- LAB [PAIRS] [SHORT_MS] [STEADY_MS]` (root; LAB a
//! lab built with `nslat lab up --name LAB --modes host,bridge,ptp,macvlan`).
//!
//! One client thread pinned to CPU 0 holds one connection per mode (as `nslat compare` does; the
//! server pins each session's data thread to CPU 0 too). Each pair of phases is, in shuffled
//! order per pair:
//! - steady: every mode in turn, one block of STEADY_MS (default 250 ms), like a steady run;
//! - interleaved: rounds of SHORT_MS blocks (default 1 ms) over the modes, shuffled each round,
//!   until each mode has had STEADY_MS.
//!
//! Per mode it prints the interleaved/steady ratio of the mean time per transaction over the
//! pairs, with a 95% t-interval: over every transaction of the interleaved blocks, and without
//! each block's first (what `nslat compare` times: its blocks start with an untimed lead-in);
//! and the mean time of the first, the 2nd-5th and the remaining transactions of the interleaved
//! blocks. A first pair is run untimed as warm-up.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use nslat::bench::server::{Server, ServerConfig};
use nslat::bench::{RunSpec, TestKind};
use nslat::lab::Lab;
use nslat::measure::schedule::{block_transactions, XorShift};
use nslat::measure::sockets::{PathSpec, SocketPaths};
use nslat::measure::{BlockSize, BlockSpec, PathSet};

const MODES: [&str; 4] = ["host", "bridge", "ptp", "macvlan"];

fn arg<T: std::str::FromStr>(i: usize, default: T) -> T {
    std::env::args()
        .nth(i)
        .map(|a| a.parse().unwrap_or_else(|_| panic!("argument {i}: {a}")))
        .unwrap_or(default)
}

/// One untimed block of `n` transactions on `path`: its time (ns) and transactions.
fn run(set: &mut SocketPaths, path: usize, n: u64, spec: BlockSpec) -> (u64, u64) {
    let spec = BlockSpec {
        size: BlockSize::Transactions(n),
        ..spec
    };
    let b = set.block(path, spec).expect("block");
    (b.elapsed_ns, b.transactions)
}

fn main() {
    let lab_name: String = std::env::args()
        .nth(1)
        .expect("usage: block_size LAB [PAIRS] [SHORT_MS] [STEADY_MS]");
    let pairs: usize = arg(2, 30);
    let short = Duration::from_secs_f64(arg::<f64>(3, 1.0) / 1e3);
    let steady = Duration::from_secs_f64(arg::<f64>(4, 250.0) / 1e3);
    let lab = Lab::open(&lab_name).expect("opening the lab");
    let remote = lab.remote_netns().to_path_buf();
    let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    let server = nslat::netns::run_in(Some(&remote), move || {
        Server::bind(ServerConfig::new(listen))
    })
    .expect("binding the server in the remote");
    let port = server.local_addr().port();
    let handle = server.spawn();
    let paths: Vec<PathSpec> = MODES
        .iter()
        .map(|m| {
            let info = lab
                .available(m.parse().unwrap())
                .unwrap_or_else(|| panic!("{m}: not built in lab {lab_name}"));
            PathSpec {
                label: m.to_string(),
                netns: Some(info.netns.clone()),
                server: SocketAddr::new(IpAddr::V4(info.server), port),
                token: None,
            }
        })
        .collect();
    let mut template = RunSpec::new(([127, 0, 0, 1], 1).into(), TestKind::TcpRr, steady);
    template.client_cpu = Some(0);
    template.server_cpu = Some(0);
    let session = steady * 8 * (pairs as u32 + 2) + Duration::from_secs(30);
    let out = std::thread::spawn(move || {
        nslat::bench::timing::pin_to(0).expect("pinning to CPU 0");
        let mut set = SocketPaths::open(&paths, &template, session).expect("opening the paths");
        let spec = BlockSpec {
            size: BlockSize::Transactions(1),
            timed: false,
            stall_ns: u64::MAX,
            lead_in: 0,
        };
        let k = paths.len();
        // Per-mode time per transaction from a short first pass, for B.
        let mut mean_ns = vec![0.0; k];
        for (i, m) in mean_ns.iter_mut().enumerate() {
            let (ns, n) = run(&mut set, i, 5_000, spec);
            *m = ns as f64 / n as f64;
        }
        let b_short: Vec<u64> = mean_ns
            .iter()
            .map(|&m| block_transactions(short, m))
            .collect();
        let b_steady: Vec<u64> = mean_ns
            .iter()
            .map(|&m| block_transactions(steady, m))
            .collect();
        let rounds = (steady.as_nanos() / short.as_nanos()).max(1) as usize;
        let mut rng = XorShift::new(7);
        let mut order: Vec<usize> = (0..k).collect();
        // [mode] -> per pair (interleaved ns/tx, steady ns/tx)
        let mut results = vec![Vec::new(); k];
        // [piece][mode] -> (ns, transactions) of the interleaved blocks' pieces, timed pairs only.
        let mut prefix = vec![vec![(0u64, 0u64); k]; 3];
        // Each mode's first-transaction totals up to the previous pair.
        let mut first_seen = vec![(0u64, 0u64); k];
        for pair in 0..=pairs {
            let mut phase = [
                (vec![0u64; k], vec![0u64; k]),
                (vec![0u64; k], vec![0u64; k]),
            ];
            let steady_first = rng.next_u64() % 2 == 0;
            for which in [steady_first, !steady_first] {
                let (ns, tx) = &mut phase[which as usize];
                if which {
                    rng.shuffle(&mut order);
                    for &i in &order {
                        let (e, n) = run(&mut set, i, b_steady[i], spec);
                        ns[i] += e;
                        tx[i] += n;
                    }
                } else {
                    for _ in 0..rounds {
                        rng.shuffle(&mut order);
                        for &i in &order {
                            // The block as three pieces: its first transaction, the next four,
                            // the rest (each piece timed from its own first clock read).
                            let mut left = b_short[i];
                            for (piece, want) in [1u64, 4, u64::MAX].into_iter().enumerate() {
                                let n = want.min(left);
                                if n == 0 {
                                    break;
                                }
                                let (e, n) = run(&mut set, i, n, spec);
                                ns[i] += e;
                                tx[i] += n;
                                prefix[piece][i].0 += e;
                                prefix[piece][i].1 += n;
                                left -= n;
                            }
                        }
                    }
                }
            }
            if pair == 0 {
                prefix = vec![vec![(0u64, 0u64); k]; 3];
                continue; // warm-up
            }
            for (i, r) in results.iter_mut().enumerate() {
                let il = phase[0].0[i] as f64 / phase[0].1[i] as f64;
                let st = phase[1].0[i] as f64 / phase[1].1[i] as f64;
                let (ns1, tx1) = (
                    prefix[0][i].0 - first_seen[i].0,
                    prefix[0][i].1 - first_seen[i].1,
                );
                let lead = (phase[0].0[i] - ns1) as f64 / (phase[0].1[i] - tx1) as f64;
                r.push((il, st, lead));
            }
            for (i, f) in first_seen.iter_mut().enumerate() {
                *f = prefix[0][i];
            }
        }
        drop(set.finish());
        (results, b_short, b_steady, prefix)
    })
    .join()
    .expect("measuring thread");
    handle.stop();
    let (results, b_short, b_steady, prefix) = out;
    println!(
        "block_size: {pairs} pairs, interleaved blocks of {:.1} ms vs steady blocks of {:.0} ms, CPU 0",
        short.as_secs_f64() * 1e3,
        steady.as_secs_f64() * 1e3
    );
    let ci = |xs: &[f64]| {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        let t = statrs::distribution::StudentsT::new(0.0, 1.0, n - 1.0).unwrap();
        let half = statrs::distribution::ContinuousCDF::inverse_cdf(&t, 0.975) * (var / n).sqrt();
        format!(
            "{:+.2}% [{:+.2}, {:+.2}]",
            (mean - 1.0) * 100.0,
            (mean - half - 1.0) * 100.0,
            (mean + half - 1.0) * 100.0
        )
    };
    for (i, r) in results.iter().enumerate() {
        let n = r.len() as f64;
        let all: Vec<f64> = r.iter().map(|x| x.0 / x.1).collect();
        let lead: Vec<f64> = r.iter().map(|x| x.2 / x.1).collect();
        let st = r.iter().map(|x| x.1).sum::<f64>() / n / 1e3;
        let per = |piece: usize| prefix[piece][i].0 as f64 / prefix[piece][i].1.max(1) as f64 / 1e3;
        println!(
            "  {:8} steady {st:.3} µs (B={}); interleaved (B={}): every transaction {}, without each block's first (nslat's lead-in) {}",
            MODES[i],
            b_steady[i],
            b_short[i],
            ci(&all),
            ci(&lead)
        );
        println!(
            "           within a block: 1st transaction {:.2} µs, 2nd-5th {:.2} µs, the rest {:.3} µs",
            per(0),
            per(1),
            per(2),
        );
    }
}
