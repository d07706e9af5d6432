//! The real [`PathSet`]: one `nslat serve` session per path, all driven by one pinned client
//! thread. The thread enters each path's network namespace to make that path's sockets (so
//! they live there), then runs the schedule; the server gives every session its own pinned
//! data thread. TCP_CRR makes its connections during the blocks, so the thread re-enters the
//! path's namespace before each of that path's blocks (outside the timed part).

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::schedule::{
    self, Block, BlockSize, BlockSpec, Interleaved, PathSet, ScheduleConfig, StopRule,
};
use crate::bench::client::{self, ClientError, Watchdog, DATA_TIMEOUT};
use crate::bench::control::ServerDone;
use crate::bench::rr::{seq_len, tcp_transaction, udp_transaction, UDP_TIMEOUT};
use crate::bench::timing::{new_histogram, now_ns, pin_to, thread_cpu_ns, LoopOutcome};
use crate::bench::{RunResult, RunSpec, TestKind};
use crate::netns::NetnsError;

/// One path: where the client's sockets live and which server they talk to.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PathSpec {
    /// As reports show it, e.g. `bridge` or `host (A/A)`.
    pub label: String,
    /// Namespace the client's sockets are made in (`None`: the caller's).
    pub netns: Option<PathBuf>,
    /// The `nslat serve` control address this path reaches.
    pub server: SocketAddr,
    pub token: Option<String>,
}

/// Cuts paths out of a running schedule from another thread (e.g. when a container exits
/// mid-run: its sockets would otherwise wait for the watchdog, and every other path with them).
/// A cut shuts the path's data socket down: its blocked receive returns, its block fails, the
/// schedule goes on without it, and its session is not ended over the control connection
/// (which may lead nowhere now). Nothing is checked per transaction.
#[derive(Debug, Default)]
pub struct PathCut {
    /// Per path: a duplicate of its data socket (set when opened), and whether it was cut.
    fds: Mutex<Vec<(Option<OwnedFd>, bool)>>,
}

impl PathCut {
    pub fn new() -> Arc<PathCut> {
        Arc::new(PathCut::default())
    }

    fn register(&self, path: usize, fd: Option<OwnedFd>) {
        let mut fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        if fds.len() <= path {
            fds.resize_with(path + 1, || (None, false));
        }
        if fds[path].1 {
            // Cut before it was opened.
            if let Some(fd) = &fd {
                let _ =
                    nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
            }
        }
        fds[path].0 = fd;
    }

    /// Cuts `path` (an index into the measured paths); true if it was not cut before.
    pub fn cut(&self, path: usize) -> bool {
        let mut fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        if fds.len() <= path {
            fds.resize_with(path + 1, || (None, false));
        }
        let (fd, cut) = &mut fds[path];
        if *cut {
            return false;
        }
        *cut = true;
        if let Some(fd) = fd {
            let _ = nix::sys::socket::shutdown(fd.as_raw_fd(), nix::sys::socket::Shutdown::Both);
        }
        true
    }

    /// Whether `path` was cut.
    pub fn was_cut(&self, path: usize) -> bool {
        let fds = self.fds.lock().unwrap_or_else(|e| e.into_inner());
        fds.get(path).is_some_and(|(_, c)| *c)
    }
}

/// Errors that stop an interleaved measurement (one path failing does not: see
/// [`Measured::failures`]).
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    #[error("invalid measurement: {0}")]
    Invalid(String),
    #[error("the baseline path {label} failed")]
    Baseline {
        label: String,
        #[source]
        error: ClientError,
    },
    #[error("the measuring thread: {0}")]
    Thread(String),
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// What [`measure`] measured.
#[derive(Debug)]
pub struct Measured {
    pub labels: Vec<String>,
    /// Per path, its figures over the timed blocks (`None`: the path failed).
    pub runs: Vec<Option<RunResult>>,
    /// The rounds: block means, paired statistics.
    pub rounds: Interleaved<ClientError>,
    /// Per path, errors ending its session after the schedule (kept, never dropped).
    pub cleanup: Vec<(usize, ClientError)>,
}

impl Measured {
    /// Paths that failed during the schedule, with the error.
    pub fn failures(&self) -> impl Iterator<Item = (&str, &ClientError)> {
        self.rounds
            .failures
            .iter()
            .map(|f| (self.labels[f.path].as_str(), &f.error))
    }
}

enum Conn {
    Tcp(TcpStream),
    Udp(UdpSocket),
    /// TCP_CRR: a fresh connection per transaction to this data address.
    Crr(SocketAddr),
    /// The path could not be opened; the error is reported by its first block.
    Failed(Option<ClientError>),
    Closed,
}

struct Path {
    label: String,
    ctl: Option<TcpStream>,
    conn: Conn,
    /// The path's namespace, kept open (TCP_CRR enters it before its blocks); `None`: the
    /// calling thread's own.
    ns: Option<File>,
    hist: Histogram<u64>,
    req: Vec<u8>,
    resp: Vec<u8>,
    seq: u64,
    watchdog: Option<Watchdog>,
}

/// One session per path, opened by the calling thread (which must stay the measuring thread).
pub struct SocketPaths {
    test: TestKind,
    paths: Vec<Path>,
    /// The calling thread's namespace when the set was opened.
    home: File,
    /// Which namespace the thread is in now (index into `paths`; `None`: home).
    current_ns: Option<usize>,
    /// Paths another thread may cut out (see [`PathCut`]).
    cut: Arc<PathCut>,
}

fn io_err(label: &str, what: &str) -> impl FnOnce(io::Error) -> ClientError {
    let what = format!("{label}: {what}");
    move |error| ClientError::Io { what, error }
}

fn enter(file: &File) -> Result<(), ClientError> {
    nix::sched::setns(file.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        ClientError::Io {
            what: "entering a path's network namespace".into(),
            error: e.into(),
        }
    })
}

impl SocketPaths {
    /// Opens a session per path, `template` saying the test, sizes and CPUs (its server and
    /// namespace are each path's). `session` bounds how long the sessions may last. A path
    /// that cannot be opened stays in the set and fails its first block.
    pub fn open(
        paths: &[PathSpec],
        template: &RunSpec,
        session: Duration,
    ) -> Result<SocketPaths, MeasureError> {
        Self::open_cuttable(paths, template, session, PathCut::new())
    }

    /// [`SocketPaths::open`], with paths `cut` may cut out from another thread.
    pub fn open_cuttable(
        paths: &[PathSpec],
        template: &RunSpec,
        session: Duration,
        cut: Arc<PathCut>,
    ) -> Result<SocketPaths, MeasureError> {
        let home = File::open("/proc/thread-self/ns/net")
            .map_err(|e| MeasureError::Thread(format!("opening its namespace: {e}")))?;
        let mut set = SocketPaths {
            test: template.test,
            paths: Vec::with_capacity(paths.len()),
            home,
            current_ns: None,
            cut,
        };
        for (i, p) in paths.iter().enumerate() {
            let path = set.open_one(i, p, template, session);
            set.paths.push(path);
        }
        set.go_home()?;
        Ok(set)
    }

    fn go_home(&mut self) -> Result<(), MeasureError> {
        if self.current_ns.is_some() {
            enter(&self.home).map_err(|e| MeasureError::Thread(e.to_string()))?;
            self.current_ns = None;
        }
        Ok(())
    }

    fn open_one(&mut self, i: usize, p: &PathSpec, template: &RunSpec, session: Duration) -> Path {
        let mut path = Path {
            label: p.label.clone(),
            ctl: None,
            conn: Conn::Closed,
            ns: None,
            hist: new_histogram(),
            req: vec![0u8; template.request_size.max(1)],
            resp: vec![0u8; template.response_size.max(1)],
            seq: 0,
            watchdog: None,
        };
        if !template.test.is_request_response() {
            path.req = vec![0u8; template.send_size.max(1)];
        }
        let opened = (|| -> Result<(), ClientError> {
            match &p.netns {
                Some(ns) => {
                    let file = File::open(ns).map_err(|e| {
                        if e.kind() == io::ErrorKind::NotFound {
                            ClientError::from(NetnsError::NotFound(ns.display().to_string()))
                        } else {
                            io_err(&p.label, "opening its namespace")(e)
                        }
                    })?;
                    enter(&file)?;
                    self.current_ns = Some(i);
                    path.ns = Some(file);
                }
                // The caller's namespace: entered again only if another path's was entered.
                None if self.current_ns.is_some() => {
                    enter(&self.home)?;
                    self.current_ns = None;
                }
                None => {}
            }
            let mut spec = template.clone();
            spec.server = p.server;
            spec.netns = p.netns.clone();
            spec.token = p.token.clone();
            spec.warmup = Duration::ZERO;
            spec.duration = session;
            let (ctl, port) = client::handshake(&spec)?;
            path.ctl = Some(ctl);
            let data = SocketAddr::new(p.server.ip(), port);
            let limit = session.saturating_add(DATA_TIMEOUT);
            path.conn = match template.test {
                TestKind::UdpRr => {
                    let any = match data.ip() {
                        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                    };
                    let s = UdpSocket::bind(SocketAddr::new(any, 0))
                        .and_then(|s| s.connect(data).map(|_| s))
                        .and_then(|s| s.set_read_timeout(Some(UDP_TIMEOUT)).map(|_| s))
                        .map_err(io_err(&p.label, "opening a UDP socket"))?;
                    self.cut.register(i, s.as_fd().try_clone_to_owned().ok());
                    Conn::Udp(s)
                }
                TestKind::TcpCrr => {
                    path.watchdog = Some(Watchdog::arm(limit, None));
                    Conn::Crr(data)
                }
                _ => {
                    let s = client::connect_data(data)?;
                    path.watchdog = Some(Watchdog::arm(limit, s.as_fd().try_clone_to_owned().ok()));
                    self.cut.register(i, s.as_fd().try_clone_to_owned().ok());
                    Conn::Tcp(s)
                }
            };
            Ok(())
        })();
        if let Err(e) = opened {
            path.conn = Conn::Failed(Some(e));
        }
        path
    }

    /// Ends every session: closes the data connections, exchanges done and bye. Returns each
    /// path's server figures and histogram, and every error met (none is dropped).
    pub fn finish(mut self) -> Finished {
        let mut done = Vec::with_capacity(self.paths.len());
        let mut errors = Vec::new();
        for (i, p) in self.paths.iter_mut().enumerate() {
            let failed = matches!(p.conn, Conn::Failed(_)) || self.cut.was_cut(i);
            p.conn = Conn::Closed;
            if p.watchdog.take().is_some_and(Watchdog::disarm) {
                errors.push((
                    i,
                    ClientError::Io {
                        what: format!("{}: the server stopped answering", p.label),
                        error: io::ErrorKind::TimedOut.into(),
                    },
                ));
            }
            match (p.ctl.as_mut(), failed) {
                (Some(ctl), false) => match client::finish_session(ctl) {
                    Ok(s) => done.push(Some(s)),
                    Err(e) => {
                        errors.push((i, e));
                        done.push(None);
                    }
                },
                _ => done.push(None),
            }
        }
        if let Err(e) = self.go_home() {
            errors.push((
                0,
                ClientError::Io {
                    what: e.to_string(),
                    error: io::ErrorKind::Other.into(),
                },
            ));
        }
        let hists = self
            .paths
            .iter_mut()
            .map(|p| std::mem::replace(&mut p.hist, Histogram::new(1).expect("valid")))
            .collect();
        Finished {
            server: done,
            hists,
            errors,
        }
    }
}

/// What [`SocketPaths::finish`] returns.
pub struct Finished {
    /// Per path, the server's side (`None`: the path failed or its session did not end well).
    pub server: Vec<Option<ServerDone>>,
    /// Per path, every timed transaction.
    pub hists: Vec<Histogram<u64>>,
    /// Errors ending the sessions, by path.
    pub errors: Vec<(usize, ClientError)>,
}

/// B transactions of `tx`, each timed with one clock read (the loop every test shares but
/// UDP_RR, whose lost requests are not transactions).
#[inline(always)]
fn timed_block(
    n: u64,
    bytes_per_tx: usize,
    hist: &mut Histogram<u64>,
    spec: BlockSpec,
    mut tx: impl FnMut() -> io::Result<()>,
) -> io::Result<Block> {
    let mut b = Block::default();
    let start = now_ns();
    let mut t0 = start;
    for _ in 0..n {
        tx()?;
        let t1 = now_ns();
        record(&mut b, hist, spec, t1 - t0);
        t0 = t1;
    }
    b.transactions = n;
    b.elapsed_ns = t0 - start;
    b.bytes = n * bytes_per_tx as u64;
    Ok(b)
}

/// B request/response transactions on a connected TCP socket.
#[inline]
fn tcp_rr_block(
    fd: i32,
    req: &[u8],
    resp: &mut [u8],
    n: u64,
    hist: &mut Histogram<u64>,
    spec: BlockSpec,
) -> io::Result<Block> {
    let bytes = req.len() + resp.len();
    timed_block(n, bytes, hist, spec, || tcp_transaction(fd, req, resp))
}

/// Times one completed transaction: into the histogram when timed, into the stalls when slow.
#[inline(always)]
fn record(b: &mut Block, hist: &mut Histogram<u64>, spec: BlockSpec, d: u64) {
    if spec.timed {
        hist.saturating_record(d);
    }
    if d > spec.stall_ns {
        b.stalls += 1;
        b.stall_ns += d;
    }
}

/// B UDP transactions; a request without an answer within [`UDP_TIMEOUT`] is lost (its time
/// stays in the block).
#[inline]
#[allow(clippy::too_many_arguments)]
fn udp_rr_block(
    fd: i32,
    req: &mut [u8],
    resp: &mut [u8],
    seq: &mut u64,
    n: u64,
    hist: &mut Histogram<u64>,
    spec: BlockSpec,
) -> io::Result<Block> {
    let k = seq_len(req.len(), resp.len());
    let mut b = Block::default();
    let start = now_ns();
    let mut t0 = start;
    for _ in 0..n {
        let answered = udp_transaction(fd, req, resp, k, seq)?;
        let t1 = now_ns();
        if answered {
            record(&mut b, hist, spec, t1 - t0);
            b.transactions += 1;
            b.bytes += (req.len() + resp.len()) as u64;
        } else {
            b.lost += 1;
        }
        t0 = t1;
    }
    b.elapsed_ns = t0 - start;
    Ok(b)
}

/// B connections: connect, request, response, close.
#[inline]
fn crr_block(
    addr: SocketAddr,
    req: &[u8],
    resp: &mut [u8],
    n: u64,
    hist: &mut Histogram<u64>,
    spec: BlockSpec,
) -> io::Result<Block> {
    let bytes = req.len() + resp.len();
    timed_block(n, bytes, hist, spec, || {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.write_all(req)?;
        s.read_exact(resp)
    })
}

/// A time slice of a stream: send (TCP_STREAM) or receive (TCP_MAERTS) calls until `slice_ns`
/// has passed, each call timed.
#[inline]
fn stream_block(
    s: &TcpStream,
    send: bool,
    buf: &mut [u8],
    slice_ns: u64,
    hist: &mut Histogram<u64>,
    spec: BlockSpec,
) -> io::Result<Block> {
    let mut s = s;
    let mut b = Block::default();
    let start = now_ns();
    let mut t0 = start;
    while t0 - start < slice_ns {
        let n = if send { s.write(buf)? } else { s.read(buf)? };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the data connection",
            ));
        }
        let t1 = now_ns();
        record(&mut b, hist, spec, t1 - t0);
        b.transactions += 1;
        b.bytes += n as u64;
        t0 = t1;
    }
    b.elapsed_ns = t0 - start;
    Ok(b)
}

impl PathSet for SocketPaths {
    type Error = ClientError;

    fn len(&self) -> usize {
        self.paths.len()
    }

    fn block(&mut self, i: usize, spec: BlockSpec) -> Result<Block, ClientError> {
        let test = self.test;
        if matches!(self.paths[i].conn, Conn::Crr(_)) {
            let want = self.paths[i].ns.as_ref().map(|_| i);
            if self.current_ns != want {
                enter(self.paths[i].ns.as_ref().unwrap_or(&self.home))?;
                self.current_ns = want;
            }
        }
        let p = &mut self.paths[i];
        let what = match test {
            TestKind::TcpCrr => "TCP_CRR connection",
            TestKind::UdpRr => "UDP_RR data socket",
            _ => "data connection",
        };
        // The lead-in: the first transactions after switching paths pay the path's cold caches
        // (measured: +6 to +14 µs on the first of a block, next to nothing from the second on), which a
        // steady run does not; they run untimed, outside the block.
        if let (BlockSize::Transactions(_), n @ 1..) = (spec.size, spec.lead_in) {
            let lead = BlockSpec {
                size: BlockSize::Transactions(n),
                timed: false,
                stall_ns: u64::MAX,
                lead_in: 0,
            };
            p.run_block(test, lead, what)?;
        }
        let cpu0 = thread_cpu_ns();
        let mut b = p.run_block(test, spec, what)?;
        b.cpu_ns = thread_cpu_ns() - cpu0;
        Ok(b)
    }
}

impl Path {
    /// One block of `test` on this path's connection (`what` names the socket in errors).
    fn run_block(
        &mut self,
        test: TestKind,
        spec: BlockSpec,
        what: &str,
    ) -> Result<Block, ClientError> {
        let n = match spec.size {
            BlockSize::Transactions(n) => n,
            BlockSize::Time(_) => 0,
        };
        let slice = match spec.size {
            BlockSize::Time(t) => t.as_nanos() as u64,
            BlockSize::Transactions(_) => 0,
        };
        let p = self;
        let r = match &mut p.conn {
            Conn::Tcp(s) if test == TestKind::TcpRr => {
                tcp_rr_block(s.as_raw_fd(), &p.req, &mut p.resp, n, &mut p.hist, spec)
            }
            Conn::Tcp(s) => stream_block(
                s,
                test == TestKind::TcpStream,
                &mut p.req,
                slice,
                &mut p.hist,
                spec,
            ),
            Conn::Udp(s) => udp_rr_block(
                s.as_raw_fd(),
                &mut p.req,
                &mut p.resp,
                &mut p.seq,
                n,
                &mut p.hist,
                spec,
            ),
            Conn::Crr(addr) => crr_block(*addr, &p.req, &mut p.resp, n, &mut p.hist, spec),
            Conn::Failed(e) => {
                return Err(e.take().unwrap_or_else(|| ClientError::Io {
                    what: format!("{}: could not be opened", p.label),
                    error: io::ErrorKind::NotConnected.into(),
                }))
            }
            Conn::Closed => {
                return Err(ClientError::Io {
                    what: format!("{}: closed", p.label),
                    error: io::ErrorKind::NotConnected.into(),
                })
            }
        };
        r.map_err(io_err(&p.label, what))
    }
}

/// How long the sessions of a schedule may last (sent to the servers as the test length).
pub fn session_length(cfg: &ScheduleConfig) -> Duration {
    let measuring = match cfg.stop {
        StopRule::Time(t) => t,
        StopRule::Precision { budget, .. } => budget,
    };
    // Switching between paths and the warm-up take time beyond the measured blocks.
    (cfg.warmup + measuring).saturating_mul(2) + Duration::from_secs(5)
}

/// Measures `paths` with the interleaved schedule on one thread pinned to
/// `template.client_cpu`; the servers pin each session's data thread to `template.server_cpu`.
/// `stop` (a signal flag) ends the schedule early.
pub fn measure(
    paths: &[PathSpec],
    template: &RunSpec,
    cfg: &ScheduleConfig,
    stop: &Arc<AtomicBool>,
) -> Result<Measured, MeasureError> {
    measure_cuttable(paths, template, cfg, stop, PathCut::new())
}

/// [`measure`], with paths `cut` may cut out from another thread while the schedule runs (a
/// cut path fails like a path whose connection broke; the others go on).
pub fn measure_cuttable(
    paths: &[PathSpec],
    template: &RunSpec,
    cfg: &ScheduleConfig,
    stop: &Arc<AtomicBool>,
    cut: Arc<PathCut>,
) -> Result<Measured, MeasureError> {
    let mut check = template.clone();
    check.duration = Duration::from_secs(1);
    client::validate(&check).map_err(|e| MeasureError::Invalid(e.to_string()))?;
    if paths.is_empty() {
        return Err(MeasureError::Invalid("no paths to measure".into()));
    }
    if cfg.baseline >= paths.len() {
        return Err(MeasureError::Invalid(format!(
            "baseline path {} of {}",
            cfg.baseline,
            paths.len()
        )));
    }
    let (paths, template, cfg, stop) = (paths.to_vec(), template.clone(), *cfg, stop.clone());
    std::thread::Builder::new()
        .name("nslat-interleave".into())
        .spawn(move || measure_here(&paths, &template, &cfg, &stop, cut))
        .map_err(|e| MeasureError::Thread(format!("spawning: {e}")))?
        .join()
        .map_err(|_| MeasureError::Thread("panicked".into()))?
}

fn measure_here(
    paths: &[PathSpec],
    template: &RunSpec,
    cfg: &ScheduleConfig,
    stop: &AtomicBool,
    cut: Arc<PathCut>,
) -> Result<Measured, MeasureError> {
    if let Some(cpu) = template.client_cpu {
        pin_to(cpu).map_err(|e| MeasureError::Thread(format!("pinning to CPU {cpu}: {e}")))?;
    }
    let mut set = SocketPaths::open_cuttable(paths, template, session_length(cfg), cut)?;
    let rounds = schedule::run(&mut set, cfg, stop);
    let Finished {
        server: done,
        hists,
        errors: cleanup,
    } = set.finish();
    let rounds = match rounds {
        Ok(r) => r,
        Err(schedule::ScheduleError::Baseline(error)) => {
            return Err(MeasureError::Baseline {
                label: paths[cfg.baseline].label.clone(),
                error,
            })
        }
        Err(e) => return Err(MeasureError::Invalid(e.to_string())),
    };
    let mut runs = Vec::with_capacity(paths.len());
    for ((i, p), hist) in paths.iter().enumerate().zip(hists) {
        if rounds.failed(i).is_some() {
            runs.push(None);
            continue;
        }
        let Some(server) = done.get(i).cloned().flatten() else {
            runs.push(None);
            continue;
        };
        let total = rounds.totals[i];
        let warm = rounds.warmup[i];
        let out = LoopOutcome {
            warmup_transactions: warm.attempts(),
            transactions: total.transactions,
            lost: total.lost,
            elapsed_ns: total.elapsed_ns,
            cpu_ns: total.cpu_ns,
        };
        let mut spec = template.clone();
        spec.server = p.server;
        spec.netns = p.netns.clone();
        runs.push(Some(client::result(
            &spec,
            &out,
            total.bytes,
            &server,
            hist,
        )));
    }
    Ok(Measured {
        labels: paths.iter().map(|p| p.label.clone()).collect(),
        runs,
        rounds,
        cleanup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::server::{Server, ServerConfig};

    fn cfg(stop: Duration) -> ScheduleConfig {
        ScheduleConfig {
            warmup: Duration::from_millis(20),
            stop: StopRule::Time(stop),
            ..ScheduleConfig::default()
        }
    }

    fn path(label: &str, server: SocketAddr) -> PathSpec {
        PathSpec {
            label: label.into(),
            netns: None,
            server,
            token: None,
        }
    }

    #[test]
    fn every_test_runs_interleaved_on_loopback() {
        let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let h = server.spawn();
        for test in TestKind::ALL {
            let mut t = RunSpec::new(addr, test, Duration::from_secs(1));
            t.send_size = 16 * 1024;
            let paths = [path("a", addr), path("a (A/A)", addr)];
            let mut c = cfg(Duration::from_millis(200));
            c.time_sliced = !test.is_request_response();
            let m = measure(&paths, &t, &c, &Arc::new(AtomicBool::new(false))).unwrap();
            assert!(m.cleanup.is_empty(), "{test}: {:?}", m.cleanup);
            assert_eq!(m.failures().count(), 0, "{test}");
            assert!(
                m.rounds.rounds() >= 2,
                "{test}: {} rounds",
                m.rounds.rounds()
            );
            for (i, run) in m.runs.iter().enumerate() {
                let run = run.as_ref().unwrap();
                let hist = run.histogram.as_ref().unwrap();
                assert!(run.transactions > 0, "{test}");
                assert_eq!(
                    hist.len(),
                    run.transactions,
                    "{test}: every transaction timed"
                );
                assert_eq!(run.transactions, m.rounds.totals[i].transactions);
                assert!(run.latency_us.mean > 0.0, "{test}");
                if test == TestKind::UdpRr {
                    // Under load an answer may come after the timeout: counted, not hidden.
                    assert_eq!(run.lost, Some(m.rounds.totals[i].lost));
                }
                if !test.is_request_response() {
                    assert!(run.throughput_gbps.unwrap() > 0.0, "{test}");
                }
            }
            // Paired over every round (the ratio itself is tested on fakes and on real labs:
            // on a loaded machine a 200 ms loopback run says little about it).
            let p = m.rounds.paired(1).unwrap();
            assert_eq!(p.rounds, m.rounds.rounds(), "{test}");
            assert!(p.ratio.estimate > 0.0, "{test}: {p:?}");
        }
        h.stop();
    }

    #[test]
    fn a_lost_datagram_costs_its_timeout_and_is_counted() {
        let mut sc = ServerConfig::new("127.0.0.1:0".parse().unwrap());
        sc.udp_drop_every = Some(20);
        let server = Server::bind(sc).unwrap();
        let addr = server.local_addr();
        let h = server.spawn();
        let t = RunSpec::new(addr, TestKind::UdpRr, Duration::from_secs(1));
        let mut c = cfg(Duration::from_millis(300));
        c.block_transactions = Some(10);
        let paths = [path("a", addr), path("b", addr)];
        let m = measure(&paths, &t, &c, &Arc::new(AtomicBool::new(false))).unwrap();
        for i in 0..2 {
            let tot = m.rounds.totals[i];
            let attempts = tot.attempts() + m.rounds.warmup[i].attempts();
            // The server drops every 20th request it gets, over both sessions.
            assert!(tot.lost > 0, "{tot:?}");
            assert!(tot.lost * 40 >= attempts.saturating_sub(40), "{tot:?}");
            assert_eq!(m.runs[i].as_ref().unwrap().lost, Some(tot.lost));
            // Every loss waited for its timeout: it is in the blocks' time.
            let lost_ns = tot.lost * UDP_TIMEOUT.as_nanos() as u64;
            assert!(tot.elapsed_ns >= lost_ns, "{tot:?}");
            let mean = m.rounds.mean_ci(i).unwrap().estimate;
            assert!(
                mean * tot.attempts() as f64 >= lost_ns as f64 * 0.9,
                "{mean}"
            );
        }
        h.stop();
    }

    #[test]
    fn a_path_that_cannot_be_opened_fails_alone_and_the_baseline_failing_ends_it() {
        let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let h = server.spawn();
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let t = RunSpec::new(addr, TestKind::TcpRr, Duration::from_secs(1));
        let stop = Arc::new(AtomicBool::new(false));
        let c = cfg(Duration::from_millis(100));
        let m = measure(&[path("a", addr), path("gone", dead)], &t, &c, &stop).unwrap();
        let failed: Vec<_> = m.failures().collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].0, "gone");
        assert!(matches!(failed[0].1, ClientError::Connect { .. }));
        assert!(m.runs[0].is_some() && m.runs[1].is_none());
        let e = measure(&[path("gone", dead), path("a", addr)], &t, &c, &stop).unwrap_err();
        assert!(
            matches!(&e, MeasureError::Baseline { label, error: ClientError::Connect { .. } } if label == "gone"),
            "{e}"
        );
        h.stop();
    }
}
