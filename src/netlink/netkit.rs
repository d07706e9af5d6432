//! netkit pairs (Linux 6.7+, `CONFIG_NETKIT`): a primary device in this socket's namespace and
//! its peer placed directly into another namespace, in L3 mode (no ARP, no MAC of its own), as
//! Cilium creates them for pods.
//!
//! The request (RTM_NEWLINK) is `IFLA_IFNAME`, `IFLA_LINKINFO { IFLA_INFO_KIND "netkit",
//! IFLA_INFO_DATA { IFLA_NETKIT_PEER_INFO (an ifinfomsg + IFLA_IFNAME + IFLA_NET_NS_FD),
//! IFLA_NETKIT_MODE = NETKIT_L3, IFLA_NETKIT_POLICY, IFLA_NETKIT_PEER_POLICY } }`
//! (include/uapi/linux/if_link.h). [`netkit_message`] builds it apart from sending, so its bytes
//! are unit-tested below.
//!
//! The policy is what a device does with a packet it transmits when no BPF program is attached
//! to it (or the programs return "next"): `Forward` hands it to the other device through
//! `__netif_rx` (the per-CPU backlog, as veth does), `Blackhole` drops it.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoNetkit, LinkAttribute, LinkInfo, LinkMessage, NetkitMode,
    NetkitPolicy as NlPolicy,
};

use super::link::new_link_message;
use super::{Netlink, NetlinkError, Result};

/// What a netkit device does with what it transmits when no BPF program decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NetkitPolicy {
    /// NETKIT_PASS: to the peer, through the backlog.
    Forward,
    /// NETKIT_DROP: dropped (Cilium's peer policy: nothing leaves a pod without its program).
    Blackhole,
}

impl NetkitPolicy {
    fn nl(self) -> NlPolicy {
        match self {
            NetkitPolicy::Forward => NlPolicy::Pass,
            NetkitPolicy::Blackhole => NlPolicy::Drop,
        }
    }
}

/// One netkit pair to create: primary `name` here, `peer` in `peer_netns` (or here).
#[derive(Debug, Clone, Copy)]
pub struct NetkitPair<'a> {
    pub name: &'a str,
    pub peer: &'a str,
    pub peer_netns: Option<BorrowedFd<'a>>,
    /// The primary's policy (traffic from this namespace to the peer).
    pub policy: NetkitPolicy,
    /// The peer's policy (traffic from the peer's namespace out).
    pub peer_policy: NetkitPolicy,
}

/// The RTM_NEWLINK body that creates `pair` in L3 mode.
pub(crate) fn netkit_message(pair: &NetkitPair<'_>) -> LinkMessage {
    let mut peer = LinkMessage::default();
    peer.attributes
        .push(LinkAttribute::IfName(pair.peer.to_string()));
    if let Some(fd) = pair.peer_netns {
        peer.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
    }
    let info = vec![
        LinkInfo::Kind(InfoKind::Netkit),
        LinkInfo::Data(InfoData::Netkit(vec![
            InfoNetkit::Peer(peer),
            InfoNetkit::Mode(NetkitMode::L3),
            InfoNetkit::Policy(pair.policy.nl()),
            InfoNetkit::PeerPolicy(pair.peer_policy.nl()),
        ])),
    ];
    new_link_message(pair.name, None, info)
}

impl Netlink {
    /// Creates the netkit pair. A kernel without netkit gives [`NetlinkError::NoNetkit`].
    pub fn create_netkit(&mut self, pair: &NetkitPair<'_>) -> Result<()> {
        let (name, peer) = (pair.name, pair.peer);
        self.new_link(netkit_message(pair), || {
            format!("creating netkit pair {name} <-> {peer}")
        })
        .map_err(|e| match e.errno() {
            Some(libc::EOPNOTSUPP) => NetlinkError::NoNetkit,
            _ => e,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    use netlink_packet_core::{Emitable, Parseable};

    /// One attribute as the kernel lays it out: u16 length (header + payload), u16 type,
    /// payload, zero padding to 4 bytes.
    fn nla(kind: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&kind.to_ne_bytes());
        v.extend_from_slice(payload);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    /// struct ifinfomsg with everything zero (family, type, index, flags, change).
    const IFINFOMSG: [u8; 16] = [0; 16];

    fn emit(msg: &LinkMessage) -> Vec<u8> {
        let mut out = vec![0u8; msg.buffer_len()];
        msg.emit(&mut out);
        out
    }

    // include/uapi/linux/if_link.h
    const IFLA_IFNAME: u16 = 3;
    const IFLA_LINKINFO: u16 = 18;
    const IFLA_NET_NS_FD: u16 = 28;
    const IFLA_INFO_KIND: u16 = 1;
    const IFLA_INFO_DATA: u16 = 2;
    const IFLA_NETKIT_PEER_INFO: u16 = 1;
    const IFLA_NETKIT_POLICY: u16 = 3;
    const IFLA_NETKIT_PEER_POLICY: u16 = 4;
    const IFLA_NETKIT_MODE: u16 = 5;
    const NETKIT_L3: u32 = 1;
    const NETKIT_PASS: u32 = 0;
    const NETKIT_DROP: u32 = 2;

    fn expected(peer_fd: Option<i32>, policy: u32, peer_policy: u32) -> Vec<u8> {
        let mut peer = IFINFOMSG.to_vec();
        peer.extend(nla(IFLA_IFNAME, b"eth0\0"));
        if let Some(fd) = peer_fd {
            peer.extend(nla(IFLA_NET_NS_FD, &(fd as u32).to_ne_bytes()));
        }
        let mut data = nla(IFLA_NETKIT_PEER_INFO, &peer);
        data.extend(nla(IFLA_NETKIT_MODE, &NETKIT_L3.to_ne_bytes()));
        data.extend(nla(IFLA_NETKIT_POLICY, &policy.to_ne_bytes()));
        data.extend(nla(IFLA_NETKIT_PEER_POLICY, &peer_policy.to_ne_bytes()));
        let mut info = nla(IFLA_INFO_KIND, b"netkit\0");
        info.extend(nla(IFLA_INFO_DATA, &data));
        let mut msg = IFINFOMSG.to_vec();
        msg.extend(nla(IFLA_IFNAME, b"nk-pod\0"));
        msg.extend(nla(IFLA_LINKINFO, &info));
        msg
    }

    /// Clears the nested-attribute flag (NLA_F_NESTED, the type's top bit; little-endian here) at
    /// `offsets`, as the kernel's nla_type() ignores it.
    fn without_nested_flag(mut bytes: Vec<u8>, offsets: &[usize]) -> Vec<u8> {
        for &o in offsets {
            bytes[o + 3] &= 0x7f;
        }
        bytes
    }

    #[test]
    fn netkit_l3_pair_bytes_with_peer_in_another_namespace() {
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.as_fd();
        let pair = NetkitPair {
            name: "nk-pod",
            peer: "eth0",
            peer_netns: Some(fd),
            policy: NetkitPolicy::Forward,
            peer_policy: NetkitPolicy::Blackhole,
        };
        let got = emit(&netkit_message(&pair));
        let want = expected(Some(file.as_raw_fd()), NETKIT_PASS, NETKIT_DROP);
        assert_eq!(got.len(), want.len(), "{got:02x?}\n{want:02x?}");
        // The library may mark nested attributes (NLA_F_NESTED, bit 15 of the type); the kernel
        // ignores the bit. Compare the rest byte for byte.
        let nested = nested_offsets(&got);
        assert_eq!(
            without_nested_flag(got.clone(), &nested),
            without_nested_flag(want, &nested),
            "{got:02x?}"
        );
    }

    #[test]
    fn netkit_pair_here_has_no_namespace_fd_and_round_trips() {
        let pair = NetkitPair {
            name: "nk-pod",
            peer: "eth0",
            peer_netns: None,
            policy: NetkitPolicy::Forward,
            peer_policy: NetkitPolicy::Forward,
        };
        let msg = netkit_message(&pair);
        let got = emit(&msg);
        let want = expected(None, NETKIT_PASS, NETKIT_PASS);
        let nested = nested_offsets(&got);
        assert_eq!(
            without_nested_flag(got.clone(), &nested),
            without_nested_flag(want, &nested)
        );
        let parsed = LinkMessage::parse(got.as_slice()).unwrap();
        assert_eq!(parsed, msg);
    }

    /// Offsets of the attribute headers of IFLA_LINKINFO, IFLA_INFO_DATA and
    /// IFLA_NETKIT_PEER_INFO in an emitted message (found by walking it).
    fn nested_offsets(b: &[u8]) -> Vec<usize> {
        let len = |o: usize| u16::from_ne_bytes([b[o], b[o + 1]]) as usize;
        let kind = |o: usize| u16::from_ne_bytes([b[o + 2], b[o + 3]]) & 0x7fff;
        let align = |n: usize| (n + 3) & !3;
        let find = |start: usize, end: usize, k: u16| {
            let mut o = start;
            while o < end {
                if kind(o) == k {
                    return o;
                }
                o += align(len(o));
            }
            panic!("attribute {k} not found in {start}..{end}");
        };
        let linkinfo = find(16, b.len(), IFLA_LINKINFO);
        let data = find(linkinfo + 4, linkinfo + len(linkinfo), IFLA_INFO_DATA);
        let peer = find(data + 4, data + len(data), IFLA_NETKIT_PEER_INFO);
        vec![linkinfo, data, peer]
    }
}
