//! ipvlan children (L2, L3, L3S) of a parent interface.

use std::os::fd::BorrowedFd;

use netlink_packet_route::link::{
    InfoData, InfoIpVlan, InfoKind, IpVlanMode, LinkAttribute, LinkInfo,
};
use serde::{Deserialize, Serialize};

use super::link::new_link_message;
use super::{Netlink, NetlinkError, Result};

/// The ipvlan operating mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IpvlanMode {
    L2,
    L3,
    L3s,
}

impl Netlink {
    /// Creates ipvlan `name` in `mode` on parent `parent` (an index here), placed directly into
    /// the namespace open as `netns`. A kernel without ipvlan gives [`NetlinkError::NoIpvlan`].
    pub fn create_ipvlan(
        &mut self,
        name: &str,
        parent: u32,
        mode: IpvlanMode,
        netns: Option<BorrowedFd<'_>>,
    ) -> Result<()> {
        let m = match mode {
            IpvlanMode::L2 => IpVlanMode::L2,
            IpvlanMode::L3 => IpVlanMode::L3,
            IpvlanMode::L3s => IpVlanMode::L3S,
        };
        let info = vec![
            LinkInfo::Kind(InfoKind::IpVlan),
            LinkInfo::Data(InfoData::IpVlan(vec![InfoIpVlan::Mode(m)])),
        ];
        let mut msg = new_link_message(name, netns, info);
        msg.attributes.push(LinkAttribute::Link(parent));
        self.new_link(msg, || {
            format!("creating ipvlan {name} on interface {parent}")
        })
        .map_err(|e| match e.errno() {
            Some(libc::EOPNOTSUPP) => NetlinkError::NoIpvlan,
            Some(libc::EBUSY) => NetlinkError::ParentBusy(parent),
            _ => e,
        })
    }
}
