//! The lab's state file (`/run/nslat/labs/LAB.json`) and lock (`LAB.lock`, flock).
//!
//! Every namespace a lab will have is written to the state file before the first one is
//! created; links, addresses, routes and rules all live inside those namespaces and go with them.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::{LabError, Mode, ModeStatus};
use crate::firewall::NatLevel;

/// Where lab state files and locks live.
pub const STATE_DIR: &str = "/run/nslat/labs";

/// What a lab is made of, as recorded on disk.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub version: u32,
    pub name: String,
    pub ipv6: bool,
    #[serde(default)]
    pub host_shim: bool,
    /// Namespace names (under /run/netns), recorded before they are created.
    pub namespaces: Vec<String>,
    /// The modes asked for, with what became of each.
    pub modes: Vec<(Mode, ModeStatus)>,
    pub nat: NatLevel,
    /// False until `up` finished.
    pub complete: bool,
    /// The process that built it.
    pub pid: u32,
    /// When it was built (seconds since the epoch; 0: unknown).
    #[serde(default)]
    pub created_unix: u64,
    /// A compare's lab kept with `--keep-lab` (it no longer shares the compare's lifetime).
    #[serde(default)]
    pub kept: bool,
}

/// The state file of lab `name`.
pub fn state_path(name: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{name}.json"))
}

fn lock_path(name: &str) -> PathBuf {
    Path::new(STATE_DIR).join(format!("{name}.lock"))
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> LabError {
    move |source| LabError::Io { what, source }
}

impl LabState {
    /// Writes the state file (atomically: a temporary file renamed over it).
    pub fn save(&self) -> Result<(), LabError> {
        fs::create_dir_all(STATE_DIR).map_err(io(format!("creating {STATE_DIR}")))?;
        let path = state_path(&self.name);
        let tmp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(|e| LabError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        let mut f = File::create(&tmp).map_err(io(format!("writing {}", tmp.display())))?;
        f.write_all(&json)
            .map_err(io(format!("writing {}", tmp.display())))?;
        fs::rename(&tmp, &path).map_err(io(format!("writing {}", path.display())))
    }

    /// Reads lab `name`'s state file; `Ok(None)` if there is none.
    pub fn load(name: &str) -> Result<Option<LabState>, LabError> {
        let path = state_path(name);
        let data = match fs::read(&path) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(format!("reading {}", path.display()))(e)),
        };
        serde_json::from_slice(&data)
            .map(Some)
            .map_err(|e| LabError::State {
                path,
                reason: e.to_string(),
            })
    }

    /// Removes lab `name`'s state file, if any.
    pub fn remove(name: &str) -> Result<(), LabError> {
        let path = state_path(name);
        // A temporary file left by a crash in the middle of `save`.
        let _ = fs::remove_file(path.with_extension("json.tmp"));
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(format!("removing {}", path.display()))(e)),
        }
    }
}

/// An exclusive lock on lab `name`, held until dropped.
#[derive(Debug)]
pub struct LabLock {
    _lock: Flock<File>,
    path: PathBuf,
}

impl LabLock {
    /// Takes the lock without waiting; fails if another nslat holds it.
    pub fn acquire(name: &str) -> Result<LabLock, LabError> {
        fs::create_dir_all(STATE_DIR).map_err(io(format!("creating {STATE_DIR}")))?;
        let path = lock_path(name);
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io(format!("opening {}", path.display())))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => Ok(LabLock { _lock: lock, path }),
            Err((_, nix::Error::EWOULDBLOCK)) => Err(LabError::Busy(name.to_string())),
            Err((_, e)) => Err(LabError::Io {
                what: format!("locking {}", path.display()),
                source: e.into(),
            }),
        }
    }

    /// Removes the lock file (while still holding the lock), for `down`.
    pub fn remove_file(&self) {
        let _ = fs::remove_file(&self.path);
    }
}
