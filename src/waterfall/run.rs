//! The traced run of one path: a TCP_RR session with an `nslat serve` in this process, blocks
//! with the tracing programs attached alternating with blocks without them (ABBA order, so a
//! drift cancels in the overhead), the stage sums read after every traced block, assembled
//! into the path's [`Waterfall`].
//!
//! One pinned client thread inside the path's namespace, blocking sockets, one clock read per
//! round trip (the end of one is the start of the next). The server's data thread is found by
//! its name (`nslat-data`) among this process's threads that appeared with the session. A
//! server in another process or machine cannot be followed: remote mode (`TraceSpec::remote`)
//! follows the client alone and ends the path at the wire, up to the server's first packet back.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::time::Duration;

use super::{assemble, BlockSums, Names, Waterfall};
use crate::bench::client::{self, ClientError};
use crate::bench::timing::{now_ns, pin_to, recv_exact, send_all};
use crate::bench::{RunSpec, TestKind};
use crate::bpf::waterfall::{RawSums, RemoteWire, TraceError, Tracer};

/// Environment variable naming a tracepoint to load in place of `net_dev_queue` (a real name
/// the kernel refuses, e.g. `no_such_tracepoint`): the tests' way to make the load fail for
/// real inside a whole compare.
pub const TRACEPOINT_OVERRIDE_ENV: &str = "NSLAT_WATERFALL_QUEUE_TRACEPOINT";

/// What to trace.
#[derive(Debug, Clone)]
pub struct TraceSpec {
    /// The path's client namespace (`None`: the caller's).
    pub netns: Option<PathBuf>,
    /// The `nslat serve` control address.
    pub server: SocketAddr,
    pub client_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
    pub request_size: usize,
    pub response_size: usize,
    pub token: Option<String>,
    /// Length of one block, and block pairs (one traced, one untraced each).
    pub block: Duration,
    pub pairs: usize,
    /// Namespaces whose `eth0` is the lab's wire (node, remote), for naming.
    pub wire: Vec<PathBuf>,
    /// Tracepoint names in place of the programs' own (same order as
    /// [`crate::bpf::waterfall::PROGRAMS`]); `None`: theirs.
    pub tracepoints: Option<Vec<String>>,
    /// Remote mode: the server is not followed (another machine, or another process); the
    /// path leaves by this wire device and comes back with the server's first packet.
    pub remote: Option<RemoteWire>,
}

impl TraceSpec {
    /// 2 × `pairs` blocks of `block` against `server` from `netns`, TCP_RR 1,1.
    pub fn new(netns: Option<PathBuf>, server: SocketAddr) -> TraceSpec {
        let tracepoints = std::env::var(TRACEPOINT_OVERRIDE_ENV).ok().map(|q| {
            crate::bpf::waterfall::PROGRAMS
                .iter()
                .map(|(_, tp)| {
                    if *tp == "net_dev_queue" {
                        q.clone()
                    } else {
                        tp.to_string()
                    }
                })
                .collect()
        });
        TraceSpec {
            netns,
            server,
            client_cpu: Some(0),
            server_cpu: Some(0),
            request_size: 1,
            response_size: 1,
            token: None,
            block: Duration::from_millis(100),
            pairs: DEFAULT_PAIRS as usize,
            wire: Vec::new(),
            tracepoints,
            remote: None,
        }
    }
}

/// Pairs of a traced and an untraced block per path unless told (`--waterfall-pairs`): 1.6 s
/// of 100 ms blocks; the overhead's interval is over the pairs.
pub const DEFAULT_PAIRS: u32 = 8;

/// Why a path has no waterfall.
#[derive(Debug, thiserror::Error)]
pub enum WaterfallError {
    #[error(transparent)]
    Trace(#[from] TraceError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("{what}: {error}")]
    Io {
        what: &'static str,
        error: std::io::Error,
    },
    #[error(
        "the server's data thread is not in this process (a server elsewhere cannot be traced)"
    )]
    NoServerThread,
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error("no round trip was traced")]
    Empty,
}

fn io(what: &'static str) -> impl Fn(std::io::Error) -> WaterfallError {
    move |error| WaterfallError::Io { what, error }
}

/// Threads of this process named `nslat-data`.
fn data_threads() -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    if let Ok(dir) = std::fs::read_dir("/proc/self/task") {
        for e in dir.flatten() {
            let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
            if comm.trim() == "nslat-data" {
                if let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) {
                    out.insert(tid);
                }
            }
        }
    }
    out
}

/// Traces the path `spec` names and returns its waterfall. Loads the programs first: a kernel
/// that refuses them fails here, before any session is opened.
pub fn run(spec: &TraceSpec) -> Result<Waterfall, WaterfallError> {
    let tps: Option<Vec<&str>> = spec
        .tracepoints
        .as_ref()
        .map(|v| v.iter().map(String::as_str).collect());
    let tracer = Tracer::load(tps.as_deref())?;
    let spec2 = spec.clone();
    let (blocks, traced_us, untraced_us, raw) = crate::netns::run_in(
        spec.netns.as_deref(),
        move || -> Result<_, WaterfallError> {
            let mut tracer = tracer;
            drive(&spec2, &mut tracer)
        },
    )?;
    let mut names = Names::from_system(&spec.wire);
    if let Some(r) = &spec.remote {
        names = names.with_wire_device(r.ifindex, r.netns);
    }
    let stages = assemble(&blocks, &|d| names.device(d));
    let round_trips = blocks.iter().map(|b| b.round_trips).sum();
    let mut wf = Waterfall::new(&traced_us, &untraced_us, round_trips, stages, &raw)
        .ok_or(WaterfallError::Empty)?;
    wf.remote = spec.remote.is_some();
    Ok(wf)
}

type Driven = (Vec<BlockSums>, Vec<f64>, Vec<f64>, RawSums);

fn drive(spec: &TraceSpec, tracer: &mut Tracer) -> Result<Driven, WaterfallError> {
    if let Some(cpu) = spec.client_cpu {
        pin_to(cpu).map_err(io("pinning the client"))?;
    }
    let before = data_threads();
    let total = spec.block * (2 * spec.pairs as u32) + Duration::from_secs(2);
    let mut rs = RunSpec::new(spec.server, TestKind::TcpRr, total);
    rs.warmup = Duration::ZERO;
    rs.request_size = spec.request_size;
    rs.response_size = spec.response_size;
    rs.server_cpu = spec.server_cpu;
    rs.token = spec.token.clone();
    let (mut ctl, port) = client::handshake(&rs)?;
    let data_addr = SocketAddr::new(spec.server.ip(), port);
    let data = client::connect_data(data_addr)?;
    // Remote mode waits for the server's packets on the data connection (its port, not the
    // control port).
    let remote = spec.remote.map(|mut r| {
        r.server = data_addr;
        r
    });
    tracer.set_remote(remote.as_ref())?;
    let fd = data.as_raw_fd();
    let mut req = vec![0u8; spec.request_size];
    let mut resp = vec![0u8; spec.response_size];
    // Warm up (and make sure the server's data thread is serving).
    for _ in 0..200 {
        send_all(fd, &req).map_err(io("warm-up"))?;
        recv_exact(fd, &mut resp).map_err(io("warm-up"))?;
    }
    // Remote mode follows the client alone.
    let servers: Vec<u32> = if spec.remote.is_some() {
        Vec::new()
    } else {
        data_threads().difference(&before).copied().collect()
    };
    let result = traced_blocks(spec, tracer, fd, &mut req, &mut resp, &servers);
    tracer.detach();
    drop(data);
    let _ = client::finish_session(&mut ctl);
    result
}

fn traced_blocks(
    spec: &TraceSpec,
    tracer: &mut Tracer,
    fd: std::os::fd::RawFd,
    req: &mut [u8],
    resp: &mut [u8],
    servers: &[u32],
) -> Result<Driven, WaterfallError> {
    if servers.is_empty() && spec.remote.is_none() {
        return Err(WaterfallError::NoServerThread);
    }

    // SAFETY: gettid has no preconditions.
    let me = unsafe { libc::gettid() } as u32;
    let mut threads = vec![(me, 1u32)];
    threads.extend(servers.iter().map(|&t| (t, 2u32)));
    tracer.set_threads(&threads)?;
    let mut last = tracer.read()?;
    let (mut blocks, mut traced, mut untraced) = (Vec::new(), Vec::new(), Vec::new());
    for pair in 0..spec.pairs {
        // ABBA: traced first in even pairs, second in odd ones.
        for half in 0..2 {
            let traced_now = (half == 0) == (pair % 2 == 0);
            if traced_now {
                tracer.attach()?;
            }
            let done = block(fd, req, resp, spec.block);
            if traced_now {
                tracer.detach();
            }
            let (n, ns) = done.map_err(io("a round trip"))?;
            let mean_us = if n > 0 {
                ns as f64 / 1000.0 / n as f64
            } else {
                0.0
            };
            if traced_now {
                let now = tracer.read()?;
                blocks.push(BlockSums::between(&last, &now, n));
                last = now;
                traced.push(mean_us);
            } else {
                untraced.push(mean_us);
            }
        }
    }
    Ok((blocks, traced, untraced, last))
}

/// Round trips for `len`: (count, their total ns). One clock read per round trip.
fn block(
    fd: std::os::fd::RawFd,
    req: &[u8],
    resp: &mut [u8],
    len: Duration,
) -> Result<(u64, u64), std::io::Error> {
    let start = now_ns();
    let end = start + len.as_nanos() as u64;
    let (mut n, mut t) = (0u64, start);
    while t < end {
        send_all(fd, req)?;
        recv_exact(fd, resp)?;
        t = now_ns();
        n += 1;
    }
    Ok((n, t - start))
}
