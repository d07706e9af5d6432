//! Helpers for the lab tests: a guard that removes a lab, a TCP server in a namespace that
//! answers with the peer's address, a client exchange from a namespace, and a leftovers check.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
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
    let mut c = TcpStream::connect_timeout(&SocketAddr::new(to, PORT), Duration::from_secs(2))?;
    c.set_read_timeout(Some(Duration::from_secs(2)))?;
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
