//! Named network namespaces, following the `ip netns` convention (`/run/netns/NAME` bind mounts):
//! create, delete, list, and run code on a thread that has entered one.
//!
//! A socket keeps the namespace it was created in, so the pattern everywhere in nslat is: enter the
//! namespace on a fresh thread, create the sockets there, and keep using them from any thread.

use std::fs::{self, File};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::thread;

use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{setns, unshare, CloneFlags};
use nix::sys::statfs::{fstatfs, NSFS_MAGIC};

/// Where `ip netns` keeps its named namespaces.
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Errors from namespace handling.
#[derive(Debug, thiserror::Error)]
pub enum NetnsError {
    #[error("network namespace '{0}' not found (see `ip netns list`)")]
    NotFound(String),
    #[error("{0} is not a network namespace (give a name from `ip netns list` or a path like /proc/PID/ns/net)")]
    NotANamespace(PathBuf),
    #[error("network namespace '{0}' already exists")]
    AlreadyExists(String),
    #[error("invalid namespace name '{0}': use letters, digits, '-', '_' or '.' (at most 64)")]
    InvalidName(String),
    #[error("{what} needs root (CAP_SYS_ADMIN); run it with sudo")]
    NotRoot { what: String },
    #[error("{what}: permission denied even as root (a process this one may not inspect?); give another --pid or --netns")]
    Denied { what: String },
    #[error("{what}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the thread running inside the namespace panicked")]
    ThreadPanicked,
}

type Result<T, E = NetnsError> = std::result::Result<T, E>;

fn sys(what: impl Into<String>) -> impl FnOnce(nix::Error) -> NetnsError {
    let what = what.into();
    move |source| {
        if source == nix::Error::EPERM {
            denied(what)
        } else {
            NetnsError::Sys { what, source }
        }
    }
}

/// Permission denied: without root, root is what is missing; as root, say so instead.
fn denied(what: String) -> NetnsError {
    if is_root() {
        NetnsError::Denied { what }
    } else {
        NetnsError::NotRoot { what }
    }
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> NetnsError {
    let what = what.into();
    move |source| {
        if source.kind() == std::io::ErrorKind::PermissionDenied {
            denied(what)
        } else {
            NetnsError::Io { what, source }
        }
    }
}

/// Checks that `name` is usable as a namespace name (and so as a file name under /run/netns).
pub fn validate_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name != "."
        && name != ".."
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(NetnsError::InvalidName(name.to_string()))
    }
}

/// The bind-mount path of a named namespace.
pub fn path_of(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Resolves a user's `--netns NAME|PATH`: a bare name means `/run/netns/NAME`; anything with a
/// `/` is a path (e.g. `/proc/PID/ns/net`). The target must exist and be a network namespace.
pub fn resolve(name_or_path: &str) -> Result<PathBuf> {
    let path = if name_or_path.contains('/') {
        PathBuf::from(name_or_path)
    } else {
        validate_name(name_or_path)?;
        path_of(name_or_path)
    };
    let file = match File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(NetnsError::NotFound(name_or_path.to_string()))
        }
        Err(e) => return Err(io(format!("opening {}", path.display()))(e)),
    };
    ensure_netns(&file, &path)?;
    Ok(path)
}

fn ensure_netns(file: &File, path: &Path) -> Result<()> {
    let st = fstatfs(file.as_fd()).map_err(sys(format!("statfs {}", path.display())))?;
    if st.filesystem_type() != NSFS_MAGIC {
        return Err(NetnsError::NotANamespace(path.to_path_buf()));
    }
    // nsfs also holds other namespace kinds: ask the kernel which one this is.
    // SAFETY: NS_GET_NSTYPE takes no argument and only returns an int.
    let kind = unsafe { libc::ioctl(std::os::fd::AsRawFd::as_raw_fd(file), NS_GET_NSTYPE) };
    if kind >= 0 && kind != libc::CLONE_NEWNET {
        return Err(NetnsError::NotANamespace(path.to_path_buf()));
    }
    Ok(())
}

/// `_IO(0xb7, 0x3)` from linux/nsfs.h.
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// Makes `/run/netns` exist and be a shared mount point, as `ip netns add` does, so namespaces
/// created here are visible to `ip netns` in every mount namespace.
fn prepare_run_dir() -> Result<()> {
    fs::create_dir_all(NETNS_RUN_DIR).map_err(io(format!("creating {NETNS_RUN_DIR}")))?;
    let flags = MsFlags::MS_SHARED | MsFlags::MS_REC;
    match mount::<str, str, str, str>(None, NETNS_RUN_DIR, None, flags, None) {
        Ok(()) => Ok(()),
        Err(nix::Error::EINVAL) => {
            // Not a mount point yet: bind it onto itself, then make it shared.
            mount::<str, str, str, str>(
                Some(NETNS_RUN_DIR),
                NETNS_RUN_DIR,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None,
            )
            .map_err(sys(format!("bind-mounting {NETNS_RUN_DIR}")))?;
            mount::<str, str, str, str>(None, NETNS_RUN_DIR, None, flags, None)
                .map_err(sys(format!("making {NETNS_RUN_DIR} shared")))
        }
        Err(e) => Err(sys(format!("making {NETNS_RUN_DIR} shared"))(e)),
    }
}

/// Creates the named namespace `/run/netns/NAME` (like `ip netns add NAME`) with `lo` down.
pub fn create(name: &str) -> Result<PathBuf> {
    create_and_run(name, || Ok::<(), NetnsError>(())).map(|(p, ())| p)
}

/// Creates the named namespace like [`create`] and runs `f` on the creating thread, which is
/// inside the new namespace (one thread for both: sockets `f` opens stay in the namespace). If
/// `f` fails, the namespace stays (the caller decides; it is recorded by then).
pub fn create_and_run<T, E, F>(name: &str, f: F) -> std::result::Result<(PathBuf, T), E>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
    F: FnOnce() -> std::result::Result<T, E> + Send + 'static,
{
    validate_name(name)?;
    prepare_run_dir()?;
    let path = path_of(name);
    match fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(NetnsError::AlreadyExists(name.to_string()).into())
        }
        Err(e) => return Err(io(format!("creating {}", path.display()))(e).into()),
    }
    let target = path.clone();
    let made = thread::Builder::new()
        .name("nslat-netns".into())
        .spawn(
            move || -> std::result::Result<std::result::Result<T, E>, NetnsError> {
                unshare(CloneFlags::CLONE_NEWNET).map_err(sys("creating a network namespace"))?;
                mount::<str, Path, str, str>(
                    Some("/proc/thread-self/ns/net"),
                    &target,
                    Some("none"),
                    MsFlags::MS_BIND,
                    None,
                )
                .map_err(sys(format!(
                    "bind-mounting the namespace on {}",
                    target.display()
                )))?;
                Ok(f())
            },
        )
        .map_err(io("spawning a thread"))?
        .join()
        .map_err(|_| NetnsError::ThreadPanicked)?;
    match made {
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e.into())
        }
        Ok(r) => r.map(|t| (path, t)),
    }
}

/// Deletes a named namespace (like `ip netns delete`). Returns `Ok(false)` if it did not exist.
/// The namespace itself goes away once no process or socket holds it any more.
pub fn delete(name: &str) -> Result<bool> {
    validate_name(name)?;
    let path = path_of(name);
    if !path.exists() {
        return Ok(false);
    }
    match umount2(&path, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => {}
        Err(e) => return Err(sys(format!("unmounting {}", path.display()))(e)),
    }
    match fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(io(format!("removing {}", path.display()))(e)),
    }
}

/// Names under /run/netns that start with `prefix`, sorted.
pub fn list_with_prefix(prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(NETNS_RUN_DIR)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

/// Moves the calling thread into the network namespace at `path`. Only call this on a thread
/// you own (see [`run_in`] and [`spawn_in`]); the thread stays there until it exits.
pub fn enter(path: &Path) -> Result<()> {
    let file = File::open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            NetnsError::NotFound(path.display().to_string())
        } else {
            io(format!("opening {}", path.display()))(e)
        }
    })?;
    ensure_netns(&file, path)?;
    setns(file.as_fd(), CloneFlags::CLONE_NEWNET).map_err(sys(format!(
        "entering network namespace {}",
        path.display()
    )))
}

/// Runs `f` on a new thread inside the namespace at `path` (or in the caller's namespace when
/// `path` is `None`) and returns its result. Sockets made by `f` stay in that namespace.
pub fn run_in<T, E, F>(path: Option<&Path>, f: F) -> std::result::Result<T, E>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
    F: FnOnce() -> std::result::Result<T, E> + Send + 'static,
{
    spawn_in(path, f)?
        .join()
        .map_err(|_| E::from(NetnsError::ThreadPanicked))?
}

/// Spawns a thread that enters the namespace at `path` (if any) and then runs `f`.
pub fn spawn_in<T, E, F>(
    path: Option<&Path>,
    f: F,
) -> Result<thread::JoinHandle<std::result::Result<T, E>>>
where
    T: Send + 'static,
    E: From<NetnsError> + Send + 'static,
    F: FnOnce() -> std::result::Result<T, E> + Send + 'static,
{
    let path = path.map(Path::to_path_buf);
    thread::Builder::new()
        .name("nslat-netns".into())
        .spawn(move || {
            if let Some(p) = &path {
                enter(p).map_err(E::from)?;
            }
            f()
        })
        .map_err(io("spawning a thread"))
}

/// Whether the calling process runs as root (effective uid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_validated() {
        assert!(validate_name("nslat-lab-node").is_ok());
        assert!(validate_name("a.b_c-1").is_ok());
        for bad in ["", ".", "..", "a/b", "with space", &"x".repeat(65)] {
            assert!(validate_name(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn a_regular_file_is_not_a_namespace() {
        let f = tempfile::NamedTempFile::new().unwrap();
        let err = resolve(f.path().to_str().unwrap()).unwrap_err();
        assert!(matches!(err, NetnsError::NotANamespace(_)), "{err}");
    }

    #[test]
    fn own_namespace_resolves() {
        assert!(resolve("/proc/self/ns/net").is_ok());
        let err = resolve("/proc/self/ns/uts").unwrap_err();
        assert!(matches!(err, NetnsError::NotANamespace(_)), "{err}");
    }

    #[test]
    fn missing_name_is_not_found() {
        let err = resolve("nslat-does-not-exist-7f3a").unwrap_err();
        assert!(matches!(err, NetnsError::NotFound(_)), "{err}");
    }
}
