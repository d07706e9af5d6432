//! `nslat attach` / `detach`: put a mode's interface into a running container's namespace (the
//! real-world fix), recording what was done so `detach` undoes exactly that.
//!
//! Records live in `/run/nslat/attach/NSINO-IFNAME.json` and are written before the link is made.
//! The netlink operations themselves (links, addresses, routes with a preferred source) live in
//! [`crate::netlink`]; this module decides what to make and records it.

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};

use crate::cidr::parse_service_cidr;
use crate::cidr::CidrError;
use crate::netlink::{sysctl, IpvlanMode, Netlink, NetlinkError, Route};
use crate::netns::{self, NetnsError};

pub mod temp;
pub use temp::{attach_temp, NicSpec, TempAttached};

/// Where attach records live.
pub const ATTACH_DIR: &str = "/run/nslat/attach";

/// Errors from attach/detach. Every validation error comes before any change.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("attach/detach needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); run it with sudo")]
    NotRoot,
    #[error("unknown attach mode '{0}': use macvlan, ipvlan-l2, ipvlan-l3 or bridge")]
    UnknownMode(String),
    #[error(transparent)]
    Cidr(#[from] CidrError),
    #[error("--addr {addr}/{prefix}: {count} attached modes take {count} addresses counting up from it, and they leave its network: give a lower first address")]
    AddrRange {
        addr: IpAddr,
        prefix: u8,
        count: usize,
    },
    #[error("bad gateway '{0}': give an IP address of the same family as --addr")]
    BadGateway(String),
    #[error("process {0} not found (is the container running? `docker inspect -f '{{{{.State.Pid}}}}' NAME`)")]
    NoSuchPid(u32),
    #[error(
        "{0} is this process's own network namespace: give the container's (--pid or --netns)"
    )]
    OwnNamespace(PathBuf),
    #[error("parent interface '{0}' not found: give an existing interface with --parent (see `ip link`)")]
    NoParent(String),
    #[error("parent interface '{0}' {1}")]
    BadParent(String, &'static str),
    #[error("invalid interface name '{0}': 1 to 15 characters, no '/', ':' or spaces")]
    BadIfname(String),
    #[error("interface '{0}' already exists in the target namespace: pick another with --ifname")]
    IfnameTaken(String),
    #[error("bad --host-shim address '{0}': give an IP address of the same family as --addr, for the host's side")]
    BadShim(String),
    #[error("--host-shim applies to macvlan and ipvlan modes only (a bridge already reaches its containers)")]
    ShimNeedsMacvlanOrIpvlan,
    #[error("--service-cidr {cidr} contains the container's own address {addr}: give the cluster's Service network, which the container's address is not in")]
    ServiceCidrHasAddr { cidr: String, addr: Ipv4Addr },
    #[error("--service-veth applies to macvlan and ipvlan modes only (a bridge already passes the node)")]
    ServiceVethNeedsMacvlanOrIpvlan,
    #[error("--service-veth is IPv4 only: give an IPv4 --addr")]
    ServiceVethNeedsIpv4,
    #[error("--service-veth already routes the node to the container: drop --host-shim")]
    ServiceVethWithShim,
    #[error("parent interface '{0}' has no IPv4 address (needed as the node's address for --service-veth): add one, or attach without --service-veth")]
    ParentNoIpv4(String),
    #[error(
        "nothing attached by nslat to {0}: nothing to detach (check --pid/--netns and --ifname)"
    )]
    NothingAttached(PathBuf),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("attach record {0}: {1}")]
    Record(PathBuf, String),
}

/// The modes `attach` can put into a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttachMode {
    Macvlan,
    IpvlanL2,
    IpvlanL3,
    Bridge,
}

impl AttachMode {
    /// The name users type and read (`--mode`): macvlan, ipvlan-l2, ipvlan-l3, bridge.
    pub fn name(self) -> &'static str {
        match self {
            AttachMode::Macvlan => "macvlan",
            AttachMode::IpvlanL2 => "ipvlan-l2",
            AttachMode::IpvlanL3 => "ipvlan-l3",
            AttachMode::Bridge => "bridge",
        }
    }
}

impl std::fmt::Display for AttachMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for AttachMode {
    type Err = AttachError;
    fn from_str(s: &str) -> Result<Self, AttachError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "macvlan" => Ok(AttachMode::Macvlan),
            "ipvlan-l2" | "ipvlan" => Ok(AttachMode::IpvlanL2),
            "ipvlan-l3" => Ok(AttachMode::IpvlanL3),
            "bridge" => Ok(AttachMode::Bridge),
            _ => Err(AttachError::UnknownMode(s.to_string())),
        }
    }
}

/// Which container: a process id or a namespace path/name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Pid(u32),
    Netns(String),
}

impl Target {
    /// The namespace path, checked to be a network namespace.
    pub fn resolve(&self) -> Result<PathBuf, AttachError> {
        match self {
            Target::Pid(pid) => {
                let p = format!("/proc/{pid}/ns/net");
                if !Path::new(&p).exists() {
                    return Err(AttachError::NoSuchPid(*pid));
                }
                Ok(netns::resolve(&p)?)
            }
            Target::Netns(s) => Ok(netns::resolve(s)?),
        }
    }
}

/// What to attach.
#[derive(Debug, Clone)]
pub struct AttachSpec {
    pub target: Target,
    pub mode: AttachMode,
    /// The parent interface (macvlan/ipvlan: the NIC; bridge: the bridge).
    pub parent: String,
    /// The namespace the parent lives in (default: this process's).
    pub parent_netns: Option<String>,
    pub addr: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// The interface name inside the container.
    pub ifname: String,
    /// `--host-shim ADDR`: also give the parent's namespace a macvlan/ipvlan of its own on the
    /// same parent, with this address (/32 or /128) and a host route to the container, so the
    /// host reaches the container (macvlan/ipvlan modes only).
    pub host_shim: Option<IpAddr>,
    /// `--service-veth`: also a veth pair between the container and the parent's namespace that
    /// carries this IPv4 network (the cluster's Service CIDR) and traffic to the node (the
    /// hybrid: data path on macvlan/ipvlan, Service traffic through the node's netfilter hooks).
    pub service_cidr: Option<(Ipv4Addr, u8)>,
}

/// The hybrid's veth, as recorded: names on both sides, the routes made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceVeth {
    /// The node-side end, in the parent's namespace.
    pub node_link: String,
    /// The container-side end.
    pub container_link: String,
    /// The Service network routed through the veth.
    pub cidr: Ipv4Addr,
    pub prefix: u8,
    /// The node's address (the parent interface's first IPv4 address): the container's gateway
    /// for the Service network, and reached through the veth too.
    pub node_ip: Ipv4Addr,
}

/// What `attach` did, as recorded for `detach`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRecord {
    pub netns: PathBuf,
    pub netns_ino: u64,
    pub ifname: String,
    pub mode: AttachMode,
    pub parent: String,
    pub parent_netns: Option<PathBuf>,
    /// The node-side veth (bridge mode).
    pub host_link: Option<String>,
    /// The host shim made in the parent's namespace, and its address.
    #[serde(default)]
    pub shim_link: Option<String>,
    #[serde(default)]
    pub shim_addr: Option<IpAddr>,
    /// The name a macvlan/ipvlan has until it is renamed in the container.
    #[serde(default)]
    pub tmp_ifname: String,
    pub addr: IpAddr,
    pub prefix: u8,
    pub gateway: Option<IpAddr>,
    /// The hybrid's veth (`--service-veth`).
    #[serde(default)]
    pub service_veth: Option<ServiceVeth>,
    /// Things the user should know (not recorded), e.g. forwarding off in the parent namespace.
    #[serde(skip)]
    pub warnings: Vec<String>,
}

fn validate_ifname(n: &str) -> Result<(), AttachError> {
    let ok = !n.is_empty()
        && n.len() <= 15
        && n.chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if ok {
        Ok(())
    } else {
        Err(AttachError::BadIfname(n.to_string()))
    }
}

fn ino(path: &Path) -> Result<u64, AttachError> {
    fs::metadata(path)
        .map(|m| m.ino())
        .map_err(|source| AttachError::Io {
            what: format!("reading {}", path.display()),
            source,
        })
}

fn record_path(ino: u64, ifname: &str) -> PathBuf {
    Path::new(ATTACH_DIR).join(format!("{ino}-{ifname}.json"))
}

fn open_socket(netns: Option<&Path>) -> Result<Netlink, AttachError> {
    Ok(match netns {
        Some(p) => Netlink::open_in(p)?,
        None => Netlink::open()?,
    })
}

/// Attaches `spec.mode` to the container. Everything is validated first; on a failure after the
/// first change, what was made is removed again.
pub fn attach(spec: &AttachSpec) -> Result<AttachRecord, AttachError> {
    if !netns::is_root() {
        return Err(AttachError::NotRoot);
    }
    validate_ifname(&spec.ifname)?;
    let max = if spec.addr.is_ipv4() { 32 } else { 128 };
    if spec.prefix > max {
        return Err(CidrError::Bad(format!("{}/{}", spec.addr, spec.prefix)).into());
    }
    if let Some(gw) = spec.gateway {
        if gw.is_ipv4() != spec.addr.is_ipv4() || gw.is_unspecified() {
            return Err(AttachError::BadGateway(gw.to_string()));
        }
    }
    if let Some(shim) = spec.host_shim {
        if spec.mode == AttachMode::Bridge {
            return Err(AttachError::ShimNeedsMacvlanOrIpvlan);
        }
        if shim.is_ipv4() != spec.addr.is_ipv4() || shim.is_unspecified() {
            return Err(AttachError::BadShim(shim.to_string()));
        }
    }
    if let Some((net, len)) = spec.service_cidr {
        if spec.mode == AttachMode::Bridge {
            return Err(AttachError::ServiceVethNeedsMacvlanOrIpvlan);
        }
        if spec.host_shim.is_some() {
            return Err(AttachError::ServiceVethWithShim);
        }
        let IpAddr::V4(addr) = spec.addr else {
            return Err(AttachError::ServiceVethNeedsIpv4);
        };
        parse_service_cidr(&format!("{net}/{len}"))?;
        if Ipv4Net::new(net, len).is_ok_and(|n| n.contains(&addr)) {
            return Err(AttachError::ServiceCidrHasAddr {
                cidr: format!("{net}/{len}"),
                addr,
            });
        }
    }
    let target = spec.target.resolve()?;
    let target_ino = ino(&target)?;
    let parent_netns = spec
        .parent_netns
        .as_deref()
        .map(netns::resolve)
        .transpose()?;
    let parent_ino = match &parent_netns {
        Some(p) => ino(p)?,
        None => ino(Path::new("/proc/self/ns/net"))?,
    };
    if target_ino == parent_ino {
        return Err(AttachError::OwnNamespace(target));
    }
    let mut parent_nl = open_socket(parent_netns.as_deref())?;
    let parent_index = match parent_nl.link_index(&spec.parent) {
        Ok(i) => i,
        Err(NetlinkError::NoSuchLink(_)) => return Err(AttachError::NoParent(spec.parent.clone())),
        Err(e) => return Err(e.into()),
    };
    // A parent the kernel would refuse fails here, before anything is created.
    let (ethernet, kind) = parent_nl.link_kind(parent_index)?;
    match spec.mode {
        AttachMode::Bridge if kind.as_deref() != Some("bridge") => {
            return Err(AttachError::BadParent(
                spec.parent.clone(),
                "is not a bridge: --mode bridge needs a bridge as --parent (e.g. docker0)",
            ))
        }
        AttachMode::Bridge => {}
        _ if !ethernet => {
            return Err(AttachError::BadParent(
                spec.parent.clone(),
                "is not an Ethernet interface: give the NIC (e.g. eth0) as --parent",
            ))
        }
        _ => {}
    }
    let mut target_nl = Netlink::open_in(&target)?;
    if target_nl.link_exists(&spec.ifname)? {
        return Err(AttachError::IfnameTaken(spec.ifname.clone()));
    }
    let mut warnings = Vec::new();
    let service_veth = match spec.service_cidr {
        None => None,
        Some((cidr, prefix)) => {
            let node_ip = parent_nl
                .ipv4_addresses(parent_index)?
                .into_iter()
                .next()
                .ok_or_else(|| AttachError::ParentNoIpv4(spec.parent.clone()))?;
            let sv = ServiceVeth {
                node_link: format!("nsv{:x}", target_ino % 0xfff_ffff),
                container_link: service_ifname(&spec.ifname),
                cidr,
                prefix,
                node_ip,
            };
            if target_nl.link_exists(&sv.container_link)? {
                return Err(AttachError::IfnameTaken(sv.container_link.clone()));
            }
            if parent_nl.link_exists(&sv.node_link)? {
                return Err(AttachError::IfnameTaken(sv.node_link.clone()));
            }
            let forward = match &parent_netns {
                Some(p) => sysctl::read_in(p, "net.ipv4.ip_forward")?,
                None => fs::read_to_string(sysctl::key_path("net.ipv4.ip_forward"))
                    .map(|s| s.trim().to_string())
                    .map_err(|source| AttachError::Io {
                        what: "reading net.ipv4.ip_forward".into(),
                        source,
                    })?,
            };
            if forward == "0" {
                warnings.push(
                    "net.ipv4.ip_forward is 0 in the parent's namespace: the node will not \
                     forward DNATed Service traffic from the container (a Kubernetes node has it \
                     on; nslat leaves it as it is)"
                        .to_string(),
                );
            }
            Some(sv)
        }
    };
    let host_link =
        (spec.mode == AttachMode::Bridge).then(|| format!("nsl{:x}", target_ino % 0xfff_ffff));
    let shim_link = spec
        .host_shim
        .map(|_| format!("nss{:x}", target_ino % 0xfff_ffff));
    for h in host_link.iter().chain(shim_link.iter()) {
        if parent_nl.link_exists(h)? {
            return Err(AttachError::IfnameTaken(h.clone()));
        }
    }
    let record = AttachRecord {
        netns: target.clone(),
        netns_ino: target_ino,
        ifname: spec.ifname.clone(),
        mode: spec.mode,
        parent: spec.parent.clone(),
        parent_netns,
        host_link,
        shim_link,
        shim_addr: spec.host_shim,
        tmp_ifname: format!("nst{:x}", target_ino % 0xfff_ffff),
        addr: spec.addr,
        prefix: spec.prefix,
        gateway: spec.gateway,
        service_veth,
        warnings,
    };
    // Record first, then change.
    let path = record_path(target_ino, &spec.ifname);
    let io = |what: String| move |source| AttachError::Io { what, source };
    fs::create_dir_all(ATTACH_DIR).map_err(io(format!("creating {ATTACH_DIR}")))?;
    let json = serde_json::to_vec_pretty(&record)
        .map_err(|e| AttachError::Record(path.clone(), e.to_string()))?;
    fs::write(&path, json).map_err(io(format!("writing {}", path.display())))?;

    let made = apply(spec, &record, &mut parent_nl, parent_index, &mut target_nl);
    if let Err(e) = made {
        let _ = undo(&record);
        let _ = fs::remove_file(&path);
        return Err(e);
    }
    Ok(record)
}

fn apply(
    spec: &AttachSpec,
    record: &AttachRecord,
    parent_nl: &mut Netlink,
    parent_index: u32,
    target_nl: &mut Netlink,
) -> Result<(), AttachError> {
    let fd = fs::File::open(&record.netns).map_err(|source| AttachError::Io {
        what: format!("opening {}", record.netns.display()),
        source,
    })?;
    // macvlan/ipvlan are made under a temporary name and renamed inside the container: older
    // kernels also check the name in the parent's namespace (where e.g. eth0 exists).
    let tmp = &record.tmp_ifname;
    match spec.mode {
        AttachMode::Macvlan => {
            parent_nl.create_macvlan(tmp, parent_index, Some(fd.as_fd()))?;
            let i = target_nl.link_index(tmp)?;
            target_nl.rename(i, &spec.ifname)?;
        }
        AttachMode::IpvlanL2 | AttachMode::IpvlanL3 => {
            let m = if spec.mode == AttachMode::IpvlanL2 {
                IpvlanMode::L2
            } else {
                IpvlanMode::L3
            };
            parent_nl.create_ipvlan(tmp, parent_index, m, Some(fd.as_fd()))?;
            let i = target_nl.link_index(tmp)?;
            target_nl.rename(i, &spec.ifname)?;
        }
        AttachMode::Bridge => {
            let host = record.host_link.as_deref().expect("bridge has a host link");
            parent_nl.create_veth(host, &spec.ifname, Some(fd.as_fd()))?;
            let hi = parent_nl.link_index(host)?;
            parent_nl.set_master(hi, parent_index)?;
            parent_nl.set_up(hi, true)?;
        }
    }
    let ci = target_nl.link_index(&spec.ifname)?;
    target_nl.add_address(ci, spec.addr, spec.prefix)?;
    target_nl.set_up(ci, true)?;
    if let Some(gw) = spec.gateway {
        let any: IpAddr = if gw.is_ipv4() {
            std::net::Ipv4Addr::UNSPECIFIED.into()
        } else {
            std::net::Ipv6Addr::UNSPECIFIED.into()
        };
        target_nl.add_route(&Route::via(any, 0, gw))?;
    }
    if let (Some(shim), Some(shim_addr)) = (&record.shim_link, record.shim_addr) {
        match spec.mode {
            AttachMode::Macvlan => parent_nl.create_macvlan(shim, parent_index, None)?,
            AttachMode::IpvlanL2 => {
                parent_nl.create_ipvlan(shim, parent_index, IpvlanMode::L2, None)?
            }
            AttachMode::IpvlanL3 => {
                parent_nl.create_ipvlan(shim, parent_index, IpvlanMode::L3, None)?
            }
            AttachMode::Bridge => return Err(AttachError::ShimNeedsMacvlanOrIpvlan),
        }
        let si = parent_nl.link_index(shim)?;
        let host_len = if shim_addr.is_ipv4() { 32 } else { 128 };
        parent_nl.add_address(si, shim_addr, host_len)?;
        parent_nl.set_up(si, true)?;
        parent_nl.add_route(&Route::dev(spec.addr, host_len, si))?;
    }
    if let (Some(sv), IpAddr::V4(addr)) = (&record.service_veth, spec.addr) {
        // Made in the parent's namespace with the peer placed directly into the container.
        parent_nl.create_veth(&sv.node_link, &sv.container_link, Some(fd.as_fd()))?;
        let ni = parent_nl.link_index(&sv.node_link)?;
        parent_nl.set_up(ni, true)?;
        let vi = target_nl.link_index(&sv.container_link)?;
        target_nl.set_up(vi, true)?;
        // Unnumbered: the container keeps its one address as the source on both routes.
        target_nl.add_route(&Route::dev(sv.node_ip.into(), 32, vi).with_src(addr.into()))?;
        target_nl.add_route(
            &Route::onlink(sv.cidr.into(), sv.prefix, sv.node_ip.into(), vi).with_src(addr.into()),
        )?;
        parent_nl.add_route(&Route::dev(addr.into(), 32, ni))?;
    }
    Ok(())
}

/// The container-side name of the hybrid's veth: `svc-IFNAME` (cut to 15 characters).
fn service_ifname(ifname: &str) -> String {
    let mut n = format!("svc-{ifname}");
    n.truncate(15);
    n
}

/// Deletes the link `name` if it is there. A link that is missing, or that vanishes between
/// the lookup and the delete (a namespace being torn down by the kernel takes its veth peers
/// asynchronously: ENODEV), counts as done.
fn delete_if_present(nl: &mut Netlink, name: &str) -> Result<(), AttachError> {
    match nl.link_index(name) {
        Ok(i) => match nl.delete_link(i) {
            Ok(()) => Ok(()),
            Err(e) if e.errno() == Some(libc::ENODEV) => Ok(()),
            Err(e) => Err(e.into()),
        },
        Err(NetlinkError::NoSuchLink(_)) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Deletes the links a record describes (a missing link or namespace counts as done).
fn undo(record: &AttachRecord) -> Result<(), AttachError> {
    // A parent namespace that is gone took its links (and the veth pair) with it.
    let parent_gone = record.parent_netns.as_ref().is_some_and(|p| !p.exists());
    if let (Some(sv), IpAddr::V4(addr), false) = (&record.service_veth, record.addr, parent_gone) {
        // The node side first: its host route, then the pair (gone with the container too).
        let mut nl = open_socket(record.parent_netns.as_deref())?;
        match nl.link_index(&sv.node_link) {
            Ok(i) => {
                match nl.del_route(&Route::dev(addr.into(), 32, i)) {
                    Ok(()) => {}
                    Err(e) if matches!(e.errno(), Some(libc::ESRCH) | Some(libc::ENODEV)) => {}
                    Err(e) => return Err(e.into()),
                }
                delete_if_present(&mut nl, &sv.node_link)?;
            }
            Err(NetlinkError::NoSuchLink(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    if record.netns.exists() && ino(&record.netns).ok() == Some(record.netns_ino) {
        let mut nl = Netlink::open_in(&record.netns)?;
        let svc = record.service_veth.as_ref().map(|s| &s.container_link);
        for name in [&record.ifname, &record.tmp_ifname].into_iter().chain(svc) {
            if !name.is_empty() {
                delete_if_present(&mut nl, name)?;
            }
        }
    }
    for h in record.host_link.iter().chain(record.shim_link.iter()) {
        if parent_gone {
            break;
        }
        let mut nl = open_socket(record.parent_netns.as_deref())?;
        delete_if_present(&mut nl, h)?;
    }
    Ok(())
}

/// Undoes what `attach` did to the target (only the interface `ifname` when given).
pub fn detach(target: &Target, ifname: Option<&str>) -> Result<Vec<AttachRecord>, AttachError> {
    if !netns::is_root() {
        return Err(AttachError::NotRoot);
    }
    let path = target.resolve()?;
    let target_ino = ino(&path)?;
    let mut done = Vec::new();
    let entries = fs::read_dir(ATTACH_DIR).into_iter().flatten().flatten();
    for e in entries {
        let p = e.path();
        let Ok(data) = fs::read(&p) else { continue };
        let Ok(rec) = serde_json::from_slice::<AttachRecord>(&data) else {
            continue;
        };
        if rec.netns_ino != target_ino || ifname.is_some_and(|n| n != rec.ifname) {
            continue;
        }
        undo(&rec)?;
        fs::remove_file(&p).map_err(|source| AttachError::Io {
            what: format!("removing {}", p.display()),
            source,
        })?;
        done.push(rec);
    }
    if done.is_empty() {
        return Err(AttachError::NothingAttached(path));
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse() {
        assert_eq!(
            "macvlan".parse::<AttachMode>().unwrap(),
            AttachMode::Macvlan
        );
        assert_eq!(
            "ipvlan-l3".parse::<AttachMode>().unwrap(),
            AttachMode::IpvlanL3
        );
        assert!("vxlan".parse::<AttachMode>().is_err());
    }

    #[test]
    fn service_ifname_fits() {
        assert_eq!(service_ifname("nslat0"), "svc-nslat0");
        assert_eq!(service_ifname("a-long-name-xyz").len(), 15);
    }

    #[test]
    fn old_records_without_service_veth_load() {
        let rec = AttachRecord {
            netns: "/run/netns/x".into(),
            netns_ino: 7,
            ifname: "eth0".into(),
            mode: AttachMode::Macvlan,
            parent: "eth0".into(),
            parent_netns: None,
            host_link: None,
            shim_link: None,
            shim_addr: None,
            tmp_ifname: "nst7".into(),
            addr: "198.18.0.60".parse().unwrap(),
            prefix: 24,
            gateway: None,
            service_veth: Some(ServiceVeth {
                node_link: "nsv7".into(),
                container_link: "svc-eth0".into(),
                cidr: Ipv4Addr::new(198, 19, 0, 0),
                prefix: 16,
                node_ip: Ipv4Addr::new(198, 18, 0, 1),
            }),
            warnings: vec!["not recorded".into()],
        };
        let json = serde_json::to_string(&rec).unwrap();
        let back: AttachRecord = serde_json::from_str(&json).unwrap();
        assert_eq!(back.service_veth, rec.service_veth);
        assert!(back.warnings.is_empty());
        let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
        v.as_object_mut().unwrap().remove("service_veth");
        let old: AttachRecord = serde_json::from_value(v).unwrap();
        assert_eq!(old.service_veth, None);
    }

    #[test]
    fn ifnames_are_checked() {
        assert!(validate_ifname("eth1").is_ok());
        assert!(validate_ifname("a-very-long-name-x").is_err());
        assert!(validate_ifname("a/b").is_err());
        assert!(validate_ifname("").is_err());
    }
}
