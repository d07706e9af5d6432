//! The user's own containers as measuring targets: `--target NAME=SPEC` parsed (spec.rs), the
//! tools' JSON read (inspect.rs), the namespace resolved and held open for the whole run
//! (resolve.rs), and the path described from the kernel's own view (describe.rs, nat.rs).
//!
//! This module only reads: it never changes a container, a namespace or a ruleset. Measuring
//! targets is the compare module's job; this one tells it where they are and what they look like.

mod describe;
mod inspect;
pub mod nat;
mod resolve;
mod spec;

use serde::{Deserialize, Serialize};

pub use describe::{describe, looks_like, route_oif, HostSide, HostView, PathDescription};
pub use nat::NatRule;
pub use resolve::{resolve, resolve_all, NsId, ResolvedTarget};
pub use spec::{check_unique, Source, TargetSpec};

/// Errors about a target. Each is one line naming the target and what to do.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("--target {spec}: {why}")]
    BadSpec { spec: String, why: String },
    #[error("--target name '{0}': use 1 to 32 letters, digits, '-', '_' or '.'")]
    BadName(String),
    #[error("--target name '{0}' is taken by a lab mode or the baseline: pick another name")]
    ReservedName(String),
    #[error("--target name '{0}' is given twice: give each target its own name")]
    DuplicateName(String),
    #[error("{spec}: no such container or pod (see `docker ps`, `podman ps` or `crictl pods`)")]
    NoSuchContainer { spec: String },
    #[error("{spec}: {n} containers or pods match: give its id")]
    Ambiguous { spec: String, n: usize },
    #[error("{spec}: it is not running ({status}): {remedy}")]
    NotRunning {
        spec: String,
        status: String,
        remedy: String,
    },
    #[error("{spec}: the {tool} command is not installed (or not on PATH): install it or give the namespace as netns:PATH or pid:N")]
    ToolMissing { spec: String, tool: String },
    #[error("{spec}: {tool} failed: {why}")]
    ToolFailed {
        spec: String,
        tool: String,
        why: String,
    },
    #[error("{spec}: could not read {tool}'s output: {why}")]
    BadToolOutput {
        spec: String,
        tool: String,
        why: String,
    },
    #[error("{spec}: no process {pid} (give a running process's id)")]
    NoSuchProcess { spec: String, pid: u32 },
    /// (The cause is part of the message, not a `source`, so an error chain prints it once.)
    #[error("{spec}: {cause}")]
    Netns {
        spec: String,
        cause: crate::netns::NetnsError,
    },
    #[error("{spec}: {what}: {cause}")]
    Io {
        spec: String,
        what: String,
        cause: std::io::Error,
    },
    #[error("{spec}: the container exited during the run")]
    Exited { spec: String },
}

/// The lab's figure for the mode a target looks like, measured in the same run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabFigure {
    /// The lab mode, e.g. `bridge`.
    pub mode: String,
    /// The lab mode's mean latency over the lab's host (paired by round).
    pub ratio: f64,
    /// Half-width of the 95 % CI of that ratio.
    pub ratio_ci95: Option<f64>,
    /// Its mean latency, µs.
    pub latency_us: f64,
}

/// A target in the report (`--json`: `modes[].target`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetReport {
    /// The SPEC as given, e.g. `docker:web`.
    pub spec: String,
    /// The namespace it resolved to, e.g. `/proc/20047/ns/net (net:[4026532345])`.
    pub resolved_netns: String,
    /// How, e.g. `docker inspect State.Pid 20047`.
    pub resolved_by: String,
    /// The nearest lab mode (`host` for the host's own namespace), if any.
    pub looks_like: Option<String>,
    /// The path from the kernel's own view.
    pub path: PathDescription,
    /// The lab's figure for `looks_like`, when the lab was measured beside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lab: Option<LabFigure>,
    /// The target's latency over the host's, paired by round: mean and 95 % CI half-width.
    pub ratio: Option<f64>,
    pub ratio_ci95: Option<f64>,
}
