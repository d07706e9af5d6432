//! The hybrids `macvlan+veth` and `ipvlan+veth`: macvlan/ipvlan (L2) for the data path plus a
//! second veth (`veth0` in the container) to the node that carries the ClusterIP range and
//! traffic to the node, so the node's DNAT and firewall see it. IPv4 only on the side veth.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{Backlog, CheckName, ModeDriver, Traits};
use crate::netlink::Route;

/// Which data path the hybrid has.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Data {
    Macvlan,
    Ipvlan,
}

pub struct Hybrid {
    data: Data,
    name: &'static str,
    describe: &'static str,
    /// The host end of the side veth.
    host_veth: &'static str,
    /// The host number of the wire address (also of the side address).
    host: u8,
}

pub const MACVLAN_VETH: Hybrid = Hybrid {
    data: Data::Macvlan,
    name: "macvlan+veth",
    describe: "macvlan data path + veth to the node for Services",
    host_veth: "veth-mvside",
    host: 7,
};
pub const IPVLAN_VETH: Hybrid = Hybrid {
    data: Data::Ipvlan,
    name: "ipvlan+veth",
    describe: "ipvlan L2 data path + veth to the node for Services",
    host_veth: "veth-ipside",
    host: 8,
};

impl Hybrid {
    fn addr(&self) -> Ipv4Addr {
        plan::wire_host(self.host)
    }
    fn side(&self) -> Ipv4Addr {
        plan::in_subnet(plan::SIDE_NET.octets()[2], self.host)
    }
}

impl ModeDriver for Hybrid {
    fn name(&self) -> &'static str {
        self.name
    }
    fn describe(&self) -> &'static str {
        self.describe
    }
    fn traits(&self) -> Traits {
        Traits {
            child_of_nic: true,
            needs_ipvlan: self.data == Data::Ipvlan,
            ..Traits::container(Backlog {
                per_transaction: 2,
                why: "the data path is the NIC child's: only the wire's two waits",
            })
        }
    }
    fn plan(&self) -> ModePlan {
        ModePlan {
            side: Some(self.side()),
            ..ModePlan::at(self.addr())
        }
    }
    fn unavailable(&self, b: &mut Builder) -> Result<Option<String>, LabError> {
        match self.data {
            Data::Ipvlan => b.ipvlan_missing(),
            Data::Macvlan => Ok(None),
        }
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        match self.data {
            Data::Macvlan => super::macvlan::macvlan_eth0(b, ns, self.addr())?,
            Data::Ipvlan => super::ipvlan::ipvlan_l2_eth0(b, ns, "ipvl-hybrid", self.addr())?,
        }
        let fd = b.ns_fd(ns)?;
        let (side, wire) = (self.side(), self.addr());
        b.nl("node")
            .create_veth(self.host_veth, "veth0", Some(fd.as_fd()))?;
        b.step()?;
        let node = b.nl("node");
        let hi = node.link_index(self.host_veth)?;
        // The node side reuses a /32 of the side subnet, like ptp.
        match node.add_address(hi, plan::SIDE_NODE.into(), 32) {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e.into()),
        }
        node.set_up(hi, true)?;
        node.add_route(&Route::dev(side.into(), 32, hi))?;
        node.add_route(&Route::dev(wire.into(), 32, hi))?;
        b.step()?;
        let c = b.nl(ns);
        let ci = c.link_index("veth0")?;
        c.add_address(ci, side.into(), 32)?;
        c.set_up(ci, true)?;
        c.add_route(&Route::dev(plan::SIDE_NODE.into(), 32, ci))?;
        c.add_route(&Route::via(
            plan::CLUSTER_NET.into(),
            plan::CLUSTER_PREFIX,
            plan::SIDE_NODE.into(),
        ))?;
        c.add_route(&Route::via(plan::NODE.into(), 32, plan::SIDE_NODE.into()))?;
        b.step()?;
        // Both hybrids share the side subnet: the remote's route to it may be there already.
        match b
            .nl("remote")
            .add_route(&Route::via(plan::SIDE_NET.into(), 24, plan::NODE.into()))
        {
            Ok(()) => {}
            Err(e) if e.is_exists() => {}
            Err(e) => return Err(e.into()),
        }
        b.step()?;
        Ok(b.info(ns, wire, true))
    }
    fn why(&self, check: CheckName, host_shim: bool) -> Option<&'static str> {
        super::child_of_nic_why(check, host_shim)
    }
}
