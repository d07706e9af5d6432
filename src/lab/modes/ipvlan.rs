//! `ipvlan-l2`, `ipvlan-l3`, `ipvlan-l3s`: an ipvlan child in the container. The ipvlan mode
//! belongs to the parent (all children share it), and a parent with ipvlan children takes no
//! macvlan: each ipvlan mode gets its own port on the wire, a veth whose remote end also has the
//! remote's address.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{Backlog, ModeDriver, Traits};
use crate::attach::AttachMode;
use crate::netlink::{IpvlanMode, Route};

/// One ipvlan mode: its kind, name, wire port and address.
pub struct Ipvlan {
    kind: IpvlanMode,
    name: &'static str,
    describe: &'static str,
    attach: Option<AttachMode>,
    /// The wire port (same name at both ends) this mode's child hangs off.
    port: &'static str,
    addr: Ipv4Addr,
}

pub const L2: Ipvlan = Ipvlan {
    kind: IpvlanMode::L2,
    name: "ipvlan-l2",
    describe: "ipvlan L2 on the node's NIC",
    attach: Some(AttachMode::IpvlanL2),
    port: "ipvl-l2",
    addr: plan::wire_host(4),
};
pub const L3: Ipvlan = Ipvlan {
    kind: IpvlanMode::L3,
    name: "ipvlan-l3",
    describe: "ipvlan L3 on the node's NIC",
    attach: Some(AttachMode::IpvlanL3),
    port: "ipvl-l3",
    addr: plan::wire_host(5),
};
pub const L3S: Ipvlan = Ipvlan {
    kind: IpvlanMode::L3s,
    name: "ipvlan-l3s",
    describe: "ipvlan L3S on the node's NIC (node netfilter applies)",
    attach: None,
    port: "ipvl-l3s",
    addr: plan::wire_host(6),
};

/// The node's ipvlan of its own with `--host-shim` (an L2 child: only on the ipvlan-l2 port,
/// an L2 child on an L3 port would switch that port's mode).
const SHIM_IF: &str = "shim-ipvl";

/// The wire port `name`: a veth from the node to the remote, up, the remote's address on the
/// remote end. Returns (node index, remote index).
pub(super) fn wire_port(b: &mut Builder, name: &str) -> Result<(u32, u32), LabError> {
    let remote_fd = b.ns_fd("remote")?;
    b.nl("node")
        .create_veth(name, name, Some(remote_fd.as_fd()))?;
    b.step()?;
    let pi = b.nl("node").link_index(name)?;
    b.nl("node").set_up(pi, true)?;
    let ri = b.nl("remote").link_index(name)?;
    b.addr("remote", ri, plan::REMOTE, 32, 128)?;
    b.nl("remote").set_up(ri, true)?;
    Ok((pi, ri))
}

/// An L2 ipvlan child of port `name` as the container's `eth0` at `addr/24` (shared with the
/// ipvlan hybrid).
pub(super) fn ipvlan_l2_eth0(
    b: &mut Builder,
    ns: &str,
    port: &str,
    addr: Ipv4Addr,
) -> Result<(), LabError> {
    let (pi, ri) = wire_port(b, port)?;
    child(b, ns, pi, IpvlanMode::L2)?;
    b.container_eth0(ns, addr, 24, 64)?;
    b.route("remote", Route::dev(addr.into(), 32, ri))?;
    b.route(
        ns,
        Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::REMOTE.into()),
    )
}

/// An ipvlan child of `parent` in the container, renamed to `eth0`.
fn child(b: &mut Builder, ns: &str, parent: u32, kind: IpvlanMode) -> Result<(), LabError> {
    let fd = b.ns_fd(ns)?;
    b.nl("node")
        .create_ipvlan(Builder::TMP_IFNAME, parent, kind, Some(fd.as_fd()))?;
    b.step()?;
    b.rename_tmp(ns)
}

impl ModeDriver for Ipvlan {
    fn ipv6_unavailable(&self) -> Option<&'static str> {
        (self.kind != IpvlanMode::L2)
            .then_some("the lab builds L3/L3s children IPv4 only (IPv6 needs the parent's namespace to route the remote through the port)")
    }
    fn name(&self) -> &'static str {
        self.name
    }
    fn describe(&self) -> &'static str {
        self.describe
    }
    fn traits(&self) -> Traits {
        Traits {
            child_of_nic: true,
            attach: self.attach,
            default: true,
            needs_ipvlan: true,
            ..Traits::container(Backlog {
                per_transaction: 2,
                why: "the child transmits straight on the NIC and receives in the NIC's softirq: only the wire's two waits",
            })
        }
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(self.addr)
    }
    fn unavailable(&self, b: &mut Builder) -> Result<Option<String>, LabError> {
        b.ipvlan_missing()
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        if self.kind == IpvlanMode::L2 {
            ipvlan_l2_eth0(b, ns, self.port, self.addr)?;
            return Ok(b.info(ns, self.addr, true));
        }
        // L3 children answer no ARP: the container routes out of eth0, and the remote reaches
        // it at the parent's MAC (the children share it). IPv4 only: the IPv6 path of L3
        // children did not work in the guest kernel (6.1).
        let (pi, ri) = wire_port(b, self.port)?;
        child(b, ns, pi, self.kind)?;
        let c = b.nl(ns);
        let ci = c.link_index("eth0")?;
        c.add_address(ci, self.addr.into(), 24)?;
        c.set_up(ci, true)?;
        c.add_route(&Route::dev(std::net::Ipv4Addr::UNSPECIFIED.into(), 0, ci))?;
        b.step()?;
        let mac = b.nl("node").link_mac(pi)?;
        let remote = b.nl("remote");
        remote.add_route(&Route::dev(self.addr.into(), 32, ri))?;
        remote.add_neighbour(ri, self.addr.into(), mac)?;
        b.step()?;
        Ok(b.info(ns, self.addr, false))
    }
    fn host_shim(&self, b: &mut Builder) -> Result<(), LabError> {
        if self.kind != IpvlanMode::L2 {
            return Ok(());
        }
        let nl = b.nl("node");
        let port = nl.link_index(self.port)?;
        nl.create_ipvlan(SHIM_IF, port, IpvlanMode::L2, None)?;
        let i = nl.link_index(SHIM_IF)?;
        nl.add_address(i, plan::SHIM_IPVLAN.into(), 32)?;
        nl.set_up(i, true)?;
        nl.add_route(&Route::dev(self.addr.into(), 32, i))?;
        b.step()
    }
}
