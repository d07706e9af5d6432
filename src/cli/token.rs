//! The token options shared by `serve`, `run` and `compare --remote`: `--token-file PATH` or
//! `NSLAT_TOKEN`, and `--token SECRET`, which still works but is readable by every user of the
//! machine (`ps`, `/proc/PID/cmdline`) and says so once on stderr.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::bench::token::{self, TokenSource};

static WARNED: AtomicBool = AtomicBool::new(false);

/// The token from `--token`, `--token-file` or `NSLAT_TOKEN` (in that order), if any; warns once
/// per process when it came from the command line.
pub fn resolve(flag: Option<String>, file: Option<&Path>) -> anyhow::Result<Option<String>> {
    let Some((t, source)) = token::resolve(flag, file)? else {
        return Ok(None);
    };
    if source == TokenSource::CommandLine && !WARNED.swap(true, Ordering::Relaxed) {
        eprintln!(
            "warning: --token is readable by every user of this machine (ps, /proc/PID/cmdline): use --token-file PATH or {} instead",
            token::ENV
        );
    }
    Ok(Some(t))
}
