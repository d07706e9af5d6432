//! `nslat report merge`: many `nslat compare --json` reports (one per node pair and peer
//! network, e.g. from the Kubernetes Job in deploy/kubernetes/) merged into one fleet report:
//! node pair × path, ratios with their intervals, the worst pairs first. Reads files and
//! writes reports; never measures.

pub mod export;
pub mod input;
pub mod merge;

pub use input::{read_file, FileLabel, InputFile, ReportView};
pub use merge::{merge, FleetPair, FleetPath, FleetReport, RatioCiSource};

/// Errors of reading and merging; each is one line saying what to do.
#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("{path}: cannot read it ({why})")]
    Read { path: String, why: String },
    #[error("{path}: not an `nslat compare --json` report ({why})")]
    NotCompareJson { path: String, why: String },
    #[error(
        "inconsistent inputs: {file} is {shape} but {first_file} is {first_shape}; merge reports of one test, one size and one CPU placement"
    )]
    Inconsistent {
        file: String,
        shape: String,
        first_file: String,
        first_shape: String,
    },
    #[error(
        "{path}: no node pair in the report; run compare with --node/--peer, or give --label {path}=NODE->PEER"
    )]
    NoPair { path: String },
    #[error(
        "inconsistent inputs: {path} across {node}->{peer} is in both {first_file} and {file}; give each pair and path once"
    )]
    Duplicate {
        node: String,
        peer: String,
        path: String,
        first_file: String,
        file: String,
    },
    #[error("--label {path}=…: {path} is not one of the input files")]
    LabelWithoutFile { path: String },
    #[error("no input files: give one or more compare JSON files")]
    NoInput,
    #[error("writing the fleet report: {0}")]
    Io(#[from] std::io::Error),
    #[error("encoding JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("encoding CSV: {0}")]
    Csv(#[from] csv::Error),
}
