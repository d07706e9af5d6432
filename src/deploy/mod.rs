//! `nslat deploy`: renders what runs nslat on a Kubernetes cluster beyond the static manifests of
//! deploy/kubernetes/ (the namespace, the two `nslat serve` DaemonSets, the NetworkPolicy): the
//! Secret with the servers' token, made fresh at render time, and one Job per chosen node pair. Renders text; never talks to a cluster (Kubernetes places nslat, nslat does not
//! orchestrate).

pub mod job;
pub mod kube;
pub mod secret;
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
    #[error("the Job's sessions would last {session:.0} s, longer than the servers' --max-duration {max} s (deploy/kubernetes): lower -l or --reps")]
    TooLong { session: f64, max: u64 },
    #[error("cannot make a token: reading /dev/urandom: {0}")]
    Random(std::io::Error),
    #[error("encoding the manifest: {0}")]
    Encode(serde_json::Error),
}
