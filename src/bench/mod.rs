//! The measurement engine: a netserver (`nslat serve`) and a client (`nslat run`) speaking
//! nslat's own control protocol, with netperf's tests and per-transaction timing.
//!
//! Shared types live here so that `compare` and the CLI program against one interface.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

pub mod client;
pub mod control;
pub mod crr;
pub mod openloop;
pub mod rr;
pub mod server;
pub mod stream;
pub mod timing;
pub mod token;

/// The default control port, netperf's.
pub const DEFAULT_PORT: u16 = 12866;

/// A test, with netperf's names and meanings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TestKind {
    /// One TCP connection, one transaction in flight: request, response.
    #[serde(rename = "TCP_RR")]
    TcpRr,
    /// The same over UDP, with a per-transaction timeout; lost datagrams are counted.
    #[serde(rename = "UDP_RR")]
    UdpRr,
    /// Connect, request, response, close: one new connection per transaction.
    #[serde(rename = "TCP_CRR")]
    TcpCrr,
    /// Bulk throughput from client to server.
    #[serde(rename = "TCP_STREAM")]
    TcpStream,
    /// Bulk throughput from server to client.
    #[serde(rename = "TCP_MAERTS")]
    TcpMaerts,
}

impl TestKind {
    /// All tests, in a stable order.
    pub const ALL: [TestKind; 5] = [
        TestKind::TcpRr,
        TestKind::UdpRr,
        TestKind::TcpCrr,
        TestKind::TcpStream,
        TestKind::TcpMaerts,
    ];

    /// netperf's name, e.g. `TCP_RR`.
    pub fn name(self) -> &'static str {
        match self {
            TestKind::TcpRr => "TCP_RR",
            TestKind::UdpRr => "UDP_RR",
            TestKind::TcpCrr => "TCP_CRR",
            TestKind::TcpStream => "TCP_STREAM",
            TestKind::TcpMaerts => "TCP_MAERTS",
        }
    }

    /// Request/response tests measure latency; the stream tests measure throughput.
    pub fn is_request_response(self) -> bool {
        matches!(self, TestKind::TcpRr | TestKind::UdpRr | TestKind::TcpCrr)
    }
}

impl fmt::Display for TestKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Error for a test name that is not one of netperf's.
#[derive(Debug, thiserror::Error)]
#[error("unknown test '{0}': use one of TCP_RR, UDP_RR, TCP_CRR, TCP_STREAM, TCP_MAERTS")]
pub struct UnknownTest(pub String);

impl FromStr for TestKind {
    type Err = UnknownTest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let up = s.to_ascii_uppercase().replace('-', "_");
        TestKind::ALL
            .into_iter()
            .find(|t| t.name() == up)
            .ok_or_else(|| UnknownTest(s.to_string()))
    }
}

/// A run's latency figures (`RunResult::latency_us`): the one summary type, owned by
/// [`crate::stats`].
pub use crate::stats::LatencySummary;

/// CPU cost of a run, in microseconds of CPU time per transaction (or per MB for streams).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct CpuUsage {
    pub client_cpu: f64,
    pub server_cpu: f64,
    /// What the figures are per: "us/tx" or "us/MB".
    pub unit: String,
}

/// Where the client and server loops ran.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Placement {
    pub client_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
}

/// Everything the client needs for one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunSpec {
    /// The server's control address (`nslat serve`).
    pub server: std::net::SocketAddr,
    pub test: TestKind,
    /// Measured time, after the warm-up.
    pub duration: std::time::Duration,
    /// Time run before measuring; its transactions are not in the results.
    pub warmup: std::time::Duration,
    /// Request and response sizes in bytes (netperf's `-r REQ,RESP`).
    pub request_size: usize,
    pub response_size: usize,
    /// Send size for the stream tests.
    pub send_size: usize,
    /// CPU to pin the client's loop to, and the CPU the server is asked to pin its side to.
    pub client_cpu: Option<usize>,
    pub server_cpu: Option<usize>,
    /// Network namespace for the client's sockets (None: the caller's).
    pub netns: Option<std::path::PathBuf>,
    pub token: Option<String>,
}

impl RunSpec {
    /// A TCP_RR 1,1 run of `duration` seconds against `server`, no pinning, 1 s warm-up.
    pub fn new(
        server: std::net::SocketAddr,
        test: TestKind,
        duration: std::time::Duration,
    ) -> Self {
        RunSpec {
            server,
            test,
            duration,
            warmup: std::time::Duration::from_secs(1),
            request_size: 1,
            response_size: 1,
            send_size: 64 * 1024,
            client_cpu: None,
            server_cpu: None,
            netns: None,
            token: None,
        }
    }
}

/// A data connection's ends (`nslat run --json`'s `data_socket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataSocket {
    pub local: std::net::SocketAddr,
    pub peer: std::net::SocketAddr,
}

impl DataSocket {
    /// The socket's ends, `None` when the kernel cannot say.
    pub fn of(
        local: std::io::Result<std::net::SocketAddr>,
        peer: std::io::Result<std::net::SocketAddr>,
    ) -> Option<Self> {
        Some(DataSocket {
            local: local.ok()?,
            peer: peer.ok()?,
        })
    }

    /// 4 or 6: the family of both ends (an IPv4-mapped IPv6 address counts as 4).
    pub fn family(&self) -> u8 {
        let v4 = |a: &std::net::SocketAddr| match a.ip() {
            std::net::IpAddr::V4(_) => true,
            std::net::IpAddr::V6(v) => v.to_ipv4_mapped().is_some(),
        };
        if v4(&self.local) || v4(&self.peer) {
            4
        } else {
            6
        }
    }
}

/// The outcome of one run: what `nslat run --json` prints, and what `compare` aggregates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub test: TestKind,
    /// Transactions measured (after warm-up). For streams: send/recv calls.
    pub transactions: u64,
    /// Transactions done during the warm-up (not in any figure below; probes divide by the sum).
    pub warmup_transactions: u64,
    pub elapsed_s: f64,
    pub trans_per_s: f64,
    pub latency_us: LatencySummary,
    pub cpu: CpuUsage,
    /// UDP_RR: requests whose response never came (per-transaction timeout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost: Option<u64>,
    /// UDP_RR: datagrams the server dropped before the run's first request because they came
    /// from another address than this client's control connection (a stray or spoofed sender).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub foreign_datagrams: Option<u64>,
    /// TCP_STREAM / TCP_MAERTS.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throughput_gbps: Option<f64>,
    pub request_size: usize,
    pub response_size: usize,
    /// e.g. "CLOCK_MONOTONIC".
    pub clock: String,
    pub placement: Placement,
    /// The data socket's two ends as the kernel has them (TCP_RR, UDP_RR, streams): its family
    /// is the family the run measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_socket: Option<DataSocket>,
    /// Every measured transaction's latency in nanoseconds (not serialized).
    #[serde(skip)]
    pub histogram: Option<hdrhistogram::Histogram<u64>>,
}

impl RunSpec {
    /// The settings the paths of a schedule share (test, length), before any server: every path
    /// brings its own server, namespace and token ([`crate::measure::sockets::PathSpec`]), so
    /// the address here is a placeholder that no run connects to.
    pub fn template(test: TestKind, duration: std::time::Duration) -> Self {
        RunSpec::new(([127, 0, 0, 1], 1).into(), test, duration)
    }
}
