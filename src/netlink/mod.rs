//! Our thin synchronous netlink socket over netlink-packet-route + netlink-sys (to be written).
