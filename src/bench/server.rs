//! `nslat serve`: the netserver. One thread accepts control connections; each session gets its
//! own control thread and its own data thread (pinned when the client asks). Every wait is
//! bounded: idle clients, slow clients and vanished clients cost one session, never the server.

use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::control::{
    decode_body, peek_version, read_body, read_message, write_message, Hello, Message, RefuseCode,
    ServerDone, PROTOCOL_VERSION,
};
use super::timing::{is_timeout, nproc, pin_to, thread_cpu_ns};
use super::{crr, rr, stream, TestKind, DEFAULT_PORT};

/// Largest request or response size a server accepts (1 MiB).
pub const MAX_RR_SIZE: usize = 1 << 20;
/// Largest stream send size a server accepts (4 MiB).
pub const MAX_SEND_SIZE: usize = 4 << 20;
/// How often blocked server threads look at their stop flag.
const POLL: Duration = Duration::from_millis(100);

/// Server limits and options.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Control address to listen on.
    pub listen: SocketAddr,
    /// When set, clients must present this token.
    pub token: Option<String>,
    /// Longest test (warm-up included) a client may ask for.
    pub max_duration: Duration,
    /// Sessions served at once; more are refused as busy.
    pub max_clients: usize,
    /// How long a client may stay silent where the server waits for it (hello, data connection).
    pub idle_timeout: Duration,
    /// Testing aid: leave every n-th UDP_RR request unanswered.
    pub udp_drop_every: Option<u32>,
    /// Log one line per session to stderr.
    pub verbose: bool,
}

impl ServerConfig {
    /// Defaults (no token, 1 h max duration, 64 clients, 30 s idle timeout) listening on `listen`.
    pub fn new(listen: SocketAddr) -> Self {
        ServerConfig {
            listen,
            token: None,
            max_duration: Duration::from_secs(3600),
            max_clients: 64,
            idle_timeout: Duration::from_secs(30),
            udp_drop_every: None,
            verbose: false,
        }
    }
}

impl Default for ServerConfig {
    /// Listens on 0.0.0.0:12866.
    fn default() -> Self {
        ServerConfig::new(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            DEFAULT_PORT,
        ))
    }
}

/// Errors starting or running a server.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}: {error}")]
    Bind { addr: SocketAddr, error: io::Error },
    #[error("{what}: {error}")]
    Io { what: String, error: io::Error },
    #[error("the server thread panicked")]
    Panicked,
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

/// A bound, not yet serving, server.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    local: SocketAddr,
    cfg: ServerConfig,
    /// The network namespace `bind` ran in; serving threads enter it.
    netns: File,
}

/// A server serving in background threads; [`ServerHandle::stop`] (or drop) stops and joins them.
#[derive(Debug)]
pub struct ServerHandle {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), ServerError>>>,
    local: SocketAddr,
}

impl Server {
    /// Binds the control socket on the calling thread (so in the calling thread's namespace).
    pub fn bind(cfg: ServerConfig) -> Result<Server, ServerError> {
        let listener = TcpListener::bind(cfg.listen).map_err(|error| ServerError::Bind {
            addr: cfg.listen,
            error,
        })?;
        let local = listener
            .local_addr()
            .map_err(io_err("reading the bound address"))?;
        set_timeouts(&listener, POLL).map_err(io_err("setting the accept timeout"))?;
        let netns = File::open("/proc/thread-self/ns/net")
            .map_err(io_err("opening /proc/thread-self/ns/net"))?;
        Ok(Server {
            listener,
            local,
            cfg,
            netns,
        })
    }

    /// The bound control address (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Serves in background threads.
    pub fn spawn(self) -> ServerHandle {
        let stop = Arc::new(AtomicBool::new(false));
        let local = self.local;
        let flag = stop.clone();
        let thread = thread::Builder::new()
            .name("nslat-serve".into())
            .spawn(move || self.accept_loop(flag))
            .expect("spawning the server thread");
        ServerHandle {
            stop,
            thread: Some(thread),
            local,
        }
    }

    /// Serves until the process ends (or the accept loop fails).
    pub fn serve(self) -> Result<(), ServerError> {
        let mut handle = self.spawn();
        let t = handle.thread.take().expect("a fresh handle has its thread");
        t.join().map_err(|_| ServerError::Panicked)?
    }

    fn accept_loop(self, stop: Arc<AtomicBool>) -> Result<(), ServerError> {
        enter_same_netns(&self.netns)?;
        let cfg = Arc::new(self.cfg);
        let mut sessions: Vec<JoinHandle<()>> = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let (conn, peer) = match self.listener.accept() {
                Ok(c) => c,
                Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    // Out of descriptors or memory, aborted handshakes: wait and go on serving.
                    if cfg.verbose {
                        eprintln!("nslat serve: accept: {e}");
                    }
                    thread::sleep(Duration::from_millis(10));
                    continue;
                }
            };
            sessions.retain(|h| !h.is_finished());
            if sessions.len() >= cfg.max_clients {
                let mut conn = conn;
                let _ = conn.set_write_timeout(Some(POLL));
                refuse(
                    &mut conn,
                    RefuseCode::Busy,
                    "too many clients; try again later",
                );
                continue;
            }
            let verbose = cfg.verbose;
            let (cfg, stop) = (cfg.clone(), stop.clone());
            match thread::Builder::new()
                .name("nslat-session".into())
                .spawn(move || session(conn, peer, &cfg, &stop))
            {
                Ok(h) => sessions.push(h),
                Err(e) if verbose => eprintln!("nslat serve: cannot start a session: {e}"),
                Err(_) => {}
            }
        }
        for h in sessions {
            let _ = h.join();
        }
        Ok(())
    }
}

impl ServerHandle {
    /// The bound control address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Stops serving and joins every thread (sessions included); nothing is left behind.
    pub fn stop(mut self) {
        self.shutdown();
    }

    /// Stops every server of `handles` at once: all are told first, then each is joined, so
    /// N servers take one accept poll ([`POLL`]) to stop, not N.
    pub fn stop_all(handles: impl IntoIterator<Item = ServerHandle>) {
        let handles: Vec<ServerHandle> = handles.into_iter().collect();
        for h in &handles {
            h.stop.store(true, Ordering::Relaxed);
        }
        handles.into_iter().for_each(ServerHandle::stop);
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn io_err(what: &str) -> impl FnOnce(io::Error) -> ServerError + '_ {
    move |error| ServerError::Io {
        what: what.to_string(),
        error,
    }
}

/// Moves the calling thread into the namespace of `ns` unless it is already there.
fn enter_same_netns(ns: &File) -> Result<(), ServerError> {
    let want = ns
        .metadata()
        .map_err(io_err("reading the server's namespace"))?;
    let have = std::fs::metadata("/proc/thread-self/ns/net")
        .map_err(io_err("reading this thread's namespace"))?;
    if want.ino() == have.ino() && want.dev() == have.dev() {
        return Ok(());
    }
    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET).map_err(|e| {
        ServerError::Io {
            what: "entering the server's network namespace".into(),
            error: e.into(),
        }
    })
}

/// `now + d`, saturating at a far future (a configured `Duration::MAX` must not panic).
fn after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// Sets SO_RCVTIMEO and SO_SNDTIMEO (for listeners: the accept timeout).
fn set_timeouts(fd: &impl AsFd, t: Duration) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    use nix::sys::time::{TimeVal, TimeValLike};
    let tv = TimeVal::microseconds(t.as_micros().min(i64::MAX as u128) as i64);
    setsockopt(fd, sockopt::ReceiveTimeout, &tv)?;
    setsockopt(fd, sockopt::SendTimeout, &tv)?;
    Ok(())
}

fn refuse(conn: &mut TcpStream, code: RefuseCode, reason: &str) {
    let _ = write_message(
        conn,
        &Message::Refused {
            version: PROTOCOL_VERSION,
            code,
            reason: reason.to_string(),
        },
    );
}

/// Checks a hello against the server's limits; the refusal to send otherwise.
fn check_hello(h: &Hello, cfg: &ServerConfig) -> Result<(), (RefuseCode, String)> {
    if h.version != PROTOCOL_VERSION {
        return Err((
            RefuseCode::Version,
            format!(
                "protocol version {} is not supported (server speaks {PROTOCOL_VERSION})",
                h.version
            ),
        ));
    }
    if let Some(t) = &cfg.token {
        if !super::token::matches(t, h.token.as_deref()) {
            return Err((RefuseCode::Token, "wrong or missing token".into()));
        }
    }
    let bad = |m: String| Err((RefuseCode::BadRequest, m));
    let (req, resp, send) = (
        h.request_size as usize,
        h.response_size as usize,
        h.send_size as usize,
    );
    if h.test.is_request_response() && !(1..=MAX_RR_SIZE).contains(&req) {
        return bad(format!("request size {req} is not in 1..={MAX_RR_SIZE}"));
    }
    if h.test.is_request_response() && !(1..=MAX_RR_SIZE).contains(&resp) {
        return bad(format!("response size {resp} is not in 1..={MAX_RR_SIZE}"));
    }
    if !h.test.is_request_response() && !(1..=MAX_SEND_SIZE).contains(&send) {
        return bad(format!("send size {send} is not in 1..={MAX_SEND_SIZE}"));
    }
    if Duration::from_millis(h.duration_ms) > cfg.max_duration {
        return bad(format!(
            "a {:.1} s test is longer than the server's --max-duration of {} s",
            h.duration_ms as f64 / 1000.0,
            cfg.max_duration.as_secs_f64()
        ));
    }
    if let Some(cpu) = h.server_cpu {
        if cpu as usize >= nproc() {
            return bad(format!(
                "server CPU {cpu} does not exist (the server has {} CPUs)",
                nproc()
            ));
        }
    }
    Ok(())
}

/// Duplicates of a session's data sockets, shut down to wake its data thread when it must stop.
#[derive(Default, Clone)]
struct Wakers(Arc<std::sync::Mutex<(bool, Vec<std::os::fd::OwnedFd>)>>);

impl Wakers {
    /// Registers a socket; if the session is already stopping, shuts it down at once.
    fn add(&self, fd: &impl AsFd) -> io::Result<()> {
        let dup = fd.as_fd().try_clone_to_owned()?;
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if g.0 {
            shutdown(&dup);
        }
        g.1.push(dup);
        Ok(())
    }

    /// Sets `stop` and shuts every registered socket down (blocked calls return at once).
    fn stop(&self, stop: &AtomicBool) {
        stop.store(true, Ordering::SeqCst);
        let mut g = self.0.lock().unwrap_or_else(|p| p.into_inner());
        g.0 = true;
        for fd in &g.1 {
            shutdown(fd);
        }
    }
}

fn shutdown(fd: &impl AsFd) {
    use std::os::fd::AsRawFd;
    // ENOTCONN on unconnected UDP sockets still wakes their readers; errors are of no use here.
    let _ = nix::sys::socket::shutdown(fd.as_fd().as_raw_fd(), nix::sys::socket::Shutdown::Both);
}

enum DataSocket {
    Tcp(TcpListener),
    Udp(UdpSocket),
}

/// One client session, from hello to bye.
fn session(mut conn: TcpStream, peer: SocketAddr, cfg: &ServerConfig, global_stop: &AtomicBool) {
    let result = session_inner(&mut conn, peer, cfg, global_stop);
    if cfg.verbose {
        match result {
            Ok(msg) => eprintln!("nslat serve: {peer}: {msg}"),
            Err(msg) => eprintln!("nslat serve: {peer}: {msg}"),
        }
    }
}

fn session_inner(
    conn: &mut TcpStream,
    peer: SocketAddr,
    cfg: &ServerConfig,
    global_stop: &AtomicBool,
) -> Result<String, String> {
    let _ = conn.set_nodelay(true);
    conn.set_read_timeout(Some(POLL))
        .and_then(|_| {
            conn.set_write_timeout(Some(cfg.idle_timeout.min(Duration::from_secs(86_400))))
        })
        .map_err(|e| format!("socket options: {e}"))?;
    let keep_going = || !global_stop.load(Ordering::Relaxed);
    let body = read_body(conn, after(cfg.idle_timeout), &keep_going)
        .map_err(|e| format!("no hello: {e}"))?;
    let hello = match decode_body(&body) {
        Ok(Message::Hello(h)) => h,
        Ok(other) => {
            refuse(conn, RefuseCode::BadRequest, "expected a hello message");
            return Err(format!("expected hello, got {}", other.kind()));
        }
        Err(e) => {
            match peek_version(&body) {
                Some(v) if v != PROTOCOL_VERSION => refuse(
                    conn,
                    RefuseCode::Version,
                    &format!(
                        "protocol version {v} is not supported (server speaks {PROTOCOL_VERSION})"
                    ),
                ),
                _ => refuse(conn, RefuseCode::BadRequest, "garbled hello"),
            }
            return Err(format!("bad hello: {e}"));
        }
    };
    if let Err((code, reason)) = check_hello(&hello, cfg) {
        refuse(conn, code, &reason);
        return Err(format!("refused: {reason}"));
    }

    // The data socket: same local address as the control connection, a fresh port.
    let local_ip = conn
        .local_addr()
        .map_err(|e| format!("local address: {e}"))?
        .ip()
        .to_canonical();
    let peer_ip = peer.ip().to_canonical();
    let bind_at = SocketAddr::new(local_ip, 0);
    let data = if hello.test == TestKind::UdpRr {
        UdpSocket::bind(bind_at).map(DataSocket::Udp)
    } else {
        TcpListener::bind(bind_at).map(DataSocket::Tcp)
    }
    .map_err(|e| format!("binding the data socket: {e}"))?;
    let data_port = match &data {
        DataSocket::Tcp(l) => l.local_addr(),
        DataSocket::Udp(u) => u.local_addr(),
    }
    .map_err(|e| format!("data address: {e}"))?
    .port();
    // Blocked data threads are woken by shutting their sockets down (see `Wakers`), not by
    // socket timeouts: a timeout arms a kernel timer on every blocking receive.
    let wakers = Wakers::default();
    match &data {
        // The listener of a one-connection test keeps a timeout for its one accept.
        // CRR's accepted connections inherit the timeout, so a stalled client cannot hold them.
        DataSocket::Tcp(l) if hello.test != TestKind::TcpCrr => set_timeouts(l, POLL),
        DataSocket::Tcp(l) => set_timeouts(l, POLL).and_then(|_| wakers.add(l)),
        DataSocket::Udp(u) => wakers.add(u),
    }
    .map_err(|e| format!("data socket options: {e}"))?;
    write_message(
        conn,
        &Message::Ack {
            version: PROTOCOL_VERSION,
            data_port,
        },
    )
    .map_err(|e| format!("sending ack: {e}"))?;

    let stop = Arc::new(AtomicBool::new(false));
    let abandoned = Arc::new(AtomicBool::new(false));
    let data_thread = {
        let (stop, wakers, abandoned) = (stop.clone(), wakers.clone(), abandoned.clone());
        let (hello, idle, drop_every) = (hello.clone(), cfg.idle_timeout, cfg.udp_drop_every);
        thread::Builder::new()
            .name("nslat-data".into())
            .spawn(move || {
                let r = serve_data(data, hello, peer_ip, idle, drop_every, &stop, &wakers);
                if r.is_err() {
                    abandoned.store(true, Ordering::Relaxed);
                }
                r
            })
            .map_err(|e| format!("starting the data thread: {e}"))?
    };

    // Wait for the client's done, bounded by the test's length plus slack.
    let deadline = after(
        Duration::from_millis(hello.duration_ms)
            .saturating_add(cfg.idle_timeout)
            .saturating_add(Duration::from_secs(5)),
    );
    // A data thread that gave up (no data connection came) ends the wait early.
    let waiting = || keep_going() && !abandoned.load(Ordering::Relaxed);
    let done = read_message(conn, deadline, &waiting);
    wakers.stop(&stop);
    let served = data_thread
        .join()
        .map_err(|_| "the data thread panicked".to_string())?;
    match done {
        Ok(Message::Done { .. }) => {}
        Ok(other) => return Err(format!("expected done, got {}", other.kind())),
        Err(e) => return Err(format!("{} ended early: {e}", hello.test)),
    }
    let served = served.map_err(|e| format!("{} data: {e}", hello.test))?;
    let summary = format!(
        "{} done: {} transactions, {} bytes, server {}{}",
        hello.test,
        served.transactions,
        served.bytes,
        match served.cpu {
            Some(c) => format!("pinned to CPU {c}"),
            None => "not pinned".to_string(),
        },
        match served.foreign_datagrams {
            0 => String::new(),
            n => format!(", {n} datagrams from other addresses than {peer_ip} dropped"),
        }
    );
    write_message(
        conn,
        &Message::Done {
            server: Some(served),
        },
    )
    .map_err(|e| format!("sending done: {e}"))?;
    let _ = read_message(conn, Instant::now() + Duration::from_secs(2), &keep_going);
    Ok(summary)
}

/// Accepts the one data connection of a non-CRR TCP test, from the control peer's address.
fn accept_data(
    l: &TcpListener,
    peer_ip: IpAddr,
    idle: Duration,
    stop: &AtomicBool,
) -> io::Result<Option<TcpStream>> {
    let deadline = after(idle);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        match l.accept() {
            Ok((s, from)) if from.ip().to_canonical() == peer_ip => return Ok(Some(s)),
            Ok(_) => continue,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// The data thread: pins itself if asked, runs the test's server loop, measures its CPU time.
fn serve_data(
    data: DataSocket,
    hello: Hello,
    peer_ip: IpAddr,
    idle: Duration,
    drop_every: Option<u32>,
    stop: &AtomicBool,
    wakers: &Wakers,
) -> io::Result<ServerDone> {
    let cpu = match hello.server_cpu {
        Some(c) if pin_to(c as usize).is_ok() => Some(c),
        _ => None,
    };
    let cpu0 = thread_cpu_ns();
    let (req, resp, send) = (
        hello.request_size as usize,
        hello.response_size as usize,
        hello.send_size as usize,
    );
    let counts = match (hello.test, data) {
        (TestKind::UdpRr, DataSocket::Udp(u)) => {
            rr::udp_server(&u, peer_ip, req, resp, drop_every, stop)?
        }
        (TestKind::TcpCrr, DataSocket::Tcp(l)) => crr::server(&l, peer_ip, req, resp, stop)?,
        (test, DataSocket::Tcp(l)) => {
            let Some(s) = accept_data(&l, peer_ip, idle, stop)? else {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client never opened its data connection",
                ));
            };
            drop(l);
            s.set_nodelay(true)?;
            s.set_read_timeout(None)?;
            s.set_write_timeout(None)?;
            wakers.add(&s)?;
            if stop.load(Ordering::SeqCst) {
                return Err(io::Error::new(io::ErrorKind::Interrupted, "stopped"));
            }
            match test {
                TestKind::TcpRr => rr::tcp_server(&s, req, resp, stop)?,
                TestKind::TcpStream => stream::server(&s, false, send, stop)?,
                _ => stream::server(&s, true, send, stop)?,
            }
        }
        (_, DataSocket::Udp(_)) => unreachable!("UDP sockets are only made for UDP_RR"),
    };
    Ok(ServerDone {
        cpu_ns: thread_cpu_ns() - cpu0,
        transactions: counts.transactions,
        bytes: counts.bytes,
        cpu,
        foreign_datagrams: counts.foreign_datagrams,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            token: None,
            test: TestKind::TcpRr,
            request_size: 1,
            response_size: 1,
            send_size: 1,
            server_cpu: None,
            duration_ms: 1000,
        }
    }

    #[test]
    fn hellos_are_checked_against_limits() {
        let mut cfg = ServerConfig::default();
        assert!(check_hello(&hello(), &cfg).is_ok());
        let v = Hello {
            version: 99,
            ..hello()
        };
        assert_eq!(check_hello(&v, &cfg).unwrap_err().0, RefuseCode::Version);
        let z = Hello {
            request_size: 0,
            ..hello()
        };
        assert_eq!(check_hello(&z, &cfg).unwrap_err().0, RefuseCode::BadRequest);
        let big = Hello {
            response_size: (MAX_RR_SIZE + 1) as u32,
            ..hello()
        };
        assert_eq!(
            check_hello(&big, &cfg).unwrap_err().0,
            RefuseCode::BadRequest
        );
        let cpu = Hello {
            server_cpu: Some(100_000),
            ..hello()
        };
        assert_eq!(
            check_hello(&cpu, &cfg).unwrap_err().0,
            RefuseCode::BadRequest
        );
        cfg.max_duration = Duration::from_millis(500);
        assert_eq!(
            check_hello(&hello(), &cfg).unwrap_err().0,
            RefuseCode::BadRequest
        );
        cfg.max_duration = Duration::from_secs(10);
        cfg.token = Some("t".into());
        assert_eq!(
            check_hello(&hello(), &cfg).unwrap_err().0,
            RefuseCode::Token
        );
        let ok = Hello {
            token: Some("t".into()),
            ..hello()
        };
        assert!(check_hello(&ok, &cfg).is_ok());
    }

    #[test]
    fn a_server_on_loopback_starts_and_stops() {
        let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        assert_ne!(addr.port(), 0);
        let h = server.spawn();
        assert!(TcpStream::connect(addr).is_ok());
        h.stop();
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn many_servers_stop_together_in_about_one_poll() {
        let handles: Vec<ServerHandle> = (0..10)
            .map(|_| {
                Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap()))
                    .unwrap()
                    .spawn()
            })
            .collect();
        let addrs: Vec<SocketAddr> = handles.iter().map(ServerHandle::local_addr).collect();
        let started = std::time::Instant::now();
        ServerHandle::stop_all(handles);
        // One by one, ten servers take up to ten polls; told at once, about one.
        let took = started.elapsed();
        assert!(took < POLL * 3, "10 servers took {took:?} to stop");
        for a in addrs {
            assert!(TcpStream::connect(a).is_err(), "{a} still accepts");
        }
    }
}
