//! The lab's address plan and names: all in 198.18.0.0/15 and 2001:2::/48.

use std::net::{Ipv4Addr, Ipv6Addr};

use super::Mode;

/// The wire between node and remote: 198.18.0.0/24.
pub const WIRE_PREFIX: u8 = 24;
/// The node's wire address.
pub const NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The remote's wire address.
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
/// The node's host-shim address (with `--host-shim`).
pub const SHIM: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 254);
/// The bridge subnet behind docker0.
pub const BRIDGE_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 0);
pub const BRIDGE_GW: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 1);
pub const BRIDGE_CTR: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 2);
/// The ptp subnet (/32s with host routes).
pub const PTP_NET: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 0);
pub const PTP_NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 1);
pub const PTP_CTR: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 2);
/// The hybrid modes' side veth subnet (/32s with host routes).
pub const SIDE_NODE: Ipv4Addr = Ipv4Addr::new(198, 18, 3, 1);
/// The virtual Service (ClusterIP) range routed through the hybrids' side veth.
pub const CLUSTER_NET: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 0);
pub const CLUSTER_PREFIX: u8 = 16;

/// The v6 counterpart of a 198.18.X.Y address: 2001:2:0:X::Y.
pub fn v6(a: Ipv4Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(0x2001, 2, 0, o[2] as u16, 0, 0, 0, o[3] as u16)
}

/// The container's wire address for modes whose interface sits on the wire.
pub fn wire_addr(mode: Mode) -> Option<Ipv4Addr> {
    let host = match mode {
        Mode::Macvlan => 3,
        Mode::IpvlanL2 => 4,
        Mode::IpvlanL3 => 5,
        Mode::IpvlanL3s => 6,
        Mode::MacvlanVeth => 7,
        Mode::IpvlanVeth => 8,
        _ => return None,
    };
    Some(Ipv4Addr::new(198, 18, 0, host))
}

/// The container side of a hybrid's side veth.
pub fn side_addr(mode: Mode) -> Option<Ipv4Addr> {
    wire_addr(mode).map(|a| Ipv4Addr::new(198, 18, 3, a.octets()[3]))
}

/// The container's address in `mode`.
pub fn mode_addr(mode: Mode) -> Ipv4Addr {
    match mode {
        Mode::Host => NODE,
        Mode::Bridge => BRIDGE_CTR,
        Mode::Ptp => PTP_CTR,
        m => wire_addr(m).expect("wire mode"),
    }
}

/// The prefix every lab namespace of `lab` starts with.
pub fn prefix(lab: &str) -> String {
    format!("nslat-{lab}-")
}

/// The namespace suffix of a mode (`+` becomes `-`); `None` for host (it uses the node).
pub fn mode_suffix(mode: Mode) -> Option<String> {
    (mode != Mode::Host).then(|| mode.name().replace('+', "-"))
}

/// The most neighbour containers per mode a load sweep builds (`nslat sweep load`).
pub const MAX_NEIGHBOURS: usize = 8;

/// The namespace suffix of neighbour `i` of `mode` (`nbr0-bridge`).
pub fn neighbour_suffix(mode: Mode, i: usize) -> String {
    format!("nbr{i}-{}", mode.name().replace('+', "-"))
}

/// Every namespace suffix a lab can have: `down` sweeps exactly these under the prefix, so
/// lab `a` never removes namespaces of lab `a-b`.
pub fn all_suffixes() -> Vec<String> {
    let mut v = vec!["remote".to_string(), "node".to_string()];
    v.extend(Mode::ALL.into_iter().filter_map(mode_suffix));
    for m in Mode::ALL {
        v.extend((0..MAX_NEIGHBOURS).map(|i| neighbour_suffix(m, i)));
    }
    v
}

/// The wire port (a veth node <-> remote, same name at both ends) an ipvlan mode's parent is.
pub fn ipvlan_port(mode: Mode) -> Option<String> {
    match mode {
        Mode::IpvlanL2 => Some("ipvl-l2".into()),
        Mode::IpvlanL3 => Some("ipvl-l3".into()),
        Mode::IpvlanL3s => Some("ipvl-l3s".into()),
        Mode::IpvlanVeth => Some("ipvl-hybrid".into()),
        _ => None,
    }
}

/// The host-side veth name in the node for `mode`.
pub fn node_veth(mode: Mode) -> String {
    match mode {
        Mode::Bridge => "veth-bridge".into(),
        Mode::Ptp => "veth-ptp".into(),
        Mode::MacvlanVeth => "veth-mvside".into(),
        Mode::IpvlanVeth => "veth-ipside".into(),
        m => format!("veth-{}", m.name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_the_benchmark_range() {
        let mut seen = std::collections::HashSet::new();
        for m in Mode::ALL {
            let a = mode_addr(m);
            assert!(a.octets()[0] == 198 && (a.octets()[1] & 0xfe) == 18, "{a}");
            if m != Mode::Host {
                assert!(seen.insert(a), "{m} reuses {a}");
            }
        }
        assert_eq!(v6(REMOTE).to_string(), "2001:2::2");
        assert_eq!(v6(BRIDGE_CTR).to_string(), "2001:2:0:1::2");
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
    }
}
