//! `compare --explain`'s variants, all existing at once, so that one interleaved schedule can
//! measure them side by side.
//!
//! A variant is a mode at a NAT level of its node ([`VARIANTS`]). The NAT level belongs to a
//! node's namespace (nftables and conntrack are per namespace), so there is one **explain node**
//! per level: a copy of the lab's topology (its own remote, node, wire and the containers of
//! that level), built by the same mode drivers as the lab itself, under the lab's prefix:
//!
//! ```text
//!  nslat-LAB-x.none-remote <== wire ==> nslat-LAB-x.none-node   (no NAT table)   host, ptp, bridge
//!  nslat-LAB-x.ct-remote   <== wire ==> nslat-LAB-x.ct-node     (conntrack only) host, bridge
//!  nslat-LAB-x.masq-remote <== wire ==> nslat-LAB-x.masq-node   (MASQUERADE)     bridge
//! ```
//!
//! The copies share addresses (each is a closed world of its own namespaces), so every variant
//! takes exactly the path its mode takes in the lab. [`ExplainSet`] removes them when dropped;
//! `lab down` sweeps them by name after a crash ([`super::plan::explain_suffixes`]). This module
//! builds and removes; it does not measure, and it never touches the lab's own namespaces: a
//! kept lab is left exactly as it was, NAT level included.

use std::path::{Path, PathBuf};

use super::build;
use super::plan;
use super::state::LabLock;
use super::{bridge_subnet, Lab, LabError, Mode, ModeInfo};
use crate::firewall::{Firewall, NatLevel};

/// One variant of the ablation: a mode on the explain node of a NAT level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Variant {
    /// What the variant is, as a row of the breakdown.
    pub label: &'static str,
    pub mode: Mode,
    pub nat: NatLevel,
    /// A cumulative step towards the full bridge mode (the host variants are not).
    pub step: bool,
}

const fn v(label: &'static str, mode: Mode, nat: NatLevel, step: bool) -> Variant {
    Variant {
        label,
        mode,
        nat,
        step,
    }
}

/// The variants; the first is the baseline every other is paired with.
pub const VARIANTS: [Variant; 6] = [
    v("host, no NAT table", Mode::Host, NatLevel::None, false),
    v("veth (ptp, routed)", Mode::Ptp, NatLevel::None, true),
    v("+ bridge", Mode::Bridge, NatLevel::None, true),
    v(
        "host, NAT table loaded",
        Mode::Host,
        NatLevel::ConntrackOnly,
        false,
    ),
    v(
        "+ conntrack (NAT table loaded)",
        Mode::Bridge,
        NatLevel::ConntrackOnly,
        true,
    ),
    v(
        "+ MASQUERADE (Docker's rule)",
        Mode::Bridge,
        NatLevel::Masquerade,
        true,
    ),
];

/// The NAT levels that get an explain node, in build order.
const LEVELS: [NatLevel; 3] = [
    NatLevel::None,
    NatLevel::ConntrackOnly,
    NatLevel::Masquerade,
];

/// One explain node: its level, its remote, and its built modes.
#[derive(Debug, Clone)]
struct ExplainNode {
    nat: NatLevel,
    remote: PathBuf,
    node: PathBuf,
    modes: Vec<(Mode, ModeInfo)>,
}

/// Where one variant is measured: the namespace its client runs in, the server address it
/// targets, and the remote namespace that server must listen in.
#[derive(Debug, Clone, Copy)]
pub struct VariantPath<'a> {
    pub variant: &'a Variant,
    pub info: &'a ModeInfo,
    pub remote: &'a Path,
}

/// Every variant built at once; removed when dropped. Holds the lab's lock meanwhile (a `lab
/// down` or a second `--explain` on the same lab is refused as busy, not raced).
#[derive(Debug)]
pub struct ExplainSet {
    lab: String,
    nodes: Vec<ExplainNode>,
    _lock: LabLock,
}

impl ExplainSet {
    /// Builds every explain node of `lab` (leftovers of a crashed run are removed first). On an
    /// error or SIGINT/SIGTERM ([`LabError::Interrupted`]) what was built is removed again.
    pub fn build(lab: &Lab) -> Result<ExplainSet, LabError> {
        let lock = LabLock::acquire(lab.name())?;
        remove_namespaces(lab.name());
        let mut set = ExplainSet {
            lab: lab.name().to_string(),
            nodes: Vec::with_capacity(LEVELS.len()),
            _lock: lock,
        };
        for level in LEVELS {
            let node = build_node(lab.name(), level).map_err(|e| LabError::Step {
                what: format!("building --explain's node with NAT {level}"),
                source: Box::new(e),
            })?;
            set.nodes.push(node);
        }
        Ok(set)
    }

    /// Every variant's path, in [`VARIANTS`] order.
    pub fn paths(&self) -> Vec<VariantPath<'_>> {
        VARIANTS
            .iter()
            .filter_map(|v| {
                let n = self.nodes.iter().find(|n| n.nat == v.nat)?;
                let (_, info) = n.modes.iter().find(|(m, _)| *m == v.mode)?;
                Some(VariantPath {
                    variant: v,
                    info,
                    remote: &n.remote,
                })
            })
            .collect()
    }

    /// The remote namespaces (one per NAT level), where servers must listen.
    pub fn remotes(&self) -> Vec<&Path> {
        self.nodes.iter().map(|n| n.remote.as_path()).collect()
    }

    /// The node namespace of NAT level `level` (where its nftables ruleset is).
    pub fn node(&self, level: NatLevel) -> Option<&Path> {
        self.nodes
            .iter()
            .find(|n| n.nat == level)
            .map(|n| n.node.as_path())
    }
}

impl Drop for ExplainSet {
    fn drop(&mut self) {
        remove_namespaces(&self.lab);
    }
}

fn build_node(lab: &str, level: NatLevel) -> Result<ExplainNode, LabError> {
    let modes = VARIANTS
        .iter()
        .filter(|v| v.nat == level)
        .map(|v| v.mode)
        .collect();
    let copy = build::copy_under(lab, plan::explain_prefix(lab, level), modes, false)?;
    let (remote, node, left) = (copy.remote, copy.node, copy.nat);
    let modes = copy
        .modes
        .into_iter()
        .map(|(mode, status)| {
            status
                .map(|info| (mode, info))
                .map_err(|reason| LabError::ExplainUnavailable { mode, reason })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if left != level && modes.iter().any(|(m, _)| *m == Mode::Bridge) {
        Firewall::new(&node).set_nat(level, bridge_subnet(), "eth0")?;
    }
    Ok(ExplainNode {
        nat: level,
        remote,
        node,
        modes,
    })
}

/// Removes every explain namespace of lab `lab` (their links and rules go with them).
/// Idempotent; the lab's own namespaces are not touched.
pub fn remove_namespaces(lab: &str) {
    for level in LEVELS {
        build::remove_copy(&plan::explain_prefix(lab, level));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_variant_has_a_node_and_the_baseline_comes_first() {
        assert_eq!(VARIANTS[0].mode, Mode::Host);
        assert_eq!(VARIANTS[0].nat, NatLevel::None);
        assert!(!VARIANTS[0].step);
        for v in VARIANTS {
            assert!(LEVELS.contains(&v.nat), "{}", v.label);
        }
        let steps: Vec<_> = VARIANTS.iter().filter(|v| v.step).collect();
        assert_eq!(steps.last().unwrap().mode, Mode::Bridge);
        assert_eq!(steps.last().unwrap().nat, NatLevel::Masquerade);
    }

    #[test]
    fn explain_namespaces_are_swept_by_lab_down() {
        let all = plan::all_suffixes();
        for level in LEVELS {
            for m in VARIANTS.iter().filter(|v| v.nat == level) {
                let suffix = plan::mode_suffix(m.mode).unwrap_or_else(|| "node".into());
                let s = format!("{}-{suffix}", plan::explain_tag(level));
                assert!(all.contains(&s), "{s}");
            }
        }
    }
}
