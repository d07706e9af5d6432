//! Interface addresses (v4 and v6; v6 without duplicate address detection so it is usable at once).

use std::net::{IpAddr, Ipv4Addr};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL};
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

/// The `RTM_GETADDR` dump request for every IPv4 address.
fn dump_v4() -> AddressMessage {
    let mut req = AddressMessage::default();
    req.header.family = AddressFamily::Inet;
    req
}

/// The IPv4 addresses (`IFA_LOCAL`) of interface `index` in a dump, in the kernel's order (the
/// primary first).
fn v4_of(index: u32, replies: Vec<RouteNetlinkMessage>) -> Vec<Ipv4Addr> {
    replies
        .into_iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewAddress(m)
                if m.header.index == index && m.header.family == AddressFamily::Inet =>
            {
                m.attributes.into_iter().find_map(|a| match a {
                    AddressAttribute::Local(IpAddr::V4(v4)) => Some(v4),
                    _ => None,
                })
            }
            _ => None,
        })
        .collect()
}

impl Netlink {
    /// The IPv4 addresses of interface `index`, the primary first.
    pub fn ipv4_addresses(&mut self, index: u32) -> Result<Vec<Ipv4Addr>> {
        let replies = self.request(
            RouteNetlinkMessage::GetAddress(dump_v4()),
            NLM_F_DUMP,
            || format!("listing the addresses of interface {index}"),
        )?;
        Ok(v4_of(index, replies))
    }

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

#[cfg(test)]
mod tests {
    use super::super::socket::encode;
    use super::*;

    #[test]
    fn new_v4_address_bytes() {
        let m = message(5, "198.18.0.1".parse().unwrap(), 24);
        let bytes = encode(
            RouteNetlinkMessage::NewAddress(m),
            NLM_F_CREATE | NLM_F_EXCL,
            2,
        );
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            // nlmsghdr: len 40, RTM_NEWADDR (20), REQUEST|ACK|EXCL|CREATE, seq 2
            40, 0, 0, 0, 20, 0, 0x05, 0x06, 2, 0, 0, 0, 0, 0, 0, 0,
            // ifaddrmsg: AF_INET, prefix 24, flags 0, scope 0, index 5
            2, 24, 0, 0, 5, 0, 0, 0,
            // IFA_LOCAL (2), IFA_ADDRESS (1)
            8, 0, 2, 0, 198, 18, 0, 1,
            8, 0, 1, 0, 198, 18, 0, 1,
        ];
        assert_eq!(bytes, want);
    }

    #[test]
    fn address_dump_request_bytes() {
        let bytes = encode(RouteNetlinkMessage::GetAddress(dump_v4()), NLM_F_DUMP, 3);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            // len 24, RTM_GETADDR (22), REQUEST|ACK|DUMP (0x300), seq 3
            24, 0, 0, 0, 22, 0, 0x05, 0x03, 3, 0, 0, 0, 0, 0, 0, 0,
            2, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(bytes, want);
    }

    #[test]
    fn addresses_of_one_interface_in_dump_order() {
        let reply = |index, a: &str| {
            RouteNetlinkMessage::NewAddress(message(index, a.parse().unwrap(), 24))
        };
        let got = v4_of(
            4,
            vec![
                reply(3, "198.18.0.9"),
                reply(4, "198.18.0.1"),
                reply(4, "198.18.0.5"),
                RouteNetlinkMessage::NewAddress(message(4, "2001:2::1".parse().unwrap(), 64)),
            ],
        );
        assert_eq!(
            got,
            vec![Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 5)]
        );
    }
}
