//! The one error of a comparison. A mode that fails is not one (it is reported as unavailable);
//! this is what stops the whole comparison. Part of the floor every flow stands on: it imports
//! no flow.

use crate::bench::client::ClientError;
use crate::bench::server::ServerError;
use crate::lab::LabError;
use crate::netns::NetnsError;

/// Errors that stop a comparison (a single mode failing does not: it is reported as unavailable).
#[derive(Debug, thiserror::Error)]
pub enum CompareError {
    #[error("{0}")]
    Invalid(String),
    #[error("nslat compare builds network namespaces and needs root; run it with sudo")]
    NotRoot,
    #[error("lab")]
    Lab(#[from] LabError),
    #[error("starting the server in the remote namespace")]
    Server(#[from] ServerError),
    #[error("the baseline (host) could not be measured: {0}")]
    Baseline(ClientError),
    /// The text says what became of what nslat built (each flow fills it in).
    #[error("interrupted by a signal; {0}")]
    Interrupted(&'static str),
    #[error(transparent)]
    Netns(#[from] NetnsError),
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
}

impl CompareError {
    /// An interruption told with what became of what the flow built; other errors unchanged.
    pub(super) fn after_interrupt(self, what_became: &'static str) -> CompareError {
        match self {
            CompareError::Interrupted(_) => CompareError::Interrupted(what_became),
            e => e,
        }
    }
}
