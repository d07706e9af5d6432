//! Sysctls under /proc/sys/net of a given namespace.
//!
//! `/proc/sys/net` shows the network namespace of the task that looks the path up, so the write
//! is done from a thread that entered the namespace (tested in `tests/it/lab.rs`: the node's
//! `ip_forward` becomes 1 while the root namespace's stays as it was).

use std::path::{Path, PathBuf};

use super::{NetlinkError, Result};
use crate::netns;

/// The file for a dotted key like `net.ipv4.ip_forward`.
pub fn key_path(key: &str) -> PathBuf {
    Path::new("/proc/sys").join(key.replace('.', "/"))
}

/// Writes `value` to each key, on one thread inside the namespace at `netns`.
pub fn write_in(netns: &Path, settings: &[(&str, &str)]) -> Result<()> {
    let settings: Vec<(PathBuf, String)> = settings
        .iter()
        .map(|(k, v)| (key_path(k), v.to_string()))
        .collect();
    netns::run_in(Some(netns), move || write_here(&settings))
}

/// Writes the settings in the calling thread's namespace.
pub fn write_here(settings: &[(PathBuf, String)]) -> Result<()> {
    for (path, value) in settings {
        std::fs::write(path, value).map_err(|source| NetlinkError::Sysctl {
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Reads a key inside the namespace at `netns`.
pub fn read_in(netns: &Path, key: &str) -> Result<String> {
    let path = key_path(key);
    netns::run_in(Some(netns), move || {
        std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|source| NetlinkError::Sysctl { path, source })
    })
}
