//! `netkit` and `netkit-bpf`: a routed netkit pair (L3 mode, Linux 6.7+), built like `ptp`'s
//! routed veth: the primary in the node with the node's /32, the peer as the container's `eth0`,
//! host routes both ways. `netkit` attaches no program, so the pair's default policy (forward)
//! hands every packet to the other side through `__netif_rx`, the backlog veth uses.
//! `netkit-bpf` adds the two programs of bpf/netkit.bpf.c, as Cilium's netkit datapath: the
//! container's packets leave by `bpf_redirect_neigh` out of the NIC, the remote's arrive by
//! `bpf_redirect_peer` from the NIC's ingress, neither through the backlog nor the node's
//! netfilter hooks.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use super::super::build::Builder;
use super::super::plan::{self, v6, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{remote_route_via_node, route_pair, Backlog, CheckName, ModeDriver, Traits};
use crate::bpf::netkit::{self as programs, NetkitRedirect};
use crate::netlink::{NetkitPair, NetkitPolicy, NetlinkError};

/// The netkit subnet 198.18.6.0/24 (/32s with host routes, like ptp): the node's side of both
/// pairs, then one container address per mode.
const NET: u8 = 6;
const NODE_IP: Ipv4Addr = plan::in_subnet(NET, 1);

/// One netkit mode.
pub struct Netkit {
    name: &'static str,
    describe: &'static str,
    /// The primary's name in the node.
    primary: &'static str,
    addr: Ipv4Addr,
    /// With the redirect programs.
    bpf: bool,
}

pub const NETKIT: Netkit = Netkit {
    name: "netkit",
    describe: "routed netkit pair (L3), no BPF program: forwards through the backlog like veth",
    primary: "nk-netkit",
    addr: plan::in_subnet(NET, 2),
    bpf: false,
};
pub const NETKIT_BPF: Netkit = Netkit {
    name: "netkit-bpf",
    describe: "routed netkit pair with BPF redirects (redirect_neigh out, redirect_peer in), as Cilium",
    primary: "nk-netkit-bpf",
    addr: plan::in_subnet(NET, 3),
    bpf: true,
};

/// Why the node's hooks miss netkit-bpf's traffic.
const PAST_NETFILTER: &str = "the netkit peer's BPF program sends the container's packets straight out of the NIC (bpf_redirect_neigh), past the node's netfilter hooks, so the node's Service DNAT and forward policy never see them (Cilium implements both in BPF instead)";

impl ModeDriver for Netkit {
    fn name(&self) -> &'static str {
        self.name
    }
    fn describe(&self) -> &'static str {
        self.describe
    }
    fn traits(&self) -> Traits {
        Traits::container(if self.bpf {
            Backlog {
                per_transaction: 2,
                why: "only the wire's backlog waits: the programs redirect past the pair's (redirect_neigh out, redirect_peer in)",
            }
        } else {
            Backlog {
                per_transaction: 4,
                why: "without a program netkit forwards through __netif_rx like veth: one backlog wait per direction beside the wire's",
            }
        })
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(self.addr)
    }
    fn unavailable(&self, b: &mut Builder) -> Result<Option<String>, LabError> {
        netkit_missing(b)
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        let primary = routed_netkit(b, ns, self.primary, NODE_IP, self.addr)?;
        remote_route_via_node(b, self.addr, 32)?;
        if self.bpf {
            let node = b.netns_path("node");
            programs::attach(
                &node,
                NetkitRedirect {
                    nic_ifindex: b.node_eth0,
                    primary_ifindex: primary,
                    ctr4: self.addr,
                    ctr6: b.spec().ipv6.then(|| v6(self.addr)),
                },
            )?;
            b.step()?;
        }
        Ok(b.info(ns, self.addr, true))
    }
    fn why(&self, check: CheckName, _host_shim: bool) -> Option<&'static str> {
        match check {
            "service" | "policy" | "policy_service" if self.bpf => Some(PAST_NETFILTER),
            _ => None,
        }
    }
}

/// `Some(reason)` when the kernel cannot make a netkit pair (a throwaway pair in the node).
fn netkit_missing(b: &mut Builder) -> Result<Option<String>, LabError> {
    let nl = b.nl("node");
    let r = match nl.create_netkit(&NetkitPair {
        name: "netkit-probe",
        peer: "netkit-probe1",
        peer_netns: None,
        policy: NetkitPolicy::Forward,
        peer_policy: NetkitPolicy::Forward,
    }) {
        Ok(()) => {
            let i = nl.link_index("netkit-probe")?;
            nl.delete_link(i)?;
            None
        }
        Err(e @ NetlinkError::NoNetkit) => Some(e.to_string()),
        Err(e) => return Err(e.into()),
    };
    b.step()?;
    Ok(r)
}

/// The routed pair: primary `primary` in the node with `node_ip/32`, the peer as the container's
/// `eth0` with `ctr_ip/32`, host routes both ways, the container's default route via `node_ip`
/// onlink (L3 mode: no ARP; both policies forward). Returns the primary's index.
fn routed_netkit(
    b: &mut Builder,
    ns: &str,
    primary: &str,
    node_ip: Ipv4Addr,
    ctr_ip: Ipv4Addr,
) -> Result<u32, LabError> {
    let fd = b.ns_fd(ns)?;
    b.nl("node").create_netkit(&NetkitPair {
        name: primary,
        peer: "eth0",
        peer_netns: Some(fd.as_fd()),
        policy: NetkitPolicy::Forward,
        peer_policy: NetkitPolicy::Forward,
    })?;
    b.step()?;
    let (hi, _) = route_pair(b, ns, primary, node_ip, ctr_ip)?;
    Ok(hi)
}
