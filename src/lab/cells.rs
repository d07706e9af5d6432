//! Measurement cells: one closed copy of the lab's topology per measured path and replicate,
//! so that nothing one mode loads into its node (bridge's NAT table and conntrack, veth-bpf's
//! programs on the NIC, macvlan's receive handler on eth0) touches another mode's path or the
//! baseline's, and so that every path can be measured on several independent instances.
//!
//! ```text
//!  nslat-LAB-c.0-remote <== wire ==> nslat-LAB-c.0-node  (node state: bare)   host       replicate 0
//!  nslat-LAB-c.1-remote <== wire ==> nslat-LAB-c.1-node  (node state: bare)   host       replicate 1
//!  nslat-LAB-c.2-remote <== wire ==> nslat-LAB-c.2-node  (+ its MASQUERADE)   bridge     replicate 0
//!  ...
//! ```
//!
//! A cell is built by the same mode drivers as the lab (one mode in it), then its node gets the
//! node state asked for ([`NodeState`]: no NAT table, or a NAT table loaded so conntrack runs, as
//! on a Docker host or a kube-proxy node); a mode that loads more (bridge's MASQUERADE) keeps
//! what it loads. Every cell shares the lab's addresses (each is a closed world of its own
//! namespaces). [`CellSet`] removes the cells when dropped; `lab down` sweeps them by name after
//! a crash ([`super::plan::cell_suffixes`]). This module builds and removes; it does not measure,
//! and it never touches the lab's own namespaces.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::build;
use super::plan;
use super::{bridge_subnet, LabError, Mode, ModeInfo};
use crate::firewall::{Firewall, NatLevel};
use crate::netns;

/// The netfilter state of a node before any mode loads its own rules: what the baseline (and
/// every mode's node) has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum NodeState {
    /// No NAT table: conntrack never runs for the node's own packets (a bare machine).
    #[default]
    Bare,
    /// A NAT table loaded (a postrouting nat chain whose rule matches nothing the lab sends), so
    /// conntrack tracks every packet: a Docker host's or a kube-proxy node's own traffic.
    Nat,
}

impl NodeState {
    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Bare => "bare",
            NodeState::Nat => "nat",
        }
    }

    /// What it means, for a report's header.
    pub fn describe(self) -> &'static str {
        match self {
            NodeState::Bare => "no NAT table, conntrack off",
            NodeState::Nat => "NAT table loaded, conntrack on",
        }
    }

    /// The NAT level a node of this state starts with.
    pub fn nat_level(self) -> NatLevel {
        match self {
            NodeState::Bare => NatLevel::None,
            NodeState::Nat => NatLevel::ConntrackOnly,
        }
    }

    /// Whether the node has a NAT table.
    pub fn nat_table(self) -> bool {
        self == NodeState::Nat
    }

    /// The other state.
    pub fn other(self) -> NodeState {
        match self {
            NodeState::Bare => NodeState::Nat,
            NodeState::Nat => NodeState::Bare,
        }
    }
}

impl std::fmt::Display for NodeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one cell holds: one mode on a node of one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellSpec {
    pub mode: Mode,
    pub node: NodeState,
    /// Dual-stack (`compare --family 6|both`): the cell gets the lab's 2001:2::/48 addresses,
    /// bridge its NAT66, a NAT-table node its `ip6` table too.
    pub ipv6: bool,
}

/// A built cell: where its client runs and where its server must listen.
#[derive(Debug, Clone)]
pub struct Cell {
    pub spec: CellSpec,
    /// The cell's remote namespace (its server listens there).
    pub remote: PathBuf,
    /// The cell's node namespace.
    pub node: PathBuf,
    /// The mode as built in the cell (its namespace, its server address).
    pub info: ModeInfo,
    /// The NAT level the node ended with (the node state's, or more where the mode loads it).
    pub nat: NatLevel,
}

/// Every cell of one measurement; removed when dropped.
#[derive(Debug)]
pub struct CellSet {
    lab: String,
    /// In the order asked; `Err`: that cell could not be built, with the reason.
    cells: Vec<Result<Cell, String>>,
}

impl CellSet {
    /// Builds one cell per spec under lab `lab`'s prefix (leftover cells of a crashed run are
    /// removed first). A cell whose mode cannot be built (the kernel lacks it, a tool is
    /// missing) is kept as `Err` with the reason and the rest go on; SIGINT/SIGTERM stop the
    /// build ([`LabError::Interrupted`]) and remove what was built.
    pub fn build(lab: &str, specs: &[CellSpec]) -> Result<CellSet, LabError> {
        if specs.len() > plan::MAX_CELLS {
            return Err(LabError::Io {
                what: format!(
                    "{} measurement cells asked for, at most {} (fewer modes or --replicates)",
                    specs.len(),
                    plan::MAX_CELLS
                ),
                source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
            });
        }
        remove_namespaces(lab);
        let mut set = CellSet {
            lab: lab.to_string(),
            cells: Vec::with_capacity(specs.len()),
        };
        for (i, spec) in specs.iter().enumerate() {
            match build_cell(lab, i, *spec) {
                Ok(cell) => set.cells.push(Ok(cell)),
                Err(LabError::Interrupted) => return Err(LabError::Interrupted),
                Err(e) => {
                    // What the cell built goes; the reason stays.
                    remove_cell(lab, i);
                    set.cells.push(Err(crate::error::error_chain(&e)))
                }
            }
        }
        Ok(set)
    }

    /// The cells in the order asked.
    pub fn cells(&self) -> &[Result<Cell, String>] {
        &self.cells
    }
}

impl Drop for CellSet {
    fn drop(&mut self) {
        for i in 0..self.cells.len() {
            remove_cell(&self.lab, i);
        }
    }
}

fn build_cell(lab: &str, i: usize, spec: CellSpec) -> Result<Cell, LabError> {
    if spec.ipv6 {
        if let Some(why) = spec.mode.driver().ipv6_unavailable() {
            return Err(LabError::Unavailable(format!("no IPv6 path: {why}")));
        }
    }
    let copy = build::copy_under(lab, plan::cell_prefix(lab, i), vec![spec.mode], spec.ipv6)?;
    let (remote, node, left) = (copy.remote, copy.node, copy.nat);
    let info = match copy.modes.into_iter().next() {
        Some((_, Ok(info))) => info,
        Some((_, Err(reason))) => return Err(LabError::Unavailable(reason)),
        None => return Err(LabError::NoModes),
    };
    let want = spec.node.nat_level();
    if want != NatLevel::None {
        if let Some(why) = crate::firewall::nft_missing() {
            return Err(LabError::Unavailable(format!(
                "a node with a NAT table cannot be built: {why}"
            )));
        }
    }
    let nat = if left == NatLevel::None && want != NatLevel::None {
        Firewall::new(&node).init_nat(want, bridge_subnet(), "eth0")?;
        if spec.ipv6 {
            Firewall::new(&node).init_nat6(want, (plan::v6(plan::BRIDGE_NET), 64), "eth0")?;
        }
        want
    } else {
        left
    };
    Ok(Cell {
        spec,
        remote,
        node,
        info,
        nat,
    })
}

fn remove_cell(lab: &str, i: usize) {
    build::remove_copy(&plan::cell_prefix(lab, i));
}

/// Removes every cell namespace of lab `lab` (their links and rules go with them). Idempotent;
/// the lab's own namespaces are not touched.
pub fn remove_namespaces(lab: &str) {
    let prefix = plan::prefix(lab);
    for n in netns::list_with_prefix(&format!("{prefix}c.")) {
        if plan::cell_suffixes().any(|s| n == format!("{prefix}{s}")) {
            let _ = netns::delete(&n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_states() {
        assert_eq!(NodeState::default(), NodeState::Bare);
        assert_eq!(NodeState::Bare.nat_level(), NatLevel::None);
        assert_eq!(NodeState::Nat.nat_level(), NatLevel::ConntrackOnly);
        assert!(NodeState::Nat.nat_table() && !NodeState::Bare.nat_table());
        assert_eq!(NodeState::Bare.other(), NodeState::Nat);
        assert_eq!(serde_json::to_string(&NodeState::Nat).unwrap(), "\"nat\"");
    }

    #[test]
    fn cell_namespaces_are_swept_by_lab_down() {
        let all = plan::all_suffixes();
        for i in [0, 7, plan::MAX_CELLS - 1] {
            for s in plan::topology_suffixes() {
                let n = format!("{}{s}", plan::cell_prefix("x", i));
                let suffix = n.strip_prefix("nslat-x-").unwrap();
                assert!(all.iter().any(|a| a == suffix), "{suffix}");
            }
        }
    }
}
