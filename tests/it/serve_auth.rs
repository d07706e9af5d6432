//! Issue 24: a token from a file or NSLAT_TOKEN, never on a command line; one-line refusals;
//! the open-server warning; a spoofed first UDP_RR datagram does not become the peer (root).

use crate::common;

use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nslat::bench::control::{self, Hello, Message, PROTOCOL_VERSION};
use nslat::bench::server::{Server, ServerConfig};
use nslat::bench::TestKind;
use nslat::netns;

const TOKEN: &str = "5f3c0ffee0c0ffee0c0ffee0c0ffee0c";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cmdline(pid: u32) -> String {
    String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default())
        .replace('\0', " ")
}

fn wait_listening(addr: SocketAddr) {
    let t0 = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "serve never listened"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `nslat run` against `addr` with `env` NSLAT_TOKEN (None: unset).
fn run_client(addr: SocketAddr, env: Option<&str>, length: &str) -> Child {
    let mut c = Command::new(common::nslat_bin());
    c.args(["run", "-H", &addr.to_string(), "-t", "TCP_RR", "-l", length])
        .args(["--warmup", "0", "--lock-wait", "0", "--force", "--json"])
        .env_remove("NSLAT_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(t) = env {
        c.env("NSLAT_TOKEN", t);
    }
    c.spawn().unwrap()
}

#[test]
fn a_token_file_server_refuses_without_and_wrong_accepts_env_and_shows_no_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, format!("{TOKEN}\n")).unwrap();
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let serve = Killed(
        Command::new(common::nslat_bin())
            .args(["serve", "--listen", &addr.to_string(), "--quiet"])
            .arg("--token-file")
            .arg(&file)
            .env_remove("NSLAT_TOKEN")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_listening(addr);

    for (env, what) in [(None, "no token"), (Some("wrong"), "a wrong token")] {
        let out = run_client(addr, env, "0.2").wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        assert_eq!(err.lines().count(), 1, "{what}: {err}");
        assert!(err.contains("refused the token"), "{what}: {err}");
        assert!(out.stdout.is_empty(), "{what}");
    }

    // The right token from the environment: measured; neither command line holds the token.
    let client = run_client(addr, Some(TOKEN), "1");
    std::thread::sleep(Duration::from_millis(300));
    let (c, s) = (cmdline(client.id()), cmdline(serve.0.id()));
    assert!(c.contains("run -H") && !c.contains(TOKEN), "client: {c}");
    assert!(
        s.contains("--token-file") && !s.contains(TOKEN),
        "server: {s}"
    );
    let out = client.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.is_empty(), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(v["transactions"].as_u64().unwrap() > 0, "{v}");
    drop(serve);

    // --token still works and says once that it is visible.
    let serve = Killed(
        Command::new(common::nslat_bin())
            .args(["serve", "--listen", &addr.to_string(), "--quiet"])
            .args(["--token", TOKEN])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    wait_listening(addr);
    let out = common::nslat(&[
        "run",
        "-H",
        &addr.to_string(),
        "-t",
        "TCP_RR",
        "-l",
        "0.2",
        "--warmup",
        "0",
        "--force",
        "--token",
        TOKEN,
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(err.matches("readable by every user").count(), 1, "{err}");
    drop(serve);
}

#[test]
fn bad_token_files_are_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let missing = dir.path().join("missing");
    for (file, says) in [(&empty, "is empty"), (&missing, "cannot read")] {
        let f = file.to_str().unwrap();
        for args in [
            vec!["serve", "--listen", "127.0.0.1", "--token-file", f],
            vec!["run", "-H", "127.0.0.1", "-t", "TCP_RR", "--token-file", f],
            vec![
                "compare",
                "--remote",
                "127.0.0.1",
                "--target",
                "x=pid:1",
                "--token-file",
                f,
            ],
        ] {
            let out = common::nslat(&args);
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(err.contains(says) && err.contains(f), "{args:?}: {err}");
        }
    }
    // An empty NSLAT_TOKEN is bad input too.
    let out = Command::new(common::nslat_bin())
        .args(["run", "-H", "127.0.0.1:9", "-t", "TCP_RR"])
        .env("NSLAT_TOKEN", "")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("NSLAT_TOKEN is set but empty") && err.lines().count() == 1,
        "{err}"
    );
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

struct Pair(String, String);
impl Drop for Pair {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
        let _ = netns::delete(&self.1);
    }
}

/// A fixture wire: namespace A (198.18.24.1) and namespace B (198.18.24.2, and a second
/// address 198.18.24.3 that plays the spoofer).
fn fixture_wire() -> Pair {
    let pair = Pair(common::unique("sa"), common::unique("sb"));
    netns::create(&pair.0).unwrap();
    netns::create(&pair.1).unwrap();
    ip(
        &pair.0,
        &format!("link add va type veth peer name vb netns {}", pair.1),
    );
    ip(&pair.0, "addr add 198.18.24.1/24 dev va");
    ip(&pair.1, "addr add 198.18.24.2/24 dev vb");
    ip(&pair.1, "addr add 198.18.24.3/24 dev vb");
    for (ns, dev) in [(&pair.0, "va"), (&pair.1, "vb")] {
        ip(ns, &format!("link set {dev} up"));
        ip(ns, "link set lo up");
    }
    pair
}

#[test]
fn a_spoofed_first_udp_datagram_does_not_become_the_peer() {
    let test = "a_spoofed_first_udp_datagram_does_not_become_the_peer";
    if !common::need_root(test) {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = fixture_wire();
    let server_addr: SocketAddr = "198.18.24.1:12866".parse().unwrap();
    let a = netns::path_of(&pair.0);
    let server = netns::run_in(Some(&a), move || {
        Server::bind(ServerConfig::new(server_addr))
    })
    .unwrap();
    let handle = server.spawn();

    let b = netns::path_of(&pair.1);
    let (foreign, answered_spoofer, echoed) = netns::run_in(Some(&b), move || {
        // The control connection from 198.18.24.2.
        let ctl = socket2_bind_connect("198.18.24.2:0".parse().unwrap(), server_addr);
        let mut ctl = ctl;
        ctl.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        control::write_message(
            &mut ctl,
            &Message::Hello(Hello {
                version: PROTOCOL_VERSION,
                token: None,
                test: TestKind::UdpRr,
                request_size: 8,
                response_size: 8,
                send_size: 1,
                server_cpu: None,
                duration_ms: 3000,
            }),
        )
        .unwrap();
        let far = Instant::now() + Duration::from_secs(5);
        let Message::Ack { data_port, .. } =
            control::read_message(&mut ctl, far, &|| true).unwrap()
        else {
            panic!("no ack")
        };
        let data = SocketAddr::new(server_addr.ip(), data_port);
        // The spoofer (another address of the client's machine) sends first.
        let spoof = UdpSocket::bind("198.18.24.3:0").unwrap();
        spoof
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        spoof.send_to(&7u64.to_le_bytes(), data).unwrap();
        let mut buf = [0u8; 8];
        let answered_spoofer = spoof.recv_from(&mut buf).is_ok();
        // The real client, from the control connection's address, is answered.
        let real = UdpSocket::bind("198.18.24.2:0").unwrap();
        real.connect(data).unwrap();
        real.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let mut echoed = 0;
        for seq in 1..=5u64 {
            real.send(&seq.to_le_bytes()).unwrap();
            if real.recv(&mut buf).is_ok() && buf == seq.to_le_bytes() {
                echoed += 1;
            }
        }
        // Once the peer is set, the spoofer is still not answered.
        spoof.send_to(&8u64.to_le_bytes(), data).unwrap();
        let answered_later = spoof.recv_from(&mut buf).is_ok();
        drop(real);
        control::write_message(&mut ctl, &Message::Done { server: None }).unwrap();
        let done = control::read_message(&mut ctl, far, &|| true).unwrap();
        let _ = control::write_message(&mut ctl, &Message::Bye);
        let Message::Done { server: Some(s) } = done else {
            panic!("no server figures: {done:?}")
        };
        Ok::<_, netns::NetnsError>((
            s.foreign_datagrams,
            answered_spoofer || answered_later,
            echoed,
        ))
    })
    .unwrap();
    handle.stop();
    drop(pair);
    eprintln!("spoof: foreign datagrams counted {foreign}, real client echoed {echoed}/5");
    assert!(!answered_spoofer, "the spoofer was answered");
    assert_eq!(echoed, 5, "the real client was not served");
    assert_eq!(foreign, 1, "the spoofed datagram was not counted");
    root.assert_unchanged();
}

/// A TCP connection from `local` to `to` (std has no bind-before-connect).
fn socket2_bind_connect(local: SocketAddr, to: SocketAddr) -> TcpStream {
    use nix::sys::socket::{bind, connect, socket, AddressFamily, SockFlag, SockType, SockaddrIn};
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::SOCK_CLOEXEC,
        None,
    )
    .unwrap();
    let (SocketAddr::V4(l), SocketAddr::V4(t)) = (local, to) else {
        panic!("IPv4 only")
    };
    bind(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(l)).unwrap();
    connect(std::os::fd::AsRawFd::as_raw_fd(&fd), &SockaddrIn::from(t)).unwrap();
    TcpStream::from(fd)
}

#[test]
fn an_open_server_on_a_non_loopback_address_says_so_once() {
    let test = "an_open_server_on_a_non_loopback_address_says_so_once";
    if !common::need_root(test) {
        return;
    }
    let root = common::RootSnapshot::take();
    let pair = fixture_wire();
    let mut serve = Command::new(common::nslat_bin())
        .args(["serve", "--netns", &pair.0, "--listen", "198.18.24.1"])
        .env_remove("NSLAT_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(700));
    let _ = serve.kill();
    let out = serve.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let warnings: Vec<&str> = err.lines().filter(|l| l.contains("no token")).collect();
    assert_eq!(warnings.len(), 1, "{err}");
    assert!(
        warnings[0].contains("198.18.24.1:12866") && warnings[0].contains("--token-file"),
        "{err}"
    );
    drop(pair);
    root.assert_unchanged();
}

fn status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// What a client without the token can still cost the server: refusals per second it sustains
/// from two threads on loopback for 3 s (bounded), and the server's memory before and after.
#[test]
fn a_client_without_the_token_costs_a_refusal_and_no_memory() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("token");
    std::fs::write(&file, TOKEN).unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let serve = Killed(
        Command::new(common::nslat_bin())
            .args(["serve", "--listen", &addr.to_string(), "--quiet"])
            .arg("--token-file")
            .arg(&file)
            .env_remove("NSLAT_TOKEN")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_listening(addr);
    let pid = serve.0.id();
    let frame = control::encode(&Message::Hello(Hello {
        version: PROTOCOL_VERSION,
        token: Some("guess".into()),
        test: TestKind::TcpStream,
        request_size: 1,
        response_size: 1,
        send_size: 65536,
        server_cpu: None,
        duration_ms: 3_000_000,
    }));
    let hammer = move |n: u64| -> u64 {
        let mut refused = 0;
        let mut first_rss = 0;
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(3) {
            let Ok(mut s) = TcpStream::connect(addr) else {
                continue;
            };
            let _ = std::io::Write::write_all(&mut s, &frame);
            s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
            let far = Instant::now() + Duration::from_secs(2);
            if let Ok(Message::Refused { .. }) = control::read_message(&mut s, far, &|| true) {
                refused += 1;
            }
            if refused == 1000 && n == 0 {
                first_rss = status_kb(pid, "VmRSS:");
            }
        }
        if n == 0 {
            eprintln!("unauth: server RSS after 1000 refusals: {first_rss} KiB");
        }
        refused
    };
    let rss0 = status_kb(pid, "VmRSS:");
    let t0 = Instant::now();
    let workers: Vec<_> = (0..2)
        .map(|n| {
            let h = hammer.clone();
            std::thread::spawn(move || h(n))
        })
        .collect();
    let refused: u64 = workers.into_iter().map(|w| w.join().unwrap()).sum();
    let secs = t0.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_millis(300));
    let (rss1, hwm, threads) = (
        status_kb(pid, "VmRSS:"),
        status_kb(pid, "VmHWM:"),
        status_kb(pid, "Threads:"),
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    eprintln!(
        "unauth: {refused} refusals in {secs:.1} s = {:.0}/s (2 client threads, loopback); server RSS {rss0} -> {rss1} KiB, peak {hwm} KiB, threads after {threads}; loadavg {}",
        refused as f64 / secs,
        load.trim()
    );
    assert!(refused > 100, "{refused} refusals");
    // Each refusal is a session thread that ends: nothing accumulates.
    assert!(rss1 < rss0 + 8 * 1024, "RSS {rss0} -> {rss1} KiB");
    assert!(threads <= 3, "{threads} threads left");
}
