//! Permanent neighbour (ARP/NDP) entries.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_REPLACE};
use netlink_packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourMessage, NeighbourState,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, Result};

fn message(index: u32, ip: IpAddr, mac: Option<[u8; 6]>) -> NeighbourMessage {
    let mut msg = NeighbourMessage::default();
    msg.header.ifindex = index;
    msg.header.family = match ip {
        IpAddr::V4(_) => AddressFamily::Inet,
        IpAddr::V6(_) => AddressFamily::Inet6,
    };
    msg.header.state = NeighbourState::Permanent;
    msg.attributes
        .push(NeighbourAttribute::Destination(match ip {
            IpAddr::V4(a) => NeighbourAddress::Inet(a),
            IpAddr::V6(a) => NeighbourAddress::Inet6(a),
        }));
    if let Some(mac) = mac {
        msg.attributes
            .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
    }
    msg
}

impl Netlink {
    /// Adds (or replaces) a permanent entry `ip lladdr mac` on interface `index`.
    pub fn add_neighbour(&mut self, index: u32, ip: IpAddr, mac: [u8; 6]) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewNeighbour(message(index, ip, Some(mac))),
            NLM_F_CREATE | NLM_F_REPLACE,
            || format!("adding neighbour {ip} on interface {index}"),
        )?;
        Ok(())
    }

    /// Removes the entry for `ip` on interface `index`.
    pub fn del_neighbour(&mut self, index: u32, ip: IpAddr) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelNeighbour(message(index, ip, None)),
            0,
            || format!("removing neighbour {ip} on interface {index}"),
        )?;
        Ok(())
    }
}
