//! `nslat deploy`: renders what runs nslat on a Kubernetes cluster beyond the static manifests of
//! deploy/kubernetes/ (the namespace and the two `nslat serve` DaemonSets): one Job per chosen
//! node pair. Renders text; never talks to a cluster (Kubernetes places nslat, nslat does not
//! orchestrate).

pub mod job;
pub mod kube;
pub mod yaml;

pub use job::PairJob;

/// Errors of rendering; each is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    #[error(
        "{flag} '{name}': not a Kubernetes node name (lowercase letters, digits, '-' and '.'); see `kubectl get nodes`"
    )]
    BadNodeName { flag: &'static str, name: String },
    #[error("-l and --reps must be positive")]
    BadMeasure,
    #[error("encoding the manifest: {0}")]
    Encode(serde_json::Error),
}
