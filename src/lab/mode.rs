//! The ways a container can be attached to the node's network ("modes"), as data.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How a container is attached. `Host` means no container: the node itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Mode {
    /// The node's own stack: the baseline.
    #[serde(rename = "host")]
    Host,
    /// Docker's default: veth into bridge `docker0`, forwarded and MASQUERADEd out of eth0.
    #[serde(rename = "bridge")]
    Bridge,
    /// Routed veth, no bridge, no NAT (CNI ptp plugin, Calico).
    #[serde(rename = "ptp")]
    Ptp,
    /// macvlan (bridge mode) child of the node's eth0.
    #[serde(rename = "macvlan")]
    Macvlan,
    /// ipvlan L2 child of the node's eth0.
    #[serde(rename = "ipvlan-l2")]
    IpvlanL2,
    /// ipvlan L3 child of the node's eth0.
    #[serde(rename = "ipvlan-l3")]
    IpvlanL3,
    /// ipvlan L3S (L3 with the node's netfilter hooks) child of the node's eth0.
    #[serde(rename = "ipvlan-l3s")]
    IpvlanL3s,
    /// macvlan for the data path plus a veth to the node for Service and node traffic.
    #[serde(rename = "macvlan+veth")]
    MacvlanVeth,
    /// ipvlan (L2) for the data path plus a veth to the node for Service and node traffic.
    #[serde(rename = "ipvlan+veth")]
    IpvlanVeth,
    /// Routed netkit pair (L3, Linux 6.7+), no BPF program: the default policy forwards
    /// through `__netif_rx`, the backlog veth uses.
    #[serde(rename = "netkit")]
    Netkit,
    /// Routed netkit pair with BPF redirects as Cilium's: the peer's program sends the
    /// container's packets out of the NIC (`bpf_redirect_neigh`), the NIC's ingress program
    /// hands the remote's packets to the container (`bpf_redirect_peer`).
    #[serde(rename = "netkit-bpf")]
    NetkitBpf,
}

impl Mode {
    /// Every mode, in report order.
    pub const ALL: [Mode; 11] = [
        Mode::Host,
        Mode::Bridge,
        Mode::Ptp,
        Mode::Macvlan,
        Mode::IpvlanL2,
        Mode::IpvlanL3,
        Mode::IpvlanL3s,
        Mode::MacvlanVeth,
        Mode::IpvlanVeth,
        Mode::Netkit,
        Mode::NetkitBpf,
    ];

    /// The modes a lab builds when none are named: the plain ones (hybrids are opt-in fixes).
    pub const DEFAULT: [Mode; 7] = [
        Mode::Host,
        Mode::Bridge,
        Mode::Ptp,
        Mode::Macvlan,
        Mode::IpvlanL2,
        Mode::IpvlanL3,
        Mode::IpvlanL3s,
    ];

    /// The user-facing name, e.g. `ipvlan-l2`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Host => "host",
            Mode::Bridge => "bridge",
            Mode::Ptp => "ptp",
            Mode::Macvlan => "macvlan",
            Mode::IpvlanL2 => "ipvlan-l2",
            Mode::IpvlanL3 => "ipvlan-l3",
            Mode::IpvlanL3s => "ipvlan-l3s",
            Mode::MacvlanVeth => "macvlan+veth",
            Mode::IpvlanVeth => "ipvlan+veth",
            Mode::Netkit => "netkit",
            Mode::NetkitBpf => "netkit-bpf",
        }
    }

    /// Whether this mode needs the kernel's ipvlan driver.
    pub fn needs_ipvlan(self) -> bool {
        matches!(
            self,
            Mode::IpvlanL2 | Mode::IpvlanL3 | Mode::IpvlanL3s | Mode::IpvlanVeth
        )
    }

    /// Whether this mode needs the kernel's netkit device (Linux 6.7+).
    pub fn needs_netkit(self) -> bool {
        matches!(self, Mode::Netkit | Mode::NetkitBpf)
    }

    /// One line on what the mode is, for `--help` and reports.
    pub fn describe(self) -> &'static str {
        match self {
            Mode::Host => "no container: the node's own network stack (baseline)",
            Mode::Bridge => "Docker's default: veth + bridge docker0 + MASQUERADE",
            Mode::Ptp => "routed veth, no bridge, no NAT (CNI ptp, Calico)",
            Mode::Macvlan => "macvlan (bridge mode) on the node's NIC",
            Mode::IpvlanL2 => "ipvlan L2 on the node's NIC",
            Mode::IpvlanL3 => "ipvlan L3 on the node's NIC",
            Mode::IpvlanL3s => "ipvlan L3S on the node's NIC (node netfilter applies)",
            Mode::MacvlanVeth => "macvlan data path + veth to the node for Services",
            Mode::IpvlanVeth => "ipvlan L2 data path + veth to the node for Services",
            Mode::Netkit => "routed netkit pair (L3), no BPF program: forwards through the backlog like veth",
            Mode::NetkitBpf => "routed netkit pair with BPF redirects (redirect_neigh out, redirect_peer in), as Cilium",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

/// Error for a mode name nslat does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown mode '{0}': use one of host, bridge, ptp, macvlan, ipvlan-l2, ipvlan-l3, ipvlan-l3s, macvlan+veth, ipvlan+veth, netkit, netkit-bpf")]
pub struct UnknownMode(pub String);

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Mode::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

/// Parses a comma-separated list like `host,bridge,macvlan`; `all` means [`Mode::ALL`].
/// Duplicates are dropped; order is kept.
pub fn parse_list(list: &str) -> Result<Vec<Mode>, UnknownMode> {
    if list.trim().eq_ignore_ascii_case("all") {
        return Ok(Mode::ALL.to_vec());
    }
    let mut modes = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let m: Mode = part.parse()?;
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    if modes.is_empty() {
        return Err(UnknownMode(list.to_string()));
    }
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("host,bridge,host").unwrap(),
            vec![Mode::Host, Mode::Bridge]
        );
        assert_eq!(parse_list("all").unwrap().len(), Mode::ALL.len());
        assert!(parse_list("host,vxlan").is_err());
        assert!(parse_list(",").is_err());
    }
}
