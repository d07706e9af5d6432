//! veth pairs, created directly with each end in its namespace (never in the root namespace).

use std::os::fd::BorrowedFd;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoVeth, LinkAttribute, LinkInfo, LinkMessage,
};

use super::link::new_link_message;
use super::{Netlink, Result};

impl Netlink {
    /// Creates veth `name` in this socket's namespace with its peer `peer` placed directly into
    /// the namespace open as `peer_netns` (or here, when `None`).
    pub fn create_veth(
        &mut self,
        name: &str,
        peer: &str,
        peer_netns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let mut peer_msg = LinkMessage::default();
        peer_msg
            .attributes
            .push(LinkAttribute::IfName(peer.to_string()));
        if let Some(fd) = peer_netns {
            peer_msg
                .attributes
                .push(LinkAttribute::NetNsFd(std::os::fd::AsRawFd::as_raw_fd(&fd)));
        }
        let info = vec![
            LinkInfo::Kind(InfoKind::Veth),
            LinkInfo::Data(InfoData::Veth(InfoVeth::Peer(peer_msg))),
        ];
        self.new_link(new_link_message(name, None, info), || {
            format!("creating veth pair {name} <-> {peer}")
        })
    }
}
