//! `bridge`: Docker's default: a veth into bridge `docker0` in the node, forwarded and
//! MASQUERADEd out of eth0.

use std::net::Ipv4Addr;
use std::os::fd::AsFd;

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo, NatLevel};
use super::{remote_route_via_node, Backlog, CheckName, ModeDriver, Traits};
use crate::firewall::Firewall;
use crate::netlink::Route;

pub struct Bridge;
pub const BRIDGE: Bridge = Bridge;

/// The bridge's name in the node.
const BRIDGE_IF: &str = "docker0";
/// The host end of the container's veth.
const HOST_VETH: &str = "veth-bridge";

impl ModeDriver for Bridge {
    fn name(&self) -> &'static str {
        "bridge"
    }
    fn describe(&self) -> &'static str {
        "Docker's default: veth + bridge docker0 + MASQUERADE"
    }
    fn traits(&self) -> Traits {
        // `attach --mode bridge` exists, but on a bridge, not on the NIC: not attachable here.
        Traits {
            default: true,
            ..Traits::container(Backlog {
                per_transaction: 4,
                why: "the container's veth adds one backlog wait per direction to the wire's two",
            })
        }
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(plan::BRIDGE_CTR)
    }
    fn unavailable(&self, _b: &mut Builder) -> Result<Option<String>, LabError> {
        // The MASQUERADE rule is loaded with nft.
        Ok(crate::firewall::nft_missing())
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        let fd = b.ns_fd(ns)?;
        b.nl("node").create_bridge(BRIDGE_IF)?;
        let br = b.nl("node").link_index(BRIDGE_IF)?;
        b.addr("node", br, plan::BRIDGE_GW, 24, 64)?;
        b.nl("node").set_up(br, true)?;
        b.nl("node")
            .create_veth(HOST_VETH, "eth0", Some(fd.as_fd()))?;
        b.step()?;
        let hi = b.nl("node").link_index(HOST_VETH)?;
        b.nl("node").set_master(hi, br)?;
        b.nl("node").set_up(hi, true)?;
        b.step()?;
        b.container_eth0(ns, plan::BRIDGE_CTR, 24, 64)?;
        b.route(
            ns,
            Route::via(Ipv4Addr::UNSPECIFIED.into(), 0, plan::BRIDGE_GW.into()),
        )?;
        remote_route_via_node(b, plan::BRIDGE_NET, 24)?;
        Firewall::new(&b.netns_path("node"))
            .init_nat(NatLevel::Masquerade, super::super::bridge_subnet(), "eth0")
            .map_err(|e| b.context("installing the bridge's MASQUERADE rule", e.into()))?;
        if b.spec().ipv6 {
            // NAT66, as Docker's `ip6tables` option does (its default routes IPv6 unmasqueraded).
            Firewall::new(&b.netns_path("node"))
                .init_nat6(NatLevel::Masquerade, (plan::v6(plan::BRIDGE_NET), 64), "eth0")
                .map_err(|e| b.context("installing the bridge's NAT66 MASQUERADE rule", e.into()))?;
        }
        b.nat = NatLevel::Masquerade;
        b.step()?;
        Ok(b.info(ns, plan::BRIDGE_CTR, true))
    }
    fn note_when_passing(&self, check: CheckName) -> Option<&'static str> {
        (check == "remote_to_container").then_some(
            "works because the lab routes the bridge subnet via the node; with Docker's NAT a real remote has no route to the container's private address (publish a port instead)",
        )
    }
}
