//! The lab's address plan and names: every address nslat gives out is here, all in
//! 198.18.0.0/15 and 2001:2::/48. Mode drivers take theirs from this scheme: a host number on
//! the wire ([`wire_host`]) or a /24 of their own ([`subnet`]) with fixed host numbers in it.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Mode;
use crate::firewall::NatLevel;

/// The wire between node and remote: 198.18.0.0/24.
pub const WIRE_PREFIX: u8 = 24;
/// The node's wire address.
pub const NODE: Ipv4Addr = wire_host(1);
/// The remote's wire address (where compare's server listens for most modes).
pub const REMOTE: Ipv4Addr = wire_host(2);
/// The node's macvlan host-shim address (with `--host-shim`).
pub const SHIM: Ipv4Addr = wire_host(254);
/// The node's ipvlan host-shim address (with `--host-shim`, on the ipvlan-l2 port).
pub const SHIM_IPVLAN: Ipv4Addr = wire_host(253);
/// The bridge subnet behind docker0.
pub const BRIDGE_NET: Ipv4Addr = subnet(1);
pub const BRIDGE_GW: Ipv4Addr = in_subnet(1, 1);
pub const BRIDGE_CTR: Ipv4Addr = in_subnet(1, 2);
/// The ptp subnet (/32s with host routes).
pub const PTP_NET: Ipv4Addr = subnet(2);
pub const PTP_NODE: Ipv4Addr = in_subnet(2, 1);
pub const PTP_CTR: Ipv4Addr = in_subnet(2, 2);
/// The hybrid modes' side veth subnet (/32s with host routes); a hybrid's side address has the
/// host number of its wire address.
pub const SIDE_NET: Ipv4Addr = subnet(3);
pub const SIDE_NODE: Ipv4Addr = in_subnet(3, 1);
/// The virtual Service (ClusterIP) range: routed through the hybrids' side veth, the default
/// `--service-cidr` of `attach --service-veth`.
pub const CLUSTER_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
pub const CLUSTER_PREFIX: u8 = 16;
/// [`CLUSTER_NET`]/[`CLUSTER_PREFIX`] as text (for clap defaults).
pub const CLUSTER_CIDR: &str = "198.19.0.0/16";
/// The Service address (kube-proxy's ClusterIP) and port `check` DNATs to the remote.
pub const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
pub const CLUSTER_PORT: u16 = 80;

/// Host `n` on the wire: 198.18.0.n.
pub const fn wire_host(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, 0, n)
}

/// A mode's own /24: 198.18.n.0 (n 1..=255; 0 is the wire).
pub const fn subnet(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, n, 0)
}

/// Host `h` in subnet `n`: 198.18.n.h.
pub const fn in_subnet(n: u8, h: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, n, h)
}

/// Whether `a` is in the lab's 198.18.0.0/15.
pub fn in_lab_range(a: Ipv4Addr) -> bool {
    a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18
}

/// The addresses of one mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModePlan {
    /// The container's address (for `host`: the node's).
    pub addr: Ipv4Addr,
    /// The address of the remote's server this mode's clients connect to ([`REMOTE`], or for an
    /// overlay an address in the remote's pod subnet).
    pub server: Ipv4Addr,
    /// A hybrid's address on its side veth to the node.
    pub side: Option<Ipv4Addr>,
}

impl ModePlan {
    /// A container at `addr` that reaches the server at [`REMOTE`].
    pub const fn at(addr: Ipv4Addr) -> ModePlan {
        ModePlan {
            addr,
            server: REMOTE,
            side: None,
        }
    }
}

/// The v6 counterpart of a 198.18.X.Y address: 2001:2:0:X::Y.
pub fn v6(a: Ipv4Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(0x2001, 2, 0, o[2] as u16, 0, 0, 0, o[3] as u16)
}

/// The prefix every lab namespace of `lab` starts with.
pub fn prefix(lab: &str) -> String {
    format!("nslat-{lab}-")
}

/// The namespace suffix of a mode (`+` becomes `-`); `None` for modes without a namespace of
/// their own (`host` uses the node).
pub fn mode_suffix(mode: Mode) -> Option<String> {
    mode.traits()
        .own_namespace
        .then(|| mode.name().replace('+', "-"))
}

/// The most neighbour containers per mode a load sweep builds (`nslat sweep load`).
pub const MAX_NEIGHBOURS: usize = 8;

/// The namespace suffix of neighbour `i` of `mode` (`nbr0-bridge`).
pub fn neighbour_suffix(mode: Mode, i: usize) -> String {
    format!("nbr{i}-{}", mode.name().replace('+', "-"))
}

/// The tag of `compare --explain`'s node at NAT level `level` (`x.none`, `x.ct`, `x.masq`): its
/// namespaces are the lab's suffixes behind `x.TAG-` (`nslat-LAB-x.ct-bridge`). Lab names have
/// no `.`, so no other lab's namespace can look like one.
pub fn explain_tag(level: NatLevel) -> &'static str {
    match level {
        NatLevel::None => "x.none",
        NatLevel::ConntrackOnly => "x.ct",
        NatLevel::Masquerade => "x.masq",
    }
}

/// The namespace prefix of `compare --explain`'s node at `level` in lab `lab`.
pub fn explain_prefix(lab: &str, level: NatLevel) -> String {
    format!("{}{}-", prefix(lab), explain_tag(level))
}

/// The most measurement cells one comparison builds ([`super::cells`]).
pub const MAX_CELLS: usize = 160;

/// The namespace prefix of measurement cell `i` of lab `lab` (`nslat-LAB-c.3-`). Lab names have
/// no `.`, so no other lab's namespace can look like one.
pub fn cell_prefix(lab: &str, i: usize) -> String {
    format!("{}c.{i}-", prefix(lab))
}

/// The suffixes of every possible measurement cell (`c.3-node`, ...).
pub fn cell_suffixes() -> impl Iterator<Item = String> {
    let topo = topology_suffixes();
    (0..MAX_CELLS).flat_map(move |i| {
        topo.iter()
            .map(move |s| format!("c.{i}-{s}"))
            .collect::<Vec<_>>()
    })
}

/// The suffixes of one lab topology: remote, node and every mode's own namespace.
pub fn topology_suffixes() -> Vec<String> {
    let mut v = vec!["remote".to_string(), "node".to_string()];
    v.extend(Mode::ALL.iter().copied().filter_map(mode_suffix));
    v
}

/// Every namespace suffix a lab can have: `down` sweeps exactly these under the prefix, so
/// lab `a` never removes namespaces of lab `a-b`.
pub fn all_suffixes() -> Vec<String> {
    let mut v = topology_suffixes();
    for &m in Mode::ALL.iter() {
        v.extend((0..MAX_NEIGHBOURS).map(|i| neighbour_suffix(m, i)));
    }
    v.extend(explain_suffixes());
    v.extend(cell_suffixes());
    v
}

/// The suffixes of `compare --explain`'s nodes (all levels).
pub fn explain_suffixes() -> Vec<String> {
    let levels = [
        NatLevel::None,
        NatLevel::ConntrackOnly,
        NatLevel::Masquerade,
    ];
    levels
        .iter()
        .flat_map(|&l| {
            topology_suffixes()
                .into_iter()
                .map(move |s| format!("{}-{s}", explain_tag(l)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_follow_the_scheme() {
        assert_eq!(v6(REMOTE).to_string(), "2001:2::2");
        assert_eq!(v6(BRIDGE_CTR).to_string(), "2001:2:0:1::2");
        assert_eq!(BRIDGE_CTR, Ipv4Addr::new(198, 18, 1, 2));
        assert_eq!(SIDE_NET, Ipv4Addr::new(198, 18, 3, 0));
        assert_eq!(CLUSTER_CIDR, format!("{CLUSTER_NET}/{CLUSTER_PREFIX}"));
        let cluster: ipnet::Ipv4Net = CLUSTER_CIDR.parse().unwrap();
        assert_eq!(cluster.network(), CLUSTER_NET);
        assert!(cluster.contains(&CLUSTER_IP));
        assert!(in_lab_range(CLUSTER_IP) && in_lab_range(in_subnet(255, 1)));
        assert!(!in_lab_range(Ipv4Addr::new(10, 0, 0, 1)));
    }

    #[test]
    fn suffixes_are_names() {
        for s in all_suffixes() {
            assert!(
                crate::netns::validate_name(&format!("nslat-x-{s}")).is_ok(),
                "{s}"
            );
        }
        assert_eq!(mode_suffix(Mode::MacvlanVeth).unwrap(), "macvlan-veth");
        assert!(mode_suffix(Mode::Host).is_none());
        assert!(all_suffixes().contains(&"x.ct-bridge".to_string()));
        assert_eq!(explain_prefix("a", NatLevel::Masquerade), "nslat-a-x.masq-");
    }
}
