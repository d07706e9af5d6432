//! One driver per mode (modelled on netavark's `NetworkDriver`): what the mode is
//! ([`Traits`]), its addresses ([`ModePlan`], from `lab/plan.rs`'s scheme), validate, build and
//! teardown. Each driver is one file here; the registration list at the bottom of this file is
//! the only other place that names it.
//!
//! Adding a mode: write `modes/NAME.rs` with a `pub const` value of a type implementing
//! [`ModeDriver`], and add one line `NAME => [ConstName = NAME::VALUE],` to [`register!`]'s list
//! below. Nothing else in nslat matches on modes: `check`, `compare` and `lab` ask the driver.
//!
//! Drivers build through [`Builder`] (one netlink socket per namespace, numbered steps for the
//! crash tests); they must not touch the root namespace.

use std::net::{IpAddr, Ipv4Addr};

use super::build::Builder;
use super::plan::ModePlan;
use super::{LabError, LabSpec, ModeInfo};
use crate::attach::AttachMode;
use crate::netlink::Route;

/// The expected backlog fingerprint of a mode: packets enqueued to a per-CPU backlog
/// (`netif_rx`, the `net:netif_rx` tracepoint `compare` counts) per TCP_RR transaction
/// (request and response), and why. softnet's `processed` counts device passes instead (a
/// macvlan child or a redirect_peer is one more pass, not one more wait). `compare` measures
/// the real figures; this says what to expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backlog {
    pub per_transaction: u32,
    pub why: &'static str,
}

/// What a mode is, beside how it is built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Traits {
    /// The container's interface is a child (macvlan/ipvlan) of the node's NIC: its traffic
    /// skips the node's netfilter hooks and cannot reach the node itself.
    pub child_of_nic: bool,
    /// What `nslat attach` (and `compare --remote`) puts on a real NIC for this mode, if it can.
    pub attach: Option<AttachMode>,
    /// The expected backlog fingerprint.
    pub backlog: Backlog,
    /// Built when no modes are named.
    pub default: bool,
    /// The container lives in a namespace of its own (all but `host`).
    pub own_namespace: bool,
    /// Needs the kernel's ipvlan driver (the lab probes once and marks these unavailable).
    pub needs_ipvlan: bool,
}

impl Traits {
    /// A container mode with its own namespace, not a NIC child, not attachable, not default.
    pub const fn container(backlog: Backlog) -> Traits {
        Traits {
            child_of_nic: false,
            attach: None,
            backlog,
            default: false,
            own_namespace: true,
            needs_ipvlan: false,
        }
    }
}

/// The checks of `nslat check` a driver can explain (names as in [`crate::check::CHECKS`]).
pub type CheckName = &'static str;

/// One mode: what it is, its addresses, how it is built and removed.
pub trait ModeDriver: Sync + 'static {
    /// The user-facing name, e.g. `ipvlan-l2` (also its namespace suffix, `+` as `-`).
    fn name(&self) -> &'static str;
    /// One line on what the mode is.
    fn describe(&self) -> &'static str;
    /// What the mode is.
    fn traits(&self) -> Traits;
    /// The mode's addresses (every one from `lab/plan.rs`'s scheme).
    fn plan(&self) -> ModePlan;
    /// Checks the spec before anything is changed (e.g. an option the mode cannot honour).
    fn validate(&self, _spec: &LabSpec) -> Result<(), LabError> {
        Ok(())
    }
    /// `Some(reason)` when this kernel cannot build the mode (checked in the node, before
    /// `build`); the lab records the mode as unavailable and builds the rest.
    fn unavailable(&self, _b: &mut Builder) -> Result<Option<String>, LabError> {
        Ok(None)
    }
    /// `Some(reason)` when the lab cannot give this mode an IPv6 path (`compare --family 6|both`
    /// then shows its IPv6 row as not available with the reason). Default: it has one.
    fn ipv6_unavailable(&self) -> Option<&'static str> {
        None
    }
    /// Builds the mode; the container's namespace (suffix `ns`) exists when `own_namespace`.
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError>;
    /// `--host-shim`: whatever the node needs to reach this mode's container (default: nothing).
    fn host_shim(&self, _b: &mut Builder) -> Result<(), LabError> {
        Ok(())
    }
    /// Removes what removing the lab's namespaces does not (default: nothing; everything a
    /// driver makes lives inside the lab's namespaces).
    fn teardown(&self, _lab: &str) -> Result<(), LabError> {
        Ok(())
    }
    /// Why `check` failed for this mode (or, for a passing check, a note that it only passes
    /// because of the lab), given the attempt's error. `None`: the error says it all.
    fn why(&self, check: CheckName, host_shim: bool) -> Option<&'static str> {
        if self.traits().child_of_nic {
            child_of_nic_why(check, host_shim)
        } else {
            None
        }
    }
    /// A note for a check that passes only because of how the lab is built (default: none).
    fn note_when_passing(&self, _check: CheckName) -> Option<&'static str> {
        None
    }
}

/// The explanations shared by every child of the node's NIC (macvlan, ipvlan).
pub fn child_of_nic_why(check: CheckName, host_shim: bool) -> Option<&'static str> {
    match check {
        "service" => Some("traffic leaves through the parent device without passing the node's netfilter hooks, so the node's Service DNAT never sees it (fix: the +veth hybrid)"),
        "node_to_container" | "container_to_node" if !host_shim => Some("macvlan/ipvlan children cannot talk to their parent device: the node's traffic goes out of eth0 and never comes back (fix: --host-shim)"),
        "policy" | "policy_service" => Some("the container's traffic leaves through the parent device without passing the node's forward/input hooks, so a host-enforced policy does not apply"),
        _ => None,
    }
}

/// The routed veth of `ptp` and the modes built on it: host end `host` in the node with
/// `node_ip/32`, the container's `eth0` with `ctr_ip/32`, host routes both ways, the
/// container's default route via `node_ip` onlink. Returns (host index, container index).
pub fn routed_veth(
    b: &mut Builder,
    ns: &str,
    host: &str,
    node_ip: Ipv4Addr,
    ctr_ip: Ipv4Addr,
) -> Result<(u32, u32), LabError> {
    let fd = b.ns_fd(ns)?;
    b.nl("node")
        .create_veth(host, "eth0", Some(std::os::fd::AsFd::as_fd(&fd)))?;
    b.step()?;
    route_pair(b, ns, host, node_ip, ctr_ip)
}

/// Addresses and routes of a point-to-point pair whose host end `host` is in the node and whose
/// other end is the container's `eth0` (a veth or netkit pair): `node_ip/32` on the host end,
/// `ctr_ip/32` in the container, host routes both ways, the container's default route via
/// `node_ip` onlink. Returns (host index, container index).
pub fn route_pair(
    b: &mut Builder,
    ns: &str,
    host: &str,
    node_ip: Ipv4Addr,
    ctr_ip: Ipv4Addr,
) -> Result<(u32, u32), LabError> {
    let hi = b.nl("node").link_index(host)?;
    b.addr("node", hi, node_ip, 32, 128)?;
    b.nl("node").set_up(hi, true)?;
    b.route("node", Route::dev(ctr_ip.into(), 32, hi))?;
    let ci = b.container_eth0(ns, ctr_ip, 32, 128)?;
    b.route(ns, Route::dev(node_ip.into(), 32, ci))?;
    b.route(
        ns,
        Route::onlink(Ipv4Addr::UNSPECIFIED.into(), 0, node_ip.into(), ci),
    )?;
    Ok((hi, ci))
}

/// The remote's route to a mode's subnet via the node (the node as the router to its pods).
pub fn remote_route_via_node(b: &mut Builder, net: Ipv4Addr, len: u8) -> Result<(), LabError> {
    b.route(
        "remote",
        Route::via(net.into(), len, IpAddr::V4(super::plan::NODE)),
    )
}

/// The registration list: each line `file => [Const = file::VALUE, ...]` declares module
/// `file` (`lab/modes/file.rs`), the constant `Mode::Const` and its place in [`Mode::ALL`]
/// (report order).
macro_rules! register {
    ($($file:ident => [$($konst:ident = $value:path),+ $(,)?],)+) => {
        $(mod $file;)+
        #[allow(non_upper_case_globals)]
        impl super::Mode {
            $($(pub const $konst: super::Mode = super::Mode(&$value);)+)+
            /// Every mode, in report order.
            pub const ALL: &'static [super::Mode] = &[$($(super::Mode::$konst,)+)+];
        }
    };
}

register! {
    host => [Host = host::HOST],
    bridge => [Bridge = bridge::BRIDGE],
    ptp => [Ptp = ptp::PTP],
    macvlan => [Macvlan = macvlan::MACVLAN],
    ipvlan => [IpvlanL2 = ipvlan::L2, IpvlanL3 = ipvlan::L3, IpvlanL3s = ipvlan::L3S],
    hybrid => [MacvlanVeth = hybrid::MACVLAN_VETH, IpvlanVeth = hybrid::IPVLAN_VETH],
    veth_bpf => [VethBpf = veth_bpf::VETH_BPF],
    vxlan => [Vxlan = vxlan::VXLAN],
    netkit => [Netkit = netkit::NETKIT, NetkitBpf = netkit::NETKIT_BPF],
}

#[cfg(test)]
mod tests {
    use super::super::{plan, Mode};

    #[test]
    fn names_and_addresses_are_distinct() {
        let mut names = std::collections::HashSet::new();
        let mut addrs = std::collections::HashSet::new();
        for &m in Mode::ALL {
            assert!(names.insert(m.name()), "{m} registered twice");
            let p = m.driver().plan();
            for a in [Some(p.addr), p.side].into_iter().flatten() {
                assert!(plan::in_lab_range(a), "{m}: {a}");
                if m != Mode::Host {
                    assert!(addrs.insert(a), "{m} reuses {a}");
                }
            }
            assert!(plan::in_lab_range(p.server), "{m}: {}", p.server);
        }
    }

    #[test]
    fn what_modes_are() {
        assert!(Mode::Macvlan.traits().child_of_nic);
        assert!(!Mode::Ptp.traits().child_of_nic);
        assert!(!Mode::Host.traits().own_namespace);
        assert!(Mode::IpvlanVeth.needs_ipvlan());
        assert_eq!(
            Mode::Macvlan.traits().attach,
            Some(crate::attach::AttachMode::Macvlan)
        );
        assert_eq!(Mode::Ptp.traits().attach, None);
        assert!(
            Mode::Ptp.traits().backlog.per_transaction
                > Mode::Macvlan.traits().backlog.per_transaction
        );
    }

    #[test]
    fn failures_are_explained_by_mode() {
        let w = Mode::Macvlan.driver().why("service", false).unwrap();
        assert!(w.contains("netfilter"), "{w}");
        let w = Mode::Macvlan
            .driver()
            .why("node_to_container", false)
            .unwrap();
        assert!(w.contains("--host-shim"), "{w}");
        assert!(Mode::Macvlan
            .driver()
            .why("node_to_container", true)
            .is_none());
        assert!(Mode::Bridge.driver().why("service", false).is_none());
    }
}
