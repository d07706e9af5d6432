//! `nslat run`: one test against an `nslat serve`, like netperf.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;
use comfy_table::{presets, Cell, CellAlignment, Table};

use crate::bench::{self, timing::nproc, RunResult, RunSpec, TestKind};
use crate::measure_lock::{self, LockPolicy, MeasureLock};
use crate::netns;

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Run one test against an `nslat serve` and print what it measured (like netperf).\n\n\
        Tests (netperf's names and meanings):\n  \
        TCP_RR      one connection, one transaction in flight: REQ bytes out, RESP bytes back\n  \
        UDP_RR      the same over UDP; a lost datagram times out (10 ms) and is counted, not waited for\n  \
        TCP_CRR     connect, request, response, close: a new connection per transaction\n  \
        TCP_STREAM  bulk throughput client -> server (send size -m), in Gbit/s\n  \
        TCP_MAERTS  bulk throughput server -> client\n\n\
        Every transaction is timed (CLOCK_MONOTONIC, one clock read per transaction) into a histogram; \
        the warm-up is not counted. Latencies are in microseconds: `mean` is the mean of the timed \
        transactions, `rate mean` is elapsed time / transactions (netperf's RT_LATENCY). CPU is CPU time \
        per transaction (us/tx; us/MB for streams) of the client's loop thread and the server's data \
        thread. Pin both sides with -T: where the threads run changes the result more than most network \
        setups do.\n\n\
        Examples:\n  \
        nslat run -H 198.18.0.1 -t TCP_RR                     # 10 s, 1-byte request and response\n  \
        nslat run -H 198.18.0.1 -t TCP_RR -r 64,1024 -T 0,0 -l 5\n  \
        nslat run -H [2001:2::1]:12866 -t UDP_RR --json\n  \
        sudo nslat run --netns client -H 198.18.0.1 -t TCP_STREAM -m 64K"
)]
pub struct RunArgs {
    /// Server running `nslat serve`: HOST, HOST:PORT, [IPV6]:PORT (default port 12866)
    #[arg(short = 'H', long = "host", value_name = "HOST[:PORT]")]
    host: String,
    /// Test: TCP_RR, UDP_RR, TCP_CRR, TCP_STREAM or TCP_MAERTS
    #[arg(short = 't', long = "test", value_name = "TEST")]
    test: TestKind,
    /// Measured length of the test, after the warm-up
    #[arg(short = 'l', long = "length", value_name = "SECS", allow_hyphen_values = true, default_value = "10", value_parser = parse_positive_secs)]
    length: Duration,
    /// Request and response sizes in bytes (one number: both)
    #[arg(short = 'r', value_name = "REQ,RESP", allow_hyphen_values = true, default_value = "1,1", value_parser = parse_rr_sizes)]
    rr: (usize, usize),
    /// Send size for TCP_STREAM / TCP_MAERTS (suffixes K and M allowed)
    #[arg(short = 'm', value_name = "SEND_SIZE", allow_hyphen_values = true, default_value = "64K", value_parser = parse_send_size)]
    send_size: usize,
    /// Pin the client to LCPU and ask the server to pin to RCPU (one number: both; either may be empty)
    #[arg(short = 'T', value_name = "LCPU,RCPU", allow_hyphen_values = true, value_parser = parse_cpus)]
    cpus: Option<(Option<usize>, Option<usize>)>,
    /// Time run before measuring; its transactions are not counted
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value = "1", value_parser = parse_secs)]
    warmup: Duration,
    /// Use IPv4 only
    #[arg(short = '4', conflicts_with = "ipv6")]
    ipv4: bool,
    /// Use IPv6 only
    #[arg(short = '6')]
    ipv6: bool,
    /// Run the client inside this network namespace (a name from `ip netns list`, or a path)
    #[arg(long, value_name = "NAME|PATH")]
    netns: Option<String>,
    /// Print one JSON object instead of the table
    #[arg(long)]
    json: bool,
    /// Token the server asks for; visible to every user of the machine: prefer --token-file or
    /// NSLAT_TOKEN
    #[arg(long, value_name = "SECRET")]
    token: Option<String>,
    /// File holding the token the server asks for (or set NSLAT_TOKEN)
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    lock: LockArgs,
}

/// What a measurement does when another nslat measurement holds its CPUs (see
/// [`crate::measure_lock`]): wait (bounded), refuse (`--lock-wait 0`), or `--force`.
#[derive(Debug, clap::Args)]
pub struct LockArgs {
    /// Longest wait for CPUs another nslat measurement is using (0: refuse at once)
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value = "120", value_parser = parse_secs)]
    lock_wait: Duration,
    /// Measure even while another nslat measurement uses the same CPUs (the result is flagged)
    #[arg(long)]
    force: bool,
}

impl LockArgs {
    /// Takes the measurement lock on `cpus`, saying on stderr when it waits.
    pub fn acquire(&self, cpus: &[usize]) -> anyhow::Result<MeasureLock> {
        let policy = if self.force {
            LockPolicy::Force
        } else {
            LockPolicy::Wait(self.lock_wait)
        };
        let lock = MeasureLock::acquire(
            cpus,
            &measure_lock::this_command(),
            policy,
            &mut |line: &str| eprintln!("{}", super::wrap_for_stderr(line)),
        )?;
        if let Some(c) = &lock.contention {
            eprintln!(
                "{}",
                super::wrap_for_stderr(&format!("warning: {}", c.describe()))
            );
        }
        Ok(lock)
    }
}

/// IP family restriction from -4 / -6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Any,
    V4,
    V6,
}

impl Family {
    fn accepts(self, ip: &IpAddr) -> bool {
        match self {
            Family::Any => true,
            Family::V4 => ip.is_ipv4(),
            Family::V6 => ip.is_ipv6(),
        }
    }
}

/// Parses seconds (fractions allowed), at least 0.
pub fn parse_secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("'{s}' is not a number of seconds"))?;
    if !v.is_finite() || v < 0.0 {
        return Err(format!("'{s}' seconds: give 0 or more"));
    }
    if v > 1e7 {
        return Err(format!("'{s}' seconds is too long: give at most 10000000"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Parses seconds, more than 0.
pub fn parse_positive_secs(s: &str) -> Result<Duration, String> {
    let d = parse_secs(s).map_err(|e| e.replace("give 0 or more", "give more than 0"))?;
    if d.is_zero() {
        return Err(format!("'{s}' seconds: give more than 0"));
    }
    Ok(d)
}

/// Parses a byte size: a positive integer with an optional K or M suffix (1024-based).
pub fn parse_size(s: &str) -> Result<usize, String> {
    let t = s.trim();
    if t.starts_with('-') {
        return Err(format!(
            "size '{s}' is negative: give a positive number of bytes"
        ));
    }
    let (num, mult) = match t.char_indices().last() {
        Some((i, 'k' | 'K')) => (&t[..i], 1024),
        Some((i, 'm' | 'M')) => (&t[..i], 1024 * 1024),
        _ => (t, 1),
    };
    let n: usize = num
        .parse()
        .map_err(|_| format!("size '{s}' is not a number of bytes (e.g. 64, 16K, 1M)"))?;
    let n = n
        .checked_mul(mult)
        .ok_or_else(|| format!("size '{s}' is too large"))?;
    if n == 0 {
        return Err(format!("size '{s}' is zero: give at least 1 byte"));
    }
    Ok(n)
}

/// Parses `-r REQ,RESP` (one number: both; an empty side keeps 1).
pub fn parse_rr_sizes(s: &str) -> Result<(usize, usize), String> {
    let max = bench::server::MAX_RR_SIZE;
    let one = |p: &str| -> Result<usize, String> {
        if p.trim().is_empty() {
            return Ok(1);
        }
        let n = parse_size(p)?;
        if n > max {
            return Err(format!(
                "size '{p}' is larger than the limit of {max} bytes"
            ));
        }
        Ok(n)
    };
    match s.split_once(',') {
        None if s.trim().is_empty() => Err("-r needs REQ,RESP sizes, e.g. -r 1,1".into()),
        None => one(s).map(|n| (n, n)),
        Some((a, b)) if b.contains(',') => Err(format!(
            "'{s}' has more than two sizes: give REQ,RESP, e.g. -r 64,1024 ({a})"
        )),
        Some((a, b)) => Ok((one(a)?, one(b)?)),
    }
}

/// Parses `-m SEND_SIZE`.
pub fn parse_send_size(s: &str) -> Result<usize, String> {
    let n = parse_size(s)?;
    let max = bench::server::MAX_SEND_SIZE;
    if n > max {
        return Err(format!(
            "send size '{s}' is larger than the limit of {max} bytes"
        ));
    }
    Ok(n)
}

/// Parses `-T LCPU,RCPU` (one number: both sides; an empty side stays unpinned).
pub fn parse_cpus(s: &str) -> Result<(Option<usize>, Option<usize>), String> {
    parse_cpus_of(s, nproc())
}

fn parse_cpus_of(s: &str, n: usize) -> Result<(Option<usize>, Option<usize>), String> {
    let one = |p: &str| -> Result<Option<usize>, String> {
        let p = p.trim();
        if p.is_empty() {
            return Ok(None);
        }
        if p.starts_with('-') {
            return Err(format!("CPU '{p}' is negative: CPUs are 0..{}", n - 1));
        }
        let c: usize = p
            .parse()
            .map_err(|_| format!("CPU '{p}' is not a CPU number (CPUs are 0..{})", n - 1))?;
        if c >= n {
            return Err(format!(
                "CPU {c} does not exist: this machine has CPUs 0..{}",
                n - 1
            ));
        }
        Ok(Some(c))
    };
    let (l, r) = match s.split_once(',') {
        None => {
            let c = one(s)?;
            (c, c)
        }
        Some((_, b)) if b.contains(',') => {
            return Err(format!("'{s}': give LCPU,RCPU, e.g. -T 0,1"))
        }
        Some((a, b)) => (one(a)?, one(b)?),
    };
    if l.is_none() && r.is_none() {
        return Err("-T needs at least one CPU, e.g. -T 0,0".into());
    }
    Ok((l, r))
}

/// Resolves `-H HOST[:PORT]` to one address of the wanted family.
pub fn parse_host(s: &str, family: Family) -> Result<SocketAddr, String> {
    let bad = |why: &str| format!("bad host '{s}': {why}");
    let t = s.trim();
    if t.is_empty() {
        return Err(bad("give HOST, HOST:PORT or [IPV6]:PORT"));
    }
    let port_of = |p: &str| -> Result<u16, String> {
        match p.parse::<u16>() {
            Ok(0) | Err(_) => Err(bad(&format!("port '{p}' is not in 1..65535"))),
            Ok(n) => Ok(n),
        }
    };
    let (host, port) = if let Some(rest) = t.strip_prefix('[') {
        let (h, after) = rest
            .split_once(']')
            .ok_or_else(|| bad("missing ']' after an IPv6 address"))?;
        let port = match after.strip_prefix(':') {
            Some(p) => port_of(p)?,
            None if after.is_empty() => bench::DEFAULT_PORT,
            None => return Err(bad("expected ':PORT' after ']'")),
        };
        (h, port)
    } else if t.parse::<IpAddr>().is_ok() {
        (t, bench::DEFAULT_PORT)
    } else if let Some((h, p)) = t.rsplit_once(':') {
        if h.contains(':') {
            return Err(bad("write IPv6 addresses with a port as [ADDR]:PORT"));
        }
        (h, port_of(p)?)
    } else {
        (t, bench::DEFAULT_PORT)
    };
    if host.is_empty() {
        return Err(bad("the host part is empty"));
    }
    if let Ok(ip) = host.parse::<IpAddr>() {
        if !family.accepts(&ip) {
            return Err(bad(&format!(
                "{ip} is not an address of the family asked for (-4/-6)"
            )));
        }
        return Ok(SocketAddr::new(ip, port));
    }
    let addrs = (host, port)
        .to_socket_addrs()
        .map_err(|e| bad(&format!("cannot resolve it ({e})")))?;
    addrs
        .into_iter()
        .find(|a| family.accepts(&a.ip()))
        .ok_or_else(|| bad("it has no address of the family asked for (-4/-6)"))
}

pub fn run(args: RunArgs) -> anyhow::Result<()> {
    let family = match (args.ipv4, args.ipv6) {
        (true, _) => Family::V4,
        (_, true) => Family::V6,
        _ => Family::Any,
    };
    let server = parse_host(&args.host, family).map_err(anyhow::Error::msg)?;
    let ns = args.netns.as_deref().map(netns::resolve).transpose()?;
    let mut spec = RunSpec::new(server, args.test, args.length);
    spec.warmup = args.warmup;
    (spec.request_size, spec.response_size) = args.rr;
    spec.send_size = args.send_size;
    if let Some((l, r)) = args.cpus {
        spec.client_cpu = l;
        spec.server_cpu = r;
    }
    spec.netns = ns;
    spec.token = super::token::resolve(args.token, args.token_file.as_deref())?;
    let lock = args.lock.acquire(&lock_cpus(&spec))?;
    let result = bench::client::run(&spec).with_context(|| format!("{} to {server}", args.test))?;
    let flag = lock.contention.as_ref().map(|c| c.describe());
    drop(lock);
    if args.json {
        let mut v = serde_json::to_value(&result)?;
        if let Some(m) = v.as_object_mut() {
            if let Some(f) = &flag {
                m.insert("flags".into(), vec![f.clone()].into());
            }
            m.insert("server".into(), server.to_string().into());
            if !args.test.is_request_response() {
                m.insert("send_size".into(), spec.send_size.into());
            }
        }
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        print!("{}", human(&spec, &result));
        if let Some(f) = &flag {
            println!("FLAGGED: {f}");
        }
    }
    Ok(())
}

/// The CPUs a run measures on: the client's (every CPU when it is not pinned), and the server's
/// when the server is on this machine (a loopback address).
fn lock_cpus(spec: &RunSpec) -> Vec<usize> {
    let mut cpus = match spec.client_cpu {
        Some(c) => vec![c],
        None => (0..nproc()).collect(),
    };
    if let (Some(s), true) = (spec.server_cpu, spec.server.ip().is_loopback()) {
        cpus.push(s);
    }
    cpus
}

fn cpu_name(c: Option<usize>) -> String {
    c.map(|c| c.to_string()).unwrap_or_else(|| "any".into())
}

/// The human-readable report: a heading line and one compact table.
pub fn human(spec: &RunSpec, r: &RunResult) -> String {
    let sizes = if r.test.is_request_response() {
        format!("{},{} bytes", r.request_size, r.response_size)
    } else {
        format!("send size {} bytes", spec.send_size)
    };
    let mut out = format!(
        "{} to {}, {}, {:.2} s measured after {} warm-up transactions, CPUs client {} / server {}, {}\n",
        r.test,
        spec.server,
        sizes,
        r.elapsed_s,
        r.warmup_transactions,
        cpu_name(r.placement.client_cpu),
        cpu_name(r.placement.server_cpu),
        r.clock
    );
    let l = &r.latency_us;
    let mut t = Table::new();
    t.load_preset(presets::UTF8_HORIZONTAL_ONLY);
    let mut head = vec!["trans/s"];
    let mut row = vec![format!("{:.0}", r.trans_per_s)];
    if let Some(g) = r.throughput_gbps {
        head.insert(0, "Gbit/s");
        row.insert(0, format!("{g:.2}"));
    }
    if let Some(lost) = r.lost {
        head.push("lost");
        let total = (r.transactions + lost).max(1);
        row.push(format!(
            "{lost} ({:.1}%)",
            lost as f64 * 100.0 / total as f64
        ));
    }
    head.extend([
        "mean us",
        "rate mean",
        "stddev",
        "min",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "max",
    ]);
    for v in [
        l.mean,
        l.rate_mean,
        l.stddev,
        l.min,
        l.p50,
        l.p90,
        l.p99,
        l.p99_9,
        l.max,
    ] {
        row.push(format!("{v:.2}"));
    }
    head.push("CPU client");
    head.push("CPU server");
    row.push(format!("{:.2} {}", r.cpu.client_cpu, r.cpu.unit));
    row.push(format!("{:.2} {}", r.cpu.server_cpu, r.cpu.unit));
    t.set_header(head.into_iter().map(Cell::new).collect::<Vec<_>>());
    t.add_row(
        row.into_iter()
            .map(|v| Cell::new(v).set_alignment(CellAlignment::Right))
            .collect::<Vec<_>>(),
    );
    out.push_str(&t.to_string());
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rr_sizes() {
        assert_eq!(parse_rr_sizes("1,1").unwrap(), (1, 1));
        assert_eq!(parse_rr_sizes("64,1K").unwrap(), (64, 1024));
        assert_eq!(parse_rr_sizes("100").unwrap(), (100, 100));
        assert_eq!(parse_rr_sizes(",512").unwrap(), (1, 512));
        assert_eq!(parse_rr_sizes("512,").unwrap(), (512, 1));
        for bad in ["-1,1", "1,-5", "0,1", "1,0", "a,b", "1,2,3", "", "2M,1"] {
            let e = parse_rr_sizes(bad).unwrap_err();
            assert!(!e.contains('\n'), "{e}");
        }
        assert!(parse_rr_sizes("-1,1").unwrap_err().contains("negative"));
        assert!(parse_rr_sizes("0,1").unwrap_err().contains("zero"));
    }

    #[test]
    fn sizes_and_seconds() {
        assert_eq!(parse_send_size("64K").unwrap(), 65536);
        assert_eq!(parse_send_size("1m").unwrap(), 1 << 20);
        assert!(parse_send_size("0").is_err());
        assert!(parse_send_size("8M").is_err());
        assert!(parse_size("99999999999999999999K").is_err());
        assert_eq!(parse_secs("0").unwrap(), Duration::ZERO);
        assert_eq!(parse_secs("1.5").unwrap(), Duration::from_millis(1500));
        assert!(parse_positive_secs("0").is_err());
        for bad in ["-1", "nan", "inf", "x", "1e9"] {
            assert!(parse_secs(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpus() {
        assert_eq!(parse_cpus_of("0,1", 2).unwrap(), (Some(0), Some(1)));
        assert_eq!(parse_cpus_of("1", 2).unwrap(), (Some(1), Some(1)));
        assert_eq!(parse_cpus_of(",1", 2).unwrap(), (None, Some(1)));
        assert_eq!(parse_cpus_of("0,", 2).unwrap(), (Some(0), None));
        assert!(parse_cpus_of("2,0", 2)
            .unwrap_err()
            .contains("does not exist"));
        assert!(parse_cpus_of("0,-1", 2).unwrap_err().contains("negative"));
        for bad in ["", ",", "a", "0,1,2", "1.5"] {
            assert!(parse_cpus_of(bad, 2).is_err(), "{bad}");
        }
    }

    #[test]
    fn hosts() {
        let a = |s: &str| parse_host(s, Family::Any);
        assert_eq!(
            a("198.18.0.1").unwrap(),
            "198.18.0.1:12866".parse().unwrap()
        );
        assert_eq!(a("198.18.0.1:9").unwrap(), "198.18.0.1:9".parse().unwrap());
        assert_eq!(
            a("2001:2::1").unwrap(),
            "[2001:2::1]:12866".parse().unwrap()
        );
        assert_eq!(
            a("[2001:2::1]:7").unwrap(),
            "[2001:2::1]:7".parse().unwrap()
        );
        assert_eq!(
            a("[2001:2::1]").unwrap(),
            "[2001:2::1]:12866".parse().unwrap()
        );
        assert_eq!(a("localhost:5").unwrap().port(), 5);
        assert!(parse_host("198.18.0.1", Family::V6).is_err());
        assert!(parse_host("2001:2::1", Family::V4).is_err());
        assert_eq!(
            parse_host("localhost", Family::V4).unwrap().ip(),
            "127.0.0.1".parse::<IpAddr>().unwrap()
        );
        for bad in [
            "",
            "198.18.0.1:0",
            "198.18.0.1:70000",
            "198.18.0.1:x",
            "[2001:2::1",
            "[2001:2::1]x",
            ":5",
            "no-such-host.invalid",
        ] {
            let e = a(bad).unwrap_err();
            assert!(e.starts_with("bad host"), "{e}");
        }
    }
}
