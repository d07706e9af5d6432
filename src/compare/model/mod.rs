//! The report data model of `nslat compare`, and the pure functions that turn per-repetition
//! measurements into per-mode statistics, warnings and verdict sentences, a file per job:
//! schema.rs (the JSON's types), assemble.rs (inputs to figures and the report), quality.rs
//! (flags and warnings), verdict.rs (the sentences), explain.rs (the `--explain` breakdown).

mod assemble;
mod explain;
mod quality;
mod schema;
mod verdict;

pub use assemble::*;
pub use explain::*;
pub use quality::*;
pub use schema::*;
pub use verdict::*;

#[cfg(test)]
mod tests;
