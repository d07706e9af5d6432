//! The machine-wide measurement lock: one nslat measurement per CPU at a time.
//!
//! Two measurements pinned to the same CPU share it and each reports the other's load as its own
//! (twice the latency, backlog packets per transaction counted twice). So every measuring command
//! (`nslat run`, `nslat compare`) takes one `flock` per CPU it pins threads to, on
//! `/run/nslat/measure/cpuN.lock` (in CPU order, so two takers never deadlock). The holder writes
//! its PID and command into each file, so the one who waits can say who holds it.
//!
//! Owns the lock files only; what a command does when the CPUs are busy ([`LockPolicy`]) is the
//! caller's choice. A forced measurement gets a [`Contention`] the report must carry.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::fcntl::{Flock, FlockArg};

/// Where the per-CPU lock files live (root); others use a directory in the temp dir.
pub const LOCK_DIR: &str = "/run/nslat/measure";

/// How often a waiting taker retries.
const POLL: Duration = Duration::from_millis(100);

/// What to do when another measurement holds one of the CPUs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockPolicy {
    /// Wait at most this long (zero: refuse at once), then fail with [`LockError::Busy`].
    Wait(Duration),
    /// Measure anyway; the result carries a [`Contention`].
    Force,
}

/// Another measurement that held CPUs we measured on (with `--force`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contention {
    /// The CPUs that were held, in order.
    pub cpus: Vec<usize>,
    /// Who held them, as written in the lock file ("pid 1234: nslat compare ...").
    pub holder: String,
}

impl Contention {
    /// One sentence for a report: what was shared, with whom.
    pub fn describe(&self) -> String {
        format!(
            "measured with --force while another nslat measurement ({}) held CPU {}: both \
             measurements shared the CPU, so latencies and per-transaction counters include the \
             other's work",
            self.holder,
            join(&self.cpus)
        )
    }
}

/// Errors of the lock.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "CPU {cpus} is busy with another nslat measurement ({holder}){waited}: wait for it to \
         finish, raise --lock-wait, or pass --force to measure anyway (the report is then flagged)"
    )]
    Busy {
        cpus: String,
        holder: String,
        waited: String,
    },
    #[error("{what}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The held locks; released when dropped.
#[derive(Debug)]
pub struct MeasureLock {
    _held: Vec<Flock<File>>,
    /// Set when the policy was [`LockPolicy::Force`] and some CPU was held by another.
    pub contention: Option<Contention>,
}

fn join(cpus: &[usize]) -> String {
    cpus.iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The lock directory: [`LOCK_DIR`] when it can be created (root), else one in the temp dir.
fn lock_dir() -> PathBuf {
    if fs::create_dir_all(LOCK_DIR).is_ok() {
        return PathBuf::from(LOCK_DIR);
    }
    std::env::temp_dir().join("nslat-measure")
}

fn open(dir: &Path, cpu: usize) -> Result<File, LockError> {
    let path = dir.join(format!("cpu{cpu}.lock"));
    let io = |source| LockError::Io {
        what: format!("opening the measurement lock {}", path.display()),
        source,
    };
    fs::create_dir_all(dir).map_err(io)?;
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(io)
}

/// Who holds a lock file, as its holder wrote it (or "unknown holder").
fn holder_of(file: &mut File) -> String {
    let mut s = String::new();
    let _ = file.rewind();
    let _ = file.read_to_string(&mut s);
    let s = s.trim();
    if s.is_empty() {
        "unknown holder".into()
    } else {
        s.to_string()
    }
}

/// What a holder writes: its PID and command line.
fn holder_line(command: &str) -> String {
    format!("pid {}: {command}", std::process::id())
}

impl MeasureLock {
    /// Takes the lock on every CPU in `cpus` for `command` (written into the files for whoever
    /// waits). `on_wait` is called once, with a line to show, if the policy waits.
    pub fn acquire(
        cpus: &[usize],
        command: &str,
        policy: LockPolicy,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<MeasureLock, LockError> {
        Self::acquire_in(&lock_dir(), cpus, command, policy, on_wait)
    }

    /// [`MeasureLock::acquire`] with the lock files in `dir` (tests).
    pub fn acquire_in(
        dir: &Path,
        cpus: &[usize],
        command: &str,
        policy: LockPolicy,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<MeasureLock, LockError> {
        let mut cpus = cpus.to_vec();
        cpus.sort_unstable();
        cpus.dedup();
        let started = Instant::now();
        let mut held = Vec::new();
        let mut forced: Vec<usize> = Vec::new();
        let mut holders: Vec<String> = Vec::new();
        let mut told = false;
        for &cpu in &cpus {
            let mut file = open(dir, cpu)?;
            let lock = loop {
                match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                    Ok(lock) => break Some(lock),
                    Err((f, nix::Error::EWOULDBLOCK)) => {
                        file = f;
                        let holder = holder_of(&mut file);
                        match policy {
                            LockPolicy::Force => {
                                forced.push(cpu);
                                if !holders.contains(&holder) {
                                    holders.push(holder);
                                }
                                break None;
                            }
                            LockPolicy::Wait(limit) if started.elapsed() >= limit => {
                                let waited = if limit.is_zero() {
                                    String::new()
                                } else {
                                    format!(" for {:.0} s", limit.as_secs_f64())
                                };
                                return Err(LockError::Busy {
                                    cpus: cpu.to_string(),
                                    holder,
                                    waited,
                                });
                            }
                            LockPolicy::Wait(limit) => {
                                if !told {
                                    on_wait(&format!(
                                        "waiting for CPU {cpu}: another nslat measurement \
                                         ({holder}) is using it; waiting up to {:.0} s \
                                         (--force measures anyway, flagged)",
                                        limit.as_secs_f64()
                                    ));
                                    told = true;
                                }
                                std::thread::sleep(POLL);
                            }
                        }
                    }
                    Err((_, e)) => {
                        return Err(LockError::Io {
                            what: format!("locking the measurement lock of CPU {cpu}"),
                            source: e.into(),
                        })
                    }
                }
            };
            if let Some(mut lock) = lock {
                let line = holder_line(command);
                let _ = lock.set_len(0);
                let _ = lock.rewind();
                let _ = lock.write_all(line.as_bytes());
                let _ = lock.flush();
                held.push(lock);
            }
        }
        let contention = (!forced.is_empty()).then(|| Contention {
            cpus: forced,
            holder: holders.join("; "),
        });
        Ok(MeasureLock {
            _held: held,
            contention,
        })
    }
}

/// The command line of this process, for the lock files ("nslat compare --modes host,bridge").
pub fn this_command() -> String {
    let args: Vec<String> = std::env::args().collect();
    let mut s = args.join(" ");
    if let Some(first) = args.first() {
        let name = Path::new(first)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        s = std::iter::once(name)
            .chain(args.iter().skip(1).cloned())
            .collect::<Vec<_>>()
            .join(" ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn second_taker_of_a_cpu_refuses_waits_or_is_flagged() {
        let d = dir();
        let mut quiet = |_: &str| {};
        let first = MeasureLock::acquire_in(d.path(), &[1], "first", LockPolicy::Force, &mut quiet)
            .unwrap();
        assert!(first.contention.is_none());

        let e = MeasureLock::acquire_in(
            d.path(),
            &[0, 1],
            "second",
            LockPolicy::Wait(Duration::ZERO),
            &mut quiet,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("CPU 1 is busy"), "{e}");
        assert!(
            e.contains(&format!("pid {}: first", std::process::id())),
            "{e}"
        );
        assert!(e.contains("--force"), "{e}");

        let mut lines = Vec::new();
        let t = Instant::now();
        let e = MeasureLock::acquire_in(
            d.path(),
            &[1],
            "second",
            LockPolicy::Wait(Duration::from_millis(300)),
            &mut |l: &str| lines.push(l.to_string()),
        )
        .unwrap_err();
        assert!(t.elapsed() >= Duration::from_millis(300));
        assert!(e.to_string().contains("for 0 s") || e.to_string().contains("busy"));
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("waiting for CPU 1"), "{lines:?}");

        let forced =
            MeasureLock::acquire_in(d.path(), &[1, 0], "third", LockPolicy::Force, &mut quiet)
                .unwrap();
        let c = forced.contention.clone().unwrap();
        assert_eq!(c.cpus, vec![1]);
        assert!(c.describe().contains("--force"));
        drop(forced);

        drop(first);
        let again = MeasureLock::acquire_in(
            d.path(),
            &[1],
            "fourth",
            LockPolicy::Wait(Duration::ZERO),
            &mut quiet,
        )
        .unwrap();
        assert!(again.contention.is_none());
    }

    #[test]
    fn a_waiting_taker_gets_the_cpu_when_it_is_released() {
        let d = dir();
        let path = d.path().to_path_buf();
        let first =
            MeasureLock::acquire_in(&path, &[3], "first", LockPolicy::Force, &mut |_| {}).unwrap();
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(200));
            drop(first);
        });
        let mut waited = false;
        let got = MeasureLock::acquire_in(
            d.path(),
            &[3],
            "second",
            LockPolicy::Wait(Duration::from_secs(10)),
            &mut |_| waited = true,
        );
        releaser.join().unwrap();
        assert!(got.unwrap().contention.is_none());
        assert!(waited);
    }
}
