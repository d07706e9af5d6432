//! The open-loop generator's own limit: open-loop runs at rising rates against an
//! `nslat serve` (on the loopback, where the path costs least), one line per rate with the
//! offered and achieved rates, the percentiles from intended send times, the client thread's
//! busy share and its worst lag behind the schedule. Where achieved falls below offered, or
//! the client is busy all the time, the generator (not a path) is the limit.
//!
//! `cargo run --release --example openloop_limit -- ADDR:PORT [RATES] [SECS] [CONNECTIONS] [SERVER_CPU]`
//! (RATES comma-separated, default 5000,10000,20000,40000,80000,160000; SECS per rate,
//! default 2; client pinned to CPU 0, the server's data threads asked onto SERVER_CPU, default 0:
//! one CPU, as `nslat sweep rate` pins them).
//! benches/openloop_limit.sh starts the server and runs this.

use std::time::Duration;

use nslat::bench::openloop::{run, OpenLoopSpec};
use nslat::bench::{RunSpec, TestKind};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let addr = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: openloop_limit ADDR:PORT [RATES] [SECS] [CONNECTIONS] [SERVER_CPU]");
    let rates: Vec<f64> = args
        .get(2)
        .map(String::as_str)
        .unwrap_or("5000,10000,20000,40000,80000,160000")
        .split(',')
        .map(|r| r.parse().expect("a rate"))
        .collect();
    let secs: f64 = args.get(3).map_or(2.0, |s| s.parse().expect("seconds"));
    let conns: usize = args.get(4).map_or(1, |s| s.parse().expect("connections"));
    let server_cpu: usize = args.get(5).map_or(0, |s| s.parse().expect("server CPU"));
    println!("offered_rps\tachieved_rps\tratio\tp50_us\tp99_us\tp99_9_us\tresponses\ttimeouts\tclient_busy\tmax_lag_us\tclient_cpu_us_per_req\tserver_cpu_us_per_req");
    for rate in rates {
        let mut rs = RunSpec::new(addr, TestKind::TcpRr, Duration::from_secs_f64(secs));
        rs.warmup = Duration::from_millis(300);
        rs.client_cpu = Some(0);
        rs.server_cpu = Some(server_cpu);
        let mut spec = OpenLoopSpec::new(rs, rate);
        spec.connections = conns;
        match run(&spec) {
            Ok(r) => {
                let m = &r.measured;
                println!(
                    "{rate:.0}\t{:.0}\t{:.4}\t{:.1}\t{:.1}\t{:.1}\t{}\t{}\t{:.3}\t{:.0}\t{:.2}\t{:.2}",
                    r.achieved_rps,
                    r.achieved_rps / rate,
                    r.latency_us.p50,
                    r.latency_us.p99,
                    r.latency_us.p99_9,
                    m.completed,
                    m.timeouts,
                    m.cpu_ns as f64 / m.wall_ns.max(1) as f64,
                    m.max_issue_lag_ns as f64 / 1e3,
                    r.client_cpu_us_per_req,
                    r.server.cpu_us_per_tx().unwrap_or(f64::NAN),
                );
            }
            Err(e) => println!("{rate:.0}\tfailed: {e}"),
        }
    }
}
