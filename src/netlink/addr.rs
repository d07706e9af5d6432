//! Interface addresses (v4 and v6; v6 without duplicate address detection so it is usable at once).

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::address::{
    AddressAttribute, AddressFlags, AddressHeaderFlags, AddressMessage,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::{Netlink, Result};

fn message(index: u32, addr: IpAddr, prefix: u8) -> AddressMessage {
    let mut msg = AddressMessage::default();
    msg.header.index = index;
    msg.header.prefix_len = prefix;
    match addr {
        IpAddr::V4(_) => {
            msg.header.family = AddressFamily::Inet;
            msg.attributes.push(AddressAttribute::Local(addr));
            msg.attributes.push(AddressAttribute::Address(addr));
        }
        IpAddr::V6(_) => {
            msg.header.family = AddressFamily::Inet6;
            msg.header.flags = AddressHeaderFlags::Nodad;
            msg.attributes.push(AddressAttribute::Address(addr));
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
    }
    msg
}

impl Netlink {
    /// Adds `addr/prefix` to interface `index` (IPv6: with `nodad`).
    pub fn add_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewAddress(message(index, addr, prefix)),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("adding address {addr}/{prefix} to interface {index}"),
        )?;
        Ok(())
    }

    /// Removes `addr/prefix` from interface `index`.
    pub fn del_address(&mut self, index: u32, addr: IpAddr, prefix: u8) -> Result<()> {
        self.request(
            RouteNetlinkMessage::DelAddress(message(index, addr, prefix)),
            0,
            || format!("removing address {addr}/{prefix} from interface {index}"),
        )?;
        Ok(())
    }
}
