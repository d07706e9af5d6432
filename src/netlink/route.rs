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
        }
    }

    /// The same route in table `table`.
    pub fn in_table(mut self, table: u8) -> Self {
        self.table = table;
        self
    }

    fn message(&self) -> RouteMessage {
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
