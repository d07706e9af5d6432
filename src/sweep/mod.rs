//! Sweeps: latency along an axis that hurts in production, measured point by point in a lab of
//! their own. `services` varies the number of Services kube-proxy programmed in the node
//! (iptables and nftables style) and measures a container through one ClusterIP against the
//! same container straight to the endpoint; `load` varies the number of neighbour containers
//! streaming on the node and measures a victim's request/response percentiles per mode; `rate`
//! varies the offered request rate of an open-loop test and finds each mode's knee.
//!
//! Everything a sweep adds (rules, neighbour namespaces) lives in the sweep's lab and goes with
//! it. This module does not format reports (`report::sweep` does).

pub mod knee;
pub mod measure;
pub mod model;
pub mod neighbours;
pub mod rate;
mod run;
pub mod services;

pub use model::{Axis, SweepReport};
pub use rate::{rate as rate_sweep, validate_rate, RateOptions, Rates};
pub use run::{
    load, measured_service, service_plan, services as services_sweep, validate_load,
    validate_services, LoadOptions, Placement, Progress, ServicesOptions, Silent, CLUSTER_IP,
    CONTROL_PORT, DATA_PORTS,
};
pub use services::Style;

/// Errors that stop a sweep (a point that cannot be measured does not: it is listed as not
/// measured).
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    #[error("{0}")]
    Invalid(String),
    #[error("nslat sweep builds network namespaces and needs root; run it with sudo")]
    NotRoot,
    #[error("interrupted by a signal; the sweep's lab (its rules and neighbours) was removed")]
    Interrupted,
    #[error("lab")]
    Lab(#[from] crate::lab::LabError),
    #[error("starting the server in the remote namespace")]
    Server(#[from] crate::bench::server::ServerError),
    #[error("Service rules")]
    Services(#[from] services::ServiceError),
    #[error("neighbours")]
    Neighbours(#[from] neighbours::NeighbourError),
    #[error(transparent)]
    Netlink(#[from] crate::netlink::NetlinkError),
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}
