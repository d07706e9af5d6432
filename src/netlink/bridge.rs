//! Linux bridges.

use netlink_packet_route::link::{InfoKind, LinkInfo};

use super::link::new_link_message;
use super::{Netlink, Result};

impl Netlink {
    /// Creates bridge `name` in this socket's namespace.
    pub fn create_bridge(&mut self, name: &str) -> Result<()> {
        let info = vec![LinkInfo::Kind(InfoKind::Bridge)];
        self.new_link(new_link_message(name, None, info), || {
            format!("creating bridge {name}")
        })
    }
}
