//! Attaching BPF programs to devices with the bpf(2) commands of the kernel's multi-program
//! attach points (`bpf_mprog`: TCX ingress/egress since 6.6, netkit primary/peer since 6.7):
//! BPF_PROG_ATTACH, BPF_PROG_QUERY, BPF_PROG_GET_FD_BY_ID and BPF_PROG_DETACH, raw through
//! libc (aya 0.13 has no netkit attach; the tc programs of [`super`] use cls_bpf filters instead).
//!
//! A program attached this way (not through a BPF link) stays attached after the loading
//! process exits, until it is detached or its device is deleted: what a lab that outlives
//! `nslat lab up` needs, with no bpffs pin to clean up. Each call acts in the network namespace
//! of the calling thread (the kernel resolves `target_ifindex` there): call from a thread
//! inside the node (`netns::run_in`).

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

/// The attach points used here (enum bpf_attach_type, include/uapi/linux/bpf.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachPoint {
    /// A device's ingress, before the stack (TCX; runs ahead of any tc clsact filter).
    TcxIngress,
    /// A netkit primary's transmit (traffic from the primary's namespace to the peer's).
    NetkitPrimary,
    /// A netkit peer's transmit (the container's egress); attached through the primary.
    NetkitPeer,
}

impl AttachPoint {
    /// The kernel's number.
    pub const fn attach_type(self) -> u32 {
        match self {
            AttachPoint::TcxIngress => 46,
            AttachPoint::NetkitPrimary => 54,
            AttachPoint::NetkitPeer => 55,
        }
    }

    /// How it is named in messages.
    pub const fn name(self) -> &'static str {
        match self {
            AttachPoint::TcxIngress => "TCX ingress",
            AttachPoint::NetkitPrimary => "netkit primary",
            AttachPoint::NetkitPeer => "netkit peer",
        }
    }
}

const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_DETACH: libc::c_long = 9;
const BPF_PROG_GET_FD_BY_ID: libc::c_long = 13;
const BPF_PROG_QUERY: libc::c_long = 16;

/// `union bpf_attr` for BPF_PROG_ATTACH / BPF_PROG_DETACH.
#[repr(C)]
#[derive(Default)]
struct AttachAttr {
    target_ifindex: u32,
    attach_bpf_fd: u32,
    attach_type: u32,
    attach_flags: u32,
    replace_bpf_fd: u32,
    relative_fd: u32,
    expected_revision: u64,
}

/// `union bpf_attr` for BPF_PROG_QUERY.
#[repr(C)]
#[derive(Default)]
struct QueryAttr {
    target_ifindex: u32,
    attach_type: u32,
    query_flags: u32,
    attach_flags: u32,
    prog_ids: u64,
    prog_cnt: u32,
    _pad: u32,
    prog_attach_flags: u64,
    link_ids: u64,
    link_attach_flags: u64,
    revision: u64,
}

/// `union bpf_attr` for BPF_PROG_GET_FD_BY_ID.
#[repr(C)]
#[derive(Default)]
struct GetFdAttr {
    prog_id: u32,
    next_id: u32,
    open_flags: u32,
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> std::io::Result<libc::c_long> {
    // SAFETY: `attr` is a live, initialised #[repr(C)] prefix of union bpf_attr for `cmd`, of
    // the size passed; the kernel reads it and, for queries, writes where it points (prog_ids
    // points to a buffer that outlives the call).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            std::mem::size_of::<T>() as libc::c_uint,
        )
    };
    if r < 0 {
        Err(std::io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Appends `prog` to `point` of interface `ifindex` (for netkit points: the primary's index).
pub fn attach(prog: BorrowedFd<'_>, ifindex: u32, point: AttachPoint) -> std::io::Result<()> {
    let mut a = AttachAttr {
        target_ifindex: ifindex,
        attach_bpf_fd: prog.as_raw_fd() as u32,
        attach_type: point.attach_type(),
        ..Default::default()
    };
    bpf(BPF_PROG_ATTACH, &mut a).map(|_| ())
}

/// The ids of the programs attached at `point` of `ifindex`, in run order.
pub fn query(ifindex: u32, point: AttachPoint) -> std::io::Result<Vec<u32>> {
    let mut ids = [0u32; 64];
    let mut q = QueryAttr {
        target_ifindex: ifindex,
        attach_type: point.attach_type(),
        prog_ids: ids.as_mut_ptr() as u64,
        prog_cnt: ids.len() as u32,
        ..Default::default()
    };
    bpf(BPF_PROG_QUERY, &mut q)?;
    Ok(ids[..(q.prog_cnt as usize).min(ids.len())].to_vec())
}

/// Detaches every program attached at `point` of `ifindex`; returns how many there were.
pub fn detach_all(ifindex: u32, point: AttachPoint) -> std::io::Result<usize> {
    let ids = query(ifindex, point)?;
    for &id in &ids {
        let mut g = GetFdAttr {
            prog_id: id,
            ..Default::default()
        };
        let fd = bpf(BPF_PROG_GET_FD_BY_ID, &mut g)?;
        // SAFETY: the kernel just returned this new descriptor; we own it.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let mut a = AttachAttr {
            target_ifindex: ifindex,
            attach_bpf_fd: fd.as_raw_fd() as u32,
            attach_type: point.attach_type(),
            ..Default::default()
        };
        bpf(BPF_PROG_DETACH, &mut a)?;
    }
    Ok(ids.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attr_layouts_match_the_kernel() {
        // include/uapi/linux/bpf.h: the BPF_PROG_ATTACH struct ends with a u64 at offset 24,
        // BPF_PROG_QUERY's with `revision` at 56, BPF_PROG_GET_FD_BY_ID's open_flags at 8.
        assert_eq!(std::mem::size_of::<AttachAttr>(), 32);
        assert_eq!(std::mem::offset_of!(AttachAttr, expected_revision), 24);
        assert_eq!(std::mem::size_of::<QueryAttr>(), 64);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_ids), 16);
        assert_eq!(std::mem::offset_of!(QueryAttr, prog_cnt), 24);
        assert_eq!(std::mem::offset_of!(QueryAttr, revision), 56);
        assert_eq!(std::mem::size_of::<GetFdAttr>(), 12);
        assert_eq!(AttachPoint::NetkitPeer.attach_type(), 55);
        assert_eq!(AttachPoint::NetkitPrimary.attach_type(), 54);
        assert_eq!(AttachPoint::TcxIngress.attach_type(), 46);
    }
}
