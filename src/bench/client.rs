//! Drives one run against an `nslat serve`: hello, the test's timed loop on a pinned thread
//! (inside the client's network namespace), done, bye.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use super::control::{
    decode_body, peek_version, read_body, read_message, write_message, ControlError, Hello,
    Message, RefuseCode, ServerDone, PROTOCOL_VERSION,
};
use super::server::{MAX_RR_SIZE, MAX_SEND_SIZE};
use super::timing::{new_histogram, nproc, pin_to, LoopOutcome, CLOCK_NAME};
use super::{
    crr, rr, stream, CpuUsage, DataSocket, LatencySummary, Placement, RunResult, RunSpec, TestKind,
};
use crate::netns::{self, NetnsError};

/// How long the client waits to connect, and for the server's answers.
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// A run still going this long after its planned end is cut (the server stopped answering).
pub const DATA_TIMEOUT: Duration = Duration::from_secs(10);

/// Cuts a run short by shutting its data socket down if it outlives its deadline. The data
/// sockets carry no timeouts: a socket timeout arms a kernel timer on every blocking receive.
pub(crate) struct Watchdog {
    tx: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<bool>>,
}

impl Watchdog {
    pub(crate) fn arm(after: Duration, fd: Option<std::os::fd::OwnedFd>) -> Watchdog {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nslat-watchdog".into())
            .spawn(move || match rx.recv_timeout(after) {
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(fd) = fd {
                        use std::os::fd::AsRawFd;
                        let _ = nix::sys::socket::shutdown(
                            fd.as_raw_fd(),
                            nix::sys::socket::Shutdown::Both,
                        );
                    }
                    true
                }
                _ => false,
            })
            .ok();
        Watchdog {
            tx: Some(tx),
            thread,
        }
    }

    /// Stops the watchdog; true if it had fired.
    pub(crate) fn disarm(mut self) -> bool {
        self.tx.take();
        self.thread
            .take()
            .map(|t| t.join().unwrap_or(false))
            .unwrap_or(false)
    }
}

/// Errors of a run.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid run: {0}")]
    Invalid(String),
    #[error("cannot reach the server at {addr}: {error} (is `nslat serve` running there?)")]
    Connect { addr: SocketAddr, error: io::Error },
    #[error("the server refused the token (wrong or missing): give the server's token with --token-file PATH or NSLAT_TOKEN")]
    Token,
    #[error("protocol version mismatch: this client speaks version {ours}, the server {theirs}; run the same nslat version on both sides")]
    Version { ours: u32, theirs: u32 },
    #[error("the server refused the run: {0}")]
    Refused(String),
    #[error("the server is busy: {0}")]
    Busy(String),
    #[error("{addr} is not an nslat server (it answered like {what}): give the address and port of an `nslat serve`")]
    NotNslat { addr: SocketAddr, what: String },
    #[error("control connection to the server: {0}")]
    Control(ControlError),
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

// By hand, not `#[from]`: the message already holds the control error, and as a source too it
// would print twice in an error chain.
impl From<ControlError> for ClientError {
    fn from(e: ControlError) -> Self {
        ClientError::Control(e)
    }
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> ClientError {
    let what = what.into();
    move |error| ClientError::Io { what, error }
}

/// Checks a spec before anything is opened.
pub fn validate(spec: &RunSpec) -> Result<(), ClientError> {
    let bad = |m: String| Err(ClientError::Invalid(m));
    if spec.duration.is_zero() {
        return bad("the test length must be more than 0 s".into());
    }
    if spec.warmup.saturating_add(spec.duration) > Duration::from_secs(10_000_000) {
        return bad("the test is too long (warm-up plus length above 10,000,000 s)".into());
    }
    if spec.test.is_request_response() {
        for (what, v) in [
            ("request", spec.request_size),
            ("response", spec.response_size),
        ] {
            if !(1..=MAX_RR_SIZE).contains(&v) {
                return bad(format!("{what} size {v} is not in 1..={MAX_RR_SIZE} bytes"));
            }
        }
    } else if !(1..=MAX_SEND_SIZE).contains(&spec.send_size) {
        return bad(format!(
            "send size {} is not in 1..={MAX_SEND_SIZE} bytes",
            spec.send_size
        ));
    }
    let n = nproc();
    for (side, cpu) in [("client", spec.client_cpu), ("server", spec.server_cpu)] {
        if let Some(c) = cpu {
            if c >= n {
                return bad(format!(
                    "{side} CPU {c} does not exist (CPUs are 0..{})",
                    n - 1
                ));
            }
        }
    }
    Ok(())
}

/// Runs one test as `spec` says and returns its figures. The sockets are made, and the loop
/// runs, on a fresh thread inside `spec.netns` (if set), pinned to `spec.client_cpu` (if set).
pub fn run(spec: &RunSpec) -> Result<RunResult, ClientError> {
    validate(spec)?;
    if let Some(ns) = &spec.netns {
        if !ns.exists() {
            return Err(NetnsError::NotFound(ns.display().to_string()).into());
        }
    }
    let spec = spec.clone();
    let ns = spec.netns.clone();
    netns::run_in(ns.as_deref(), move || run_here(&spec))
}

pub(crate) fn handshake(spec: &RunSpec) -> Result<(TcpStream, u16), ClientError> {
    let mut ctl = TcpStream::connect_timeout(&spec.server, CONTROL_TIMEOUT).map_err(|error| {
        ClientError::Connect {
            addr: spec.server,
            error,
        }
    })?;
    let _ = ctl.set_nodelay(true);
    ctl.set_read_timeout(Some(Duration::from_millis(200)))
        .and_then(|_| ctl.set_write_timeout(Some(CONTROL_TIMEOUT)))
        .map_err(io_err("control socket options"))?;
    let total = spec.warmup.saturating_add(spec.duration);
    let hello = Hello {
        version: PROTOCOL_VERSION,
        token: spec.token.clone(),
        test: spec.test,
        request_size: spec.request_size as u32,
        response_size: spec.response_size as u32,
        send_size: spec.send_size as u32,
        server_cpu: spec.server_cpu.map(|c| c as u32),
        duration_ms: total.as_millis() as u64,
    };
    write_message(&mut ctl, &Message::Hello(hello))?;
    let body = match read_body(&mut ctl, Instant::now() + CONTROL_TIMEOUT, &|| true) {
        Ok(b) => b,
        Err(ControlError::Foreign(what)) => {
            return Err(ClientError::NotNslat {
                addr: spec.server,
                what,
            })
        }
        Err(e) => return Err(e.into()),
    };
    let port = match decode_body(&body) {
        Ok(Message::Ack { version, data_port }) if version == PROTOCOL_VERSION => data_port,
        Ok(Message::Ack { version, .. }) => {
            return Err(ClientError::Version {
                ours: PROTOCOL_VERSION,
                theirs: version,
            })
        }
        Ok(Message::Refused {
            version,
            code,
            reason,
        }) => {
            return Err(match code {
                RefuseCode::Version => ClientError::Version {
                    ours: PROTOCOL_VERSION,
                    theirs: version,
                },
                RefuseCode::Token => ClientError::Token,
                RefuseCode::Busy => ClientError::Busy(reason),
                RefuseCode::BadRequest => ClientError::Refused(reason),
            })
        }
        Ok(other) => {
            return Err(ControlError::Garbled(format!("expected ack, got {}", other.kind())).into())
        }
        Err(e) => {
            return Err(match peek_version(&body) {
                Some(v) if v != PROTOCOL_VERSION => ClientError::Version {
                    ours: PROTOCOL_VERSION,
                    theirs: v,
                },
                _ => e.into(),
            })
        }
    };
    Ok((ctl, port))
}

pub(crate) fn connect_data(addr: SocketAddr) -> Result<TcpStream, ClientError> {
    let s = TcpStream::connect_timeout(&addr, CONTROL_TIMEOUT)
        .map_err(io_err(format!("opening the data connection to {addr}")))?;
    s.set_nodelay(true).map_err(io_err("data socket options"))?;
    Ok(s)
}

fn run_here(spec: &RunSpec) -> Result<RunResult, ClientError> {
    if let Some(cpu) = spec.client_cpu {
        pin_to(cpu).map_err(io_err(format!("pinning the client to CPU {cpu}")))?;
    }
    let (mut ctl, port) = handshake(spec)?;
    let data_addr = SocketAddr::new(spec.server.ip(), port);
    let warm = spec.warmup.as_nanos() as u64;
    let dur = spec.duration.as_nanos() as u64;
    let mut hist = new_histogram();
    let what = format!("{} data connection", spec.test);
    let limit = spec
        .warmup
        .saturating_add(spec.duration)
        .saturating_add(DATA_TIMEOUT);
    let mut watchdog = None;
    let mut ends = None;
    let guard =
        |s: &TcpStream| Watchdog::arm(limit, std::os::fd::AsFd::as_fd(s).try_clone_to_owned().ok());
    let looped: Result<(LoopOutcome, u64), ClientError> = (|| {
        Ok(match spec.test {
            TestKind::TcpRr => {
                let s = connect_data(data_addr)?;
                watchdog = Some(guard(&s));
                ends = DataSocket::of(s.local_addr(), s.peer_addr());
                let req = vec![0u8; spec.request_size];
                let mut resp = vec![0u8; spec.response_size];
                let o = rr::tcp_client(&s, &req, &mut resp, warm, dur, &mut hist)
                    .map_err(io_err(what))?;
                (
                    o,
                    o.transactions * (spec.request_size + spec.response_size) as u64,
                )
            }
            TestKind::UdpRr => {
                let any = match data_addr.ip() {
                    IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                };
                let s = UdpSocket::bind(SocketAddr::new(any, 0))
                    .and_then(|s| s.connect(data_addr).map(|_| s))
                    .and_then(|s| s.set_read_timeout(Some(rr::UDP_TIMEOUT)).map(|_| s))
                    .map_err(io_err(format!("opening a UDP socket to {data_addr}")))?;
                ends = DataSocket::of(s.local_addr(), s.peer_addr());
                let mut req = vec![0u8; spec.request_size];
                let mut resp = vec![0u8; spec.response_size];
                let o = rr::udp_client(&s, &mut req, &mut resp, warm, dur, &mut hist)
                    .map_err(io_err(what))?;
                (
                    o,
                    o.transactions * (spec.request_size + spec.response_size) as u64,
                )
            }
            TestKind::TcpCrr => {
                watchdog = Some(Watchdog::arm(limit, None));
                let req = vec![0u8; spec.request_size];
                let mut resp = vec![0u8; spec.response_size];
                let o = crr::client(data_addr, &req, &mut resp, warm, dur, &mut hist)
                    .map_err(io_err(what))?;
                (
                    o,
                    o.transactions * (spec.request_size + spec.response_size) as u64,
                )
            }
            TestKind::TcpStream | TestKind::TcpMaerts => {
                let s = connect_data(data_addr)?;
                watchdog = Some(guard(&s));
                ends = DataSocket::of(s.local_addr(), s.peer_addr());
                let mut buf = vec![0u8; spec.send_size];
                let send = spec.test == TestKind::TcpStream;
                stream::client(&s, send, &mut buf, warm, dur, &mut hist).map_err(io_err(what))?
            }
        })
    })();
    if watchdog.is_some_and(Watchdog::disarm) {
        return Err(ClientError::Io {
            what: format!("{}: the server stopped answering", spec.test),
            error: io::ErrorKind::TimedOut.into(),
        });
    }
    let (out, bytes) = looped?;
    // The data socket is closed by now: the server's data loop ends on its own.
    let server = finish_session(&mut ctl)?;
    let mut r = result(spec, &out, bytes, &server, hist);
    r.data_socket = ends;
    Ok(r)
}

/// Ends a session whose data socket is closed: done, the server's figures, bye.
pub(crate) fn finish_session(ctl: &mut TcpStream) -> Result<ServerDone, ClientError> {
    write_message(ctl, &Message::Done { server: None })?;
    let server = match read_message(ctl, Instant::now() + CONTROL_TIMEOUT, &|| true)? {
        Message::Done { server: Some(s) } => s,
        Message::Done { server: None } => ServerDone::default(),
        other => {
            return Err(
                ControlError::Garbled(format!("expected done, got {}", other.kind())).into(),
            )
        }
    };
    let _ = write_message(ctl, &Message::Bye);
    Ok(server)
}

pub(crate) fn result(
    spec: &RunSpec,
    out: &LoopOutcome,
    bytes: u64,
    server: &ServerDone,
    hist: hdrhistogram::Histogram<u64>,
) -> RunResult {
    let per = |ns: u64, n: f64| if n > 0.0 { ns as f64 / 1000.0 / n } else { 0.0 };
    let stream = !spec.test.is_request_response();
    let cpu = if stream {
        CpuUsage {
            client_cpu: per(out.cpu_ns, bytes as f64 / 1e6),
            server_cpu: per(server.cpu_ns, server.bytes as f64 / 1e6),
            unit: "us/MB".into(),
        }
    } else {
        CpuUsage {
            client_cpu: per(out.cpu_ns, out.transactions as f64),
            server_cpu: per(server.cpu_ns, server.transactions as f64),
            unit: "us/tx".into(),
        }
    };
    let elapsed_s = out.elapsed_ns as f64 / 1e9;
    RunResult {
        test: spec.test,
        transactions: out.transactions,
        warmup_transactions: out.warmup_transactions,
        elapsed_s,
        trans_per_s: if elapsed_s > 0.0 {
            out.transactions as f64 / elapsed_s
        } else {
            0.0
        },
        latency_us: LatencySummary::from_histogram(&hist, out.elapsed_ns, out.transactions),
        cpu,
        lost: (spec.test == TestKind::UdpRr).then_some(out.lost),
        foreign_datagrams: (spec.test == TestKind::UdpRr).then_some(server.foreign_datagrams),
        throughput_gbps: (stream && elapsed_s > 0.0).then(|| bytes as f64 * 8.0 / elapsed_s / 1e9),
        request_size: spec.request_size,
        response_size: spec.response_size,
        clock: CLOCK_NAME.into(),
        placement: Placement {
            client_cpu: spec.client_cpu,
            server_cpu: server.cpu.map(|c| c as usize),
        },
        data_socket: None,
        histogram: Some(hist),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::server::{Server, ServerConfig};

    fn spec(addr: SocketAddr, test: TestKind) -> RunSpec {
        let mut s = RunSpec::new(addr, test, Duration::from_millis(300));
        s.warmup = Duration::from_millis(100);
        s.send_size = 16 * 1024;
        s
    }

    #[test]
    fn specs_are_validated() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut s = spec(a, TestKind::TcpRr);
        assert!(validate(&s).is_ok());
        s.request_size = 0;
        assert!(validate(&s).is_err());
        let mut s = spec(a, TestKind::TcpRr);
        s.client_cpu = Some(100_000);
        assert!(validate(&s).is_err());
        let mut s = spec(a, TestKind::TcpStream);
        s.send_size = 0;
        assert!(validate(&s).is_err());
        let mut s = spec(a, TestKind::TcpRr);
        s.duration = Duration::ZERO;
        assert!(validate(&s).is_err());
    }

    #[test]
    fn unreachable_server_is_a_connect_error() {
        // Bind then drop: nothing listens on that port any more.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let err = run(&spec(port, TestKind::TcpRr)).unwrap_err();
        assert!(matches!(err, ClientError::Connect { .. }), "{err}");
    }

    /// Every test against a loopback server, in-process (no root needed).
    #[test]
    fn every_test_on_loopback() {
        let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let h = server.spawn();
        for test in TestKind::ALL {
            let r = run(&spec(addr, test)).unwrap_or_else(|e| panic!("{test}: {e}"));
            assert_eq!(r.test, test);
            assert!(r.transactions > 0, "{test}: {r:?}");
            assert!(r.warmup_transactions > 0, "{test}: {r:?}");
            assert!(r.elapsed_s >= 0.29, "{test}: {r:?}");
            let l = &r.latency_us;
            assert!(l.min <= l.p50 && l.p50 <= l.p90 && l.p90 <= l.p99 && l.p99 <= l.max);
            assert_eq!(r.histogram.as_ref().unwrap().len(), r.transactions);
            if test.is_request_response() {
                assert!(r.trans_per_s > 100.0, "{test}: {r:?}");
            } else {
                assert!(r.throughput_gbps.unwrap() > 0.01, "{test}: {r:?}");
            }
        }
        h.stop();
    }

    /// A fake server that answers every hello with `reply` (a raw frame body).
    fn fake_server(reply: &'static [u8]) -> SocketAddr {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut c, _)) = l.accept() {
                c.set_read_timeout(Some(Duration::from_millis(100)))
                    .unwrap();
                let _ = read_body(&mut c, Instant::now() + Duration::from_secs(5), &|| true);
                let mut frame = (reply.len() as u32).to_be_bytes().to_vec();
                frame.extend_from_slice(reply);
                let _ = std::io::Write::write_all(&mut c, &frame);
            }
        });
        addr
    }

    #[test]
    fn version_mismatch_is_reported_as_such() {
        for reply in [
            &br#"{"type":"refused","version":2,"code":"version","reason":"old client"}"#[..],
            &br#"{"type":"ack","version":3,"data_port":1}"#[..],
            &br#"{"type":"welcome","version":4,"features":["x"]}"#[..],
        ] {
            let err = run(&spec(fake_server(reply), TestKind::TcpRr)).unwrap_err();
            assert!(
                matches!(err, ClientError::Version { ours: PROTOCOL_VERSION, theirs } if theirs > 1),
                "{err}"
            );
            assert!(err.to_string().contains("version"));
        }
        let err = run(&spec(fake_server(b"not json"), TestKind::TcpRr)).unwrap_err();
        assert!(
            matches!(err, ClientError::Control(ControlError::Garbled(_))),
            "{err}"
        );
        let err = run(&spec(
            fake_server(br#"{"type":"refused","version":1,"code":"busy","reason":"full"}"#),
            TestKind::TcpRr,
        ))
        .unwrap_err();
        assert!(matches!(err, ClientError::Busy(_)), "{err}");
    }

    #[test]
    fn wrong_token_is_refused() {
        let mut cfg = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        cfg.token = Some("right".into());
        let server = Server::bind(cfg).unwrap();
        let addr = server.local_addr();
        let h = server.spawn();
        let mut s = spec(addr, TestKind::TcpRr);
        s.token = Some("wrong".into());
        assert!(matches!(run(&s), Err(ClientError::Token)));
        s.token = None;
        assert!(matches!(run(&s), Err(ClientError::Token)));
        s.token = Some("right".into());
        assert!(run(&s).is_ok());
        h.stop();
    }
}
