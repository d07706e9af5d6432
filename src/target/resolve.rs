//! Turning a [`TargetSpec`] into a namespace held open for the whole run: ask the tool the way it
//! documents (`docker inspect`, `podman inspect`, `crictl inspectp`), open `/proc/PID/ns/net` (or
//! the path the tool names), and keep the fd, plus a pidfd on the container's process so a
//! container that exits mid-run is noticed. Nothing here changes anything.

use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::inspect::{self, Located};
use super::spec::{Source, TargetSpec};
use super::TargetError;
use crate::netns;

/// A namespace's identity (device and inode of its nsfs file): two fds name the same namespace
/// when these agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NsId {
    pub dev: u64,
    pub ino: u64,
}

impl NsId {
    fn of(file: &File) -> std::io::Result<NsId> {
        let m = file.metadata()?;
        Ok(NsId {
            dev: m.dev(),
            ino: m.ino(),
        })
    }

    /// The namespace at `path` (e.g. `/proc/self/ns/net`).
    pub fn of_path(path: &Path) -> std::io::Result<NsId> {
        NsId::of(&File::open(path)?)
    }
}

/// A target resolved to a namespace, held open until dropped.
#[derive(Debug)]
pub struct ResolvedTarget {
    pub spec: TargetSpec,
    netns: File,
    /// The container's process, when there is one: readable once it has exited.
    pidfd: Option<OwnedFd>,
    pub id: NsId,
    /// The path it was opened from, e.g. `/proc/20047/ns/net` (valid while the container runs).
    pub opened_from: PathBuf,
    /// The namespace as the user can find it, e.g. `/proc/20047/ns/net (net:[4026532345])`.
    pub resolved_netns: String,
    /// How it was found, e.g. `docker inspect State.Pid 20047`.
    pub how: String,
    /// The tool says the container shares the host's network (`--network host`, hostNetwork).
    pub host_network: bool,
}

impl ResolvedTarget {
    /// A path that names the held namespace for as long as this value lives (`/proc/self/fd/N`):
    /// what the engine enters, even if the container's own path has gone.
    pub fn netns_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.netns.as_raw_fd()))
    }

    /// Whether the container's process still runs (targets without one are always alive: the
    /// held fd keeps the namespace).
    pub fn alive(&self) -> bool {
        let Some(fd) = &self.pidfd else { return true };
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, zero timeout.
        let n = unsafe { libc::poll(&mut pfd, 1, 0) };
        !(n > 0 && pfd.revents & libc::POLLIN != 0)
    }

    /// An error when the container exited since it was resolved.
    pub fn check_alive(&self) -> Result<(), TargetError> {
        if self.alive() {
            Ok(())
        } else {
            Err(TargetError::Exited {
                spec: self.spec.spec(),
            })
        }
    }
}

/// Resolves every target, in order; the first failure stops (nothing has been changed).
pub fn resolve_all(specs: &[TargetSpec]) -> Result<Vec<ResolvedTarget>, TargetError> {
    specs.iter().map(resolve).collect()
}

/// Resolves one target.
pub fn resolve(spec: &TargetSpec) -> Result<ResolvedTarget, TargetError> {
    let text = spec.spec();
    let located = match &spec.source {
        Source::Netns(n) => Located {
            pid: None,
            path: Some(n.clone()),
            how: "named namespace".into(),
            host_network: false,
        },
        Source::Pid(p) => Located {
            pid: Some(*p),
            path: None,
            how: format!("/proc/{p}/ns/net"),
            host_network: false,
        },
        Source::Docker(c) => {
            let out = run_tool(
                &text,
                "docker",
                &["inspect", "--type", "container", "--", c],
            )?;
            inspect::parse_container("docker", c, &out)?
        }
        Source::Podman(c) => {
            let out = run_tool(
                &text,
                "podman",
                &["inspect", "--type", "container", "--", c],
            )?;
            inspect::parse_container("podman", c, &out)?
        }
        Source::Cri(pod) => locate_pod(&text, pod)?,
    };
    open(spec, located)
}

/// `crictl inspectp` by id, else by name through `crictl pods --name`.
fn locate_pod(text: &str, pod: &str) -> Result<Located, TargetError> {
    match run_tool(text, "crictl", &["inspectp", "-o", "json", pod]) {
        Ok(out) => inspect::parse_pod(pod, &out),
        Err(TargetError::NoSuchContainer { .. }) | Err(TargetError::ToolFailed { .. }) => {
            let out = run_tool(text, "crictl", &["pods", "--name", pod, "-o", "json"])?;
            let ids = inspect::parse_pod_ids(&out).map_err(|e| TargetError::BadToolOutput {
                spec: text.to_string(),
                tool: "crictl pods".into(),
                why: e.to_string(),
            })?;
            match ids.as_slice() {
                [id] => {
                    let out = run_tool(text, "crictl", &["inspectp", "-o", "json", id])?;
                    inspect::parse_pod(pod, &out)
                }
                [] => Err(TargetError::NoSuchContainer {
                    spec: text.to_string(),
                }),
                _ => Err(TargetError::Ambiguous {
                    spec: text.to_string(),
                    n: ids.len(),
                }),
            }
        }
        Err(e) => Err(e),
    }
}

/// Runs a container tool (read-only subcommands only) and returns its stdout.
fn run_tool(spec: &str, program: &str, args: &[&str]) -> Result<String, TargetError> {
    let out = Command::new(program).args(args).output().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            TargetError::ToolMissing {
                spec: spec.to_string(),
                tool: program.to_string(),
            }
        } else {
            TargetError::ToolFailed {
                spec: spec.to_string(),
                tool: program.to_string(),
                why: e.to_string(),
            }
        }
    })?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let first = stderr
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("no message")
        .to_string();
    let lower = first.to_ascii_lowercase();
    if lower.contains("no such container")
        || lower.contains("no such object")
        || lower.contains("not found")
    {
        return Err(TargetError::NoSuchContainer {
            spec: spec.to_string(),
        });
    }
    Err(TargetError::ToolFailed {
        spec: spec.to_string(),
        tool: program.to_string(),
        why: first,
    })
}

/// `pidfd_open(2)`: an fd that becomes readable when the process exits.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    // SAFETY: plain syscall with two integer arguments; the returned fd is owned here.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_int, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: a fresh fd from the kernel that nothing else owns.
    Some(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn open(spec: &TargetSpec, located: Located) -> Result<ResolvedTarget, TargetError> {
    let text = spec.spec();
    let (path, pidfd, how) = match located.pid {
        Some(pid) => {
            let path = PathBuf::from(format!("/proc/{pid}/ns/net"));
            if !Path::new(&format!("/proc/{pid}")).exists() {
                return Err(TargetError::NoSuchProcess { spec: text, pid });
            }
            // The pidfd first, then the namespace: if the pid was reused in between, the
            // namespace is that of the process the pidfd watches.
            let pidfd = pidfd_open(pid);
            (path, pidfd, located.how.clone())
        }
        None => {
            let p = located.path.clone().unwrap_or_default();
            let path = netns::resolve(&p).map_err(|e| TargetError::Netns {
                spec: text.clone(),
                cause: e,
            })?;
            (path, None, located.how.clone())
        }
    };
    let checked = netns::resolve(&path.display().to_string()).map_err(|e| match e {
        netns::NetnsError::NotFound(_) if located.pid.is_some() => TargetError::NoSuchProcess {
            spec: text.clone(),
            pid: located.pid.unwrap_or_default(),
        },
        e => TargetError::Netns {
            spec: text.clone(),
            cause: e,
        },
    })?;
    let file = File::open(&checked).map_err(|e| TargetError::Io {
        spec: text.clone(),
        what: format!("opening {}", checked.display()),
        cause: e,
    })?;
    let id = NsId::of(&file).map_err(|e| TargetError::Io {
        spec: text.clone(),
        what: format!("reading {}", checked.display()),
        cause: e,
    })?;
    let resolved_netns = format!("{} (net:[{}])", checked.display(), id.ino);
    let how = match (&located.path, located.pid) {
        (Some(p), Some(_)) => format!("{how} (the tool also names {p})"),
        _ => how,
    };
    Ok(ResolvedTarget {
        spec: spec.clone(),
        netns: file,
        pidfd,
        id,
        opened_from: checked.clone(),
        resolved_netns,
        how,
        host_network: located.host_network,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_process_resolves_and_is_held() {
        let spec: TargetSpec = format!("me=pid:{}", std::process::id()).parse().unwrap();
        let t = resolve(&spec).unwrap();
        assert!(t.alive());
        assert_eq!(t.id, NsId::of_path(Path::new("/proc/self/ns/net")).unwrap());
        assert_eq!(NsId::of_path(&t.netns_path()).unwrap(), t.id);
        assert!(t.resolved_netns.contains("net:["), "{}", t.resolved_netns);
    }

    #[test]
    fn missing_process_and_non_namespace_are_refused() {
        let spec: TargetSpec = "x=pid:999999999".parse().unwrap();
        let e = resolve(&spec).unwrap_err();
        assert!(matches!(e, TargetError::NoSuchProcess { .. }), "{e}");
        let spec: TargetSpec = "x=netns:/etc/hostname".parse().unwrap();
        let e = resolve(&spec).unwrap_err().to_string();
        assert!(e.contains("not a network namespace"), "{e}");
    }

    #[test]
    fn a_missing_tool_says_so() {
        let e = run_tool("docker:x", "nslat-no-such-tool-7f", &[]).unwrap_err();
        assert!(matches!(e, TargetError::ToolMissing { .. }), "{e}");
    }

    #[test]
    fn an_exited_process_is_noticed() {
        let mut child = Command::new("sleep").arg("5").spawn().unwrap();
        let spec: TargetSpec = format!("c=pid:{}", child.id()).parse().unwrap();
        let t = resolve(&spec).unwrap();
        assert!(t.alive());
        assert!(t.check_alive().is_ok());
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(!t.alive());
        let e = t.check_alive().unwrap_err();
        assert!(matches!(e, TargetError::Exited { .. }), "{e}");
        // The held namespace outlives the process.
        assert_eq!(NsId::of_path(&t.netns_path()).unwrap(), t.id);
    }
}
