//! Labs: named namespaces with the node, the remote, the wire and one container per mode.
//!
//! ```text
//!  remote (nslat-LAB-remote)          node (nslat-LAB-node)                     containers
//!  eth0 198.18.0.2/24  <== wire ==>   eth0 198.18.0.1/24 -- macvlan/ipvlan -->  nslat-LAB-macvlan eth0 198.18.0.3/24 ...
//!                                     docker0 198.18.1.1/24 -- veth -->         nslat-LAB-bridge eth0 198.18.1.2/24 (MASQUERADE)
//!                                     veth-ptp 198.18.2.1/32 -- veth -->        nslat-LAB-ptp    eth0 198.18.2.2/32
//! ```
//!
//! [`Lab::up`] builds it with one netlink socket per namespace (no `ip` subprocesses, no sleeps),
//! [`down`] removes it (idempotent, works from the state file or by name sweep after a crash).

mod build;
pub mod cells;
pub mod explain;
pub mod inventory;
pub mod mode;
pub mod modes;
pub mod plan;
mod signals;
pub mod state;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use build::Builder;
pub use mode::Mode;
pub use signals::STOP_SIGNALS;
pub use state::LabState;

pub use crate::firewall::NatLevel;
use crate::firewall::{Firewall, FirewallError, Subnet4};
use crate::netlink::NetlinkError;
use crate::netns::{self, NetnsError};

/// Errors from building, opening or removing a lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    #[error("invalid lab name '{0}': use letters, digits, '-' or '_' (at most 40)")]
    InvalidName(String),
    #[error("lab '{0}' already exists: remove it with `nslat lab down --name {0}` or pick another --name")]
    Exists(String),
    #[error("lab '{0}' not found: build it with `nslat lab up --name {0}` (`nslat lab list` shows the labs there are)")]
    NotFound(String),
    #[error("lab '{0}' is incomplete (a `lab up` crashed or is still running): remove it with `nslat lab down --name {0}`")]
    Incomplete(String),
    #[error("lab '{0}' is busy: another nslat is building or removing it")]
    Busy(String),
    #[error("no modes given: name at least one with --modes")]
    NoModes,
    #[error("building a lab needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN); run it with sudo")]
    NotRoot,
    #[error("interrupted by a signal; the partly built lab was removed")]
    Interrupted,
    #[error("mode {0} is not part of lab")]
    NoSuchMode(Mode),
    #[error("the lab has no bridge mode, so there is no NAT to set")]
    NoNat,
    #[error("--explain needs the {mode} mode, which is unavailable: {reason}")]
    ExplainUnavailable { mode: Mode, reason: String },
    /// A mode or node state that this machine cannot build (the kernel lacks it, a tool is
    /// missing): the reason, said as "not available: …" by whoever asked for it.
    #[error("{0}")]
    Unavailable(String),
    #[error("state file {path} is unreadable ({reason}): remove the lab with `nslat lab down`")]
    State { path: PathBuf, reason: String },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Netlink(#[from] NetlinkError),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error(transparent)]
    Bpf(#[from] crate::bpf::BpfError),

    #[error("{what}")]
    Step {
        what: String,
        #[source]
        source: Box<LabError>,
    },
}

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabSpec {
    /// The lab's name (namespaces are `nslat-NAME-*`).
    pub name: String,
    /// The modes to build, in order.
    pub modes: Vec<Mode>,
    /// Also give every interface a 2001:2::/48 address.
    pub ipv6: bool,
    /// Give the node a macvlan/ipvlan interface of its own on eth0, so node <-> container works.
    pub host_shim: bool,
}

impl LabSpec {
    /// Lab `name` with the default modes ([`Mode::defaults`]), v4 only, no shim.
    pub fn new(name: &str) -> Self {
        LabSpec {
            name: name.to_string(),
            modes: Mode::defaults(),
            ipv6: false,
            host_shim: false,
        }
    }

    /// Checks the name and modes (before anything is changed).
    pub fn validate(&self) -> Result<(), LabError> {
        validate_name(&self.name)?;
        if self.modes.is_empty() {
            return Err(LabError::NoModes);
        }
        for m in &self.modes {
            m.driver().validate(self)?;
        }
        Ok(())
    }
}

/// The default lab name.
pub const DEFAULT_NAME: &str = "default";

/// Checks a lab name: letters, digits, `-`, `_`, at most 40 characters.
pub fn validate_name(name: &str) -> Result<(), LabError> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(LabError::InvalidName(name.to_string()))
    }
}

/// Where a built mode is: the namespace to run in, its address, its interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModeInfo {
    /// The namespace the container (or, for `host`, the node) lives in.
    pub netns: PathBuf,
    /// The container's IPv4 address.
    pub addr: Ipv4Addr,
    /// The container's IPv6 address (labs built with `ipv6`).
    pub addr6: Option<Ipv6Addr>,
    /// The container's data interface (`eth0`).
    pub ifname: String,
    /// The address of the remote's server this mode's clients connect to (the remote's wire
    /// address, or for an overlay its pod-subnet address).
    #[serde(default = "default_server")]
    pub server: Ipv4Addr,
}

fn default_server() -> Ipv4Addr {
    plan::REMOTE
}

/// A mode of a lab: built (`Ok`) or unavailable with the reason (`Err`), e.g.
/// "kernel has no ipvlan support (CONFIG_IPVLAN)".
pub type ModeStatus = Result<ModeInfo, String>;

/// A built lab (from [`Lab::up`] or [`Lab::open`]).
#[derive(Debug, Clone)]
pub struct Lab {
    state: LabState,
    remote: PathBuf,
    node: PathBuf,
}

/// What [`down`] did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    /// Namespaces removed.
    pub removed: Vec<String>,
    /// Errors met on the way (down keeps going).
    pub errors: Vec<String>,
}

impl Lab {
    /// Builds the lab described by `spec`. Modes the kernel cannot build are recorded as
    /// unavailable with the reason; the rest is built. On any error, SIGINT or SIGTERM, what was
    /// built is removed again before returning.
    pub fn up(spec: &LabSpec) -> Result<Lab, LabError> {
        build::up(spec).map(Lab::from_state)
    }

    /// The lab `name` as recorded in its state file.
    pub fn open(name: &str) -> Result<Lab, LabError> {
        validate_name(name)?;
        match LabState::load(name)? {
            Some(state) if state.complete => Ok(Lab::from_state(state)),
            Some(_) => Err(LabError::Incomplete(name.to_string())),
            None => Err(LabError::NotFound(name.to_string())),
        }
    }

    fn from_state(state: LabState) -> Lab {
        let prefix = plan::prefix(&state.name);
        Lab {
            remote: netns::path_of(&format!("{prefix}remote")),
            node: netns::path_of(&format!("{prefix}node")),
            state,
        }
    }

    /// The lab's name.
    pub fn name(&self) -> &str {
        &self.state.name
    }

    /// The recorded state (modes, namespaces, NAT level).
    pub fn state(&self) -> &LabState {
        &self.state
    }

    /// The remote's namespace (where `nslat serve` runs).
    pub fn remote_netns(&self) -> &Path {
        &self.remote
    }

    /// The node's namespace (also the `host` mode's).
    pub fn node_netns(&self) -> &Path {
        &self.node
    }

    /// The remote's wire address.
    pub fn remote_addr(&self) -> Ipv4Addr {
        plan::REMOTE
    }

    /// The remote's v6 wire address, if the lab has IPv6.
    pub fn remote_addr6(&self) -> Option<Ipv6Addr> {
        self.state.ipv6.then(|| plan::v6(plan::REMOTE))
    }

    /// The node's wire address.
    pub fn node_addr(&self) -> Ipv4Addr {
        plan::NODE
    }

    /// Whether the lab has IPv6 addresses.
    pub fn ipv6(&self) -> bool {
        self.state.ipv6
    }

    /// A mode's status, or `None` if the lab was not asked to build it.
    pub fn mode(&self, mode: Mode) -> Option<&ModeStatus> {
        self.state
            .modes
            .iter()
            .find(|(m, _)| *m == mode)
            .map(|(_, s)| s)
    }

    /// A mode's info when it was built (`None` if not asked for or unavailable).
    pub fn available(&self, mode: Mode) -> Option<&ModeInfo> {
        self.mode(mode).and_then(|s| s.as_ref().ok())
    }

    /// Every mode asked for, in order, with its status.
    pub fn modes(&self) -> impl Iterator<Item = (Mode, &ModeStatus)> {
        self.state.modes.iter().map(|(m, s)| (*m, s))
    }

    /// The current NAT level of the bridge mode.
    pub fn nat(&self) -> NatLevel {
        self.state.nat
    }

    /// Sets the bridge mode's NAT (for the ablation): none, conntrack only, or MASQUERADE.
    pub fn set_nat(&mut self, level: NatLevel) -> Result<(), LabError> {
        if !matches!(self.mode(Mode::Bridge), Some(Ok(_))) {
            return Err(LabError::NoNat);
        }
        self.firewall().set_nat(level, bridge_subnet(), "eth0")?;
        self.state.nat = level;
        self.state.save()
    }

    /// The node's firewall (for Service DNAT and policy rules).
    pub fn firewall(&self) -> Firewall {
        Firewall::new(&self.node)
    }
}

/// The bridge mode's subnet (198.18.1.0/24).
pub fn bridge_subnet() -> Subnet4 {
    Subnet4 {
        addr: plan::BRIDGE_NET,
        len: 24,
    }
}

/// Removes lab `name`: the namespaces in its state file and any `nslat-NAME-*` namespace of a
/// known kind (after a crash), then the state file. Idempotent; keeps going on errors.
pub fn down(name: &str) -> Result<DownReport, LabError> {
    validate_name(name)?;
    if !netns::is_root() {
        return Err(LabError::NotRoot);
    }
    let lock = state::LabLock::acquire(name)?;
    let report = build::teardown(name);
    lock.remove_file();
    Ok(report)
}

/// Names of labs with a state file.
pub fn list() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(state::STATE_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".json").map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Sets whether SIGINT/SIGTERM outside `Lab::up` keep their default action (terminate). Callers
/// that install their own handlers (e.g. `compare`) turn this off. Default: on.
pub fn set_default_signal_action_outside_up(on: bool) {
    signals::set_default_outside_up(on);
}
