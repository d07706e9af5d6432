//! `nslat serve`: run the measurement server.

use std::net::SocketAddr;
use std::time::Duration;

use crate::{bench, netns};
use anyhow::Context;

#[derive(Debug, clap::Args)]
#[command(
    after_long_help = "Run the measurement server (a netserver) that `nslat run` and `nslat compare` talk to.\n\n\
        A control connection (nslat's own versioned protocol) negotiates each test; the data go over a \
        separate socket on a fresh port of the same address. Each test gets its own threads, and the \
        server pins its data thread to the CPU the client asks for (`nslat run -T LCPU,RCPU`). Every \
        wait is bounded (--idle-timeout, --max-duration, --max-clients), so silent or hostile clients \
        cannot hold the server. Root is not needed (except for --netns).\n\n\
        Examples:\n  \
        nslat serve                                   # listen on [::]:12866 (all IPv4 and IPv6 addresses)\n  \
        nslat serve --listen 198.18.0.1:12866 --token-file /etc/nslat/token\n  \
        sudo nslat serve --netns remote --max-clients 8 --idle-timeout 10"
)]
pub struct ServeArgs {
    /// Control address to listen on (an address alone: port 12866) [default: [::]:12866, or 0.0.0.0:12866 without IPv6]
    #[arg(long, value_name = "ADDR:PORT", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
    /// Serve inside this network namespace (a name from `ip netns list`, or a path like /proc/PID/ns/net)
    #[arg(long, value_name = "NAME|PATH")]
    netns: Option<String>,
    /// Refuse clients that do not present this token; visible to every user of the machine:
    /// prefer --token-file or NSLAT_TOKEN
    #[arg(long, value_name = "SECRET")]
    token: Option<String>,
    /// Refuse clients that do not present the token in this file (or set NSLAT_TOKEN)
    #[arg(long, value_name = "PATH", conflicts_with = "token")]
    token_file: Option<std::path::PathBuf>,
    /// Longest test a client may ask for, warm-up included
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value = "3600", value_parser = super::run::parse_positive_secs)]
    max_duration: Duration,
    /// Tests served at once; more clients are refused as busy
    #[arg(long, value_name = "N", allow_hyphen_values = true, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    max_clients: u32,
    /// How long a client may stay silent where the server waits for it
    #[arg(long, value_name = "SECS", allow_hyphen_values = true, default_value = "30", value_parser = super::run::parse_positive_secs)]
    idle_timeout: Duration,
    /// Do not log a line per test
    #[arg(long, short)]
    quiet: bool,
    /// Testing aid: leave every N-th UDP_RR request unanswered
    #[arg(long, value_name = "N", hide = true, value_parser = clap::value_parser!(u32).range(1..))]
    udp_drop_every: Option<u32>,
}

/// `--listen`: an IP address and a port, or an IP address alone (port 12866; what a manifest
/// gives from the downward API, IPv4 or IPv6 alike).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    if let Ok(ip) = s.parse::<std::net::IpAddr>() {
        return Ok(SocketAddr::new(ip, bench::DEFAULT_PORT));
    }
    s.parse().map_err(|_| {
        format!("'{s}' is not ADDR:PORT: give an IP address and a port, like 0.0.0.0:12866 or [::1]:12866")
    })
}

/// The one line a server without a token on a non-loopback address says at start.
fn open_warning(addr: SocketAddr, max_duration: Duration, max_clients: usize) -> String {
    format!(
        "warning: no token: anyone who reaches {addr} can make this machine send and receive at \
         full speed, {max_clients} tests at once, each up to {} s; set one with --token-file PATH \
         or {} (clients give the same)",
        max_duration.as_secs_f64(),
        bench::token::ENV
    )
}

/// Says what to do when the control address cannot be bound (the usual causes: the port is taken,
/// a privileged port without root, an address this namespace does not have).
fn explain_bind(e: bench::server::ServerError) -> anyhow::Error {
    use std::io::ErrorKind;
    let bench::server::ServerError::Bind { addr, error } = &e else {
        return e.into();
    };
    let hint = match error.kind() {
        ErrorKind::AddrInUse => "the port is already in use (another `nslat serve`?); pick another with --listen ADDR:PORT",
        ErrorKind::PermissionDenied => "ports below 1024 need root; pick another with --listen ADDR:PORT",
        ErrorKind::AddrNotAvailable => "no interface here has that address; give one of `ip addr` with --listen ADDR:PORT",
        _ => return e.into(),
    };
    anyhow::anyhow!("cannot listen on {addr}: {hint}")
}

pub fn run(args: ServeArgs) -> anyhow::Result<()> {
    let ns = args.netns.as_deref().map(netns::resolve).transpose()?;
    let mut cfg = bench::server::ServerConfig::new(args.listen.unwrap_or_else(|| {
        SocketAddr::new(std::net::Ipv6Addr::UNSPECIFIED.into(), bench::DEFAULT_PORT)
    }));
    cfg.token = super::token::resolve(args.token, args.token_file.as_deref())?;
    cfg.max_duration = args.max_duration;
    cfg.max_clients = args.max_clients as usize;
    cfg.idle_timeout = args.idle_timeout;
    cfg.udp_drop_every = args.udp_drop_every;
    cfg.verbose = !args.quiet;
    let open = cfg.token.is_none();
    let (max_duration, max_clients) = (cfg.max_duration, cfg.max_clients);
    let explicit = args.listen.is_some();
    let server = netns::run_in(ns.as_deref(), move || -> anyhow::Result<_> {
        match bench::server::Server::bind(cfg.clone()) {
            Ok(s) => Ok(s),
            // No IPv6 here: fall back to every IPv4 address.
            Err(_) if !explicit => {
                cfg.listen =
                    SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), bench::DEFAULT_PORT);
                bench::server::Server::bind(cfg).map_err(explain_bind)
            }
            Err(e) => Err(explain_bind(e)),
        }
    })?;
    eprintln!(
        "nslat serve: listening on {} (protocol v{}){}",
        server.local_addr(),
        bench::control::PROTOCOL_VERSION,
        args.netns
            .map(|n| format!(" in network namespace {n}"))
            .unwrap_or_default()
    );
    if open && !server.local_addr().ip().is_loopback() {
        eprintln!(
            "{}",
            open_warning(server.local_addr(), max_duration, max_clients)
        );
    }
    server.serve().context("serving")
}
