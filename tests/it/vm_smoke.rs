//! Proves the guest harness (tests/vm): in a kernel that has ipvlan, an ipvlan child of a veth
//! carries TCP between namespaces, and nftables NAT / reject rules work in a namespace. Without
//! ipvlan the ipvlan test skips, unless NSLAT_REQUIRE_IPVLAN=1 (tests/vm/guest-tests sets it),
//! where it fails. Links are made only inside the test's own namespaces, with `ip`/`nft`.

use crate::common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use nslat::netns::{self, NetnsError};

/// The ipvlan mode the smoke test builds and expects to carry traffic between a container
/// namespace and a peer on the parent's link.
const IPVLAN_MODE: &str = "l2";

#[derive(Debug)]
struct TestError(String);

impl std::fmt::Display for TestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<NetnsError> for TestError {
    fn from(e: NetnsError) -> Self {
        TestError(e.to_string())
    }
}

impl From<std::io::Error> for TestError {
    fn from(e: std::io::Error) -> Self {
        TestError(e.to_string())
    }
}

/// Whether the caller demands ipvlan (the guest run): then its absence is a failure.
fn ipvlan_required() -> bool {
    std::env::var("NSLAT_REQUIRE_IPVLAN").is_ok_and(|v| v == "1")
}

/// Whether this kernel can create an ipvlan link, tried in a throwaway namespace (`unshare -n`).
fn kernel_has_ipvlan() -> bool {
    Command::new("unshare")
        .args([
            "-n",
            "sh",
            "-c",
            "ip link add p type veth peer name q && ip link add iv link p type ipvlan mode l2",
        ])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// Runs a command; panics with its output when it fails. Returns stdout.
fn run(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {}: {}{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `ip -n NS ARGS...`
fn ip(ns: &str, args: &[&str]) -> String {
    let mut all = vec!["-n", ns];
    all.extend_from_slice(args);
    run("ip", &all)
}

/// Loads an nftables ruleset into namespace `ns`.
fn nft(ns: &str, ruleset: &str) {
    let mut child = Command::new("ip")
        .args(["netns", "exec", ns, "nft", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("ip netns exec nft");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(ruleset.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "nft in {ns}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces the test made; deleted on drop (also on panic).
struct Namespaces(Vec<String>);

impl Namespaces {
    fn new(tags: &[&str]) -> Self {
        let mut made = Namespaces(Vec::new());
        for tag in tags {
            let name = common::unique(tag);
            netns::create(&name).expect("create namespace");
            made.0.push(name);
        }
        made
    }

    fn path(&self, i: usize) -> PathBuf {
        netns::path_of(&self.0[i])
    }
}

impl Drop for Namespaces {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = netns::delete(name);
        }
    }
}

/// Serves one echo exchange on `addr` inside namespace `ns` (listener bound before returning).
fn echo_server(ns: &Path, addr: SocketAddr) -> std::thread::JoinHandle<Result<(), TestError>> {
    let listener: TcpListener = netns::run_in(Some(ns), move || {
        Ok::<_, TestError>(TcpListener::bind(addr)?)
    })
    .expect("bind listener");
    std::thread::spawn(move || {
        // accept with a deadline, so a failed client never leaves the test hanging
        listener.set_nonblocking(true)?;
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut conn = loop {
            match listener.accept() {
                Ok((conn, _)) => break conn,
                Err(e)
                    if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(10))
                }
                Err(e) => return Err(TestError(format!("accept on {addr}: {e}"))),
            }
        };
        conn.set_nonblocking(false)?;
        conn.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buf = [0u8; 5];
        conn.read_exact(&mut buf)?;
        conn.write_all(&buf)?;
        Ok(())
    })
}

/// Connects from namespace `ns` to `addr`, sends "nslat", expects it echoed.
fn echo_client(ns: &Path, addr: SocketAddr) -> Result<(), TestError> {
    netns::run_in(Some(ns), move || {
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.write_all(b"nslat")?;
        let mut buf = [0u8; 5];
        s.read_exact(&mut buf)?;
        if &buf != b"nslat" {
            return Err(TestError(format!("echo returned {buf:?}")));
        }
        Ok(())
    })
}

fn ready(test: &str) -> bool {
    common::need_root(test) && common::need_tool(test, "ip") && common::need_tool(test, "nft")
}

#[test]
fn ipvlan_child_of_a_veth_carries_tcp_between_namespaces() {
    let test = "ipvlan_child_of_a_veth_carries_tcp_between_namespaces";
    if !ready(test) {
        return;
    }
    if !kernel_has_ipvlan() {
        assert!(
            !ipvlan_required(),
            "NSLAT_REQUIRE_IPVLAN=1 but this kernel cannot create an ipvlan link"
        );
        eprintln!(
            "SKIPPED {test}: this kernel has no ipvlan (tests/vm/guest-tests runs it in a guest)"
        );
        return;
    }
    let root = common::RootSnapshot::take();
    // node: the veth's parent end; peer: the other end; pod: the ipvlan child.
    let ns = Namespaces::new(&["node", "peer", "pod"]);
    let (node, peer, pod) = (&ns.0[0], &ns.0[1], &ns.0[2]);
    ip(
        node,
        &[
            "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", peer,
        ],
    );
    ip(node, &["link", "set", "eth0", "up"]);
    ip(
        node,
        &[
            "link",
            "add",
            "iv0",
            "link",
            "eth0",
            "type",
            "ipvlan",
            "mode",
            IPVLAN_MODE,
        ],
    );
    ip(node, &["link", "set", "iv0", "netns", pod]);
    ip(peer, &["addr", "add", "198.18.0.1/24", "dev", "eth0"]);
    ip(peer, &["link", "set", "eth0", "up"]);
    ip(pod, &["addr", "add", "198.18.0.2/24", "dev", "iv0"]);
    ip(pod, &["link", "set", "iv0", "up"]);

    let details = ip(pod, &["-d", "link", "show", "iv0"]);
    assert!(
        details.contains(&format!("ipvlan  mode {IPVLAN_MODE} ")),
        "iv0 is not an ipvlan {IPVLAN_MODE} link: {details}"
    );

    let addr: SocketAddr = "198.18.0.1:12866".parse().unwrap();
    let server = echo_server(&ns.path(1), addr);
    let client = echo_client(&ns.path(2), addr);
    if let Err(e) = &client {
        panic!("TCP from the ipvlan {IPVLAN_MODE} child in {pod} to {peer} failed: {e}");
    }
    server.join().unwrap().expect("echo server");
    drop(ns);
    root.assert_unchanged();
}

#[test]
fn nftables_nat_and_reject_work_in_a_namespace() {
    let test = "nftables_nat_and_reject_work_in_a_namespace";
    if !ready(test) {
        return;
    }
    let root = common::RootSnapshot::take();
    let ns = Namespaces::new(&["cli", "srv"]);
    let (cli, srv) = (&ns.0[0], &ns.0[1]);
    ip(
        cli,
        &[
            "link", "add", "v0", "type", "veth", "peer", "name", "v0", "netns", srv,
        ],
    );
    ip(cli, &["addr", "add", "198.18.1.1/24", "dev", "v0"]);
    ip(cli, &["link", "set", "v0", "up"]);
    ip(srv, &["addr", "add", "198.18.1.2/24", "dev", "v0"]);
    ip(srv, &["link", "set", "v0", "up"]);
    // cli: a service address 198.18.1.99:80 DNATed to the server (the way a container port is
    // published), plus masquerade; srv: port 7001 rejected with a TCP reset.
    nft(
        cli,
        "table ip nat {\n\
           chain out { type nat hook output priority -100; ip daddr 198.18.1.99 tcp dport 80 dnat to 198.18.1.2:7000; }\n\
           chain post { type nat hook postrouting priority srcnat; oifname \"v0\" ip daddr 198.18.1.2 masquerade; }\n\
         }\n",
    );
    nft(
        srv,
        "table inet filter {\n\
           chain input { type filter hook input priority 0; ct state established,related accept; tcp dport 7001 reject with tcp reset; }\n\
         }\n",
    );
    let server = echo_server(&ns.path(1), "198.18.1.2:7000".parse().unwrap());
    echo_client(&ns.path(0), "198.18.1.99:80".parse().unwrap()).expect("DNAT to the server");
    server.join().unwrap().expect("echo server");

    // A listener on 7001 exists, so a refusal comes from the reject rule.
    let _listener = netns::run_in(Some(&ns.path(1)), || {
        Ok::<_, TestError>(TcpListener::bind("198.18.1.2:7001")?)
    })
    .unwrap();
    let refused = netns::run_in(Some(&ns.path(0)), || {
        Ok::<_, TestError>(TcpStream::connect_timeout(
            &"198.18.1.2:7001".parse().unwrap(),
            Duration::from_secs(5),
        ))
    })
    .unwrap();
    match refused {
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {}
        other => panic!("expected the reject rule to refuse 198.18.1.2:7001, got {other:?}"),
    }
    drop(ns);
    root.assert_unchanged();
}
