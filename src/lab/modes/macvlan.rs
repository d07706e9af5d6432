//! `macvlan`: a bridge-mode macvlan child of the node's eth0 in the container.

use std::net::Ipv4Addr;

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{Backlog, ModeDriver, Traits};
use crate::attach::AttachMode;
use crate::netlink::Route;

pub struct Macvlan;
pub const MACVLAN: Macvlan = Macvlan;

/// The node's macvlan of its own with `--host-shim`.
const SHIM_IF: &str = "shim-mv";

/// The macvlan's address on the wire.
const ADDR: Ipv4Addr = plan::wire_host(3);

/// A macvlan child of the node's eth0 as the container's `eth0` at `addr/24`, default route via
/// the remote (shared with the macvlan hybrid).
pub(super) fn macvlan_eth0(b: &mut Builder, ns: &str, addr: Ipv4Addr) -> Result<(), LabError> {
    let fd = b.ns_fd(ns)?;
    let eth0 = b.node_eth0;
    // Created under a temporary name, renamed in the container: kernels before 6.x check the
    // name in the creating namespace too, where eth0 exists.
    b.nl("node")
        .create_macvlan(Builder::TMP_IFNAME, eth0, Some(std::os::fd::AsFd::as_fd(&fd)))?;
    b.step()?;
    b.rename_tmp(ns)?;
    b.container_eth0(ns, addr, 24, 64)?;
    b.route(
        ns,
        Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::REMOTE.into()),
    )
}

impl ModeDriver for Macvlan {
    fn name(&self) -> &'static str {
        "macvlan"
    }
    fn describe(&self) -> &'static str {
        "macvlan (bridge mode) on the node's NIC"
    }
    fn traits(&self) -> Traits {
        Traits {
            child_of_nic: true,
            attach: Some(AttachMode::Macvlan),
            default: true,
            ..Traits::container(Backlog {
                per_transaction: 2,
                why: "the child transmits straight on the NIC and receives in the NIC's softirq: only the wire's two waits",
            })
        }
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(ADDR)
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        macvlan_eth0(b, ns, ADDR)?;
        Ok(b.info(ns, ADDR, true))
    }
    fn host_shim(&self, b: &mut Builder) -> Result<(), LabError> {
        let eth0 = b.node_eth0;
        let nl = b.nl("node");
        nl.create_macvlan(SHIM_IF, eth0, None)?;
        let i = nl.link_index(SHIM_IF)?;
        nl.add_address(i, plan::SHIM.into(), 32)?;
        nl.set_up(i, true)?;
        nl.add_route(&Route::dev(ADDR.into(), 32, i))?;
        b.step()
    }
}
