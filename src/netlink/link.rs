//! Generic link operations: look up, set up/down, set master, rename, move to a namespace, delete.

use std::os::fd::{AsRawFd, BorrowedFd};

use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::RouteNetlinkMessage;

use super::{Netlink, NetlinkError, Result};

/// Where a new link goes: its name, and optionally another namespace (by fd) to create it in.
pub(crate) fn new_link_message(
    name: &str,
    netns: Option<BorrowedFd<'_>>,
    info: Vec<LinkInfo>,
) -> LinkMessage {
    let mut msg = LinkMessage::default();
    msg.attributes.push(LinkAttribute::IfName(name.to_string()));
    if let Some(fd) = netns {
        msg.attributes.push(LinkAttribute::NetNsFd(fd.as_raw_fd()));
    }
    msg.attributes.push(LinkAttribute::LinkInfo(info));
    msg
}

impl Netlink {
    /// Sends RTM_NEWLINK with create + exclusive semantics.
    pub(crate) fn new_link(
        &mut self,
        msg: LinkMessage,
        what: impl FnOnce() -> String,
    ) -> Result<()> {
        self.request(
            RouteNetlinkMessage::NewLink(msg),
            NLM_F_CREATE | NLM_F_EXCL,
            what,
        )?;
        Ok(())
    }

    /// The index of the interface called `name`.
    pub fn link_index(&mut self, name: &str) -> Result<u32> {
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        let replies = self
            .request(RouteNetlinkMessage::GetLink(msg), 0, || {
                format!("looking up interface {name}")
            })
            .map_err(|e| match e.errno() {
                Some(libc::ENODEV) => NetlinkError::NoSuchLink(name.to_string()),
                _ => e,
            })?;
        replies
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(m.header.index),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::NoSuchLink(name.to_string()))
    }

    /// Whether an interface called `name` exists in this namespace.
    pub fn link_exists(&mut self, name: &str) -> Result<bool> {
        match self.link_index(name) {
            Ok(_) => Ok(true),
            Err(NetlinkError::NoSuchLink(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The kernel's description of interface `index` (RTM_GETLINK).
    fn get_link(&mut self, index: u32) -> Result<LinkMessage> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        let replies = self.request(RouteNetlinkMessage::GetLink(msg), 0, || {
            format!("reading interface {index}")
        })?;
        replies
            .into_iter()
            .find_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => Some(m),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::Decode(format!("interface {index}: no reply")))
    }

    /// The hardware (MAC) address of interface `index`.
    pub fn link_mac(&mut self, index: u32) -> Result<[u8; 6]> {
        self.get_link(index)?
            .attributes
            .into_iter()
            .find_map(|a| match a {
                LinkAttribute::Address(mac) => <[u8; 6]>::try_from(mac.as_slice()).ok(),
                _ => None,
            })
            .ok_or_else(|| NetlinkError::Decode(format!("interface {index} has no MAC address")))
    }

    /// What interface `index` is: whether its link layer is Ethernet (macvlan/ipvlan parents must
    /// be), and its kind (`bridge`, `veth`, ...; `None` for a plain NIC).
    pub fn link_kind(&mut self, index: u32) -> Result<(bool, Option<String>)> {
        let m = self.get_link(index)?;
        let ethernet = m.header.link_layer_type == netlink_packet_route::link::LinkLayerType::Ether;
        let kind = m.attributes.iter().find_map(|a| match a {
            LinkAttribute::LinkInfo(infos) => infos.iter().find_map(|i| match i {
                LinkInfo::Kind(k) => Some(k.to_string()),
                _ => None,
            }),
            _ => None,
        });
        Ok((ethernet, kind))
    }

    /// Names of all interfaces in this namespace.
    pub fn link_names(&mut self) -> Result<Vec<String>> {
        let replies = self.request(
            RouteNetlinkMessage::GetLink(LinkMessage::default()),
            netlink_packet_core::NLM_F_DUMP,
            || "listing interfaces".to_string(),
        )?;
        Ok(replies
            .into_iter()
            .filter_map(|r| match r {
                RouteNetlinkMessage::NewLink(m) => m.attributes.into_iter().find_map(|a| match a {
                    LinkAttribute::IfName(n) => Some(n),
                    _ => None,
                }),
                _ => None,
            })
            .collect())
    }

    fn set_link(&mut self, msg: LinkMessage, what: impl FnOnce() -> String) -> Result<()> {
        self.request(RouteNetlinkMessage::SetLink(msg), 0, what)?;
        Ok(())
    }

    /// Brings interface `index` up (`up = true`) or down.
    pub fn set_up(&mut self, index: u32, up: bool) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.header.change_mask = LinkFlags::Up;
        if up {
            msg.header.flags = LinkFlags::Up;
        }
        self.set_link(msg, || {
            format!(
                "setting interface {index} {}",
                if up { "up" } else { "down" }
            )
        })
    }

    /// Enslaves interface `index` to `master` (e.g. a bridge).
    pub fn set_master(&mut self, index: u32, master: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::Controller(master));
        self.set_link(msg, || format!("attaching interface {index} to {master}"))
    }

    /// Renames interface `index` (it must be down).
    pub fn rename(&mut self, index: u32, name: &str) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes.push(LinkAttribute::IfName(name.to_string()));
        self.set_link(msg, || format!("renaming interface {index} to {name}"))
    }

    /// Moves interface `index` into the namespace open as `netns`.
    pub fn move_to_netns(&mut self, index: u32, netns: BorrowedFd<'_>) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        msg.attributes
            .push(LinkAttribute::NetNsFd(netns.as_raw_fd()));
        self.set_link(msg, || {
            format!("moving interface {index} to another namespace")
        })
    }

    /// Deletes interface `index` (and its veth peer, if any).
    pub fn delete_link(&mut self, index: u32) -> Result<()> {
        let mut msg = LinkMessage::default();
        msg.header.index = index;
        self.request(RouteNetlinkMessage::DelLink(msg), 0, || {
            format!("deleting interface {index}")
        })?;
        Ok(())
    }
}
