//! `vxlan`: the overlay of Flannel's vxlan backend. The node and the remote each have a pod
//! subnet and a VXLAN device (`vxlan0`, VNI 1, UDP 4789) over the wire; each routes the other's
//! pod subnet via the other's `vxlan0` address (onlink, static neighbour entry, as Flannel
//! does). The container sits on a routed veth (as `ptp`) in the node's pod subnet, and the
//! server it measures against listens at an address in the remote's pod subnet, so every
//! request and response is encapsulated between node and remote. IPv4 only.

use std::net::Ipv4Addr;

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{routed_veth, Backlog, ModeDriver, Traits};
use crate::netlink::{Route, Vxlan};

pub struct VxlanOverlay;
pub const VXLAN: VxlanOverlay = VxlanOverlay;

/// The node's pod subnet (its vxlan0 .0, the container's veth .1 / .2) and the remote's
/// (its vxlan0 .0, the server .1).
const NODE_NET: u8 = 10;
const REMOTE_NET: u8 = 11;
const NODE_VTEP: Ipv4Addr = plan::in_subnet(NODE_NET, 0);
const HOST_IP: Ipv4Addr = plan::in_subnet(NODE_NET, 1);
const CTR_IP: Ipv4Addr = plan::in_subnet(NODE_NET, 2);
const REMOTE_VTEP: Ipv4Addr = plan::in_subnet(REMOTE_NET, 0);
const SERVER: Ipv4Addr = plan::in_subnet(REMOTE_NET, 1);
const DEV: &str = "vxlan0";
const VNI: u32 = 1;
const PORT: u16 = 4789;
const NODE_MAC: [u8; 6] = [0x02, 0x6e, 0x73, 0x6c, NODE_NET, 0];
const REMOTE_MAC: [u8; 6] = [0x02, 0x6e, 0x73, 0x6c, REMOTE_NET, 0];

/// One end of the tunnel: `vxlan0` in namespace `ns` over its `eth0`, with `vtep/32` (and
/// `extra/32`), routing `peer_net/24` via the peer's VTEP address onlink.
#[allow(clippy::too_many_arguments)]
fn end(
    b: &mut Builder,
    ns: &str,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    mac: [u8; 6],
    addrs: &[Ipv4Addr],
    peer_net: u8,
    peer_mac: [u8; 6],
) -> Result<(), LabError> {
    let nl = b.nl(ns);
    let dev = nl.link_index("eth0")?;
    nl.create_vxlan(
        DEV,
        &Vxlan {
            vni: VNI,
            local,
            remote,
            port: PORT,
            dev,
            mac,
        },
    )?;
    let vi = nl.link_index(DEV)?;
    for a in addrs {
        nl.add_address(vi, (*a).into(), 32)?;
    }
    nl.set_up(vi, true)?;
    let peer_vtep = plan::in_subnet(peer_net, 0);
    nl.add_neighbour(vi, peer_vtep.into(), peer_mac)?;
    nl.add_route(&Route::onlink(
        plan::subnet(peer_net).into(),
        24,
        peer_vtep.into(),
        vi,
    ))?;
    b.step()
}

impl ModeDriver for VxlanOverlay {
    fn ipv6_unavailable(&self) -> Option<&'static str> {
        Some("the lab's overlay carries IPv4 pod subnets only")
    }
    fn name(&self) -> &'static str {
        "vxlan"
    }
    fn describe(&self) -> &'static str {
        "routed veth into a VXLAN overlay to the remote's pod subnet (Flannel's vxlan backend)"
    }
    fn traits(&self) -> Traits {
        Traits::container(Backlog {
            per_transaction: 5,
            why: "ptp's four plus one decapsulated packet re-queued by netif_rx (the other direction's decapsulated packet goes through vxlan0's GRO cell instead); vxlan0 also adds one transmit and one receive pass per direction",
        })
    }
    fn plan(&self) -> ModePlan {
        ModePlan {
            server: SERVER,
            ..ModePlan::at(CTR_IP)
        }
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        routed_veth(b, ns, "veth-vxlan", HOST_IP, CTR_IP)?;
        end(
            b,
            "node",
            plan::NODE,
            plan::REMOTE,
            NODE_MAC,
            &[NODE_VTEP],
            REMOTE_NET,
            REMOTE_MAC,
        )?;
        end(
            b,
            "remote",
            plan::REMOTE,
            plan::NODE,
            REMOTE_MAC,
            &[REMOTE_VTEP, SERVER],
            NODE_NET,
            NODE_MAC,
        )?;
        Ok(ModeInfo {
            server: SERVER,
            ..b.info(ns, CTR_IP, false)
        })
    }
}
