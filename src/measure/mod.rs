//! The measuring seam: every comparison nslat makes (the lab's modes, `--remote`, `--explain`'s
//! variants, a Docker container beside the host, a sweep's ClusterIP path beside the direct one)
//! measures its set of paths here.
//!
//! It owns the interleaved, paired method: one client thread holds one connection per path and
//! runs blocks of B transactions on each path in turn (B from a target block time, the order
//! shuffled every round, warm-up rounds dropped); each block's mean is kept by round, and each
//! path is compared with the baseline round by round ([`paired`], batch-means intervals). Slow
//! drift of the machine hits every path of a round alike, so it cancels in the ratio.
//!
//! What a path is belongs to a [`PathSet`]: [`sockets::SocketPaths`] (real `nslat serve`
//! sessions, one per path, each socket made inside its path's namespace) and [`fake::FakePaths`]
//! (simulated, for unit tests). This module must not build labs, read probes inside blocks, or
//! allocate or format per transaction.
//!
//! Use: describe the paths ([`sockets::PathSpec`]), call [`sockets::measure`] with a
//! [`ScheduleConfig`], read [`sockets::Measured`] (per-path [`crate::bench::RunResult`]s and the
//! [`Interleaved`] rounds, whose [`Interleaved::paired`] gives each ratio with its interval).

pub mod child;
pub mod epochs;
pub mod fake;
pub mod openloop;
pub mod paired;
pub mod schedule;
pub mod sockets;

pub use paired::{Ci, Paired};
pub use schedule::{
    Block, BlockSize, BlockSpec, Interleaved, PathSet, ScheduleConfig, ScheduleError, StopRule,
    Stopped,
};
