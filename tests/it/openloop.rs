//! The open-loop engine and `nslat sweep rate`: coordinated omission is handled (a server
//! stopped for a known time shows up as about rate × stall delayed requests, where the closed
//! loop shows one), and a short rate sweep on a real lab measures every mode at every rate,
//! paired with the host, with the counters and the curves, and leaves nothing behind.

use crate::common;
use crate::lab_util::LabGuard;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use nslat::bench::openloop::{self, OpenLoopSpec};
use nslat::bench::{client, RunSpec, TestKind};
use nslat::sweep;

/// `nslat serve` as its own process on the loopback (so that SIGSTOP stops it and nothing else).
struct ServeProcess {
    child: Child,
    addr: SocketAddr,
}

impl ServeProcess {
    fn start() -> ServeProcess {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let child = Command::new(common::nslat_bin())
            .args(["serve", "--listen", &addr.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting nslat serve");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "nslat serve did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
        ServeProcess { child, addr }
    }

    /// Stops the server for `d` (SIGSTOP, SIGCONT); returns how long it was really stopped.
    fn stall(&self, d: Duration) -> Duration {
        let pid = Pid::from_raw(self.child.id() as i32);
        let t0 = Instant::now();
        kill(pid, Signal::SIGSTOP).unwrap();
        std::thread::sleep(d);
        kill(pid, Signal::SIGCONT).unwrap();
        t0.elapsed()
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let pid = Pid::from_raw(self.child.id() as i32);
        let _ = kill(pid, Signal::SIGCONT);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Responses slower than this count as delayed: well above this machine's loopback p99.9
/// (a few ms on a busy VM) and well below the stall.
const DELAYED: Duration = Duration::from_millis(5);
const STALL: Duration = Duration::from_millis(50);
const RATE: f64 = 5_000.0;

fn delayed(h: &hdrhistogram::Histogram<u64>) -> u64 {
    h.len() - h.count_between(1, DELAYED.as_nanos() as u64)
}

#[test]
fn a_server_stall_counts_for_every_request_it_delays_not_once() {
    let server = ServeProcess::start();
    // Open loop: 5000 requests/s for 1.5 s; the server stopped for 50 ms in the middle.
    let mut rs = RunSpec::new(server.addr, TestKind::TcpRr, Duration::from_millis(1500));
    rs.warmup = Duration::from_millis(200);
    let spec = OpenLoopSpec::new(rs.clone(), RATE);
    let run = std::thread::spawn(move || openloop::run(&spec));
    std::thread::sleep(Duration::from_millis(800));
    let stalled = server.stall(STALL);
    let r = run.join().unwrap().expect("the open-loop run");
    let open = delayed(&r.histogram);
    // A request meant to leave x after the stall began waits about S - x (the queue behind it
    // drains at many times the offered rate), so R (S - h) of them wait longer than h.
    let s = stalled.as_secs_f64();
    let expect = RATE * (s - DELAYED.as_secs_f64());
    eprintln!(
        "open loop: {open} of {} responses delayed over {DELAYED:?} by a {stalled:?} stall at {RATE}/s (expected ≈ {expect:.0}); p99 {:.0} µs, max {:.0} µs; achieved {:.0}/s",
        r.measured.completed,
        r.latency_us.p99,
        r.latency_us.max,
        r.achieved_rps
    );
    assert_eq!(r.measured.timeouts + r.measured.dropped, 0);
    assert!(
        (0.75 * expect..=1.35 * expect).contains(&(open as f64)),
        "{open} delayed responses, expected about {expect:.0} (rate × (stall − {DELAYED:?}))"
    );
    assert!(
        r.histogram.max() as f64 >= (s - 0.005) * 1e9,
        "the first request of the stall waited the whole stall: max {} ns",
        r.histogram.max()
    );
    // Every request was still answered, and the rate was kept.
    assert_eq!(r.measured.completed, (RATE * 1.5) as u64);
    assert!(
        (r.achieved_rps / RATE - 1.0).abs() < 0.05,
        "{}",
        r.achieved_rps
    );

    // Closed loop, the same stall: one transaction waits, the loop waits with it, and the
    // histogram shows one slow transaction (the ones that should have been sent meanwhile
    // were never sent: coordinated omission).
    let closed = std::thread::spawn(move || client::run(&rs));
    std::thread::sleep(Duration::from_millis(800));
    let stalled = server.stall(STALL);
    let c = closed.join().unwrap().expect("the closed-loop run");
    let h = c.histogram.as_ref().unwrap();
    let closed_delayed = delayed(h);
    eprintln!(
        "closed loop: {closed_delayed} of {} transactions delayed over {DELAYED:?} by a {stalled:?} stall",
        c.transactions
    );
    assert!(
        (1..=3).contains(&closed_delayed),
        "the closed loop shows the stall once: {closed_delayed}"
    );
    assert!(open >= 50 * closed_delayed);
}

#[test]
fn a_short_rate_sweep_on_a_real_lab() {
    if !common::need_root("sweep_rate") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("swr");
    let _guard = LabGuard(name.clone());
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let csv = dir.path().join("r.csv");
    let html = dir.path().join("html");
    common::nslat_ok(&[
        "sweep",
        "rate",
        "--modes",
        "host,bridge",
        "--rates",
        "2000,8k",
        "-l",
        "0.5",
        "--lab",
        &name,
        "--json",
        json.to_str().unwrap(),
        "--csv",
        csv.to_str().unwrap(),
        "--html",
        html.to_str().unwrap(),
    ]);
    let r: sweep::SweepReport =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(r.axis, sweep::Axis::Rate);
    assert!(r.unavailable.is_empty(), "{:?}", r.unavailable);
    assert_eq!(r.points.len(), 2 * 2, "modes × rates");
    for p in &r.points {
        let f = p.rate.expect("rate figures");
        // 10 rounds of 50 ms blocks: every request sent was answered, at the offered rate.
        assert_eq!(p.rounds, 10);
        assert_eq!(f.sent, (f.offered_rps * 0.05).round() as u64 * 10);
        // ... in 10 windows of one round each, in time order, that add up to the point.
        assert_eq!(p.windows.len(), 10);
        assert_eq!(
            p.windows.iter().map(|w| w.completed).sum::<u64>(),
            f.completed
        );
        for w in &p.windows {
            assert!(w.p99_us >= w.p50_us && w.p50_us > 0.0, "{w:?}");
            assert!(w.achieved_rps > 0.9 * f.offered_rps, "{w:?}");
        }
        assert_eq!(f.completed + f.timeouts + f.dropped, f.sent);
        assert!(
            (f.achieved_rps / f.offered_rps - 1.0).abs() < 0.05,
            "{} at {}/s achieved {}/s",
            p.series_name(),
            f.offered_rps,
            f.achieved_rps
        );
        assert!(p.latency_us.p50 > 0.0 && p.latency_us.p99 >= p.latency_us.p50);
        assert!(f.cpu_us_per_req > 0.0 && f.server_cpu_us_per_req.is_some());
        let c = f.counters.expect("backlog counters");
        // Host: the node's eth0 and the remote's (2 device passes per request and response
        // together at least); bridge adds its veth and the bridge.
        let least = if p.mode.as_deref() == Some("bridge") {
            4.0
        } else {
            1.9
        };
        assert!(
            c.backlog_pkts_per_req >= least,
            "{}: {} backlog packets per request",
            p.series_name(),
            c.backlog_pkts_per_req
        );
        if p.mode.as_deref() == Some("bridge") {
            assert!(f.vs_host.is_some(), "paired with the host");
        }
    }
    assert_eq!(r.knees.len(), 2);
    assert_eq!(r.knees[0].mode, "host");
    let host = &r.knees[0];
    // The bound is 3× the idle p99 (to the last bit once read back: serde_json's float_roundtrip).
    assert!(
        host.idle_p99_us > 0.0 && host.bound_us == 3.0 * host.idle_p99_us,
        "idle p99 {:?} µs, bound {:?} µs",
        host.idle_p99_us,
        host.bound_us
    );
    assert_eq!(host.knee.vs_host, host.knee.rps.map(|_| 1.0));
    // Neither mode is near its wall at 8,000/s: the wall is not reached, nothing kept to say.
    for k in &r.knees {
        assert_eq!(k.wall.hi, None, "{}: {:?}", k.mode, k.wall);
        assert_eq!(k.wall.rps, Some(8000.0));
        assert_eq!(k.kept.rps, None);
        assert!(k.backlog_pkts_per_req.unwrap() >= 1.9);
    }
    let csv = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.lines().next().unwrap().contains("offered_rps"));
    let page = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert!(page.matches("<svg").count() >= 5, "the rate curves");
    assert!(page.contains("offered rate (requests/s)"));
    assert!(netns_gone(&name), "the sweep removed its lab");
    root.assert_unchanged();
}

fn netns_gone(name: &str) -> bool {
    nslat::netns::list_with_prefix(&format!("nslat-{name}-")).is_empty()
}
