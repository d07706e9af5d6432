//! Routes in the main table: via a gateway, dev-only (scope link), and onlink gateways.

use std::net::IpAddr;

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteProtocol, RouteScope,
    RouteType,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};

use super::{Netlink, Result};

/// A route: `dst/prefix [via gateway] [dev oif] [onlink]`. `prefix` 0 is a default route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    pub oif: Option<u32>,
    pub onlink: bool,
    /// The routing table (default: main).
    #[serde(default = "main_table")]
    pub table: u8,
    /// The preferred source address (`src`), for unnumbered links.
    #[serde(default)]
    pub src: Option<IpAddr>,
}

fn main_table() -> u8 {
    RouteHeader::RT_TABLE_MAIN
}

impl Route {
    /// `dst/prefix via gateway`.
    pub fn via(dst: IpAddr, prefix: u8, gateway: IpAddr) -> Self {
        Route {
            dst,
            prefix,
            gateway: Some(gateway),
            oif: None,
            onlink: false,
            table: RouteHeader::RT_TABLE_MAIN,
            src: None,
        }
    }

    /// `dst/prefix dev oif` (scope link).
    pub fn dev(dst: IpAddr, prefix: u8, oif: u32) -> Self {
        Route {
            dst,
            prefix,
            gateway: None,
            oif: Some(oif),
            onlink: false,
            table: RouteHeader::RT_TABLE_MAIN,
            src: None,
        }
    }

    /// `dst/prefix via gateway dev oif onlink`.
    pub fn onlink(dst: IpAddr, prefix: u8, gateway: IpAddr, oif: u32) -> Self {
        Route {
            dst,
            prefix,
            gateway: Some(gateway),
            oif: Some(oif),
            onlink: true,
            table: RouteHeader::RT_TABLE_MAIN,
            src: None,
        }
    }

    /// The same route with preferred source address `src`.
    pub fn with_src(mut self, src: IpAddr) -> Self {
        self.src = Some(src);
        self
    }

    /// The same route in table `table`.
    pub fn in_table(mut self, table: u8) -> Self {
        self.table = table;
        self
    }

    /// The `RTM_NEWROUTE`/`RTM_DELROUTE` body for this route.
    pub(crate) fn message(&self) -> RouteMessage {
        let mut msg = RouteMessage::default();
        msg.header.address_family = match self.dst {
            IpAddr::V4(_) => AddressFamily::Inet,
            IpAddr::V6(_) => AddressFamily::Inet6,
        };
        msg.header.destination_prefix_length = self.prefix;
        msg.header.table = self.table;
        msg.header.protocol = RouteProtocol::Boot;
        msg.header.kind = RouteType::Unicast;
        msg.header.scope = if self.gateway.is_none() {
            RouteScope::Link
        } else {
            RouteScope::Universe
        };
        if self.onlink {
            msg.header.flags = RouteFlags::Onlink;
        }
        if self.prefix > 0 {
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::from(self.dst)));
        }
        if let Some(gw) = self.gateway {
            msg.attributes
                .push(RouteAttribute::Gateway(RouteAddress::from(gw)));
        }
        if let Some(oif) = self.oif {
            msg.attributes.push(RouteAttribute::Oif(oif));
        }
        if let Some(src) = self.src {
            msg.attributes
                .push(RouteAttribute::PrefSource(RouteAddress::from(src)));
        }
        msg
    }
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.dst, self.prefix)?;
        if let Some(gw) = self.gateway {
            write!(f, " via {gw}")?;
        }
        if let Some(oif) = self.oif {
            write!(f, " dev {oif}")?;
        }
        if self.onlink {
            f.write_str(" onlink")?;
        }
        if let Some(src) = self.src {
            write!(f, " src {src}")?;
        }
        if self.table != RouteHeader::RT_TABLE_MAIN {
            write!(f, " table {}", self.table)?;
        }
        Ok(())
    }
}

impl Netlink {
    /// Adds `route` to the main table.
    pub fn add_route(&mut self, route: &Route) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewRoute(route.message()),
            NLM_F_CREATE | NLM_F_EXCL,
            || format!("adding route {route}"),
        )?;
        Ok(())
    }

    /// Removes `route` from the main table.
    pub fn del_route(&mut self, route: &Route) -> Result<()> {
        self.request(RouteNetlinkMessage::DelRoute(route.message()), 0, || {
            format!("removing route {route}")
        })?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::socket::encode;
    use super::*;

    /// The bytes `ip route add 198.19.0.0/16 via 198.18.0.1 dev 7 onlink src 198.18.0.60`
    /// sends (checked against the kernel's struct layout: nlmsghdr, rtmsg, rtattrs).
    #[test]
    fn route_with_src_bytes() {
        let r = Route::onlink(
            "198.19.0.0".parse().unwrap(),
            16,
            "198.18.0.1".parse().unwrap(),
            7,
        )
        .with_src("198.18.0.60".parse().unwrap());
        let bytes = encode(
            RouteNetlinkMessage::NewRoute(r.message()),
            NLM_F_CREATE | NLM_F_EXCL,
            9,
        );
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            // nlmsghdr: len 60, RTM_NEWROUTE (24), REQUEST|ACK|EXCL|CREATE, seq 9, pid 0
            60, 0, 0, 0, 24, 0, 0x05, 0x06, 9, 0, 0, 0, 0, 0, 0, 0,
            // rtmsg: AF_INET, dst_len 16, src_len 0, tos 0, table main (254), proto boot (3),
            // scope universe (0), type unicast (1), flags RTNH_F_ONLINK (4)
            2, 16, 0, 0, 254, 3, 0, 1, 4, 0, 0, 0,
            // RTA_DST (1) 198.19.0.0
            8, 0, 1, 0, 198, 19, 0, 0,
            // RTA_GATEWAY (5) 198.18.0.1
            8, 0, 5, 0, 198, 18, 0, 1,
            // RTA_OIF (4) 7
            8, 0, 4, 0, 7, 0, 0, 0,
            // RTA_PREFSRC (7) 198.18.0.60
            8, 0, 7, 0, 198, 18, 0, 60,
        ];
        assert_eq!(bytes, want);
        assert_eq!(
            r.to_string(),
            "198.19.0.0/16 via 198.18.0.1 dev 7 onlink src 198.18.0.60"
        );
    }

    /// A default dev route has no RTA_DST and scope link.
    #[test]
    fn default_dev_route_bytes() {
        let r = Route::dev("0.0.0.0".parse().unwrap(), 0, 3);
        let bytes = encode(RouteNetlinkMessage::DelRoute(r.message()), 0, 1);
        #[rustfmt::skip]
        let want: Vec<u8> = vec![
            36, 0, 0, 0, 25, 0, 0x05, 0, 1, 0, 0, 0, 0, 0, 0, 0,
            2, 0, 0, 0, 254, 3, 253, 1, 0, 0, 0, 0,
            8, 0, 4, 0, 3, 0, 0, 0,
        ];
        assert_eq!(bytes, want);
    }
}
