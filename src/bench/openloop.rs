//! Open-loop request/response: requests leave on a fixed schedule at a target rate, whatever the
//! responses do, and each response's latency is measured from its request's *intended* send
//! time. A stall (the server, the path or the client itself) then counts for every request it
//! delayed, not once as in a closed loop, where the next request waits for the last response
//! and a 50 ms stall is one slow transaction (coordinated omission, as wrk2 calls it).
//!
//! The wire is TCP_RR's: a client opens C ordinary TCP_RR sessions against `nslat serve` (no
//! protocol change; the server gives each session its own pinned data thread, so C connections
//! are C server threads) and pipelines requests on them; the server answers each request with
//! one response, in order, so the k-th response on a connection belongs to its k-th request.
//!
//! Design of the data path (why one poll loop): one pinned client thread owns the C
//! non-blocking connections and runs one `ppoll` loop. Each pass reads the clock once, sends
//! every request that has come due (round robin over the connections, one `send` per connection
//! for all its due bytes), and receives what is ready (one `recv` per ready connection into one
//! preallocated buffer); every completed response takes its intended time from its connection's
//! ring and is timed with that pass's clock read. `ppoll` sleeps until the next intended time
//! (the thread's timer slack set to 1 ns), so an idle generator costs no CPU and the client's
//! CPU per request stays meaningful. A sender thread and a receiver thread per connection would
//! cost two wake-ups and a shared ring per request and spread the generator over both CPUs of
//! a small machine; blocking sends cannot keep a schedule while a response is late. Nothing is
//! allocated per request: the rings (one intended time per request in flight), the poll set and
//! the two byte buffers are made once, sized for the largest block.
//!
//! Bounds: a rate above [`MAX_RATE_RPS`], more than [`MAX_CONNECTIONS`] connections or a block
//! above [`MAX_BLOCK_REQUESTS`] requests are refused; a response later than the block's timeout
//! is counted as a timeout (its bytes are skipped when they come), never waited for forever.

use std::fs::File;
use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use super::client::{self, ClientError};
use super::control::ServerDone;
use super::timing::{new_histogram, now_ns, pin_to, thread_cpu_ns};
use super::{LatencySummary, RunSpec, TestKind};
use crate::netns;
use crate::rng::XorShift;

/// The highest offered rate accepted, requests per second.
pub const MAX_RATE_RPS: f64 = 2_000_000.0;
/// The most connections (and server threads) one open-loop client opens.
pub const MAX_CONNECTIONS: usize = 64;
/// The most requests in one block (the rings hold one intended time per request).
pub const MAX_BLOCK_REQUESTS: u64 = 10_000_000;
/// A response later than this after its intended time is a timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);
/// Largest request or response size of an open-loop test (one segment's worth).
pub const MAX_SIZE: usize = 64 * 1024;

/// How the intended send times are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Spacing {
    /// Exactly 1/R apart.
    Constant,
    /// Exponential gaps of mean 1/R (a Poisson arrival process).
    Poisson,
}

impl Spacing {
    pub fn name(self) -> &'static str {
        match self {
            Spacing::Constant => "constant",
            Spacing::Poisson => "poisson",
        }
    }
}

impl std::str::FromStr for Spacing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "constant" => Ok(Spacing::Constant),
            "poisson" => Ok(Spacing::Poisson),
            o => Err(format!("unknown spacing '{o}': use constant or poisson")),
        }
    }
}

/// The intended send times of one block, as offsets from its start in nanoseconds. The first
/// request is due at 0. Constant spacing computes the i-th time as `i / R` (no accumulated
/// rounding); Poisson adds exponential gaps drawn from a seeded generator (reproducible).
#[derive(Debug, Clone)]
pub struct Schedule {
    period_ns: f64,
    spacing: Spacing,
    rng: XorShift,
    i: u64,
    t: f64,
}

impl Schedule {
    pub fn new(rate_rps: f64, spacing: Spacing, seed: u64) -> Schedule {
        Schedule {
            period_ns: 1e9 / rate_rps,
            spacing,
            rng: XorShift::new(seed),
            i: 0,
            t: 0.0,
        }
    }

    /// The next request's intended offset, ns.
    #[inline]
    pub fn next_offset(&mut self) -> u64 {
        match self.spacing {
            Spacing::Constant => {
                let v = (self.i as f64 * self.period_ns) as u64;
                self.i += 1;
                v
            }
            Spacing::Poisson => {
                let v = self.t as u64;
                let u = self.rng.next_f64();
                self.t += -(1.0 - u).ln() * self.period_ns;
                v
            }
        }
    }
}

/// A fixed-capacity FIFO of intended send times (one per request in flight on a connection).
#[derive(Debug)]
struct Ring {
    buf: Box<[u64]>,
    head: usize,
    len: usize,
}

impl Ring {
    fn new(cap: usize) -> Ring {
        Ring {
            buf: vec![0; cap.max(1)].into_boxed_slice(),
            head: 0,
            len: 0,
        }
    }

    #[inline]
    fn push(&mut self, v: u64) -> bool {
        if self.len == self.buf.len() {
            return false;
        }
        let mut i = self.head + self.len;
        if i >= self.buf.len() {
            i -= self.buf.len();
        }
        self.buf[i] = v;
        self.len += 1;
        true
    }

    #[inline]
    fn pop(&mut self) -> Option<u64> {
        if self.len == 0 {
            return None;
        }
        let v = self.buf[self.head];
        self.head += 1;
        if self.head == self.buf.len() {
            self.head = 0;
        }
        self.len -= 1;
        Some(v)
    }

    fn clear(&mut self) {
        self.head = 0;
        self.len = 0;
    }
}

/// The client's books of one connection: what is in flight and when each was meant to leave.
/// Completions are timed from the intended times: this is the correction for coordinated
/// omission, kept apart from the sockets so that it can be tested with made-up times.
#[derive(Debug)]
pub struct Ledger {
    ring: Ring,
    response_size: u64,
    /// Response bytes received towards the oldest request in flight.
    got: u64,
    /// Bytes still to come for requests given up on (timeouts): skipped when they arrive.
    skip: u64,
}

/// What a ledger did with received bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Completed {
    pub responses: u64,
    pub latency_sum_ns: u64,
}

impl Ledger {
    /// Room for `capacity` requests in flight; responses of `response_size` bytes.
    pub fn new(capacity: usize, response_size: usize) -> Ledger {
        Ledger {
            ring: Ring::new(capacity),
            response_size: response_size.max(1) as u64,
            got: 0,
            skip: 0,
        }
    }

    /// A request meant to leave at `intended_ns` was issued; false if the ledger is full (the
    /// request is dropped, not sent).
    #[inline]
    pub fn issue(&mut self, intended_ns: u64) -> bool {
        self.ring.push(intended_ns)
    }

    /// Requests in flight.
    pub fn in_flight(&self) -> usize {
        self.ring.len
    }

    /// `bytes` of responses arrived at `now_ns`: every response they complete is timed from its
    /// request's intended time into `hist` (when given).
    #[inline]
    pub fn receive(
        &mut self,
        mut bytes: u64,
        now_ns: u64,
        hist: Option<&mut Histogram<u64>>,
    ) -> io::Result<Completed> {
        let s = self.skip.min(bytes);
        self.skip -= s;
        bytes -= s;
        self.got += bytes;
        let mut c = Completed::default();
        let mut hist = hist;
        while self.got >= self.response_size {
            self.got -= self.response_size;
            let Some(t) = self.ring.pop() else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the server sent more responses than requests",
                ));
            };
            let lat = now_ns.saturating_sub(t);
            if let Some(h) = hist.as_deref_mut() {
                h.saturating_record(lat.max(1));
            }
            c.responses += 1;
            c.latency_sum_ns += lat;
        }
        Ok(c)
    }

    /// Gives up on every request in flight (timeouts); their responses are skipped when they
    /// come. Returns how many.
    pub fn time_out(&mut self) -> u64 {
        let n = self.ring.len as u64;
        self.skip += (n * self.response_size).saturating_sub(self.got);
        self.got = 0;
        self.ring.clear();
        n
    }
}

/// One block: `count` requests at `rate_rps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockPlan {
    pub rate_rps: f64,
    pub count: u64,
    pub spacing: Spacing,
    pub seed: u64,
    /// A response later than this after its intended time is a timeout.
    pub timeout: Duration,
}

/// What one block did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BlockOutcome {
    /// Requests issued (sent or being sent).
    pub sent: u64,
    /// Responses received in time, each timed from its intended send time.
    pub completed: u64,
    /// Requests not sent because their connection's ring was full.
    pub dropped: u64,
    /// Requests whose response did not come within the timeout.
    pub timeouts: u64,
    /// Sum of the completed latencies.
    pub latency_sum_ns: u64,
    /// From the block's start to its last completion (or its give-up), plus one mean request
    /// interval (the block's n requests occupy n slots of the schedule).
    pub wall_ns: u64,
    /// The latest a request was issued after its intended time (the generator's own lag).
    pub max_issue_lag_ns: u64,
    /// CPU time of the client thread over the block.
    pub cpu_ns: u64,
}

impl BlockOutcome {
    pub fn add(&mut self, b: &BlockOutcome) {
        self.sent += b.sent;
        self.completed += b.completed;
        self.dropped += b.dropped;
        self.timeouts += b.timeouts;
        self.latency_sum_ns += b.latency_sum_ns;
        self.wall_ns += b.wall_ns;
        self.max_issue_lag_ns = self.max_issue_lag_ns.max(b.max_issue_lag_ns);
        self.cpu_ns += b.cpu_ns;
    }

    /// Completed responses per second of wall time.
    pub fn achieved_rps(&self) -> f64 {
        if self.wall_ns == 0 {
            return 0.0;
        }
        self.completed as f64 * 1e9 / self.wall_ns as f64
    }
}

/// Errors of the open-loop client.
#[derive(Debug, thiserror::Error)]
pub enum OpenLoopError {
    #[error("invalid open-loop run: {0}")]
    Invalid(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("open-loop data connection: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

/// Checks a rate, a connection count and sizes (bad input: one clear line).
pub fn validate(
    rate_rps: f64,
    connections: usize,
    request_size: usize,
    response_size: usize,
) -> Result<(), String> {
    if !(rate_rps.is_finite() && rate_rps >= 1.0) {
        return Err(format!("rate {rate_rps}: give at least 1 request/s"));
    }
    if rate_rps > MAX_RATE_RPS {
        return Err(format!(
            "rate {rate_rps:.0}/s is above the open-loop generator's cap of {MAX_RATE_RPS:.0}/s"
        ));
    }
    if !(1..=MAX_CONNECTIONS).contains(&connections) {
        return Err(format!(
            "{connections} connections: give 1..={MAX_CONNECTIONS}"
        ));
    }
    for (what, v) in [("request", request_size), ("response", response_size)] {
        if !(1..=MAX_SIZE).contains(&v) {
            return Err(format!("{what} size {v} is not in 1..={MAX_SIZE} bytes"));
        }
    }
    Ok(())
}

struct Conn {
    ctl: TcpStream,
    data: Option<TcpStream>,
    fd: RawFd,
    ledger: Ledger,
    /// Request bytes due but not yet taken by the kernel.
    unsent: u64,
}

/// C open-loop connections to one server (C TCP_RR sessions), driven by the calling thread.
pub struct Connections {
    conns: Vec<Conn>,
    poll: Vec<libc::pollfd>,
    request_size: u64,
    zeros: Vec<u8>,
    sink: Vec<u8>,
    capacity: usize,
}

/// The server side of finished connections: its data threads' CPU time and transactions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerSide {
    pub cpu_ns: u64,
    pub transactions: u64,
    pub cpu: Option<u32>,
}

impl ServerSide {
    /// Server CPU per transaction, µs.
    pub fn cpu_us_per_tx(&self) -> Option<f64> {
        (self.transactions > 0).then(|| self.cpu_ns as f64 / 1e3 / self.transactions as f64)
    }
}

impl Connections {
    /// Opens `connections` TCP_RR sessions as `template` says (server, sizes, server CPU,
    /// token; `duration` bounds the sessions) from the calling thread's namespace, with room
    /// for `max_block` requests in flight in total.
    pub fn open(
        template: &RunSpec,
        connections: usize,
        max_block: u64,
    ) -> Result<Connections, OpenLoopError> {
        validate(
            1.0,
            connections,
            template.request_size,
            template.response_size,
        )
        .map_err(OpenLoopError::Invalid)?;
        if max_block > MAX_BLOCK_REQUESTS {
            return Err(OpenLoopError::Invalid(format!(
                "a block of {max_block} requests is above the cap of {MAX_BLOCK_REQUESTS}"
            )));
        }
        // Wake-ups at the intended times, not 50 µs after them (the default timer slack).
        // SAFETY: PR_SET_TIMERSLACK takes a value and changes only the calling thread.
        unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong, 0, 0, 0) };
        let mut spec = template.clone();
        spec.test = TestKind::TcpRr;
        let capacity = (max_block as usize).div_ceil(connections) + 1;
        let mut conns = Vec::with_capacity(connections);
        for _ in 0..connections {
            let (ctl, port) = client::handshake(&spec)?;
            let data = client::connect_data(SocketAddr::new(spec.server.ip(), port))?;
            data.set_nonblocking(true)?;
            conns.push(Conn {
                fd: data.as_raw_fd(),
                data: Some(data),
                ctl,
                ledger: Ledger::new(capacity, spec.response_size),
                unsent: 0,
            });
        }
        let poll = conns
            .iter()
            .map(|c| libc::pollfd {
                fd: c.fd,
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        Ok(Connections {
            conns,
            poll,
            request_size: spec.request_size as u64,
            zeros: vec![0u8; 64 * 1024],
            sink: vec![0u8; 64 * 1024],
            capacity,
        })
    }

    /// How many requests fit in flight (all connections together).
    pub fn capacity(&self) -> u64 {
        (self.capacity * self.conns.len()) as u64
    }

    /// Runs one block: `plan.count` requests on their schedule, round robin over the
    /// connections; each response timed from its intended time into `hist` when given.
    pub fn block(
        &mut self,
        plan: &BlockPlan,
        mut hist: Option<&mut Histogram<u64>>,
    ) -> io::Result<BlockOutcome> {
        let n = self.conns.len();
        let mut sched = Schedule::new(plan.rate_rps, plan.spacing, plan.seed);
        let timeout_ns = plan.timeout.as_nanos() as u64;
        let mut out = BlockOutcome::default();
        let cpu0 = thread_cpu_ns();
        let start = now_ns();
        let mut now = start;
        let mut next_due = start + sched.next_offset();
        let mut last_due = start;
        let mut issued = 0u64;
        let mut in_flight = 0u64;
        let mut last_done = start;
        let mut rr = 0usize;
        loop {
            // Issue every request that has come due.
            while issued < plan.count && next_due <= now {
                let c = &mut self.conns[rr];
                rr += 1;
                if rr == n {
                    rr = 0;
                }
                if c.ledger.issue(next_due) {
                    c.unsent += self.request_size;
                    in_flight += 1;
                    out.sent += 1;
                } else {
                    out.dropped += 1;
                }
                out.max_issue_lag_ns = out.max_issue_lag_ns.max(now - next_due);
                last_due = next_due;
                issued += 1;
                if issued < plan.count {
                    next_due = start + sched.next_offset();
                }
            }
            // Hand the due bytes to the kernel: one send per connection.
            for (c, p) in self.conns.iter_mut().zip(self.poll.iter_mut()) {
                if c.unsent > 0 {
                    let len = (c.unsent as usize).min(self.zeros.len());
                    // SAFETY: zeros is valid for len bytes; the fd is our open socket.
                    let r = unsafe {
                        libc::send(
                            c.fd,
                            self.zeros.as_ptr().cast(),
                            len,
                            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                        )
                    };
                    if r > 0 {
                        c.unsent -= r as u64;
                    } else if r < 0 {
                        let e = io::Error::last_os_error();
                        if !matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                        ) {
                            return Err(e);
                        }
                    }
                }
                p.events = if c.unsent > 0 {
                    libc::POLLIN | libc::POLLOUT
                } else {
                    libc::POLLIN
                };
                p.revents = 0;
            }
            if issued == plan.count && in_flight == 0 {
                break;
            }
            let wake = if issued < plan.count {
                next_due
            } else {
                let give_up = last_due + timeout_ns;
                if now >= give_up {
                    if self.conns.iter().any(|c| c.unsent > 0) {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the server stopped reading requests",
                        ));
                    }
                    for c in &mut self.conns {
                        out.timeouts += c.ledger.time_out();
                    }
                    last_done = now;
                    break;
                }
                give_up
            };
            let wait = wake.saturating_sub(now);
            let ts = libc::timespec {
                tv_sec: (wait / 1_000_000_000) as libc::time_t,
                tv_nsec: (wait % 1_000_000_000) as libc::c_long,
            };
            // SAFETY: poll holds n valid pollfds; ts is a valid timespec; no signal mask.
            let r = unsafe {
                libc::ppoll(
                    self.poll.as_mut_ptr(),
                    n as libc::nfds_t,
                    &ts,
                    std::ptr::null(),
                )
            };
            // The one clock read of this pass: it times every response received below.
            now = now_ns();
            if r < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if r == 0 {
                continue;
            }
            for (c, p) in self.conns.iter_mut().zip(self.poll.iter()) {
                if p.revents & (libc::POLLIN | libc::POLLERR | libc::POLLHUP) == 0 {
                    continue;
                }
                // SAFETY: sink is valid and writable for its length; the fd is our socket.
                let got = unsafe {
                    libc::recv(
                        c.fd,
                        self.sink.as_mut_ptr().cast(),
                        self.sink.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if got == 0 {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the data connection",
                    ));
                }
                if got < 0 {
                    let e = io::Error::last_os_error();
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) {
                        continue;
                    }
                    return Err(e);
                }
                let done = c.ledger.receive(got as u64, now, hist.as_deref_mut())?;
                if done.responses > 0 {
                    in_flight -= done.responses;
                    out.completed += done.responses;
                    out.latency_sum_ns += done.latency_sum_ns;
                    last_done = now;
                }
            }
        }
        // n requests occupy n slots of the schedule: the last one's slot ends a mean interval
        // after it was due (without it, 100 requests at 2000/s would count as 2020/s).
        out.wall_ns = last_done - start + (1e9 / plan.rate_rps) as u64;
        out.cpu_ns = thread_cpu_ns() - cpu0;
        Ok(out)
    }

    /// Closes the data connections (after reading what late responses still come, for up to
    /// `drain`) and ends every session; the server's side summed.
    pub fn finish(mut self, drain: Duration) -> Result<ServerSide, OpenLoopError> {
        let deadline = now_ns() + drain.as_nanos() as u64;
        for c in &mut self.conns {
            let Some(data) = c.data.take() else { continue };
            while c.ledger.skip > 0 && now_ns() < deadline {
                // SAFETY: sink is valid for its length.
                let got = unsafe {
                    libc::recv(
                        c.fd,
                        self.sink.as_mut_ptr().cast(),
                        self.sink.len(),
                        libc::MSG_DONTWAIT,
                    )
                };
                if got > 0 {
                    c.ledger.skip = c.ledger.skip.saturating_sub(got as u64);
                } else if got == 0 {
                    break;
                } else {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            drop(data);
        }
        let mut side = ServerSide::default();
        let mut first_err = None;
        for c in &mut self.conns {
            match client::finish_session(&mut c.ctl) {
                Ok(ServerDone {
                    cpu_ns,
                    transactions,
                    cpu,
                    ..
                }) => {
                    side.cpu_ns += cpu_ns;
                    side.transactions += transactions;
                    side.cpu = side.cpu.or(cpu);
                }
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match first_err {
            Some(e) => Err(e.into()),
            None => Ok(side),
        }
    }
}

/// A standalone open-loop run (`run`): a warm-up block, then one measured block.
#[derive(Debug, Clone)]
pub struct OpenLoopSpec {
    /// Server, sizes, CPUs, namespace, token, warm-up and measured time (the test is TCP_RR).
    pub run: RunSpec,
    pub rate_rps: f64,
    pub spacing: Spacing,
    pub connections: usize,
    pub seed: u64,
    pub timeout: Duration,
}

impl OpenLoopSpec {
    pub fn new(run: RunSpec, rate_rps: f64) -> OpenLoopSpec {
        OpenLoopSpec {
            run,
            rate_rps,
            spacing: Spacing::Constant,
            connections: 1,
            seed: 0x6f70_656e,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    fn count(&self, d: Duration) -> u64 {
        (self.rate_rps * d.as_secs_f64()).round() as u64
    }
}

/// What a standalone run measured.
#[derive(Debug, Clone)]
pub struct OpenLoopResult {
    pub offered_rps: f64,
    pub achieved_rps: f64,
    pub measured: BlockOutcome,
    /// Latency from the intended send times, µs.
    pub latency_us: LatencySummary,
    pub client_cpu_us_per_req: f64,
    pub server: ServerSide,
    /// Every measured response's latency, ns.
    pub histogram: Histogram<u64>,
}

/// Runs `spec` on a fresh thread in its namespace, pinned as it says.
pub fn run(spec: &OpenLoopSpec) -> Result<OpenLoopResult, OpenLoopError> {
    validate(
        spec.rate_rps,
        spec.connections,
        spec.run.request_size,
        spec.run.response_size,
    )
    .map_err(OpenLoopError::Invalid)?;
    client::validate(&spec.run)?;
    let n = spec.count(spec.run.duration).max(1);
    if n > MAX_BLOCK_REQUESTS || spec.count(spec.run.warmup) > MAX_BLOCK_REQUESTS {
        return Err(OpenLoopError::Invalid(format!(
            "{n} requests in one run: above the cap of {MAX_BLOCK_REQUESTS} (shorten it)"
        )));
    }
    let spec = spec.clone();
    let ns = spec.run.netns.clone();
    netns::run_in(ns.as_deref(), move || run_here(&spec))
}

fn run_here(spec: &OpenLoopSpec) -> Result<OpenLoopResult, OpenLoopError> {
    if let Some(cpu) = spec.run.client_cpu {
        pin_to(cpu)?;
    }
    let n = spec.count(spec.run.duration).max(1);
    let warm = spec.count(spec.run.warmup);
    let mut session = spec.run.clone();
    session.duration = spec
        .run
        .warmup
        .saturating_add(spec.run.duration)
        .saturating_add(spec.timeout * 2);
    session.warmup = Duration::ZERO;
    let mut conns = Connections::open(&session, spec.connections, n.max(warm))?;
    let mut plan = BlockPlan {
        rate_rps: spec.rate_rps,
        count: warm,
        spacing: spec.spacing,
        seed: spec.seed,
        timeout: spec.timeout,
    };
    if warm > 0 {
        conns.block(&plan, None)?;
    }
    plan.count = n;
    plan.seed = spec.seed.wrapping_add(1);
    let mut hist = new_histogram();
    let out = conns.block(&plan, Some(&mut hist))?;
    let server = conns.finish(spec.timeout)?;
    Ok(OpenLoopResult {
        offered_rps: spec.rate_rps,
        achieved_rps: out.achieved_rps(),
        latency_us: LatencySummary::from_histogram(&hist, out.wall_ns, out.completed),
        client_cpu_us_per_req: if out.completed > 0 {
            out.cpu_ns as f64 / 1e3 / out.completed as f64
        } else {
            0.0
        },
        measured: out,
        server,
        histogram: hist,
    })
}

/// The namespace file of the calling thread (to come back to after opening elsewhere).
pub fn current_netns() -> io::Result<File> {
    File::open("/proc/thread-self/ns/net")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::server::{Server, ServerConfig};

    #[test]
    fn constant_spacing_is_exact_and_does_not_drift() {
        let mut s = Schedule::new(3.0, Spacing::Constant, 1);
        let t: Vec<u64> = (0..4).map(|_| s.next_offset()).collect();
        assert_eq!(t, vec![0, 333_333_333, 666_666_666, 1_000_000_000]);
        let mut s = Schedule::new(100_000.0, Spacing::Constant, 1);
        let mut last = 0;
        for _ in 0..=1_000_000 {
            last = s.next_offset();
        }
        // The millionth request is due at exactly 10 s: no accumulated rounding.
        assert_eq!(last, 10_000_000_000);
    }

    #[test]
    fn poisson_spacing_has_the_rate_and_the_spread_of_an_exponential() {
        let rate = 50_000.0;
        let mut s = Schedule::new(rate, Spacing::Poisson, 7);
        let n = 200_000usize;
        let times: Vec<u64> = (0..=n).map(|_| s.next_offset()).collect();
        assert_eq!(times[0], 0);
        assert!(times.windows(2).all(|w| w[1] >= w[0]), "non-decreasing");
        let gaps: Vec<f64> = times.windows(2).map(|w| (w[1] - w[0]) as f64).collect();
        let mean = gaps.iter().sum::<f64>() / n as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
        // Mean 1/R = 20 µs; an exponential's standard deviation equals its mean.
        assert!((mean / 20_000.0 - 1.0).abs() < 0.01, "mean gap {mean}");
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.02,
            "cv {}",
            var.sqrt() / mean
        );
        // P(gap > mean) = e^-1.
        let over = gaps.iter().filter(|&&g| g > mean).count() as f64 / n as f64;
        assert!((over - (-1.0f64).exp()).abs() < 0.01, "{over}");
        // Seeded: the same seed gives the same times, another seed others.
        let mut a = Schedule::new(rate, Spacing::Poisson, 7);
        let mut b = Schedule::new(rate, Spacing::Poisson, 8);
        let a: Vec<u64> = (0..10).map(|_| a.next_offset()).collect();
        let b: Vec<u64> = (0..10).map(|_| b.next_offset()).collect();
        assert_eq!(a, times[..10]);
        assert_ne!(a, b);
    }

    /// A single server with service time `svc` that stops for `stall` at `stall_at`: when does
    /// each request (intended at its schedule time) complete?
    fn simulate(rate: f64, n: u64, svc: u64, stall_at: u64, stall: u64) -> Vec<(u64, u64)> {
        let mut s = Schedule::new(rate, Spacing::Constant, 1);
        let mut free = 0u64;
        (0..n)
            .map(|_| {
                let t = s.next_offset();
                let mut begin = free.max(t);
                if begin + svc > stall_at && begin < stall_at + stall {
                    begin = begin.max(stall_at + stall);
                }
                free = begin + svc;
                (t, free)
            })
            .collect()
    }

    #[test]
    fn a_stall_counts_for_every_request_it_delayed() {
        // 10 000 requests/s, 10 µs of service (load ρ = 0.1), a 50 ms stall: the requests
        // meant to leave during the stall, and those queued behind them while the backlog
        // drains, are delayed; timed from their intended times, every one is in the histogram.
        let (rate, stall) = (10_000.0, 50_000_000u64);
        let done = simulate(rate, 20_000, 10_000, 500_000_000, stall);
        let mut ledger = Ledger::new(100_000, 1);
        let mut hist = new_histogram();
        for &(t, _) in &done {
            assert!(ledger.issue(t));
        }
        let mut by_time = done.clone();
        by_time.sort_by_key(|d| d.1);
        for &(_, at) in &by_time {
            let c = ledger.receive(1, at, Some(&mut hist)).unwrap();
            assert_eq!(c.responses, 1);
        }
        assert_eq!(hist.len(), 20_000);
        let delayed = hist.len() - hist.count_between(1, 1_000_000);
        // A request meant to leave x after the stall began waits stall - x(1 - ρ): more than
        // h = 1 ms for x < (stall - h) / (1 - ρ), so R (stall - h) / (1 - ρ) = 544 of them.
        let rho = rate * 10_000.0 / 1e9;
        let expect = rate * (stall - 1_000_000) as f64 / 1e9 / (1.0 - rho);
        assert!(
            (delayed as f64 - expect).abs() <= 2.0,
            "{delayed} delayed, expected {expect}"
        );
        assert!(hist.max() >= stall - 1_000_000);
        // A closed loop times from the actual send: only the one transaction in flight when
        // the stall began is slow.
        let mut closed = new_histogram();
        let mut t = 0u64;
        while t < 1_000_000_000 {
            let begin = if t + 10_000 > 500_000_000 && t < 500_000_000 + stall {
                500_000_000 + stall
            } else {
                t
            };
            let end = begin + 10_000;
            closed.record(end - t).unwrap();
            t = end;
        }
        assert_eq!(closed.len() - closed.count_between(1, 1_000_000), 1);
    }

    #[test]
    fn late_bytes_of_timed_out_requests_are_skipped_and_partial_responses_wait() {
        let mut l = Ledger::new(4, 3);
        assert!(l.issue(100) && l.issue(200));
        // Two bytes of the first response: nothing completes yet.
        assert_eq!(l.receive(2, 150, None).unwrap().responses, 0);
        assert_eq!(l.time_out(), 2);
        // The rest of both responses (1 + 3 bytes) is skipped; a new request then completes.
        assert!(l.issue(1000));
        let c = l.receive(4 + 3, 1500, None).unwrap();
        assert_eq!((c.responses, c.latency_sum_ns), (1, 500));
        // More responses than requests is an error, not a panic.
        assert!(l.receive(3, 2000, None).is_err());
        let mut full = Ledger::new(1, 1);
        assert!(full.issue(1));
        assert!(!full.issue(2), "a full ring refuses (a drop)");
    }

    #[test]
    fn bad_rates_connections_and_sizes_are_refused() {
        assert!(validate(10_000.0, 4, 1, 1).is_ok());
        assert!(validate(0.5, 1, 1, 1).is_err());
        assert!(validate(f64::NAN, 1, 1, 1).is_err());
        assert!(validate(MAX_RATE_RPS * 2.0, 1, 1, 1)
            .unwrap_err()
            .contains("cap"));
        assert!(validate(1000.0, 0, 1, 1).is_err());
        assert!(validate(1000.0, MAX_CONNECTIONS + 1, 1, 1).is_err());
        assert!(validate(1000.0, 1, 0, 1).is_err());
        assert!("poisson".parse::<Spacing>().is_ok());
        assert!("bursty".parse::<Spacing>().is_err());
    }

    /// A short open-loop run on loopback (no root): the achieved rate is the offered one.
    #[test]
    fn a_short_run_on_loopback_keeps_its_rate() {
        let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
        let addr = server.local_addr();
        let h = server.spawn();
        for (spacing, conns) in [(Spacing::Constant, 1), (Spacing::Poisson, 3)] {
            let mut rs = RunSpec::new(addr, TestKind::TcpRr, Duration::from_millis(400));
            rs.warmup = Duration::from_millis(100);
            let mut spec = OpenLoopSpec::new(rs, 5_000.0);
            spec.spacing = spacing;
            spec.connections = conns;
            let r = run(&spec).unwrap();
            assert_eq!(r.measured.sent, 2_000);
            assert_eq!(r.measured.completed + r.measured.timeouts, 2_000);
            assert_eq!(r.histogram.len(), r.measured.completed);
            assert!(r.server.transactions >= r.measured.completed);
            assert!(
                (r.achieved_rps / 5_000.0 - 1.0).abs() < 0.05,
                "{spacing:?}: {} rps",
                r.achieved_rps
            );
            assert!(r.latency_us.p50 > 0.0 && r.latency_us.p50 <= r.latency_us.p99);
        }
        h.stop();
    }
}
