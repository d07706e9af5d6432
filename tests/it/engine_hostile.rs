//! Hostile clients (issue 7 item 3): 200 connections at once mixing garbage, slowloris, half-open
//! and silent connections, oversized length prefixes, wrong tokens and early disconnects, while a
//! normal TCP_RR runs and completes. The server (`nslat serve`, a separate process) stays up, its
//! memory stays bounded (peak RSS printed), and its threads go back to idle. Needs root.

use crate::common;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nslat::bench::client;
use nslat::bench::control::{self, Hello, Message, PROTOCOL_VERSION};
use nslat::bench::{RunSpec, TestKind};
use nslat::netns;

struct Lab {
    a: String,
    b: String,
    serve: Option<Child>,
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

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut c) = self.serve.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = netns::delete(&self.a);
        let _ = netns::delete(&self.b);
    }
}

const TOKEN: &str = "s3cret";

fn server() -> SocketAddr {
    "198.18.0.1:12866".parse().unwrap()
}

fn hello(token: &str, test: TestKind) -> Vec<u8> {
    control::encode(&Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        token: Some(token.into()),
        test,
        request_size: 1,
        response_size: 1,
        send_size: 1,
        server_cpu: None,
        duration_ms: 3000,
    }))
}

/// Reads until the server closes the connection (or `limit` passes); how long that took.
fn wait_closed(s: &mut TcpStream, limit: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    s.set_read_timeout(Some(Duration::from_millis(200))).ok()?;
    let mut buf = [0u8; 256];
    while t0.elapsed() < limit {
        match s.read(&mut buf) {
            Ok(0) => return Some(t0.elapsed()),
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return Some(t0.elapsed()),
        }
    }
    None
}

/// One hostile client; returns whether the server dealt with it (closed or refused in time).
fn hostile(kind: usize) -> bool {
    let Ok(mut s) = TcpStream::connect_timeout(&server(), Duration::from_secs(5)) else {
        return false;
    };
    let limit = Duration::from_secs(8);
    match kind % 7 {
        // Garbage.
        0 => {
            let junk: Vec<u8> = (0..300u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let _ = s.write_all(&junk);
            wait_closed(&mut s, limit).is_some()
        }
        // Slowloris: a valid hello, one byte a second.
        1 => {
            let frame = hello(TOKEN, TestKind::TcpRr);
            let t0 = Instant::now();
            for b in frame {
                if s.write_all(&[b]).is_err() || t0.elapsed() > limit {
                    break;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
            wait_closed(&mut s, limit).is_some() && t0.elapsed() < limit
        }
        // Half-open: our side closed for writing, never a byte sent.
        2 => {
            let _ = s.shutdown(Shutdown::Write);
            wait_closed(&mut s, limit).is_some()
        }
        // Silent: connected, says nothing.
        3 => wait_closed(&mut s, limit).is_some(),
        // Oversized length prefixes.
        4 => {
            let len = if kind % 2 == 0 {
                u32::MAX
            } else {
                (control::MAX_MESSAGE + 1) as u32
            };
            let _ = s.write_all(&len.to_be_bytes());
            let _ = s.write_all(&[b'{'; 64]);
            wait_closed(&mut s, limit).is_some()
        }
        // Wrong token: refused, then closed.
        5 => {
            let _ = s.write_all(&hello("wrong", TestKind::TcpRr));
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let refused = matches!(
                control::read_message(&mut s, Instant::now() + limit, &|| true),
                Ok(Message::Refused { .. })
            );
            refused && wait_closed(&mut s, limit).is_some()
        }
        // Early disconnect mid-test: hello, ack, data connection, half a test, gone.
        _ => {
            let test = if kind % 2 == 0 {
                TestKind::TcpRr
            } else {
                TestKind::TcpMaerts
            };
            let _ = s.write_all(&hello(TOKEN, test));
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let Ok(Message::Ack { data_port, .. }) =
                control::read_message(&mut s, Instant::now() + limit, &|| true)
            else {
                return false;
            };
            let mut d = match TcpStream::connect(SocketAddr::new(server().ip(), data_port)) {
                Ok(d) => d,
                Err(_) => return false,
            };
            for _ in 0..100 {
                let mut b = [0u8; 1];
                if d.write_all(&[7]).is_err()
                    || (test == TestKind::TcpRr && d.read_exact(&mut b).is_err())
                {
                    return false;
                }
            }
            drop(d);
            drop(s);
            true
        }
    }
}

fn status_field(pid: u32, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

#[test]
fn two_hundred_hostile_clients_and_a_normal_one() {
    if !common::need_root("two_hundred_hostile_clients_and_a_normal_one") {
        return;
    }
    let root = common::RootSnapshot::take();
    let mut lab = Lab {
        a: common::unique("ha"),
        b: common::unique("hb"),
        serve: None,
    };
    netns::create(&lab.a).unwrap();
    netns::create(&lab.b).unwrap();
    ip(
        &lab.a,
        &format!("link add va type veth peer name vb netns {}", lab.b),
    );
    for (ns, dev, n) in [(&lab.a, "va", 1), (&lab.b, "vb", 2)] {
        ip(ns, &format!("addr add 198.18.0.{n}/24 dev {dev}"));
        ip(ns, &format!("link set {dev} up"));
        ip(ns, "link set lo up");
    }
    let child = Command::new(common::nslat_bin())
        .args([
            "serve",
            "--netns",
            &lab.a,
            "--listen",
            "198.18.0.1:12866",
            "--token",
            TOKEN,
        ])
        .args([
            "--idle-timeout",
            "2",
            "--max-clients",
            "256",
            "--max-duration",
            "30",
            "--quiet",
        ])
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    lab.serve = Some(child);
    let path_b = netns::path_of(&lab.b);

    let mut spec = RunSpec::new(server(), TestKind::TcpRr, Duration::from_secs(4));
    spec.warmup = Duration::from_millis(200);
    spec.netns = Some(path_b.clone());
    spec.token = Some(TOKEN.into());
    // Wait until the server listens.
    let t0 = Instant::now();
    loop {
        let mut probe = spec.clone();
        probe.duration = Duration::from_millis(100);
        probe.warmup = Duration::ZERO;
        if client::run(&probe).is_ok() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the server never came up"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let baseline_threads = status_field(pid, "Threads:");

    // The normal client starts first, then the 200 hostile ones pile in during its run.
    let normal = {
        let spec = spec.clone();
        std::thread::spawn(move || client::run(&spec))
    };
    std::thread::sleep(Duration::from_millis(300));
    let hostile: Vec<_> = (0..200)
        .map(|i| {
            netns::spawn_in(Some(&path_b), move || {
                Ok::<bool, netns::NetnsError>(hostile(i))
            })
            .unwrap()
        })
        .collect();
    let mut peak_threads = 0;
    let watch_until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < watch_until {
        peak_threads = peak_threads.max(status_field(pid, "Threads:"));
        std::thread::sleep(Duration::from_millis(50));
    }
    let handled: Vec<bool> = hostile
        .into_iter()
        .map(|h| h.join().unwrap().unwrap())
        .collect();
    let r = normal
        .join()
        .unwrap()
        .expect("the normal client's TCP_RR failed");

    let peak_rss_kb = status_field(pid, "VmHWM:");
    eprintln!(
        "hostile: {}/200 handled, normal TCP_RR {:.0} tx/s (p99 {:.1} us), server peak RSS {} KiB, threads {} -> peak {}",
        handled.iter().filter(|h| **h).count(),
        r.trans_per_s,
        r.latency_us.p99,
        peak_rss_kb,
        baseline_threads,
        peak_threads
    );
    for (i, ok) in handled.iter().enumerate() {
        assert!(
            ok,
            "hostile client {i} (kind {}) was not dealt with in time",
            i % 7
        );
    }
    assert!(r.transactions > 0 && r.trans_per_s > 1000.0, "{r:?}");
    assert!(
        peak_rss_kb > 0 && peak_rss_kb < 256 * 1024,
        "peak RSS {peak_rss_kb} KiB"
    );

    // The server is still up, back to idle, and serves a normal client.
    let t0 = Instant::now();
    while status_field(pid, "Threads:") > baseline_threads && t0.elapsed() < Duration::from_secs(10)
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        status_field(pid, "Threads:") <= baseline_threads,
        "session threads left behind"
    );
    assert!(
        lab.serve.as_mut().unwrap().try_wait().unwrap().is_none(),
        "the server exited"
    );
    spec.duration = Duration::from_secs(1);
    let r = client::run(&spec).unwrap();
    assert!(r.trans_per_s > 1000.0, "{r:?}");
    drop(lab);
    root.assert_unchanged();
}
