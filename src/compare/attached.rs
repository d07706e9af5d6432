//! Modes attached to the real NIC as measured paths: the one code path `compare --remote`
//! (the modes beside the host) and `compare --target --attach` (the modes beside the user's
//! containers) both take. It attaches each mode into a temporary namespace
//! ([`crate::attach::temp`]), hands back the paths to measure, and the held namespaces that
//! detach and remove them when dropped. It measures nothing itself.

use std::net::SocketAddr;

use super::progress::Progress;
use crate::attach::{self, AttachMode, NicSpec, TempAttached};
use crate::error::error_chain;
use crate::lab::Mode;
use crate::measure::sockets::PathSpec;

/// The lab mode whose real-NIC form `am` is (its report label).
pub fn mode_of(am: AttachMode) -> Option<Mode> {
    Mode::ALL
        .iter()
        .copied()
        .find(|m| m.traits().attach == Some(am))
}

/// One attached mode, ready to measure.
pub(super) struct AttachedPath {
    pub mode: AttachMode,
    pub label: String,
    pub path: PathSpec,
    /// Detaches and removes the namespace when dropped.
    pub held: TempAttached,
}

/// What [`attach_all`] made, and what it could not (label, one line why).
pub(super) struct Attached {
    pub paths: Vec<AttachedPath>,
    pub unavailable: Vec<(String, String)>,
}

/// The label a mode's row gets.
pub(super) fn label(am: AttachMode) -> String {
    mode_of(am)
        .map(|m| m.name().to_string())
        .unwrap_or_else(|| am.name().to_string())
}

/// Attaches `modes` to the NIC, the `k`-th with the address `first + k` counted from `--addr`,
/// each as a path to `server`. A mode that cannot be attached (no ipvlan in this kernel, a
/// parent busy with the other kind of child) is one line in `unavailable`; the rest go on.
pub(super) fn attach_all(
    nic: &NicSpec,
    modes: &[AttachMode],
    first: usize,
    server: SocketAddr,
    token: Option<&str>,
    progress: &dyn Progress,
) -> Attached {
    let mut out = Attached {
        paths: Vec::new(),
        unavailable: Vec::new(),
    };
    for (k, &am) in modes.iter().enumerate() {
        let label = label(am);
        match attach::attach_temp(nic, am, first + k) {
            Ok(held) => {
                progress.note(&format!(
                    "{label}: attached to {} in {} with {}/{}",
                    nic.parent, held.name, held.addr, nic.prefix
                ));
                out.paths.push(AttachedPath {
                    mode: am,
                    label: label.clone(),
                    path: PathSpec {
                        label,
                        netns: Some(held.path.clone()),
                        server,
                        token: token.map(str::to_string),
                    },
                    held,
                });
            }
            Err(e) => {
                let why = format!("attaching it to {}: {}", nic.parent, error_chain(&e));
                progress.note(&format!("{label}: unavailable: {why}"));
                out.unavailable.push((label, why));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attach_modes_are_lab_modes() {
        assert_eq!(mode_of(AttachMode::Macvlan), Some(Mode::Macvlan));
        assert_eq!(label(AttachMode::IpvlanL2), "ipvlan-l2");
        assert_eq!(mode_of(AttachMode::Bridge), None);
    }
}
