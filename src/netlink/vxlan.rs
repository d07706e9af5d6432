//! VXLAN devices: point-to-point tunnels to one remote underlay address (as Flannel's vxlan
//! backend, with the peer given instead of learned).

use std::net::Ipv4Addr;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVxlan, LinkAttribute, LinkInfo, LinkMessage,
};

use super::link::new_link_message;
use super::{Netlink, Result};

/// A VXLAN device: VNI, underlay addresses, UDP port, the underlay device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vxlan {
    pub vni: u32,
    /// This end's underlay address (`local`).
    pub local: Ipv4Addr,
    /// The other end's underlay address (`remote`: every frame goes there).
    pub remote: Ipv4Addr,
    /// The UDP destination port (4789 is IANA's; Linux's default is 8472, Flannel's too).
    pub port: u16,
    /// The underlay interface (index in this namespace).
    pub dev: u32,
    /// The device's MAC address (fixed, so the other end's neighbour entry can be static).
    pub mac: [u8; 6],
}

impl Vxlan {
    /// The `RTM_NEWLINK` body creating device `name`.
    pub(crate) fn message(&self, name: &str) -> LinkMessage {
        let info = vec![
            LinkInfo::Kind(InfoKind::Vxlan),
            LinkInfo::Data(InfoData::Vxlan(vec![
                InfoVxlan::Id(self.vni),
                InfoVxlan::Group(self.remote),
                InfoVxlan::Local(self.local),
                InfoVxlan::Link(self.dev),
                InfoVxlan::Port(self.port),
                InfoVxlan::Learning(false),
            ])),
        ];
        let mut msg = new_link_message(name, None, info);
        msg.attributes
            .push(LinkAttribute::Address(self.mac.to_vec()));
        msg
    }
}

impl Netlink {
    /// Creates VXLAN device `name` in this socket's namespace.
    pub fn create_vxlan(&mut self, name: &str, v: &Vxlan) -> Result<()> {
        self.new_link(v.message(name), || {
            format!(
                "creating vxlan {name} (VNI {}, {} -> {}:{})",
                v.vni, v.local, v.remote, v.port
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::socket::encode;
    use super::*;
    use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
    use netlink_packet_route::RouteNetlinkMessage;

    #[test]
    fn vxlan_link_bytes() {
        let v = Vxlan {
            vni: 1,
            local: Ipv4Addr::new(198, 18, 0, 1),
            remote: Ipv4Addr::new(198, 18, 0, 2),
            port: 4789,
            dev: 2,
            mac: [0x02, 0, 0, 0, 0, 0x0a],
        };
        let bytes = encode(
            RouteNetlinkMessage::NewLink(v.message("vx0")),
            NLM_F_CREATE | NLM_F_EXCL,
            4,
        );
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            // nlmsghdr: len 120, RTM_NEWLINK (16), REQUEST|ACK|EXCL|CREATE, seq 4
            120, 0, 0, 0, 16, 0, 0x05, 0x06, 4, 0, 0, 0, 0, 0, 0, 0,
            // ifinfomsg: AF_UNSPEC, type 0, index 0, flags 0, change 0
            0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            // IFLA_IFNAME (3) "vx0\0"
            8, 0, 3, 0, b'v', b'x', b'0', 0,
            // IFLA_LINKINFO (18, nested)
            68, 0, 18, 0,
            //   IFLA_INFO_KIND (1) "vxlan\0" + pad
            10, 0, 1, 0, b'v', b'x', b'l', b'a', b'n', 0, 0, 0,
            //   IFLA_INFO_DATA (2, nested)
            52, 0, 2, 0,
            //     IFLA_VXLAN_ID (1) 1, GROUP (2) 198.18.0.2, LOCAL (4) 198.18.0.1, LINK (3) 2
            8, 0, 1, 0, 1, 0, 0, 0,
            8, 0, 2, 0, 198, 18, 0, 2,
            8, 0, 4, 0, 198, 18, 0, 1,
            8, 0, 3, 0, 2, 0, 0, 0,
            //     PORT (15) 4789 big-endian, LEARNING (7) 0
            6, 0, 15, 0, 0x12, 0xb5, 0, 0,
            5, 0, 7, 0, 0, 0, 0, 0,
            // IFLA_ADDRESS (1) 02:00:00:00:00:0a + pad
            10, 0, 1, 0, 0x02, 0, 0, 0, 0, 0x0a, 0, 0,
        ];
        assert_eq!(bytes, want);
    }
}
