//! A job run by a fresh process: this program started again (`/proc/self/exe` with a hidden
//! subcommand), the job sent as JSON on its standard input, the result read as JSON from its
//! standard output. [`super::epochs`] measures every epoch this way: where a process's code and
//! data land in its address space (a new layout every exec) shifts a path's latency for the
//! process's whole life, which a forked child would share with its parent.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use serde::{de::DeserializeOwned, Serialize};

/// Why a child's result did not come back.
#[derive(Debug, thiserror::Error)]
pub enum ChildError {
    #[error("cannot start {exe}: {error}")]
    Spawn { exe: String, error: std::io::Error },
    #[error("the child process gave no result within {0:?} and was killed")]
    Timeout(Duration),
    #[error("the child process ended without a result ({0})")]
    Died(String),
    #[error("the child process's result could not be read: {0}")]
    Garbled(String),
    /// The job's own error, as its message.
    #[error("{0}")]
    Failed(String),
}

/// The program itself, as the kernel has it (the same binary even if its file was replaced).
pub const SELF_EXE: &str = "/proc/self/exe";

/// Runs `exe args...` with `job` as JSON on its standard input and returns what it printed as
/// JSON (a `Result<T, String>`, as [`serve`] writes it); the child is killed after `timeout`.
pub fn run<J, T>(exe: &Path, args: &[&str], job: &J, timeout: Duration) -> Result<T, ChildError>
where
    J: Serialize,
    T: DeserializeOwned,
{
    let input = serde_json::to_vec(job).map_err(|e| ChildError::Garbled(e.to_string()))?;
    let mut child = Command::new(exe)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|error| ChildError::Spawn {
            exe: exe.display().to_string(),
            error,
        })?;
    let fed = child
        .stdin
        .take()
        .map(|mut stdin| stdin.write_all(&input))
        .transpose();
    let read = read_until(&mut child, timeout);
    let status = child.wait();
    let bytes = read?;
    if bytes.is_empty() {
        return Err(ChildError::Died(match (status, fed) {
            (Ok(s), Ok(_)) => s.to_string(),
            (Ok(s), Err(e)) => format!("{s}; its input: {e}"),
            (Err(e), _) => e.to_string(),
        }));
    }
    let out: Result<T, String> =
        serde_json::from_slice(&bytes).map_err(|e| ChildError::Garbled(e.to_string()))?;
    out.map_err(ChildError::Failed)
}

/// Reads the child's standard output to its end; kills the child when `timeout` passes first.
fn read_until(child: &mut Child, timeout: Duration) -> Result<Vec<u8>, ChildError> {
    let deadline = Instant::now() + timeout;
    let mut out = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let Some(mut stdout) = child.stdout.take() else {
        return Ok(out);
    };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let _ = child.kill();
            return Err(ChildError::Timeout(timeout));
        }
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        let mut fds = [PollFd::new(stdout.as_fd(), PollFlags::POLLIN)];
        match poll(
            &mut fds,
            PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX),
        ) {
            Ok(0) | Err(nix::errno::Errno::EINTR) => continue,
            Ok(_) => {}
            Err(e) => {
                let _ = child.kill();
                return Err(ChildError::Garbled(e.to_string()));
            }
        }
        match stdout.read(&mut buf) {
            Ok(0) => return Ok(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = child.kill();
                return Err(ChildError::Garbled(e.to_string()));
            }
        }
    }
}

/// The child's side: reads a job from standard input, runs `f` on it and prints its result
/// (a panic becomes an error). Returns the exit status (0 once the result is written).
pub fn serve<J, T, F>(f: F) -> i32
where
    J: DeserializeOwned,
    T: Serialize,
    F: FnOnce(J) -> Result<T, String>,
{
    let mut input = Vec::new();
    let out: Result<T, String> = match std::io::stdin().read_to_end(&mut input) {
        Err(e) => Err(format!("reading the job: {e}")),
        Ok(_) => match serde_json::from_slice::<J>(&input) {
            Err(e) => Err(format!("the job is not valid: {e}")),
            Ok(job) => std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(job)))
                .unwrap_or_else(|_| Err("the child process panicked".into())),
        },
    };
    let Ok(bytes) = serde_json::to_vec(&out) else {
        return 1;
    };
    let mut stdout = std::io::stdout().lock();
    i32::from(
        stdout
            .write_all(&bytes)
            .and_then(|_| stdout.flush())
            .is_err(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh() -> &'static Path {
        Path::new("/bin/sh")
    }

    #[test]
    fn a_result_comes_back_from_another_process() {
        // `cat` echoes the job: a job that is itself an `Ok` result comes back as the result.
        let job: Result<Vec<u64>, String> = Ok((0..10_000).collect());
        let v: Vec<u64> = run(sh(), &["-c", "cat"], &job, Duration::from_secs(10)).unwrap();
        assert_eq!(v.len(), 10_000);
        assert_eq!(v[9_999], 9_999);
    }

    #[test]
    fn the_jobs_error_comes_back_as_an_error() {
        let job: Result<u8, String> = Err("no cells".into());
        let e = run::<_, u8>(sh(), &["-c", "cat"], &job, Duration::from_secs(10)).unwrap_err();
        assert_eq!(e.to_string(), "no cells");
    }

    #[test]
    fn a_child_without_a_result_or_with_garbage_is_an_error() {
        let e = run::<_, u8>(sh(), &["-c", "exit 3"], &0u8, Duration::from_secs(10)).unwrap_err();
        assert!(matches!(e, ChildError::Died(_)), "{e}");
        assert!(e.to_string().contains('3'), "{e}");
        let e = run::<_, u8>(
            sh(),
            &["-c", "echo nonsense"],
            &0u8,
            Duration::from_secs(10),
        )
        .unwrap_err();
        assert!(matches!(e, ChildError::Garbled(_)), "{e}");
        let e = run::<_, u8>(
            Path::new("/nonexistent/nslat"),
            &[],
            &0u8,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(matches!(e, ChildError::Spawn { .. }), "{e}");
    }

    #[test]
    fn a_child_that_hangs_is_killed_at_the_timeout() {
        let t = Instant::now();
        let e = run::<_, u8>(
            sh(),
            &["-c", "exec sleep 30"],
            &0u8,
            Duration::from_millis(300),
        )
        .unwrap_err();
        assert!(matches!(e, ChildError::Timeout(_)), "{e}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }
}
