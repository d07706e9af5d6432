//! Feature checks per mode behind `nslat check`: what each way of attaching a container keeps
//! and loses. Every check is a real TCP connection attempt (short timeouts) between the lab's
//! namespaces, never an assumption; rules (Service DNAT, policy drop) are installed in the node
//! for the duration of the check and removed afterwards.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::firewall::{FirewallError, Subnet4};
use crate::lab::{plan, Lab, Mode};
use crate::netlink::{Netlink, NetlinkError};
use crate::netns::{self, NetnsError};

/// How long one connection attempt may take. Inside one machine a working path answers in
/// well under a millisecond; a blocked one is dropped or unresolved and would wait forever.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(250);

/// The virtual Service address (kube-proxy's ClusterIP) and port the `service` check uses.
pub const CLUSTER_IP: Ipv4Addr = plan::CLUSTER_IP;
pub const CLUSTER_PORT: u16 = plan::CLUSTER_PORT;

/// Names of the checks, in report order.
pub const CHECKS: [&str; 8] = [
    "service",
    "node_to_container",
    "container_to_node",
    "container_to_remote",
    "remote_to_container",
    "policy",
    "policy_service",
    "macs",
];

/// What people call each of [`CHECKS`] (the progress bar's words).
pub fn check_label(check: &str) -> &'static str {
    match check {
        "service" => "Service",
        "node_to_container" => "node → container",
        "container_to_node" => "container → node",
        "container_to_remote" => "container → remote",
        "remote_to_container" => "remote → container",
        "policy" => "host policy",
        "policy_service" => "host policy on Service traffic",
        "macs" => "MACs on the wire",
        _ => "check",
    }
}

/// Told about the checks as they run (a progress bar; every method has a no-op default).
pub trait CheckProgress {
    /// The checks begin: `checks` of them are planned (at least 1 when called).
    fn planned(&self, _checks: usize) {}
    /// One check begins, e.g. ("bridge", "Service").
    fn started(&self, _mode: &str, _check: &str) {}
    /// The check that began last ended.
    fn finished(&self) {}
}

/// Progress that shows nothing.
pub struct NoCheckProgress;
impl CheckProgress for NoCheckProgress {}

/// The checks [`run`] makes for a mode: three without a namespace of its own (the host), else
/// all of [`CHECKS`].
pub fn planned_checks(mode: Mode) -> usize {
    if mode.traits().own_namespace {
        CHECKS.len()
    } else {
        3
    }
}

/// Errors that stop the checks (a failing check is a result, not an error).
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error("nslat check builds or changes network namespaces and needs root; run it with sudo")]
    NotRoot,
    #[error("installing a check rule in the node: {0}")]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("reading the node's links: {0}")]
    Netlink(#[from] NetlinkError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// One mode's row of the matrix. `None`: the check does not apply (e.g. node ↔ container for
/// `host`, which is the node) or the mode is unavailable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeChecks {
    pub mode: String,
    pub available: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The container reaches a Service ClusterIP DNATed by the node (kube-proxy style).
    pub service: Option<bool>,
    pub node_to_container: Option<bool>,
    pub container_to_node: Option<bool>,
    pub container_to_remote: Option<bool>,
    /// Direct, without NAT, where the lab routes to the container.
    pub remote_to_container: Option<bool>,
    /// A drop rule for the container in the node's forward/input hooks blocks its traffic to the remote.
    pub policy: Option<bool>,
    /// The same rule blocks its traffic to the Service.
    pub policy_service: Option<bool>,
    /// MAC addresses the node and this container put on the wire (as the remote learned them).
    pub macs: Option<u32>,
    /// Why each failed (or surprising) check came out as it did.
    #[serde(default)]
    pub why: BTreeMap<String, String>,
}

/// The whole matrix.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckMatrix {
    pub lab: String,
    pub host_shim: bool,
    /// Why the checks that load nftables rules (Service, policy, policy (Svc)) could not run
    /// (`None`: they ran); the other checks ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_unavailable: Option<String>,
    pub modes: Vec<ModeChecks>,
}

/// A TCP echo listener on a thread inside a namespace; stops when dropped.
struct Echo {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), CheckError>>>,
}

impl Echo {
    fn start(ns: &Path) -> Result<Echo, CheckError> {
        Echo::start_on(ns, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    /// An echo listening on `any` (`::` for the IPv6 checks).
    fn start_on(ns: &Path, any: IpAddr) -> Result<Echo, CheckError> {
        let listener = netns::run_in(Some(ns), move || {
            TcpListener::bind((any, 0)).map_err(|source| CheckError::Io {
                what: "binding a check listener".into(),
                source,
            })
        })?;
        listener
            .set_nonblocking(true)
            .map_err(|source| CheckError::Io {
                what: "check listener".into(),
                source,
            })?;
        let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut s, _)) => {
                        let _ = s.set_nonblocking(false);
                        let _ = s.set_read_timeout(Some(ATTEMPT_TIMEOUT));
                        let mut b = [0u8; 1];
                        if s.read_exact(&mut b).is_ok() {
                            let _ = s.write_all(&b);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            Ok(())
        });
        Ok(Echo {
            port,
            stop,
            thread: Some(thread),
        })
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

/// Connects from namespace `from` to `to`, sends one byte and waits for its echo.
/// `Ok(())` when the round trip completed; `Err(what went wrong)` otherwise.
fn attempt(from: &Path, to: SocketAddr) -> Result<(), String> {
    let outcome = netns::run_in(
        Some(from),
        move || -> Result<Result<(), String>, NetnsError> {
            let mut s = match TcpStream::connect_timeout(&to, ATTEMPT_TIMEOUT) {
                Ok(s) => s,
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    return Ok(Err(format!(
                        "connect to {to} timed out after {} ms",
                        ATTEMPT_TIMEOUT.as_millis()
                    )))
                }
                Err(e) => return Ok(Err(format!("connect to {to}: {e}"))),
            };
            let _ = s.set_read_timeout(Some(ATTEMPT_TIMEOUT));
            let _ = s.set_write_timeout(Some(ATTEMPT_TIMEOUT));
            let mut b = [0x5a_u8];
            if let Err(e) = s.write_all(&b) {
                return Ok(Err(format!("send to {to}: {e}")));
            }
            Ok(match s.read_exact(&mut b) {
                Ok(()) => Ok(()),
                Err(e) => Err(format!("no answer from {to}: {e}")),
            })
        },
    );
    outcome.unwrap_or_else(|e| Err(e.to_string()))
}

/// Where one mode's container is, as the checks need it.
struct Target {
    mode: Mode,
    netns: PathBuf,
    addr: Ipv4Addr,
    /// A hybrid's address on its side veth to the node.
    side_addr: Option<Ipv4Addr>,
    /// The remote's address this mode's traffic targets.
    server: Ipv4Addr,
}

/// The explanation for a failed check: the mode's driver says why its kind of attachment
/// fails it, with the attempt's error beside.
fn why_failed(check: &str, mode: Mode, shim: bool, error: &str) -> String {
    match mode.driver().why(check_name(check), shim) {
        Some(cause) => format!("{cause} ({error})"),
        None => error.to_string(),
    }
}

/// `check` as one of [`CHECKS`] (the drivers' explanations are keyed by these).
fn check_name(check: &str) -> &'static str {
    CHECKS.iter().copied().find(|c| *c == check).unwrap_or("")
}

/// Records a check's outcome and, when it failed, why.
fn record(
    row: &mut ModeChecks,
    check: &str,
    outcome: Result<(), String>,
    shim: bool,
    mode: Mode,
) -> Option<bool> {
    match outcome {
        Ok(()) => Some(true),
        Err(e) => {
            row.why
                .insert(check.to_string(), why_failed(check, mode, shim, &e));
            Some(false)
        }
    }
}

/// The MAC addresses the remote learned for `addrs` (complete entries of its ARP table).
fn macs_learned(ns: &Path, addrs: Vec<Ipv4Addr>) -> Result<Vec<String>, CheckError> {
    netns::run_in(Some(ns), move || {
        // /proc/net follows the process's main thread; thread-self follows this thread's namespace.
        let text = std::fs::read_to_string("/proc/thread-self/net/arp").map_err(|source| {
            CheckError::Io {
                what: "reading the remote's ARP table".into(),
                source,
            }
        })?;
        Ok(learned_macs(&text, &addrs))
    })
}

/// Every MAC address of the node's own links (its NIC, and the lab's per-mode wire ports).
fn node_macs(node: &Path) -> Result<Vec<String>, CheckError> {
    let mut nl = Netlink::open_in(node)?;
    let mut macs = Vec::new();
    for name in nl.link_names()? {
        let index = nl.link_index(&name)?;
        if let Ok(mac) = nl.link_mac(index) {
            macs.push(format_mac(mac));
        }
    }
    Ok(macs)
}

fn format_mac(m: [u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

/// Parses `/proc/net/arp`: the distinct hardware addresses of complete entries for `addrs`.
pub fn learned_macs(arp_table: &str, addrs: &[Ipv4Addr]) -> Vec<String> {
    let mut macs: Vec<String> = arp_table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let ip: Ipv4Addr = f.first()?.parse().ok()?;
            let flags = u32::from_str_radix(f.get(2)?.trim_start_matches("0x"), 16).ok()?;
            let mac = f.get(3)?.to_ascii_lowercase();
            let complete = flags & 0x2 != 0 && mac != "00:00:00:00:00:00";
            (complete && addrs.contains(&ip)).then_some(mac)
        })
        .collect();
    macs.sort_unstable();
    macs.dedup();
    macs
}

/// MACs on the wire for the node and one container: the node's one, plus every MAC the remote
/// learned that is none of the node's own (the node's NIC and its lab wire ports count as one).
pub fn macs_on_wire(learned: &[String], node: &[String]) -> u32 {
    1 + learned.iter().filter(|m| !node.contains(m)).count() as u32
}

/// Runs every check for `modes` of `lab` and returns the matrix. Modes the lab does not have or
/// could not build are rows with `available: false` and the reason.
/// A mode's info in `lab`, or why its row has no checks (its build failed, or the lab lacks it).
fn built(lab: &Lab, mode: Mode) -> Result<&crate::lab::ModeInfo, String> {
    match lab.mode(mode) {
        Some(Ok(info)) => Ok(info),
        Some(Err(reason)) => Err(reason.clone()),
        None => Err(format!("not part of lab '{}'", lab.name())),
    }
}

pub fn run(lab: &Lab, modes: &[Mode]) -> Result<CheckMatrix, CheckError> {
    run_with(lab, modes, &NoCheckProgress)
}

/// [`run`], telling `progress` about each check.
pub fn run_with(
    lab: &Lab,
    modes: &[Mode],
    progress: &dyn CheckProgress,
) -> Result<CheckMatrix, CheckError> {
    if !netns::is_root() {
        return Err(CheckError::NotRoot);
    }
    let shim = lab.state().host_shim;
    let node = lab.node_netns().to_path_buf();
    let remote = lab.remote_netns().to_path_buf();
    let node_addr = lab.node_addr();
    let remote_addr = lab.remote_addr();

    let own_macs = node_macs(&node)?;
    let remote_echo = Echo::start(&remote)?;
    let node_echo = Echo::start(&node)?;
    let firewall = lab.firewall();
    // Without nft the Service and policy checks are not available; the rest still run.
    let rules_unavailable = crate::firewall::nft_missing();
    if rules_unavailable.is_none() {
        firewall.set_service_dnat(CLUSTER_IP, CLUSTER_PORT, remote_addr, remote_echo.port)?;
    }
    let cleanup = RuleCleanup { lab };

    let service = SocketAddr::new(CLUSTER_IP.into(), CLUSTER_PORT);
    let planned: usize = modes
        .iter()
        .filter(|&&m| matches!(lab.mode(m), Some(Ok(_))))
        .map(|&m| planned_checks(m))
        .sum();
    if planned > 0 {
        progress.planned(planned);
    }
    let mut rows = Vec::new();
    for &mode in modes {
        let mut row = ModeChecks {
            mode: mode.name().to_string(),
            ..Default::default()
        };
        let target = match built(lab, mode) {
            Ok(info) => Target {
                mode,
                netns: info.netns.clone(),
                addr: info.addr,
                side_addr: mode.driver().plan().side,
                server: info.server,
            },
            Err(reason) => {
                row.reason = Some(reason);
                rows.push(row);
                continue;
            }
        };
        row.available = true;
        let is_host = !mode.traits().own_namespace;
        // The remote as the mode reaches it (its wire address, or its pod-subnet address for
        // an overlay); the echo listens on every address of the remote.
        let to_remote = SocketAddr::new(target.server.into(), remote_echo.port);
        // One TCP exchange `from` → `to`, recorded as `check` (with the reason when it fails).
        let tcp = |row: &mut ModeChecks, check: &str, from: &Path, to: SocketAddr| {
            progress.started(mode.name(), check_label(check));
            let outcome = record(row, check, attempt(from, to), shim, mode);
            progress.finished();
            outcome
        };

        row.service = if rules_unavailable.is_none() {
            tcp(&mut row, "service", &target.netns, service)
        } else {
            progress.started(mode.name(), check_label("service"));
            progress.finished();
            None
        };
        row.container_to_remote = tcp(&mut row, "container_to_remote", &target.netns, to_remote);
        if !is_host {
            let echo = Echo::start(&target.netns)?;
            let at_container = SocketAddr::new(IpAddr::V4(target.addr), echo.port);
            let at_node = SocketAddr::new(node_addr.into(), node_echo.port);
            row.node_to_container = tcp(&mut row, "node_to_container", &node, at_container);
            row.container_to_node = tcp(&mut row, "container_to_node", &target.netns, at_node);
            row.remote_to_container = tcp(&mut row, "remote_to_container", &remote, at_container);
            let passed = [
                ("service", row.service),
                ("container_to_remote", row.container_to_remote),
                ("node_to_container", row.node_to_container),
                ("container_to_node", row.container_to_node),
                ("remote_to_container", row.remote_to_container),
            ];
            for (check, outcome) in passed {
                if outcome == Some(true) {
                    if let Some(note) = mode.driver().note_when_passing(check) {
                        row.why.insert(check.into(), note.into());
                    }
                }
            }
            if rules_unavailable.is_none() {
                policy_checks(&mut row, lab, &target, to_remote, service, shim, progress)?;
            } else {
                for check in ["policy", "policy_service"] {
                    progress.started(mode.name(), check_label(check));
                    progress.finished();
                }
            }
        }
        let mut wire_addrs = vec![node_addr, target.addr];
        wire_addrs.dedup();
        progress.started(mode.name(), check_label("macs"));
        let learned = macs_learned(&remote, wire_addrs)?;
        row.macs = Some(macs_on_wire(&learned, &own_macs));
        progress.finished();
        rows.push(row);
    }
    drop(cleanup);
    Ok(CheckMatrix {
        lab: lab.name().to_string(),
        host_shim: shim,
        rules_unavailable,
        modes: rows,
    })
}

/// The IPv6 rows of the matrix (`compare --family 6|both`): "MODE (IPv6)", the reach checks
/// (container ↔ remote, node ↔ container) by TCP over the lab's 2001:2::/48 addresses. The
/// Service and policy checks are IPv4 only (their rules are `ip` tables) and MACs are counted
/// from the remote's ARP table: those stay `None` (—). A lab built without IPv6, or a mode
/// without an IPv6 path, gives a row that is not available with the reason.
pub fn run_reach6(
    lab: &Lab,
    modes: &[Mode],
    progress: &dyn CheckProgress,
) -> Result<Vec<ModeChecks>, CheckError> {
    if !netns::is_root() {
        return Err(CheckError::NotRoot);
    }
    let shim = lab.state().host_shim;
    let node = lab.node_netns().to_path_buf();
    let remote = lab.remote_netns().to_path_buf();
    let any6 = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);
    let remote_echo = Echo::start_on(&remote, any6)?;
    let node_echo = Echo::start_on(&node, any6)?;
    let label = |m: Mode| format!("{} (IPv6)", m.name());
    let mut rows = Vec::new();
    let planned: usize = modes
        .iter()
        .filter(|&&m| matches!(lab.mode(m), Some(Ok(i)) if i.addr6.is_some()))
        .filter(|m| m.driver().ipv6_unavailable().is_none())
        .map(|&m| if m.traits().own_namespace { 4 } else { 1 })
        .sum();
    if planned > 0 {
        progress.planned(planned);
    }
    for &mode in modes {
        let mut row = ModeChecks {
            mode: label(mode),
            ..Default::default()
        };
        let info = match built(lab, mode) {
            Ok(info) => info,
            Err(reason) => {
                row.reason = Some(reason);
                rows.push(row);
                continue;
            }
        };
        if let Some(why) = mode.driver().ipv6_unavailable() {
            row.reason = Some(format!("no IPv6 path: {why}"));
            rows.push(row);
            continue;
        }
        let Some(addr6) = info.addr6 else {
            row.reason = Some(if !lab.ipv6() {
                format!("lab '{}' was built without IPv6", lab.name())
            } else {
                format!(
                    "no IPv6 path: {}",
                    mode.driver()
                        .ipv6_unavailable()
                        .unwrap_or("the mode has none")
                )
            });
            rows.push(row);
            continue;
        };
        row.available = true;
        let tcp = |row: &mut ModeChecks, check: &str, from: &Path, to: SocketAddr| {
            progress.started(&label(mode), check_label(check));
            let outcome = record(row, check, attempt(from, to), shim, mode);
            progress.finished();
            outcome
        };
        let to_remote = SocketAddr::new(IpAddr::V6(plan::v6(info.server)), remote_echo.port);
        row.container_to_remote = tcp(&mut row, "container_to_remote", &info.netns, to_remote);
        if mode.traits().own_namespace {
            let echo = Echo::start_on(&info.netns, any6)?;
            let at_container = SocketAddr::new(IpAddr::V6(addr6), echo.port);
            let at_node = SocketAddr::new(IpAddr::V6(plan::v6(lab.node_addr())), node_echo.port);
            row.node_to_container = tcp(&mut row, "node_to_container", &node, at_container);
            row.container_to_node = tcp(&mut row, "container_to_node", &info.netns, at_node);
            row.remote_to_container = tcp(&mut row, "remote_to_container", &remote, at_container);
        }
        rows.push(row);
    }
    Ok(rows)
}

/// With a drop rule for the container's source address in the node, is its traffic blocked?
/// (A passing attempt means the policy is not enforced.)
fn policy_checks(
    row: &mut ModeChecks,
    lab: &Lab,
    target: &Target,
    to_remote: SocketAddr,
    service: SocketAddr,
    shim: bool,
    progress: &dyn CheckProgress,
) -> Result<(), CheckError> {
    let firewall = lab.firewall();
    let mode = target.mode.name();
    // Drops traffic from `source` in the node, tries `to`: blocked means the policy is enforced.
    let mut enforced =
        |check: &str, source: Ipv4Addr, to: SocketAddr| -> Result<bool, CheckError> {
            progress.started(mode, check_label(check));
            firewall.set_policy_drop(Subnet4 {
                addr: source,
                len: 32,
            })?;
            let blocked = attempt(&target.netns, to).is_err();
            progress.finished();
            if !blocked {
                let went = format!("the connection to {to} went through");
                row.why
                    .insert(check.into(), why_failed(check, target.mode, shim, &went));
            }
            Ok(blocked)
        };
    let policy = enforced("policy", target.addr, to_remote)?;
    // Service traffic leaves a hybrid through its side veth, with that address as source.
    let policy_service = if row.service == Some(true) {
        Some(enforced(
            "policy_service",
            target.side_addr.unwrap_or(target.addr),
            service,
        )?)
    } else {
        // Not tried (no Service to police), but planned: counted as done.
        progress.started(mode, check_label("policy_service"));
        progress.finished();
        None
    };
    row.policy = Some(policy);
    row.policy_service = policy_service;
    firewall.remove_table(crate::firewall::POLICY_TABLE)?;
    Ok(())
}

/// Removes the check's rules from the node even when a check fails half-way.
struct RuleCleanup<'a> {
    lab: &'a Lab,
}

impl Drop for RuleCleanup<'_> {
    fn drop(&mut self) {
        let fw = self.lab.firewall();
        let _ = fw.remove_table(crate::firewall::POLICY_TABLE);
        let _ = fw.remove_table(crate::firewall::SERVICE_TABLE);
    }
}

/// The matrix as JSON for `compare`'s report (`null` with the reason when checks cannot run).
/// What a comparison's feature checks gave: the matrix, or why they could not run. In JSON the
/// matrix itself, or `{"error": "..."}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChecksOutcome {
    Failed { error: String },
    Matrix(CheckMatrix),
}

impl ChecksOutcome {
    /// The matrix, when the checks ran.
    pub fn matrix(&self) -> Option<&CheckMatrix> {
        match self {
            ChecksOutcome::Matrix(m) => Some(m),
            ChecksOutcome::Failed { .. } => None,
        }
    }
}

/// Runs the checks for a comparison's report: a failure is kept as its reason, not an error.
pub fn outcome(lab: &Lab, modes: &[Mode], progress: &dyn CheckProgress) -> ChecksOutcome {
    match run_with(lab, modes, progress) {
        Ok(m) => ChecksOutcome::Matrix(m),
        Err(e) => ChecksOutcome::Failed {
            error: crate::error::error_chain(&e),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARP: &str =
        "IP address       HW type     Flags       HW address            Mask     Device
198.18.0.1       0x1         0x2         aa:bb:cc:00:00:01     *        eth0
198.18.0.3       0x1         0x2         aa:bb:cc:00:00:03     *        eth0
198.18.0.4       0x1         0x2         aa:bb:cc:00:00:01     *        eth0
198.18.0.5       0x1         0x2         AA:BB:CC:00:00:0E     *        eth0
198.18.0.9       0x1         0x0         00:00:00:00:00:00     *        eth0
";

    #[test]
    fn macs_are_counted_beyond_the_nodes_own() {
        let a = |d| Ipv4Addr::new(198, 18, 0, d);
        let node = vec![
            "aa:bb:cc:00:00:01".to_string(),
            "aa:bb:cc:00:00:0e".to_string(),
        ];
        let on_wire = |addrs: &[Ipv4Addr]| macs_on_wire(&learned_macs(ARP, addrs), &node);
        assert_eq!(on_wire(&[a(1), a(3)]), 2, "macvlan: a MAC of its own");
        assert_eq!(on_wire(&[a(1), a(4)]), 1, "ipvlan: shares the node's MAC");
        assert_eq!(
            on_wire(&[a(1), a(5)]),
            1,
            "a node wire port counts as the node"
        );
        assert_eq!(on_wire(&[a(1), a(9)]), 1, "incomplete entries do not count");
        assert!(learned_macs(ARP, &[a(2)]).is_empty());
        assert!(learned_macs("garbage\nnot an arp line\n", &[a(1)]).is_empty());
        assert_eq!(
            format_mac([0xaa, 0xbb, 0xcc, 0, 0, 0x0e]),
            "aa:bb:cc:00:00:0e"
        );
    }

    #[test]
    fn failures_are_explained_by_mode() {
        let w = why_failed("service", Mode::Macvlan, false, "timed out");
        assert!(w.contains("netfilter") && w.contains("timed out"), "{w}");
        let w = why_failed("node_to_container", Mode::Macvlan, false, "timed out");
        assert!(w.contains("--host-shim"), "{w}");
        let w = why_failed("service", Mode::Bridge, false, "refused");
        assert_eq!(w, "refused");
    }
}
