//! Neighbour containers for the load sweep: K more containers of the victim's mode on the
//! same node (namespaces `nslat-LAB-nbr<i>-<mode>`, which `lab down` sweeps with the rest), and
//! their bounded TCP_STREAMs to the remote (each run has a duration and ends by itself).
//!
//! This module builds links and addresses with the crate's netlink socket; it does not measure
//! the victim.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::bench::client::{self, ClientError};
use crate::bench::{RunResult, RunSpec, TestKind};
use crate::lab::{plan, Lab, Mode};
use crate::netlink::{Netlink, NetlinkError, Route};
use crate::netns::{self, NetnsError};

/// The most neighbours per mode (their namespace names are known to `lab down`).
pub const MAX_NEIGHBOURS: usize = plan::MAX_NEIGHBOURS;

/// Errors of building neighbours.
#[derive(Debug, thiserror::Error)]
pub enum NeighbourError {
    #[error("neighbours in {0} mode are not supported (use host, bridge, ptp or macvlan)")]
    Unsupported(Mode),
    #[error("at most {MAX_NEIGHBOURS} neighbours per mode")]
    TooMany,
    #[error("building neighbour {index} of {mode}")]
    Build {
        mode: Mode,
        index: usize,
        #[source]
        source: Box<NeighbourError>,
    },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error("opening {what}: {error}")]
    Io { what: String, error: std::io::Error },
}

/// Whether neighbours can be built for `mode`.
pub fn supported(mode: Mode) -> bool {
    [Mode::Host, Mode::Bridge, Mode::Ptp, Mode::Macvlan].contains(&mode)
}

/// Why `mode` has no neighbours, in one line (for a mode [`supported`] accepts: empty).
pub fn why_unsupported(mode: Mode) -> String {
    let why = if supported(mode) {
        return String::new();
    } else if mode == Mode::VethBpf {
        "veth-bpf neighbours are not built: the mode's tc programs redirect for the one container \
         the lab configured them with, so a neighbour's veth would need programs of its own"
    } else if mode == Mode::Vxlan {
        "vxlan neighbours are not built: they would need addresses in the node's pod subnet and \
         the server at the remote's pod address (the lab's vxlan server address)"
    } else if mode.needs_ipvlan() {
        "ipvlan neighbours are not built (and this kernel may lack ipvlan: see `nslat lab up`)"
    } else {
        "neighbours are not built for this mode"
    };
    format!("{why}; the load sweep's modes are host, bridge, ptp and macvlan")
}

/// The address of neighbour `i` of `mode` (host neighbours are the node itself).
pub fn address(mode: Mode, i: usize) -> Option<Ipv4Addr> {
    let host = 20 + i as u8;
    if mode == Mode::Host {
        Some(plan::NODE)
    } else if mode == Mode::Bridge {
        Some(Ipv4Addr::new(198, 18, 1, host))
    } else if mode == Mode::Ptp {
        Some(Ipv4Addr::new(198, 18, 2, host))
    } else if mode == Mode::Macvlan {
        Some(Ipv4Addr::new(198, 18, 0, host))
    } else {
        None
    }
}

/// Builds `k` neighbours of `mode` in `lab` and returns the namespaces their streams run in
/// (for `host`: the node's, `k` times). What is built is removed by `lab down` (and by
/// [`remove`]).
pub fn build(lab: &Lab, mode: Mode, k: usize) -> Result<Vec<PathBuf>, NeighbourError> {
    if !supported(mode) {
        return Err(NeighbourError::Unsupported(mode));
    }
    if k > MAX_NEIGHBOURS {
        return Err(NeighbourError::TooMany);
    }
    if mode == Mode::Host {
        return Ok(vec![lab.node_netns().to_path_buf(); k]);
    }
    let mut node = Netlink::open_in(lab.node_netns())?;
    (0..k)
        .map(|i| {
            build_one(lab, &mut node, mode, i).map_err(|e| NeighbourError::Build {
                mode,
                index: i,
                source: Box::new(e),
            })
        })
        .collect()
}

fn build_one(
    lab: &Lab,
    node: &mut Netlink,
    mode: Mode,
    i: usize,
) -> Result<PathBuf, NeighbourError> {
    let name = format!(
        "{}{}",
        plan::prefix(lab.name()),
        plan::neighbour_suffix(mode, i)
    );
    let (path, mut nl) = netns::create_and_run(&name, || -> Result<Netlink, NeighbourError> {
        let mut nl = Netlink::open()?;
        let lo = nl.link_index("lo")?;
        nl.set_up(lo, true)?;
        Ok(nl)
    })?;
    let fd = File::open(&path).map_err(|error| NeighbourError::Io {
        what: path.display().to_string(),
        error,
    })?;
    let addr = address(mode, i).expect("supported");
    let host_if = format!("vnb{i}-{}", &mode.name()[..mode.name().len().min(6)]);
    if mode == Mode::Bridge {
        {
            node.create_veth(&host_if, "eth0", Some(fd.as_fd()))?;
            let hi = node.link_index(&host_if)?;
            let br = node.link_index("docker0")?;
            node.set_master(hi, br)?;
            node.set_up(hi, true)?;
            let ci = eth0(&mut nl, addr, 24)?;
            let _ = ci;
            nl.add_route(&Route::via(
                Ipv4Addr::UNSPECIFIED.into(),
                0,
                plan::BRIDGE_GW.into(),
            ))?;
        }
    } else if mode == Mode::Ptp {
        {
            node.create_veth(&host_if, "eth0", Some(fd.as_fd()))?;
            let hi = node.link_index(&host_if)?;
            match node.add_address(hi, plan::PTP_NODE.into(), 32) {
                Err(e) if !e.is_exists() => return Err(e.into()),
                _ => {}
            }
            node.set_up(hi, true)?;
            node.add_route(&Route::dev(addr.into(), 32, hi))?;
            let ci = eth0(&mut nl, addr, 32)?;
            nl.add_route(&Route::dev(plan::PTP_NODE.into(), 32, ci))?;
            nl.add_route(&Route::onlink(
                Ipv4Addr::UNSPECIFIED.into(),
                0,
                plan::PTP_NODE.into(),
                ci,
            ))?;
        }
    } else if mode == Mode::Macvlan {
        {
            let parent = node.link_index("eth0")?;
            node.create_macvlan(TMP_IFNAME, parent, Some(fd.as_fd()))?;
            let t = nl.link_index(TMP_IFNAME)?;
            nl.rename(t, "eth0")?;
            eth0(&mut nl, addr, 24)?;
            nl.add_route(&Route::via(
                Ipv4Addr::UNSPECIFIED.into(),
                0,
                plan::REMOTE.into(),
            ))?;
        }
    } else {
        return Err(NeighbourError::Unsupported(mode));
    }
    Ok(path)
}

/// Created under this name and renamed inside (kernels check the name in the creating
/// namespace too, where eth0 exists).
const TMP_IFNAME: &str = "nslat-nbr0";

fn eth0(nl: &mut Netlink, addr: Ipv4Addr, len: u8) -> Result<u32, NeighbourError> {
    let ci = nl.link_index("eth0")?;
    nl.add_address(ci, IpAddr::V4(addr), len)?;
    nl.set_up(ci, true)?;
    Ok(ci)
}

/// Removes the neighbour namespaces of `mode` (their links go with them).
pub fn remove(lab: &Lab, mode: Mode) {
    for i in 0..MAX_NEIGHBOURS {
        let _ = netns::delete(&format!(
            "{}{}",
            plan::prefix(lab.name()),
            plan::neighbour_suffix(mode, i)
        ));
    }
}

/// Running neighbour streams; [`Streams::join`] waits for them (each ends after its duration).
pub struct Streams {
    handles: Vec<JoinHandle<Result<RunResult, ClientError>>>,
}

/// Starts one TCP_STREAM per namespace to `server`, each for `duration` (plus its warm-up),
/// client pinned to `client_cpu`, server data thread to `server_cpu`.
pub fn start(
    namespaces: &[PathBuf],
    server: SocketAddr,
    duration: Duration,
    client_cpu: usize,
    server_cpu: usize,
) -> Streams {
    let handles = namespaces
        .iter()
        .map(|ns| {
            let mut spec = RunSpec::new(server, TestKind::TcpStream, duration);
            spec.warmup = Duration::from_millis(200);
            spec.client_cpu = Some(client_cpu);
            spec.server_cpu = Some(server_cpu);
            spec.netns = Some(ns.clone());
            std::thread::spawn(move || client::run(&spec))
        })
        .collect();
    Streams { handles }
}

impl Streams {
    /// Waits for every stream; returns the summed throughput (Gbit/s) and the errors.
    pub fn join(self) -> (f64, Vec<String>) {
        let mut gbps = 0.0;
        let mut errors = Vec::new();
        for h in self.handles {
            match h.join() {
                Ok(Ok(r)) => gbps += r.throughput_gbps.unwrap_or(0.0),
                Ok(Err(e)) => errors.push(crate::error::error_chain(&e)),
                Err(_) => errors.push("a neighbour stream thread panicked".into()),
            }
        }
        (gbps, errors)
    }
}

/// Bytes the node's `eth0` (the wire to the remote) has sent, read from the node's own
/// `/proc/net/dev` (`None` when unreadable).
pub fn wire_tx_bytes(node: &std::path::Path) -> Option<u64> {
    netns::run_in(Some(node), || -> Result<Option<u64>, NetnsError> {
        Ok(std::fs::read_to_string("/proc/thread-self/net/dev")
            .ok()
            .and_then(|t| parse_tx_bytes(&t, "eth0")))
    })
    .ok()
    .flatten()
}

/// The transmitted bytes of `ifname` in a `/proc/net/dev` text.
pub fn parse_tx_bytes(text: &str, ifname: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != ifname {
            return None;
        }
        // rx: bytes packets errs drop fifo frame compressed multicast; tx: bytes ...
        rest.split_whitespace().nth(8)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn proc_net_dev_tx_bytes() {
        let text = "Inter-|   Receive                                                |  Transmit\n \
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n    \
lo:       0       0    0    0    0     0          0         0        0       0    0    0    0     0       0          0\n  \
eth0: 1234567    8901    0    0    0     0          0         0 98765432   10111    0    0    0     0       0          0\n";
        assert_eq!(super::parse_tx_bytes(text, "eth0"), Some(98_765_432));
        assert_eq!(super::parse_tx_bytes(text, "lo"), Some(0));
        assert_eq!(super::parse_tx_bytes(text, "eth1"), None);
    }

    use super::*;

    #[test]
    fn neighbour_addresses_are_distinct_from_the_lab_plan() {
        for m in [Mode::Bridge, Mode::Ptp, Mode::Macvlan] {
            for i in 0..MAX_NEIGHBOURS {
                let a = address(m, i).unwrap();
                assert!(plan::in_lab_range(a));
                assert!(![plan::NODE, plan::REMOTE, plan::BRIDGE_GW, plan::PTP_NODE].contains(&a));
                // the lab's own containers use host numbers below 20
                assert!(a.octets()[3] >= 20);
            }
        }
        assert!(address(Mode::IpvlanL2, 0).is_none());
        assert!(!supported(Mode::IpvlanL3));
        assert!(why_unsupported(Mode::Bridge).is_empty());
        for m in [Mode::VethBpf, Mode::Vxlan, Mode::Netkit, Mode::IpvlanL2] {
            let w = why_unsupported(m);
            assert!(w.contains("host, bridge, ptp and macvlan"), "{w}");
        }
    }

    #[test]
    fn interface_names_fit_ifnamsiz() {
        for m in [Mode::Bridge, Mode::Ptp, Mode::Macvlan] {
            let n = format!(
                "vnb{}-{}",
                MAX_NEIGHBOURS - 1,
                &m.name()[..m.name().len().min(6)]
            );
            assert!(n.len() <= 15, "{n}");
        }
    }
}
