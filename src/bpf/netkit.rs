//! `netkit-bpf`'s programs (bpf/netkit.bpf.c, compiled by clang in build.rs): loaded with aya,
//! their constants (the node NIC's and the netkit primary's indexes, the container's addresses)
//! set before loading, attached with [`super::mprog`]: `nk_peer_out` to the pair's peer
//! (the container's egress: `bpf_redirect_neigh` out of the NIC), `nk_nic_in` to the NIC's TCX
//! ingress (`bpf_redirect_peer` into the container).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::fd::AsFd;
use std::path::Path;

use aya::programs::SchedClassifier;
use aya::EbpfLoader;

use super::mprog::{self as attach, AttachPoint};
use super::{BpfError, NETKIT};
use crate::netns;

/// Where the programs go and what they match, all in the node's namespace.
#[derive(Debug, Clone, Copy)]
pub struct NetkitRedirect {
    /// The node's NIC (the lab's `eth0`).
    pub nic_ifindex: u32,
    /// The netkit pair's primary (in the node).
    pub primary_ifindex: u32,
    /// The container's addresses.
    pub ctr4: Ipv4Addr,
    pub ctr6: Option<Ipv6Addr>,
}

/// Loads both programs with `r`'s constants and attaches them, from a thread inside `node`.
pub fn attach(node: &Path, r: NetkitRedirect) -> Result<(), BpfError> {
    netns::run_in(Some(node), move || attach_here(&r))
}

fn attach_here(r: &NetkitRedirect) -> Result<(), BpfError> {
    // Network byte order, as the packet's fields are compared: the address octets in memory.
    if NETKIT.bytes.is_empty() {
        return Err(BpfError::NotBuilt);
    }
    let ctr4 = u32::from_ne_bytes(r.ctr4.octets());
    let ctr6: [u32; 4] = match r.ctr6 {
        Some(a) => {
            let o = a.octets();
            std::array::from_fn(|i| {
                u32::from_ne_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
        None => [0; 4],
    };
    let mut ebpf = EbpfLoader::new()
        .set_global("nic_ifindex", &r.nic_ifindex, true)
        .set_global("primary_ifindex", &r.primary_ifindex, true)
        .set_global("ctr_ip4", &ctr4, true)
        .set_global("ctr_ip6", &ctr6[..], true)
        .load(NETKIT.bytes)
        .map_err(|e| load_error(e.to_string()))?;
    for (name, ifindex, point) in [
        ("nk_peer_out", r.primary_ifindex, AttachPoint::NetkitPeer),
        ("nk_nic_in", r.nic_ifindex, AttachPoint::TcxIngress),
    ] {
        let prog: &mut SchedClassifier = ebpf
            .program_mut(name)
            .ok_or_else(|| load_error(format!("program {name} missing from the object")))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| load_error(e.to_string()))?;
        prog.load()
            .map_err(|e| load_error(format!("{name}: {e}")))?;
        let fd = prog.fd().map_err(|e| load_error(format!("{name}: {e}")))?;
        attach::attach(fd.as_fd(), ifindex, point).map_err(|source| BpfError::Mprog {
            program: name,
            point: point.name(),
            ifindex,
            source,
        })?;
    }
    // Dropping `ebpf` closes our descriptors; the attachments keep the programs.
    Ok(())
}

/// Detaches both programs (what a test does to show they matter); returns how many were attached.
pub fn detach(node: &Path, r: NetkitRedirect) -> Result<usize, BpfError> {
    netns::run_in(Some(node), move || -> Result<usize, BpfError> {
        let mut n = 0;
        for (name, ifindex, point) in [
            ("nk_peer_out", r.primary_ifindex, AttachPoint::NetkitPeer),
            ("nk_nic_in", r.nic_ifindex, AttachPoint::TcxIngress),
        ] {
            n += attach::detach_all(ifindex, point).map_err(|source| BpfError::Mprog {
                program: name,
                point: point.name(),
                ifindex,
                source,
            })?;
        }
        Ok(n)
    })
}

/// How many programs are attached where `r`'s go (0, 1 or 2 when only ours are there).
pub fn attached(node: &Path, r: NetkitRedirect) -> Result<usize, BpfError> {
    netns::run_in(Some(node), move || -> Result<usize, BpfError> {
        let mut n = 0;
        for (name, ifindex, point) in [
            ("nk_peer_out", r.primary_ifindex, AttachPoint::NetkitPeer),
            ("nk_nic_in", r.nic_ifindex, AttachPoint::TcxIngress),
        ] {
            n += attach::query(ifindex, point)
                .map_err(|source| BpfError::Mprog {
                    program: name,
                    point: point.name(),
                    ifindex,
                    source,
                })?
                .len();
        }
        Ok(n)
    })
}

fn load_error(reason: String) -> BpfError {
    BpfError::Load {
        object: NETKIT.name,
        reason,
    }
}
