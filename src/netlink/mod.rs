//! Our thin synchronous netlink socket over netlink-packet-route + netlink-sys (like netavark's):
//! every request carries `NLM_F_ACK`, we read until the ACK or the error, and kernel errnos become
//! typed errors. A [`Netlink`] socket is opened on a thread inside the target namespace
//! ([`Netlink::open_in`]), so every operation through it is scoped to that namespace, whichever
//! thread later uses it.
//!
//! One file per link kind (`veth`, `bridge`, `macvlan`, `ipvlan`, `netkit`), plus generic link operations
//! (`link`), addresses (`addr`), routes (`route`), neighbours (`neigh`) and per-namespace sysctls
//! (`sysctl`).

mod addr;
mod bridge;
mod ipvlan;
mod link;
mod macvlan;
mod neigh;
mod netkit;
mod route;
mod socket;
pub mod sysctl;
mod veth;
mod vxlan;

pub use ipvlan::IpvlanMode;
pub use netkit::{NetkitPair, NetkitPolicy};
pub use route::Route;
pub use socket::Netlink;
pub use vxlan::Vxlan;

use std::path::PathBuf;

/// Errors from netlink requests and namespace-scoped sysctls.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// The kernel refused a request; `errno` is the positive errno value.
    #[error("{what}: {}", describe_errno(*errno))]
    Kernel { what: String, errno: i32 },
    /// The kernel was built without ipvlan (or the module cannot be loaded).
    #[error("kernel has no ipvlan support (CONFIG_IPVLAN)")]
    NoIpvlan,
    /// The kernel was built without netkit (Linux 6.7+, CONFIG_NETKIT).
    #[error("kernel has no netkit support (Linux 6.7+ with CONFIG_NETKIT)")]
    NoNetkit,
    /// The parent already has children of the other kind (macvlan vs ipvlan).
    #[error("interface {0} already has macvlan or ipvlan children of the other kind (a parent takes one kind only): use another parent")]
    ParentBusy(u32),
    /// A link name was looked up and not found.
    #[error("no interface named '{0}' in this namespace")]
    NoSuchLink(String),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("decoding a netlink reply: {0}")]
    Decode(String),
    #[error("setting sysctl {path}")]
    Sysctl {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

impl NetlinkError {
    /// The errno of a kernel refusal, if this is one.
    pub fn errno(&self) -> Option<i32> {
        match self {
            NetlinkError::Kernel { errno, .. } => Some(*errno),
            _ => None,
        }
    }

    /// Whether the kernel said the object already exists (EEXIST).
    pub fn is_exists(&self) -> bool {
        self.errno() == Some(libc::EEXIST)
    }
}

fn describe_errno(errno: i32) -> String {
    match errno {
        libc::EEXIST => "already exists (File exists)".to_string(),
        libc::EPERM => "not permitted: run as root (CAP_NET_ADMIN)".to_string(),
        _ => std::io::Error::from_raw_os_error(errno).to_string(),
    }
}

pub(crate) type Result<T, E = NetlinkError> = std::result::Result<T, E>;
