//! The ways a container can be attached to the node's network ("modes"): a [`Mode`] is a handle
//! on one registered driver ([`super::modes`]), compared, ordered, parsed and serialized by name.
//! This file knows no mode by itself: every mode's name, description and behaviour live in its
//! driver's file.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use super::modes::{Backlog, ModeDriver, Traits};

/// How a container is attached. [`Mode::Host`] means no container: the node itself.
///
/// The associated constants (`Mode::Host`, `Mode::Bridge`, ...) and [`Mode::ALL`] come from the
/// registration list in `lab/modes/mod.rs`.
#[derive(Clone, Copy)]
pub struct Mode(pub(super) &'static dyn ModeDriver);

impl Mode {
    /// The driver that builds and describes this mode.
    pub fn driver(self) -> &'static dyn ModeDriver {
        self.0
    }

    /// The user-facing name, e.g. `ipvlan-l2`.
    pub fn name(self) -> &'static str {
        self.0.name()
    }

    /// One line on what the mode is, for `--help` and reports.
    pub fn describe(self) -> &'static str {
        self.0.describe()
    }

    /// What the mode is (child of the NIC, attachable, expected backlog fingerprint, ...).
    pub fn traits(self) -> Traits {
        self.0.traits()
    }

    /// Whether this mode needs the kernel's ipvlan driver.
    pub fn needs_ipvlan(self) -> bool {
        self.traits().needs_ipvlan
    }

    /// The modes a lab builds when none are named (hybrids and BPF/overlay modes are opt-in).
    pub fn defaults() -> Vec<Mode> {
        Mode::ALL
            .iter()
            .copied()
            .filter(|m| m.traits().default)
            .collect()
    }

    /// The position in [`Mode::ALL`] (report order).
    fn position(self) -> usize {
        Mode::ALL
            .iter()
            .position(|m| m.name() == self.name())
            .unwrap_or(usize::MAX)
    }
}

impl PartialEq for Mode {
    fn eq(&self, other: &Mode) -> bool {
        self.name() == other.name()
    }
}
impl Eq for Mode {}

impl PartialOrd for Mode {
    fn partial_cmp(&self, other: &Mode) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Mode {
    fn cmp(&self, other: &Mode) -> std::cmp::Ordering {
        self.position().cmp(&other.position())
    }
}

impl std::hash::Hash for Mode {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name().hash(state)
    }
}

impl fmt::Debug for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.name())
    }
}

impl Serialize for Mode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

/// Error for a mode name nslat does not know.
#[derive(Debug, thiserror::Error)]
#[error("unknown mode '{0}': use one of {names}", names = known_names())]
pub struct UnknownMode(pub String);

fn known_names() -> String {
    Mode::ALL
        .iter()
        .map(|m| m.name())
        .collect::<Vec<_>>()
        .join(", ")
}

impl FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Mode::ALL
            .iter()
            .copied()
            .find(|m| m.name().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownMode(s.to_string()))
    }
}

/// Parses a comma-separated list like `host,bridge,macvlan`; `all` means [`Mode::ALL`].
/// Duplicates are dropped; order is kept.
pub fn parse_list(list: &str) -> Result<Vec<Mode>, UnknownMode> {
    if list.trim().eq_ignore_ascii_case("all") {
        return Ok(Mode::ALL.to_vec());
    }
    let mut modes = Vec::new();
    for part in list.split(',').filter(|p| !p.trim().is_empty()) {
        let m: Mode = part.parse()?;
        if !modes.contains(&m) {
            modes.push(m);
        }
    }
    if modes.is_empty() {
        return Err(UnknownMode(list.to_string()));
    }
    Ok(modes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for &m in Mode::ALL {
            assert_eq!(m.name().parse::<Mode>().unwrap(), m);
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.name()));
            let back: Mode = serde_json::from_str(&json).unwrap();
            assert_eq!(back, m);
        }
        assert!(serde_json::from_str::<Mode>("\"nope\"").is_err());
    }

    #[test]
    fn lists_parse() {
        assert_eq!(
            parse_list("host,bridge,host").unwrap(),
            vec![Mode::Host, Mode::Bridge]
        );
        assert_eq!(parse_list("all").unwrap().len(), Mode::ALL.len());
        assert!(parse_list("host,nope").is_err());
        assert!(parse_list(",").is_err());
        let e = parse_list("x").unwrap_err().to_string();
        assert!(e.contains("host, bridge, ptp"), "{e}");
    }

    #[test]
    fn order_is_registration_order() {
        let mut v = vec![Mode::Macvlan, Mode::Host, Mode::Bridge];
        v.sort();
        assert_eq!(v, vec![Mode::Host, Mode::Bridge, Mode::Macvlan]);
        assert_eq!(
            Mode::defaults(),
            vec![
                Mode::Host,
                Mode::Bridge,
                Mode::Ptp,
                Mode::Macvlan,
                Mode::IpvlanL2,
                Mode::IpvlanL3,
                Mode::IpvlanL3s
            ]
        );
    }
}
