//! `nslat sweep services|load`: arguments, validation, progress lines and the outputs.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::bench::TestKind;
use crate::lab::{mode, Mode};
use crate::report;
use crate::sweep::{self, Placement, Style, SweepReport};

#[derive(Debug, Subcommand)]
#[command(
    about = "Latency along an axis: Service count per kube-proxy style, noisy neighbours, or offered request rate"
)]
pub enum SweepCommand {
    Services(ServicesArgs),
    Load(LoadArgs),
    Rate(RateArgs),
}

/// Outputs every sweep writes.
#[derive(Debug, Args)]
pub struct Outputs {
    /// Write the sweep as JSON (axis, one object per point).
    #[arg(long, value_name = "PATH")]
    json: Option<PathBuf>,
    /// Write one CSV row per point.
    #[arg(long, value_name = "PATH")]
    csv: Option<PathBuf>,
    /// Write DIR/index.html with the curves.
    #[arg(long, value_name = "DIR")]
    html: Option<PathBuf>,
    /// The sweep lab's name (default swp<pid>; it must not exist, and is removed at the end).
    #[arg(long, value_name = "NAME")]
    lab: Option<String>,
    #[command(flatten)]
    lock: super::run::LockArgs,
}

/// Latency through one ClusterIP against the number of Services, per kube-proxy style.
#[derive(Debug, Args)]
#[command(
    long_about = "Latency through one ClusterIP against the number of Services, per kube-proxy style.\n\n\
    Builds a lab with a bridge container, then for each style and N installs N Services in the \
    node the way kube-proxy does (iptables: KUBE-SERVICES -> KUBE-SVC -> KUBE-SEP DNAT rules via \
    iptables-restore; nftables: the kube-proxy table with its service-ips verdict map via nft -f) \
    plus one measured Service (last in the iptables walk), and measures the container through \
    the ClusterIP paired with the same container straight to the endpoint. TCP_CRR pays the \
    first-packet rule walk on every transaction; TCP_RR only conntrack.\n\n\
    Examples:\n  \
    nslat sweep services\n  \
    nslat sweep services --counts 0,5000,30000 --styles iptables -t TCP_CRR --html sweep/"
)]
pub struct ServicesArgs {
    /// Service counts, comma-separated.
    #[arg(long, value_name = "LIST", default_value = "0,1000,5000,10000,30000", value_parser = parse_counts)]
    counts: Counts,
    /// kube-proxy styles, comma-separated: iptables, nftables.
    #[arg(long, value_name = "LIST", default_value = "iptables,nftables", value_parser = parse_styles)]
    styles: Styles,
    /// Tests, comma-separated (request/response: TCP_CRR, TCP_RR, UDP_RR).
    #[arg(short = 't', long = "test", value_name = "LIST", default_value = "TCP_CRR,TCP_RR", value_parser = parse_tests)]
    tests: Tests,
    /// Measured seconds per point (both paths together).
    #[arg(short = 'l', long = "length", value_name = "SECS", default_value = "4", allow_hyphen_values = true, value_parser = super::run::parse_positive_secs)]
    length: Duration,
    #[command(flatten)]
    out: Outputs,
}

/// A victim's percentiles while K neighbour containers stream, per mode.
#[derive(Debug, Args)]
#[command(
    long_about = "A victim container's request/response percentiles while K neighbour containers of \
    the same mode on the same node run TCP_STREAM to the remote, per mode, with the neighbours on \
    the victim's CPU (same) or the other one (other). Reports p50/p99/p99.9 per K, the backlog \
    counters (drops, time squeeze) of /proc/net/softnet_stat, and what explains a gap without \
    drops: queueing on the victim's CPU (packets received there and NET_RX softirqs per victim \
    transaction, its softirq time, its backlog length sampled every millisecond). The streams are \
    bounded: each ends after its duration. veth-bpf and vxlan victims have no neighbour builder \
    yet and are refused with the reason.\n\n\
    Examples:\n  \
    nslat sweep load\n  \
    nslat sweep load --modes bridge,macvlan --neighbours 0,4 --placements same --html load/"
)]
pub struct LoadArgs {
    /// Neighbour counts, comma-separated (at most 8).
    #[arg(long, value_name = "LIST", default_value = "0,1,2,4", value_parser = parse_counts)]
    neighbours: Counts,
    /// Modes, comma-separated: host, bridge, ptp, macvlan (neighbours are built for these; veth-bpf,
    /// vxlan, ipvlan and netkit are refused with the reason).
    #[arg(long, value_name = "LIST", default_value = "host,bridge,ptp,macvlan", value_parser = parse_modes)]
    modes: Modes,
    /// Where the neighbours' clients run: same (the victim's CPU), other, or both.
    #[arg(long, value_name = "LIST", default_value = "same,other", value_parser = parse_placements)]
    placements: Placements,
    /// The victim's test.
    #[arg(
        short = 't',
        long = "test",
        value_name = "TEST",
        default_value = "TCP_RR"
    )]
    test: TestKind,
    /// Measured seconds per point.
    #[arg(short = 'l', long = "length", value_name = "SECS", default_value = "3", allow_hyphen_values = true, value_parser = super::run::parse_positive_secs)]
    length: Duration,
    #[command(flatten)]
    out: Outputs,
}

/// Latency against offered request rate (open loop), per mode: each mode's knee.
#[derive(Debug, Args)]
#[command(
    long_about = "Latency against offered request rate, per mode, measured open loop.\n\n\
    Requests leave on a fixed schedule at each rate whatever the responses do, over C TCP \
    connections per mode (each its own server thread in the remote), and every latency is timed \
    from the request's intended send time: queueing and stalls count for every request they \
    delay, not once (no coordinated omission). At each rate the modes are measured in \
    interleaved 50 ms blocks, paired with the host, in 10 windows per point. A point crosses \
    when 6 of its 10 windows do: knee (p99 over --bound times the idle p99, the median window p99 \
    at 2000-8000/s), wall (achieved under 99% of offered); kept is what it still achieves at the \
    wall. `auto` doubles the rate from 2000/s until every mode is past both, bisects every \
    bracket to 5% and measures each first crossing twice. The report gives each marker as a \
    ratio to the host's with an interval, with the backlog packets, NET_RX softirqs and CPU per \
    request that explain the order. Client and servers on CPU 0.\n\n\
    Examples:\n  \
    nslat sweep rate\n  \
    nslat sweep rate --modes host,bridge --rates 5000,20000,40000 --json rate.json\n  \
    nslat sweep rate --connections 4 --spacing poisson -r 64,1024 --html rate/"
)]
pub struct RateArgs {
    /// Modes, comma-separated (the host is always measured: it is the baseline).
    #[arg(long, value_name = "LIST", default_value = "host,bridge,ptp,macvlan", value_parser = parse_modes)]
    modes: Modes,
    /// Offered rates in requests/s, comma-separated (e.g. 5000,20000,40k), or auto.
    #[arg(long, value_name = "LIST|auto", default_value = "auto", value_parser = parse_rates)]
    rates: sweep::Rates,
    /// TCP connections per mode (each its own server thread), 1..=8.
    #[arg(long, value_name = "C", default_value = "1")]
    connections: usize,
    /// Request and response sizes in bytes (netperf's -r REQ,RESP).
    #[arg(short = 'r', value_name = "REQ,RESP", default_value = "1,1", value_parser = super::run::parse_rr_sizes)]
    sizes: (usize, usize),
    /// Spacing of the send times: constant or poisson.
    #[arg(long, value_name = "KIND", default_value = "constant")]
    spacing: crate::bench::openloop::Spacing,
    /// The latency bound as a multiple of each mode's idle p99.
    #[arg(long, value_name = "FACTOR", default_value = "3")]
    bound: f64,
    /// Measured seconds per mode and rate, 0.5 to 30 (in 50 ms blocks; 1 s = 20 rounds).
    #[arg(short = 'l', long = "length", value_name = "SECS", default_value = "1", allow_hyphen_values = true, value_parser = super::run::parse_positive_secs)]
    length: Duration,
    #[command(flatten)]
    out: Outputs,
}

fn parse_rates(s: &str) -> Result<sweep::Rates, String> {
    if s.trim() == "auto" {
        return Ok(sweep::Rates::Auto);
    }
    list(s, |x| {
        let (num, mult) = match x.strip_suffix(['k', 'K']) {
            Some(n) => (n, 1000.0),
            None => (x, 1.0),
        };
        num.parse::<f64>()
            .ok()
            .filter(|v| v.is_finite() && *v > 0.0)
            .map(|v| v * mult)
            .ok_or_else(|| {
                format!("'{x}' is not a rate: give requests/s like 5000,20000,40k or auto")
            })
    })
    .map(sweep::Rates::List)
}

#[derive(Debug, Clone)]
struct Counts(Vec<usize>);
#[derive(Debug, Clone)]
struct Styles(Vec<Style>);
#[derive(Debug, Clone)]
struct Tests(Vec<TestKind>);
#[derive(Debug, Clone)]
struct Modes(Vec<Mode>);
#[derive(Debug, Clone)]
struct Placements(Vec<Placement>);

fn list<T>(s: &str, one: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let v: Vec<T> = s
        .split(',')
        .map(str::trim)
        .filter(|x| !x.is_empty())
        .map(one)
        .collect::<Result<_, _>>()?;
    if v.is_empty() {
        return Err("empty list: give at least one value".into());
    }
    Ok(v)
}

fn parse_counts(s: &str) -> Result<Counts, String> {
    list(s, |x| {
        x.parse::<usize>()
            .map_err(|_| format!("'{x}' is not a count: give whole numbers like 0,1000,5000"))
    })
    .map(Counts)
}

fn parse_styles(s: &str) -> Result<Styles, String> {
    list(s, |x| x.parse::<Style>()).map(Styles)
}

fn parse_tests(s: &str) -> Result<Tests, String> {
    list(s, |x| x.parse::<TestKind>().map_err(|e| e.to_string())).map(Tests)
}

fn parse_modes(s: &str) -> Result<Modes, String> {
    mode::parse_list(s).map(Modes).map_err(|e| e.to_string())
}

fn parse_placements(s: &str) -> Result<Placements, String> {
    if s.trim() == "both" {
        return Ok(Placements(vec![Placement::Same, Placement::Other]));
    }
    list(s, |x| x.parse::<Placement>()).map(Placements)
}

struct Lines;
impl sweep::Progress for Lines {
    fn note(&self, message: &str) {
        eprintln!("{message}");
    }
}

fn check_outputs(out: &Outputs) -> anyhow::Result<()> {
    for (flag, p) in [("--json", &out.json), ("--csv", &out.csv)] {
        if let Some(p) = p {
            super::compare::check_output_file(flag, p)?;
        }
    }
    if let Some(d) = &out.html {
        super::compare::check_output_dir(d)?;
    }
    Ok(())
}

fn finish(r: &SweepReport, out: &Outputs) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    report::table::render(&report::sweep::view(r), &mut stdout)?;
    if let Some(page) = report::sweep::write_outputs(
        r,
        out.json.as_deref(),
        out.csv.as_deref(),
        out.html.as_deref(),
    )? {
        eprintln!("HTML report: {}", page.display());
    }
    Ok(())
}

pub fn run(cmd: SweepCommand) -> anyhow::Result<()> {
    match cmd {
        SweepCommand::Services(a) => {
            check_outputs(&a.out)?;
            let opts = sweep::ServicesOptions {
                counts: a.counts.0,
                styles: a.styles.0,
                tests: a.tests.0,
                duration: a.length,
                lab: a.out.lab.clone(),
            };
            sweep::validate_services(&opts).context("sweep services")?;
            let _lock = a.out.lock.acquire(&[0])?;
            let r = sweep::services_sweep(&opts, &Lines).context("sweep services")?;
            finish(&r, &a.out)
        }
        SweepCommand::Load(a) => {
            check_outputs(&a.out)?;
            let opts = sweep::LoadOptions {
                neighbours: a.neighbours.0,
                modes: a.modes.0,
                placements: a.placements.0,
                test: a.test,
                duration: a.length,
                lab: a.out.lab.clone(),
            };
            // The victim's CPU and the other one (neighbours, the backlog sampler).
            sweep::validate_load(&opts).context("sweep load")?;
            let _lock = a.out.lock.acquire(&[0, 1])?;
            let r = sweep::load(&opts, &Lines).context("sweep load")?;
            finish(&r, &a.out)
        }
        SweepCommand::Rate(a) => {
            check_outputs(&a.out)?;
            let opts = sweep::RateOptions {
                modes: a.modes.0,
                rates: a.rates,
                connections: a.connections,
                request_size: a.sizes.0,
                response_size: a.sizes.1,
                spacing: a.spacing,
                length: a.length,
                bound_factor: a.bound,
                lab: a.out.lab.clone(),
                ..sweep::RateOptions::default()
            };
            sweep::validate_rate(&opts).context("sweep rate")?;
            // The client's and the servers' CPU.
            let _lock = a.out.lock.acquire(&[0])?;
            let r = sweep::rate_sweep(&opts, &Lines).context("sweep rate")?;
            finish(&r, &a.out)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_parse_as_a_list_with_k_or_auto() {
        assert_eq!(parse_rates("auto").unwrap(), sweep::Rates::Auto);
        assert_eq!(
            parse_rates("5000, 20k,1.5K").unwrap(),
            sweep::Rates::List(vec![5000.0, 20000.0, 1500.0])
        );
        for bad in ["", "fast", "-5", "0", "5000,x"] {
            assert!(parse_rates(bad).is_err(), "{bad}");
        }
    }
}
