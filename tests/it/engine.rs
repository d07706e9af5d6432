//! The engine across a real veth pair between two namespaces: every test type, loss handling,
//! the CLI, and a server that survives bad clients. Needs root.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nslat::bench::client::{self, ClientError};
use nslat::bench::control::{self, Hello, Message, RefuseCode, PROTOCOL_VERSION};
use nslat::bench::server::{Server, ServerConfig, ServerHandle};
use nslat::bench::{RunResult, RunSpec, TestKind};
use nslat::netns;

const SERVER_V4: &str = "198.18.0.1";
const SERVER_V6: &str = "2001:2::1";

/// Two namespaces joined by a veth pair: `a` (server, 198.18.0.1, 2001:2::1) and `b` (client,
/// .2, ::2). Deleted on drop, panics included.
struct Pair {
    a: String,
    b: String,
}

fn ip(ns: &str, args: &str) {
    let mut full = vec!["-n", ns];
    full.extend(args.split_whitespace());
    let out = Command::new("ip").args(&full).output().expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        full.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pair {
    fn new() -> Pair {
        let pair = Pair {
            a: common::unique("ea"),
            b: common::unique("eb"),
        };
        netns::create(&pair.a).unwrap();
        netns::create(&pair.b).unwrap();
        ip(
            &pair.a,
            &format!("link add va type veth peer name vb netns {}", pair.b),
        );
        for (ns, dev, n) in [(&pair.a, "va", 1), (&pair.b, "vb", 2)] {
            ip(ns, &format!("addr add 198.18.0.{n}/24 dev {dev}"));
            ip(ns, &format!("addr add 2001:2::{n}/64 dev {dev} nodad"));
            ip(ns, &format!("link set {dev} up"));
            ip(ns, "link set lo up");
        }
        pair
    }

    fn path_a(&self) -> PathBuf {
        netns::path_of(&self.a)
    }

    fn path_b(&self) -> PathBuf {
        netns::path_of(&self.b)
    }

    /// Binds a server inside `a` and serves it in the background.
    fn serve(&self, cfg: ServerConfig) -> ServerHandle {
        let server = netns::run_in(Some(&self.path_a()), move || Server::bind(cfg)).unwrap();
        server.spawn()
    }

    fn spec(&self, addr: SocketAddr, test: TestKind, secs: f64) -> RunSpec {
        let mut s = RunSpec::new(addr, test, Duration::from_secs_f64(secs));
        s.warmup = Duration::from_millis(200);
        s.netns = Some(self.path_b());
        s
    }
}

impl Drop for Pair {
    fn drop(&mut self) {
        let _ = netns::delete(&self.a);
        let _ = netns::delete(&self.b);
    }
}

fn cfg(port: u16) -> ServerConfig {
    ServerConfig::new(format!("[::]:{port}").parse().unwrap())
}

fn v4(port: u16) -> SocketAddr {
    format!("{SERVER_V4}:{port}").parse().unwrap()
}

fn check_latency(r: &RunResult) {
    let l = &r.latency_us;
    assert!(
        0.0 < l.min
            && l.min <= l.p50
            && l.p50 <= l.p90
            && l.p90 <= l.p99
            && l.p99 <= l.p99_9
            && l.p99_9 <= l.max,
        "percentiles out of order: {l:?}"
    );
    assert!(l.mean >= l.min && l.mean <= l.max, "{l:?}");
    assert_eq!(r.histogram.as_ref().unwrap().len(), r.transactions);
    assert!(r.warmup_transactions > 0, "{r:?}");
}

#[test]
fn every_test_across_a_veth_pair() {
    if !common::need_root("every_test_across_a_veth_pair") {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = Pair::new();
    let server = pair.serve(cfg(12866));
    for test in TestKind::ALL {
        let mut spec = pair.spec(v4(12866), test, 1.0);
        spec.send_size = 64 * 1024;
        let r = client::run(&spec).unwrap_or_else(|e| panic!("{test}: {e}"));
        eprintln!(
            "{test}: {:.0} tx/s, p50 {:.1} us, {:?} Gbit/s, lost {:?}, cpu {:?}",
            r.trans_per_s, r.latency_us.p50, r.throughput_gbps, r.lost, r.cpu
        );
        assert_eq!(r.test, test);
        assert!((0.95..2.0).contains(&r.elapsed_s), "{test}: {r:?}");
        assert!(
            r.cpu.client_cpu > 0.0 && r.cpu.server_cpu > 0.0,
            "{test}: {:?}",
            r.cpu
        );
        check_latency(&r);
        match test {
            TestKind::TcpRr | TestKind::UdpRr => assert!(r.trans_per_s > 1000.0, "{test}: {r:?}"),
            TestKind::TcpCrr => assert!(r.trans_per_s > 100.0, "{test}: {r:?}"),
            _ => assert!(r.throughput_gbps.unwrap() > 0.1, "{test}: {r:?}"),
        }
        if test == TestKind::UdpRr {
            let lost = r.lost.unwrap();
            assert!(
                lost * 100 <= r.transactions,
                "{lost} lost of {}",
                r.transactions
            );
        } else {
            assert!(r.lost.is_none());
        }
    }
    // IPv6 and a pinned run with asymmetric sizes.
    let mut spec = pair.spec(
        format!("[{SERVER_V6}]:12866").parse().unwrap(),
        TestKind::TcpRr,
        0.5,
    );
    spec.request_size = 64;
    spec.response_size = 1500;
    spec.client_cpu = Some(0);
    spec.server_cpu = Some(0);
    let r = client::run(&spec).unwrap();
    assert!(r.trans_per_s > 1000.0, "{r:?}");
    assert_eq!((r.request_size, r.response_size), (64, 1500));
    assert_eq!(
        (r.placement.client_cpu, r.placement.server_cpu),
        (Some(0), Some(0))
    );
    check_latency(&r);
    server.stop();
    drop(pair);
    root.assert_unchanged();
}

#[test]
fn udp_rr_counts_loss_and_finishes_on_time() {
    if !common::need_root("udp_rr_counts_loss_and_finishes_on_time") {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = Pair::new();
    let mut c = cfg(12866);
    c.udp_drop_every = Some(10);
    let server = pair.serve(c);
    let spec = pair.spec(v4(12866), TestKind::UdpRr, 2.0);
    let t0 = Instant::now();
    let r = client::run(&spec).unwrap();
    let wall = t0.elapsed();
    let lost = r.lost.unwrap();
    let ratio = lost as f64 / (lost + r.transactions) as f64;
    eprintln!(
        "UDP_RR drop every 10th: {} done, {lost} lost ({:.1}%), {wall:?}",
        r.transactions,
        ratio * 100.0
    );
    assert!((0.07..0.15).contains(&ratio), "loss {ratio}: {r:?}");
    assert!(wall < Duration::from_secs(4), "took {wall:?}");
    check_latency(&r);
    server.stop();
    root.assert_unchanged();
}

fn hello(test: TestKind, version: u32) -> Message {
    Message::Hello(Hello {
        version,
        token: None,
        test,
        request_size: 1,
        response_size: 1,
        send_size: 1,
        server_cpu: None,
        duration_ms: 5000,
    })
}

/// A raw control connection from inside `b`.
fn raw_connect(pair: &Pair, port: u16) -> TcpStream {
    let addr = v4(port);
    netns::run_in(Some(&pair.path_b()), move || {
        TcpStream::connect(addr).map_err(|e| netns::NetnsError::Io {
            what: "connect".into(),
            source: e,
        })
    })
    .unwrap()
}

fn raw_reply(s: &mut TcpStream) -> Result<Message, control::ControlError> {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    control::read_message(s, Instant::now() + Duration::from_secs(5), &|| true)
}

#[test]
fn server_survives_bad_clients() {
    if !common::need_root("server_survives_bad_clients") {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = Pair::new();
    let mut c = cfg(12866);
    c.idle_timeout = Duration::from_secs(1);
    let server = pair.serve(c);

    // Garbage, an oversized length prefix, a truncated message.
    for junk in [
        b"GET / HTTP/1.1\r\n\r\n".to_vec(),
        u32::MAX.to_be_bytes().to_vec(),
        vec![0, 0, 0, 9, b'{'],
        vec![0, 0, 0, 0],
    ] {
        let mut s = raw_connect(&pair, 12866);
        s.write_all(&junk).unwrap();
        let _ = s.shutdown(std::net::Shutdown::Write);
        // The server answers (a refusal) or closes; it never hangs past the idle timeout.
        let t0 = Instant::now();
        let _ = raw_reply(&mut s);
        assert!(t0.elapsed() < Duration::from_secs(3));
    }

    // A wrong protocol version is refused as such.
    let mut s = raw_connect(&pair, 12866);
    control::write_message(&mut s, &hello(TestKind::TcpRr, PROTOCOL_VERSION + 1)).unwrap();
    match raw_reply(&mut s).unwrap() {
        Message::Refused { code, version, .. } => {
            assert_eq!(code, RefuseCode::Version);
            assert_eq!(version, PROTOCOL_VERSION);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A silent client is dropped after the idle timeout.
    let mut s = raw_connect(&pair, 12866);
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let t0 = Instant::now();
    let mut buf = [0u8; 1];
    let n = s.read(&mut buf).unwrap_or(0);
    assert_eq!(n, 0, "the server sent something to a silent client");
    let waited = t0.elapsed();
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(4),
        "silent client dropped after {waited:?}"
    );

    // A client that says hello but never opens its data connection is let go after the idle timeout.
    let mut s = raw_connect(&pair, 12866);
    control::write_message(&mut s, &hello(TestKind::TcpRr, PROTOCOL_VERSION)).unwrap();
    assert!(matches!(raw_reply(&mut s).unwrap(), Message::Ack { .. }));
    let t0 = Instant::now();
    assert!(matches!(
        raw_reply(&mut s),
        Err(control::ControlError::Closed)
    ));
    assert!(
        t0.elapsed() < Duration::from_secs(4),
        "held for {:?}",
        t0.elapsed()
    );

    // A client that disconnects mid-test (data connection open, a transaction half sent).
    for test in [
        TestKind::TcpRr,
        TestKind::UdpRr,
        TestKind::TcpCrr,
        TestKind::TcpMaerts,
    ] {
        let mut s = raw_connect(&pair, 12866);
        control::write_message(&mut s, &hello(test, PROTOCOL_VERSION)).unwrap();
        let Message::Ack { data_port, .. } = raw_reply(&mut s).unwrap() else {
            panic!("no ack")
        };
        if test != TestKind::UdpRr {
            let mut d = netns::run_in(Some(&pair.path_b()), move || {
                TcpStream::connect(v4(data_port)).map_err(|e| netns::NetnsError::Io {
                    what: "data connect".into(),
                    source: e,
                })
            })
            .unwrap();
            let _ = d.write_all(&[1]);
            std::thread::sleep(Duration::from_millis(50));
        }
        drop(s);
    }

    // 50 clients at once.
    let handles: Vec<_> = (0..50)
        .map(|i| {
            let test = if i % 2 == 0 {
                TestKind::TcpRr
            } else {
                TestKind::UdpRr
            };
            let spec = pair.spec(v4(12866), test, 0.5);
            std::thread::spawn(move || client::run(&spec))
        })
        .collect();
    let mut ok = 0;
    for h in handles {
        let r = h.join().unwrap().expect("one of 50 clients failed");
        assert!(r.transactions > 0);
        ok += 1;
    }
    assert_eq!(ok, 50);

    // And a normal client still gets full service.
    let r = client::run(&pair.spec(v4(12866), TestKind::TcpRr, 1.0)).unwrap();
    assert!(r.trans_per_s > 1000.0, "{r:?}");
    check_latency(&r);
    server.stop();
    root.assert_unchanged();
}

#[test]
fn limits_tokens_and_stop() {
    if !common::need_root("limits_tokens_and_stop") {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = Pair::new();
    let mut c = cfg(0);
    c.token = Some("s3cret".into());
    c.max_duration = Duration::from_secs(2);
    c.max_clients = 1;
    let server = netns::run_in(Some(&pair.path_a()), move || Server::bind(c)).unwrap();
    let port = server.local_addr().port();
    let server = server.spawn();

    let mut spec = pair.spec(v4(port), TestKind::TcpRr, 0.5);
    assert!(matches!(client::run(&spec), Err(ClientError::Token)));
    spec.token = Some("s3cret".into());
    assert!(client::run(&spec).is_ok());
    spec.duration = Duration::from_secs(5);
    let err = client::run(&spec).unwrap_err();
    assert!(err.to_string().contains("max-duration"), "{err}");

    // One client at a time: a second is refused as busy while the first runs.
    let mut long = spec.clone();
    long.duration = Duration::from_millis(1500);
    let first = std::thread::spawn(move || client::run(&long));
    std::thread::sleep(Duration::from_millis(400));
    spec.duration = Duration::from_millis(300);
    assert!(matches!(client::run(&spec), Err(ClientError::Busy(_))));
    assert!(first.join().unwrap().is_ok());

    // After stop, nothing listens any more.
    server.stop();
    spec.duration = Duration::from_millis(300);
    assert!(matches!(
        client::run(&spec),
        Err(ClientError::Connect { .. })
    ));
    root.assert_unchanged();
}

/// `nslat serve` as a process, killed on drop.
struct ServeProcess(Child);

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn nslat(args: &[&str]) -> std::process::Output {
    Command::new(common::nslat_bin())
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn cli_serve_and_run() {
    if !common::need_root("cli_serve_and_run") {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = Pair::new();
    let _serve = ServeProcess(
        Command::new(common::nslat_bin())
            .args(["serve", "--netns", &pair.a, "--token", "s3cret", "--quiet"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["run", "--netns", &pair.b, "-H", SERVER_V4, "-l", "0.5"];
        args.extend(["--warmup", "0.1"]);
        args.extend(extra);
        nslat(&args)
    };
    // Wait for the server to listen.
    let t0 = Instant::now();
    let out = loop {
        let out = run(&["-t", "TCP_RR", "--token", "s3cret", "-T", "0,0", "--json"]);
        if out.status.success() || t0.elapsed() > Duration::from_secs(10) {
            break out;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for key in [
        "test",
        "transactions",
        "elapsed_s",
        "trans_per_s",
        "latency_us",
        "cpu",
        "clock",
    ] {
        assert!(v.get(key).is_some(), "missing {key}: {v}");
    }
    for key in [
        "mean",
        "rate_mean",
        "stddev",
        "min",
        "p50",
        "p90",
        "p99",
        "p99_9",
        "max",
    ] {
        assert!(v["latency_us"][key].as_f64().unwrap() > 0.0, "{key}: {v}");
    }
    assert!(v["cpu"]["client_cpu"].is_number() && v["cpu"]["server_cpu"].is_number());
    assert_eq!(v["test"], "TCP_RR");
    assert!(v["trans_per_s"].as_f64().unwrap() > 1000.0);

    let out = run(&["-t", "UDP_RR", "--token", "s3cret", "--json"]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["lost"].is_u64(), "{v}");
    let out = run(&[
        "-t",
        "TCP_STREAM",
        "--token",
        "s3cret",
        "-m",
        "16K",
        "--json",
    ]);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["throughput_gbps"].as_f64().unwrap() > 0.1, "{v}");

    // The table.
    let out = run(&["-t", "TCP_CRR", "--token", "s3cret"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("TCP_CRR") && text.contains("p99.9"), "{text}");

    // Errors: one line, exit status 2.
    for (args, needle) in [
        (vec!["-t", "TCP_RR"], "token"),
        (vec!["-t", "TCP_RR", "--token", "wrong"], "token"),
    ] {
        let out = run(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        // --token on a command line adds its one warning (issue 24); the error is one line.
        let lines = err
            .trim()
            .lines()
            .filter(|l| !l.starts_with("warning: --token"));
        assert_eq!(lines.count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    let out = nslat(&[
        "run",
        "--netns",
        &pair.b,
        "-H",
        "198.18.0.1:1",
        "-t",
        "TCP_RR",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("cannot reach"), "{err}");
    let out = nslat(&[
        "run",
        "--netns",
        "nslat-no-such-ns",
        "-H",
        SERVER_V4,
        "-t",
        "TCP_RR",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(err.contains("not found"), "{err}");
    let out = nslat(&["serve", "--netns", "nslat-no-such-ns"]);
    assert_eq!(out.status.code(), Some(2));
    drop(_serve);
    drop(pair);
    root.assert_unchanged();
}
