//! The integration tests: one test binary (`it`), one module per area, so that the suite links
//! once instead of once per file (matklad, "Delete Cargo Integration Tests"). A test's name is
//! its module path: `lab::up_and_down_every_mode` is in `tests/it/lab.rs`.
//!
//! Run one area: `cargo test --release --test it lab::` (or `cargo nextest run --release -E
//! 'test(/^lab::/)'`). A new area is a new file `tests/it/NAME.rs` plus one `mod NAME;` line
//! below; `common` (skips, names, the root-namespace snapshot and the root lock) and `lab_util`
//! (lab guards, servers in namespaces) are shared by all.
//!
//! Most tests need root and build real network namespaces; they skip with a printed reason
//! elsewhere and fail instead under CI=true.

mod common;
mod lab_util;

mod attach_hybrid;
mod attach_hybrid_ipvlan;
mod bad_input;
mod check;
mod check_datapaths;
mod check_ipvlan;
mod compare;
mod compare_interleaved;
mod compare_invariance;
mod compare_ipv6;
mod compare_remote;
mod deploy;
mod deploy_auth;
mod docker_targets;
mod engine;
mod engine_hostile;
mod epochs;
mod fleet;
mod image;
mod lab;
mod lab_crash;
mod lab_features;
mod lab_ipvlan;
mod lab_list;
mod lab_netkit;
mod measure_lock;
mod missing_tool;
mod openloop;
mod podman_targets;
mod probe;
mod report;
mod report_pipeline;
mod root_snapshot;
mod serve_auth;
mod signals;
mod sweep;
mod user_text;
mod veth_bpf;
mod vm_smoke;
mod vxlan;
mod waterfall;
