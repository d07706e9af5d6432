//! A target's path from the kernel's own view, read before measuring: the route to the server
//! inside the target's namespace (RTM_GETROUTE), that interface's kind (RTM_GETLINK linkinfo),
//! its veth peer or macvlan/ipvlan parent in the host namespace (IFLA_LINK + IFLA_LINK_NETNSID,
//! cross-checked from the host's side), the bridge the peer is enslaved to (IFLA_MASTER), whether
//! bridged packets pass the host's iptables (br_netfilter), and whether the host NATs the
//! target's address (its ruleset). Read-only; the nearest lab mode is [`looks_like`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use netlink_packet_core::NLM_F_DUMP;
use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoMacVlan, IpVlanMode, LinkAttribute, LinkInfo, LinkMessage,
    MacVlanMode,
};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};
use serde::{Deserialize, Serialize};

use super::nat::{self, NatRule};
use crate::lab::Mode;
use crate::netlink::{sysctl, Netlink, NetlinkError};
use crate::netns;

/// The interface on the host's side of the target's path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostSide {
    pub name: String,
    /// `veth`, `bridge`, ...; `None`: a device without a kind (a NIC).
    pub kind: Option<String>,
    /// `veth peer` or `parent`.
    pub relation: String,
}

/// What the kernel shows about a target's path (the JSON report's `target.path`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PathDescription {
    /// The target is the host's own namespace (`pid:1`, `--network host`).
    pub host_namespace: bool,
    /// The interface the route to the server leaves by, inside the target.
    pub interface: Option<String>,
    /// Its kind: `veth`, `macvlan`, `ipvlan`, `vxlan`, ...; `None`: no kind (a NIC).
    pub kind: Option<String>,
    /// macvlan's mode (`bridge`, ...) or ipvlan's (`l2`, `l3`, `l3s`).
    pub kind_mode: Option<String>,
    /// The target's source address toward the server.
    pub address: Option<IpAddr>,
    pub gateway: Option<IpAddr>,
    /// The veth peer or the parent in the host namespace.
    pub host_side: Option<HostSide>,
    /// The bridge the veth peer is enslaved to.
    pub bridge: Option<String>,
    /// Bridged IPv4 passes the host's iptables (net.bridge.bridge-nf-call-iptables = 1).
    pub br_netfilter: Option<bool>,
    /// The host's rule that rewrites this target's source address.
    pub nat: Option<NatRule>,
    /// Backlog (netif_rx) packets per transaction this path showed when measured.
    pub backlog_pkts_per_tx: Option<f64>,
    /// What could not be read (each one line).
    pub notes: Vec<String>,
}

impl PathDescription {
    /// One line for people, e.g. `veth eth0 -> vethab12 on bridge docker0, MASQUERADE in ip nat POSTROUTING (...)`.
    pub fn summary(&self) -> String {
        if self.host_namespace {
            return "the host's own namespace".into();
        }
        let mut s = match (&self.kind, &self.interface) {
            (Some(k), Some(i)) => match &self.kind_mode {
                Some(m) => format!("{k} ({m}) {i}"),
                None => format!("{k} {i}"),
            },
            (None, Some(i)) => format!("{i} (no link kind)"),
            _ => "no route to the server".into(),
        };
        if let Some(h) = &self.host_side {
            let arrow = if h.relation == "parent" {
                "on parent"
            } else {
                "->"
            };
            s.push_str(&format!(" {arrow} {}", h.name));
        }
        if let Some(b) = &self.bridge {
            s.push_str(&format!(" on bridge {b}"));
            if self.br_netfilter == Some(true) {
                s.push_str(" (br_netfilter on)");
            }
        }
        match &self.nat {
            Some(n) => s.push_str(&format!(", {n}")),
            None if self.kind.as_deref() == Some("veth") => s.push_str(", no NAT"),
            None => {}
        }
        s
    }
}

/// The lab mode nearest to a described path.
pub fn looks_like(d: &PathDescription) -> Option<Mode> {
    if d.host_namespace {
        return Some(Mode::Host);
    }
    match (d.kind.as_deref(), d.kind_mode.as_deref()) {
        (Some("veth"), _) if d.bridge.is_some() => Some(Mode::Bridge),
        (Some("veth"), _) => Some(Mode::Ptp),
        (Some("macvlan"), _) => Some(Mode::Macvlan),
        (Some("ipvlan"), Some("l3")) => Some(Mode::IpvlanL3),
        (Some("ipvlan"), Some("l3s")) => Some(Mode::IpvlanL3s),
        (Some("ipvlan"), _) => Some(Mode::IpvlanL2),
        _ => None,
    }
}

/// One interface as RTM_GETLINK shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkView {
    pub index: u32,
    pub name: String,
    pub kind: Option<String>,
    pub kind_mode: Option<String>,
    /// IFLA_LINK: the veth peer's or the parent's index (in the link-netns when that is set).
    pub link: Option<u32>,
    /// IFLA_LINK_NETNSID: the peer/parent lives in another namespace.
    pub link_netnsid: Option<i32>,
    /// IFLA_MASTER.
    pub master: Option<u32>,
}

/// Reads the fields of a link message that describe its place in a path.
pub(crate) fn link_view(m: &LinkMessage) -> LinkView {
    let mut v = LinkView {
        index: m.header.index,
        ..Default::default()
    };
    for a in &m.attributes {
        match a {
            LinkAttribute::IfName(n) => v.name = n.clone(),
            LinkAttribute::Link(l) => v.link = Some(*l),
            LinkAttribute::LinkNetNsId(id) => v.link_netnsid = Some(*id),
            LinkAttribute::Controller(c) => v.master = Some(*c),
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    match i {
                        LinkInfo::Kind(k) => v.kind = Some(k.to_string()),
                        LinkInfo::Data(InfoData::MacVlan(d)) => {
                            v.kind_mode = d.iter().find_map(|x| match x {
                                InfoMacVlan::Mode(m) => Some(macvlan_mode(*m)),
                                _ => None,
                            })
                        }
                        LinkInfo::Data(InfoData::IpVlan(d)) => {
                            v.kind_mode = d.iter().find_map(|x| match x {
                                InfoIpVlan::Mode(m) => Some(ipvlan_mode(*m)),
                                _ => None,
                            })
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    v
}

fn macvlan_mode(m: MacVlanMode) -> String {
    match m {
        MacVlanMode::Private => "private".into(),
        MacVlanMode::Vepa => "vepa".into(),
        MacVlanMode::Bridge => "bridge".into(),
        MacVlanMode::Passthrough => "passthru".into(),
        MacVlanMode::Source => "source".into(),
        MacVlanMode::Other(n) => format!("mode {n}"),
        _ => "other".into(),
    }
}

fn ipvlan_mode(m: IpVlanMode) -> String {
    match m {
        IpVlanMode::L2 => "l2".into(),
        IpVlanMode::L3 => "l3".into(),
        IpVlanMode::L3S => "l3s".into(),
        IpVlanMode::Other(n) => format!("mode {n}"),
        _ => "other".into(),
    }
}

/// Every interface of the socket's namespace.
fn dump_links(nl: &mut Netlink) -> Result<Vec<LinkView>, NetlinkError> {
    let replies = nl.request(
        RouteNetlinkMessage::GetLink(LinkMessage::default()),
        NLM_F_DUMP,
        || "listing interfaces".into(),
    )?;
    Ok(replies
        .iter()
        .filter_map(|r| match r {
            RouteNetlinkMessage::NewLink(m) => Some(link_view(m)),
            _ => None,
        })
        .collect())
}

/// The route the kernel picks to `dst` (`ip route get`): output interface, gateway, source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct RouteView {
    pub oif: Option<u32>,
    pub gateway: Option<IpAddr>,
    pub source: Option<IpAddr>,
}

/// The RTM_GETROUTE request for `dst` (no dump: the kernel answers with the route it would use).
pub(crate) fn route_get_message(dst: IpAddr) -> RouteMessage {
    let mut msg = RouteMessage::default();
    match dst {
        IpAddr::V4(v4) => {
            msg.header.address_family = AddressFamily::Inet;
            msg.header.destination_prefix_length = 32;
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet(v4)));
        }
        IpAddr::V6(v6) => {
            msg.header.address_family = AddressFamily::Inet6;
            msg.header.destination_prefix_length = 128;
            msg.attributes
                .push(RouteAttribute::Destination(RouteAddress::Inet6(v6)));
        }
    }
    msg
}

fn route_address(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

pub(crate) fn route_view(m: &RouteMessage) -> RouteView {
    let mut v = RouteView::default();
    for a in &m.attributes {
        match a {
            RouteAttribute::Oif(i) => v.oif = Some(*i),
            RouteAttribute::Gateway(g) => v.gateway = route_address(g),
            RouteAttribute::PrefSource(s) => v.source = route_address(s),
            _ => {}
        }
    }
    v
}

fn route_get(nl: &mut Netlink, dst: IpAddr) -> Result<RouteView, NetlinkError> {
    let replies = nl.request(
        RouteNetlinkMessage::GetRoute(route_get_message(dst)),
        0,
        || format!("looking up the route to {dst}"),
    )?;
    Ok(replies
        .iter()
        .find_map(|r| match r {
            RouteNetlinkMessage::NewRoute(m) => Some(route_view(m)),
            _ => None,
        })
        .unwrap_or_default())
}

/// The interface index the namespace at `ns` sends packets for `dst` out of (`ip route get`'s
/// `dev`): `--waterfall`'s wire device for a server on another machine.
pub fn route_oif(ns: &Path, dst: IpAddr) -> Result<u32, String> {
    let mut nl = Netlink::open_in(ns).map_err(|e| e.to_string())?;
    let route = route_get(&mut nl, dst).map_err(|e| e.to_string())?;
    route
        .oif
        .ok_or_else(|| format!("no route to {dst} in {}", ns.display()))
}

/// Where the host side of a path lives: the host namespace (`None`: this process's).
pub struct HostView<'a> {
    pub netns: Option<&'a Path>,
}

/// Describes the path from the namespace at `target_ns` to `server`. `host_namespace`: the target
/// is the host's own namespace (then only the interface is read).
pub fn describe(
    target_ns: &Path,
    host: &HostView,
    server: IpAddr,
    host_namespace: bool,
) -> PathDescription {
    let mut d = PathDescription {
        host_namespace,
        interface: None,
        kind: None,
        kind_mode: None,
        address: None,
        gateway: None,
        host_side: None,
        bridge: None,
        br_netfilter: None,
        nat: None,
        backlog_pkts_per_tx: None,
        notes: Vec::new(),
    };
    let inside = Netlink::open_in(target_ns).and_then(|mut nl| {
        let route = route_get(&mut nl, server)?;
        let links = dump_links(&mut nl)?;
        Ok((route, links))
    });
    let (route, links) = match inside {
        Ok(x) => x,
        Err(e) => {
            d.notes
                .push(format!("reading the target's routes and links: {e}"));
            return d;
        }
    };
    d.gateway = route.gateway;
    d.address = route.source;
    let Some(oif) = route.oif.and_then(|i| links.iter().find(|l| l.index == i)) else {
        d.notes
            .push(format!("no route to {server} inside the target"));
        return d;
    };
    d.interface = Some(oif.name.clone());
    d.kind = oif.kind.clone();
    d.kind_mode = oif.kind_mode.clone();
    if host_namespace {
        return d;
    }
    let host_links = match host.netns {
        Some(p) => Netlink::open_in(p),
        None => Netlink::open(),
    }
    .and_then(|mut nl| dump_links(&mut nl));
    let host_links = match host_links {
        Ok(l) => l,
        Err(e) => {
            d.notes.push(format!("reading the host's links: {e}"));
            return d;
        }
    };
    find_host_side(&mut d, oif, &host_links);
    if d.bridge.is_some() {
        d.br_netfilter = read_br_netfilter(host.netns);
    }
    if d.kind.as_deref() == Some("veth") {
        if let Some(IpAddr::V4(addr)) = d.address {
            match host_nat(host.netns, addr) {
                Ok(nat) => d.nat = nat,
                Err(e) => d.notes.push(format!("reading the host's ruleset: {e}")),
            }
        }
    }
    d
}

/// Fills the host side (peer or parent, and the peer's bridge) from the host's links.
pub(crate) fn find_host_side(d: &mut PathDescription, oif: &LinkView, host_links: &[LinkView]) {
    let Some(link) = oif.link else {
        return;
    };
    if oif.link_netnsid.is_none() {
        d.notes.push(format!(
            "{}'s peer or parent is in the target's own namespace",
            oif.name
        ));
        return;
    }
    let by_index = |i: u32| host_links.iter().find(|l| l.index == i);
    match oif.kind.as_deref() {
        Some("veth") => {
            // The peer must point back at us: an index alone could be any namespace's.
            match by_index(link)
                .filter(|p| p.kind.as_deref() == Some("veth") && p.link == Some(oif.index))
            {
                Some(peer) => {
                    d.host_side = Some(HostSide {
                        name: peer.name.clone(),
                        kind: peer.kind.clone(),
                        relation: "veth peer".into(),
                    });
                    if let Some(master) = peer.master.and_then(by_index) {
                        d.bridge = Some(master.name.clone());
                    }
                }
                None => d.notes.push(format!(
                    "{}'s veth peer (index {link}) is not in the host namespace",
                    oif.name
                )),
            }
        }
        _ => match by_index(link) {
            Some(parent) => {
                d.host_side = Some(HostSide {
                    name: parent.name.clone(),
                    kind: parent.kind.clone(),
                    relation: "parent".into(),
                });
            }
            None => d.notes.push(format!(
                "{}'s parent (index {link}) is not in the host namespace",
                oif.name
            )),
        },
    }
}

fn read_br_netfilter(host_ns: Option<&Path>) -> Option<bool> {
    let key = "net.bridge.bridge-nf-call-iptables";
    let v = match host_ns {
        Some(p) => sysctl::read_in(p, key).ok()?,
        None => std::fs::read_to_string(sysctl::key_path(key)).ok()?,
    };
    Some(v.trim() == "1")
}

/// The host's source-NAT rule for `addr`, read in the host namespace.
fn host_nat(host_ns: Option<&Path>, addr: Ipv4Addr) -> Result<Option<NatRule>, String> {
    let ruleset = netns::run_in(host_ns, || {
        nat::read_ruleset().map_err(|e| netns::NetnsError::Io {
            what: e,
            source: std::io::Error::other("nft"),
        })
    })
    .map_err(|e| e.to_string())?;
    Ok(nat::find_source_nat(&ruleset, addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn veth(index: u32, name: &str, peer: u32, nsid: Option<i32>, master: Option<u32>) -> LinkView {
        LinkView {
            index,
            name: name.into(),
            kind: Some("veth".into()),
            kind_mode: None,
            link: Some(peer),
            link_netnsid: nsid,
            master,
        }
    }

    fn empty() -> PathDescription {
        PathDescription {
            host_namespace: false,
            interface: Some("eth0".into()),
            kind: Some("veth".into()),
            kind_mode: None,
            address: None,
            gateway: None,
            host_side: None,
            bridge: None,
            br_netfilter: None,
            nat: None,
            backlog_pkts_per_tx: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn veth_peer_on_a_bridge_looks_like_bridge() {
        let oif = veth(7, "eth0", 12, Some(0), None);
        let host = vec![
            LinkView {
                index: 5,
                name: "docker0".into(),
                kind: Some("bridge".into()),
                ..Default::default()
            },
            veth(12, "veth1a2b3c", 7, Some(3), Some(5)),
        ];
        let mut d = empty();
        find_host_side(&mut d, &oif, &host);
        assert_eq!(d.host_side.as_ref().unwrap().name, "veth1a2b3c");
        assert_eq!(d.bridge.as_deref(), Some("docker0"));
        assert_eq!(looks_like(&d), Some(Mode::Bridge));
        assert!(d.summary().contains("on bridge docker0"), "{}", d.summary());
    }

    #[test]
    fn a_peer_that_does_not_point_back_is_not_taken() {
        let oif = veth(7, "eth0", 12, Some(0), None);
        let host = vec![veth(12, "vethzz", 99, Some(3), None)];
        let mut d = empty();
        find_host_side(&mut d, &oif, &host);
        assert!(d.host_side.is_none());
        assert_eq!(d.notes.len(), 1);
        assert_eq!(looks_like(&d), Some(Mode::Ptp));
    }

    #[test]
    fn macvlan_parent_and_ipvlan_modes() {
        let oif = LinkView {
            index: 2,
            name: "eth0".into(),
            kind: Some("macvlan".into()),
            kind_mode: Some("bridge".into()),
            link: Some(40),
            link_netnsid: Some(0),
            master: None,
        };
        let host = vec![veth(40, "nslatwire", 41, Some(1), None)];
        let mut d = empty();
        d.kind = oif.kind.clone();
        d.kind_mode = oif.kind_mode.clone();
        find_host_side(&mut d, &oif, &host);
        assert_eq!(d.host_side.as_ref().unwrap().relation, "parent");
        assert_eq!(looks_like(&d), Some(Mode::Macvlan));
        assert!(d
            .summary()
            .starts_with("macvlan (bridge) eth0 on parent nslatwire"));
        for (m, want) in [
            ("l2", Mode::IpvlanL2),
            ("l3", Mode::IpvlanL3),
            ("l3s", Mode::IpvlanL3s),
        ] {
            d.kind = Some("ipvlan".into());
            d.kind_mode = Some(m.into());
            assert_eq!(looks_like(&d), Some(want));
        }
        d.kind = Some("vxlan".into());
        assert_eq!(looks_like(&d), None);
        d.host_namespace = true;
        assert_eq!(looks_like(&d), Some(Mode::Host));
        assert_eq!(d.summary(), "the host's own namespace");
    }

    #[test]
    fn route_get_message_bytes() {
        use netlink_packet_core::Emitable;
        let m = route_get_message("198.18.7.2".parse().unwrap());
        let mut buf = vec![0u8; m.buffer_len()];
        m.emit(&mut buf);
        // rtmsg: family AF_INET, dst_len 32; then RTA_DST (len 8, type 1) 198.18.7.2.
        assert_eq!(buf[0], libc::AF_INET as u8);
        assert_eq!(buf[1], 32);
        assert_eq!(&buf[12..20], &[8, 0, 1, 0, 198, 18, 7, 2]);
    }

    #[test]
    fn route_oif_of_loopback_is_lo() {
        // Loopback is interface 1 in every namespace.
        let oif = route_oif(Path::new("/proc/self/ns/net"), "127.0.0.1".parse().unwrap());
        assert_eq!(oif, Ok(1));
    }

    #[test]
    fn own_namespace_route_is_read() {
        // Loopback is in every namespace: the route to 127.0.0.1 leaves by lo.
        let d = describe(
            Path::new("/proc/self/ns/net"),
            &HostView { netns: None },
            "127.0.0.1".parse().unwrap(),
            true,
        );
        assert_eq!(d.interface.as_deref(), Some("lo"), "{:?}", d.notes);
        assert_eq!(looks_like(&d), Some(Mode::Host));
    }
}
