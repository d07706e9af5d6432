//! macvlan children (bridge mode) of a parent interface.

use std::os::fd::BorrowedFd;

use netlink_packet_route::link::{
    InfoData, InfoKind, InfoMacVlan, LinkAttribute, LinkInfo, MacVlanMode,
};

use super::link::new_link_message;
use super::{Netlink, NetlinkError, Result};

impl Netlink {
    /// Creates bridge-mode macvlan `name` on parent `parent` (an index in this socket's namespace),
    /// placed directly into the namespace open as `netns` (or here, when `None`).
    pub fn create_macvlan(
        &mut self,
        name: &str,
        parent: u32,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let info = vec![
            LinkInfo::Kind(InfoKind::MacVlan),
            LinkInfo::Data(InfoData::MacVlan(vec![InfoMacVlan::Mode(
                MacVlanMode::Bridge,
            )])),
        ];
        let mut msg = new_link_message(name, netns, info);
        msg.attributes.push(LinkAttribute::Link(parent));
        self.new_link(msg, || {
            format!("creating macvlan {name} on interface {parent}")
        })
        .map_err(|e| match e.errno() {
            Some(libc::EBUSY) => NetlinkError::ParentBusy(parent),
            _ => e,
        })
    }
}
