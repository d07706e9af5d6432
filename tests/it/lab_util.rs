//! Helpers for the lab and attach tests: guards that remove a lab or a container namespace, TCP
//! servers in a namespace (one answers with the peer's address, one echoes), client exchanges
//! from a namespace, `ip` inside a namespace, and a leftovers check.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nslat::lab;
use nslat::netns;

/// Removes lab `0` when dropped (also on panic).
pub struct LabGuard(pub String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

/// Removes namespace `0` when dropped.
pub struct NetnsGuard(pub String);

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = netns::delete(&self.0);
    }
}

pub const PORT: u16 = 7001;

/// A TCP server inside a namespace: for each connection, reads a line and answers with the
/// peer's IP address.
pub struct PeerServer {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), netns::NetnsError>>>,
}

impl PeerServer {
    pub fn start(netns_path: &Path) -> PeerServer {
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = std::sync::mpsc::channel();
        let s = stop.clone();
        let thread = netns::spawn_in(Some(netns_path), move || {
            // [::] with IPV6_V6ONLY off (Linux default) takes v4 too.
            let l = TcpListener::bind(("::", PORT)).expect("bind");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, peer)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut buf = [0u8; 64];
                        let _ = c.read(&mut buf);
                        let ip = match peer.ip() {
                            IpAddr::V6(v6) => v6
                                .to_ipv4_mapped()
                                .map(IpAddr::V4)
                                .unwrap_or(IpAddr::V6(v6)),
                            v4 => v4,
                        };
                        let _ = c.write_all(ip.to_string().as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            Ok(())
        })
        .expect("spawn server");
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server started");
        PeerServer {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for PeerServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// From a thread inside `from`, connects to `to:PORT`, sends a line, returns the answer (the
/// address the server saw).
pub fn exchange(from: &Path, to: IpAddr) -> Result<String, String> {
    let from = from.to_path_buf();
    netns::run_in(
        Some(&from.clone()),
        move || -> Result<String, netns::NetnsError> {
            Ok(talk(to)
                .map_err(|e| format!("{} -> {to}: {e}", from.display()))
                .unwrap_or_else(|e| format!("ERR {e}")))
        },
    )
    .map_err(|e| e.to_string())
    .and_then(|s| if s.starts_with("ERR ") { Err(s) } else { Ok(s) })
}

fn talk(to: IpAddr) -> std::io::Result<String> {
    // 5 s: under emulation (the guest kernel's tests) neighbour discovery can cost a SYN retry.
    let mut c = TcpStream::connect_timeout(&SocketAddr::new(to, PORT), Duration::from_secs(5))?;
    c.set_read_timeout(Some(Duration::from_secs(5)))?;
    c.write_all(b"hello\n")?;
    let mut s = String::new();
    c.read_to_string(&mut s)?;
    Ok(s)
}

/// Everything of lab `name` still visible: namespaces, mounts, state file.
pub fn leftovers(name: &str) -> Vec<String> {
    let prefix = format!("nslat-{name}-");
    let mut left: Vec<String> = netns::list_with_prefix(&prefix);
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    left.extend(
        mounts
            .lines()
            .filter(|l| l.contains(&format!("/run/netns/{prefix}")))
            .map(|l| format!("mount: {l}")),
    );
    let state: PathBuf = lab::state::state_path(name);
    if state.exists() {
        left.push(state.display().to_string());
    }
    left
}

/// A namespace standing in for a container: detaches what nslat attached (best effort) and
/// deletes the namespace when dropped.
pub struct Container {
    pub name: String,
    pub path: PathBuf,
}

impl Container {
    /// Creates namespace `name` (give it a `common::unique` name).
    pub fn new(name: String) -> Container {
        let path = netns::create(&name).unwrap();
        Container { name, path }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        let _ = nslat::attach::detach(&nslat::attach::Target::Netns(self.name.clone()), None);
        let _ = netns::delete(&self.name);
    }
}

/// A TCP echo server on `port` in a namespace: echoes what it reads until the peer closes.
pub struct Echo {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), netns::NetnsError>>>,
}

impl Echo {
    pub fn start(ns: &Path, port: u16) -> Echo {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = netns::spawn_in(Some(ns), move || {
            let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !s.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((mut c, _)) => {
                        c.set_nonblocking(false).unwrap();
                        c.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                        let mut b = [0u8; 1];
                        if let Ok(1) = c.read(&mut b) {
                            let _ = c.write_all(&b);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            Ok(())
        })
        .unwrap();
        rx.recv_timeout(Duration::from_secs(5))
            .expect("echo started");
        Echo {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for Echo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// From `from`, connect to `to:port` (within `timeout`), send one byte and read the same byte
/// back (within twice `timeout`).
pub fn echoes(from: &Path, to: Ipv4Addr, port: u16, timeout: Duration) -> Result<(), String> {
    netns::run_in(
        Some(from),
        move || -> Result<Result<(), String>, netns::NetnsError> {
            let r = (|| -> std::io::Result<()> {
                let mut c =
                    TcpStream::connect_timeout(&SocketAddr::new(IpAddr::V4(to), port), timeout)?;
                c.set_read_timeout(Some(timeout * 2))?;
                c.write_all(b"x")?;
                let mut b = [0u8; 1];
                c.read_exact(&mut b)?;
                if &b != b"x" {
                    return Err(std::io::Error::other("wrong byte echoed"));
                }
                Ok(())
            })();
            Ok(r.map_err(|e| format!("{to}:{port}: {e}")))
        },
    )
    .unwrap()
}

/// `ip ARGS` run inside a namespace (ip runs in a child forked inside it); its stdout.
pub fn ip_in(ns: &Path, args: &'static [&'static str]) -> String {
    netns::run_in(Some(ns), move || -> Result<String, netns::NetnsError> {
        let o = Command::new("ip").args(args).output().unwrap();
        Ok(String::from_utf8_lossy(&o.stdout).into_owned())
    })
    .unwrap()
}

/// (received, transmitted) packets of interface `name` in /proc/net/dev text.
pub fn dev_packets(dev: &str, name: &str) -> (u64, u64) {
    let line = dev
        .lines()
        .find(|l| l.trim_start().starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} not in /proc/net/dev"));
    let f: Vec<u64> = line
        .split(':')
        .nth(1)
        .unwrap()
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    (f[1], f[9])
}

/// (received, transmitted) packets of interface `name` in the namespace at `ns`.
pub fn link_packets(ns: &Path, name: &'static str) -> (u64, u64) {
    netns::run_in(
        Some(ns),
        move || -> Result<(u64, u64), netns::NetnsError> {
            let dev = std::fs::read_to_string("/proc/thread-self/net/dev").expect("net/dev");
            Ok(dev_packets(&dev, name))
        },
    )
    .unwrap()
}

/// The second machine of the container tests (Docker, Podman): a namespace joined to the root
/// namespace by a veth pair on 198.18.NET.0/24 (root end .1 named `<u>a`, server end .2), running
/// `nslat serve` at `listen`. The only change those tests make to the root namespace; removed on
/// drop (server, wire, namespace).
pub struct FixtureWire {
    pub ns: String,
    /// The root namespace's end of the wire (a parent for macvlan networks and `--attach`).
    pub wire: String,
    /// The third octet of the wire's network.
    pub net: u32,
    /// `nslat serve`'s address, `198.18.NET.2:PORT`.
    pub listen: String,
    server: Option<std::process::Child>,
}

fn ip(args: &[&str]) {
    let o = Command::new("ip").args(args).output().unwrap();
    assert!(
        o.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

impl FixtureWire {
    /// Builds the wire for unique name `u` on 198.18.`net`.0/24 and starts the server.
    pub fn new(u: &str, net: u32) -> FixtureWire {
        let (root_ip, srv_ip) = (format!("198.18.{net}.1"), format!("198.18.{net}.2"));
        let port = 20000 + (std::process::id() % 20000) as u16;
        let mut fx = FixtureWire {
            ns: format!("nslat-{u}-srv"),
            wire: format!("{u}a"),
            net,
            listen: format!("{srv_ip}:{port}"),
            server: None,
        };
        let peer = format!("{u}b");
        ip(&["netns", "add", &fx.ns]);
        ip(&[
            "link", "add", &fx.wire, "type", "veth", "peer", "name", &peer,
        ]);
        ip(&["link", "set", &peer, "netns", &fx.ns]);
        ip(&["addr", "add", &format!("{root_ip}/24"), "dev", &fx.wire]);
        ip(&["link", "set", &fx.wire, "up"]);
        ip(&[
            "-n",
            &fx.ns,
            "addr",
            "add",
            &format!("{srv_ip}/24"),
            "dev",
            &peer,
        ]);
        ip(&["-n", &fx.ns, "link", "set", &peer, "up"]);
        ip(&["-n", &fx.ns, "link", "set", "lo", "up"]);
        fx.server = Some(
            Command::new(crate::common::nslat_bin())
                .args(["serve", "--netns", &fx.ns, "--listen", &fx.listen])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap(),
        );
        fx
    }

    /// Waits until the host reaches the server.
    pub fn wait_for_server(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect_timeout(&self.listen.parse().unwrap(), Duration::from_millis(200))
            .is_err()
        {
            assert!(
                std::time::Instant::now() < deadline,
                "nslat serve did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for FixtureWire {
    fn drop(&mut self) {
        if let Some(mut s) = self.server.take() {
            let _ = s.kill();
            let _ = s.wait();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.wire])
            .status();
        let _ = Command::new("ip").args(["netns", "del", &self.ns]).status();
    }
}
