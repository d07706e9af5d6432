//! nslat: how much latency a container's network setup adds, why, and which setup removes it.
//!
//! The binary only parses the command line and calls into this library; see `DESIGN.md`.

pub mod attach;
pub mod bench;
pub mod bpf;
pub mod check;
pub mod cidr;
pub mod cli;
pub mod compare;
pub mod deploy;
pub mod error;
pub mod firewall;
pub mod fleet;
pub mod host_facts;
pub mod lab;
pub mod measure;
pub mod measure_lock;
pub mod netlink;
pub mod netns;
pub mod probe;
pub mod report;
pub mod rng;
pub mod stats;
pub mod sweep;
pub mod target;
pub mod waterfall;
