//! Modes attached to a real NIC in temporary namespaces, for measuring: what `compare --remote`
//! measures beside the host, and what `compare --target --attach` measures beside the user's
//! containers. One place makes them (a namespace, [`super::attach`] into it) and removes them
//! (detach, delete the namespace) when the [`TempAttached`] is dropped.
//!
//! Several children on one parent need distinct addresses: the `n`-th attached mode gets
//! `--addr` plus `n` ([`nth_addr`]), so `--addr 198.18.5.10/24` gives .10, .11, ... This module
//! measures nothing.

use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;

use super::{AttachError, AttachMode, AttachSpec, Target};
use crate::netlink::{sysctl, Netlink, NetlinkError};
use crate::netns;

/// The real NIC the modes attach to, and the addresses they take on its network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicSpec {
    /// `--parent`: the NIC.
    pub parent: String,
    /// The namespace the NIC lives in (`None`: this process's).
    pub parent_netns: Option<PathBuf>,
    /// `--addr`: the first attached mode's address; the next ones count up from it.
    pub addr: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
}

/// Prefix of the temporary namespaces: `nslat-r<pid>-<mode>` (the pid tells a stale one).
pub const TEMP_PREFIX: &str = "nslat-r";

/// A mode attached to the NIC in a namespace of its own; detached and removed when dropped.
#[derive(Debug)]
pub struct TempAttached {
    pub mode: AttachMode,
    /// The namespace's name (under /run/netns) and path.
    pub name: String,
    pub path: PathBuf,
    /// The address the mode's interface got.
    pub addr: IpAddr,
}

impl Drop for TempAttached {
    fn drop(&mut self) {
        let _ = super::detach(&Target::Netns(self.path.display().to_string()), None);
        let _ = netns::delete(&self.name);
    }
}

/// `addr` plus `n` inside `addr/prefix`: an error when it leaves the network or would be its
/// broadcast address (IPv4).
pub fn nth_addr(addr: IpAddr, prefix: u8, n: usize) -> Result<IpAddr, AttachError> {
    let out_of_range = || AttachError::AddrRange {
        addr,
        prefix,
        count: n + 1,
    };
    let net = IpNet::new(addr, prefix).map_err(|_| out_of_range())?;
    let next = match addr {
        IpAddr::V4(a) => IpAddr::V4(
            u32::from(a)
                .checked_add(n as u32)
                .ok_or_else(out_of_range)?
                .into(),
        ),
        IpAddr::V6(a) => IpAddr::V6(
            u128::from(a)
                .checked_add(n as u128)
                .ok_or_else(out_of_range)?
                .into(),
        ),
    };
    // An IPv4 network of 4 addresses or more keeps its broadcast address for itself.
    let broadcast = addr.is_ipv4() && net.prefix_len() <= 30 && next == net.broadcast();
    if !net.contains(&next) || broadcast {
        return Err(out_of_range());
    }
    Ok(next)
}

/// Checks that the NIC exists (and that `count` modes have addresses on its network) before
/// anything is attached.
pub fn check_nic(nic: &NicSpec, count: usize) -> Result<(), AttachError> {
    let mut nl = match &nic.parent_netns {
        Some(ns) => Netlink::open_in(ns)?,
        None => Netlink::open()?,
    };
    match nl.link_index(&nic.parent) {
        Ok(_) => {}
        Err(NetlinkError::NoSuchLink(_)) => return Err(AttachError::NoParent(nic.parent.clone())),
        Err(e) => return Err(e.into()),
    }
    if count > 0 {
        nth_addr(nic.addr, nic.prefix, count - 1)?;
    }
    Ok(())
}

/// Makes a temporary namespace and attaches `mode` to the NIC in it, with the `n`-th address.
/// On a failure nothing is left (the namespace is removed again).
pub fn attach_temp(nic: &NicSpec, mode: AttachMode, n: usize) -> Result<TempAttached, AttachError> {
    let addr = nth_addr(nic.addr, nic.prefix, n)?;
    let name = format!("{TEMP_PREFIX}{}-{}", std::process::id(), mode.name());
    let path = netns::create(&name)?;
    let made = TempAttached {
        mode,
        name,
        path,
        addr,
    };
    // Announce the address when the interface comes up: the remote must not keep sending to a
    // previous holder's MAC.
    let _ = sysctl::write_in(&made.path, &[("net.ipv4.conf.default.arp_notify", "1")]);
    let spec = AttachSpec {
        target: Target::Netns(made.path.display().to_string()),
        mode,
        parent: nic.parent.clone(),
        parent_netns: nic.parent_netns.as_ref().map(|p| p.display().to_string()),
        addr,
        prefix: nic.prefix,
        gateway: nic.gateway,
        ifname: "eth0".into(),
        host_shim: None,
        service_cidr: None,
    };
    super::attach(&spec)?;
    Ok(made)
}

/// Which attach modes can be children of one parent at once: macvlan children share a parent;
/// an ipvlan parent has one mode for all its children and takes no macvlan children, so each
/// ipvlan mode needs a parent (or a turn) of its own.
pub fn share_parent(a: AttachMode, b: AttachMode) -> bool {
    a == b && a != AttachMode::Bridge
}

/// `modes` split into groups whose members can be attached to one parent at the same time (in
/// the order given; see [`share_parent`]).
pub fn parent_groups(modes: &[AttachMode]) -> Vec<Vec<AttachMode>> {
    let mut groups: Vec<Vec<AttachMode>> = Vec::new();
    for &m in modes {
        match groups
            .iter_mut()
            .find(|g| g.iter().all(|&o| share_parent(o, m)))
        {
            Some(g) => g.push(m),
            None => groups.push(vec![m]),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_count_up_from_the_first_address() {
        let a: IpAddr = "198.18.5.10".parse().unwrap();
        assert_eq!(nth_addr(a, 24, 0).unwrap(), a);
        assert_eq!(
            nth_addr(a, 24, 2).unwrap(),
            "198.18.5.12".parse::<IpAddr>().unwrap()
        );
        let last: IpAddr = "198.18.5.253".parse().unwrap();
        assert!(nth_addr(last, 24, 1).is_ok());
        // .255 is the broadcast address, .0 of the next /24 is outside.
        assert!(matches!(
            nth_addr(last, 24, 2),
            Err(AttachError::AddrRange { count: 3, .. })
        ));
        assert!(nth_addr(last, 24, 3).is_err());
        let v6: IpAddr = "2001:2::ffff".parse().unwrap();
        assert_eq!(
            nth_addr(v6, 64, 1).unwrap(),
            "2001:2::1:0".parse::<IpAddr>().unwrap()
        );
        assert!(nth_addr(v6, 128, 1).is_err());
    }

    #[test]
    fn macvlan_children_share_a_parent_ipvlan_modes_do_not() {
        use AttachMode::*;
        assert_eq!(
            parent_groups(&[Macvlan, IpvlanL2, IpvlanL3, Macvlan]),
            vec![vec![Macvlan, Macvlan], vec![IpvlanL2], vec![IpvlanL3]]
        );
        assert!(share_parent(IpvlanL2, IpvlanL2));
        assert!(!share_parent(IpvlanL2, IpvlanL3) && !share_parent(Macvlan, IpvlanL2));
        assert!(parent_groups(&[]).is_empty());
    }
}
