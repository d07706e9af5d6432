//! The engine's low-level helpers: the clock, per-thread CPU time, CPU pinning, the latency
//! histogram and its summary.

use std::io;

use hdrhistogram::Histogram;

/// The clock every transaction is timed with.
pub const CLOCK_NAME: &str = "CLOCK_MONOTONIC";

/// The largest latency the histogram records exactly (60 s); longer ones saturate.
pub const HISTOGRAM_MAX_NS: u64 = 60_000_000_000;

/// Nanoseconds on CLOCK_MONOTONIC (one vDSO call, no system call).
#[inline(always)]
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid, writable timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time (user + system) the calling thread has used, in nanoseconds (getrusage RUSAGE_THREAD).
pub fn thread_cpu_ns() -> u64 {
    // SAFETY: an all-zero rusage is valid; getrusage only writes into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: ru is a valid, writable rusage.
    unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    let tv = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Online CPUs of this machine.
pub fn nproc() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    if n > 0 {
        n as usize
    } else {
        1
    }
}

/// Pins the calling thread to `cpu`.
pub fn pin_to(cpu: usize) -> io::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu).map_err(io::Error::from)?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set).map_err(io::Error::from)
}

/// A histogram for latencies in nanoseconds, 1 ns .. 60 s at 3 significant digits, allocated once.
pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, 3).expect("valid histogram bounds")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencySummary;

    #[test]
    fn clock_is_monotonic_and_fine() {
        let a = now_ns();
        let b = now_ns();
        assert!(b >= a);
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(now_ns() - a >= 2_000_000);
    }

    #[test]
    fn thread_cpu_grows_when_spinning() {
        // Spin until this thread has used 10 ms of CPU (on a loaded machine that can take far
        // longer than 10 ms of wall time); a thread clock that does not move fails at the deadline.
        let c0 = thread_cpu_ns();
        let t0 = now_ns();
        let mut x = 0u64;
        while thread_cpu_ns() - c0 < 10_000_000 && now_ns() - t0 < 10_000_000_000 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        assert!(x > 0);
        assert!(
            thread_cpu_ns() - c0 >= 10_000_000,
            "thread CPU time did not grow"
        );
    }

    #[test]
    fn pinning_to_cpu_zero_works_and_beyond_fails() {
        std::thread::spawn(|| {
            pin_to(0).unwrap();
            assert!(pin_to(100_000).is_err());
        })
        .join()
        .unwrap();
    }

    #[test]
    fn summary_of_known_values() {
        let mut h = new_histogram();
        for v in 1..=1000u64 {
            h.record(v * 1000).unwrap(); // 1..1000 us
        }
        let s = LatencySummary::from_histogram(&h, 1_000_000_000, 1000);
        assert!((s.mean - 500.5).abs() < 1.0, "{s:?}");
        assert!((s.rate_mean - 1000.0).abs() < 1e-9);
        assert!((s.min - 1.0).abs() < 0.01);
        assert!((s.p50 - 500.0).abs() < 1.0, "{s:?}");
        assert!((s.p90 - 900.0).abs() < 1.0, "{s:?}");
        assert!((s.p99 - 990.0).abs() < 1.0, "{s:?}");
        assert!((s.p99_9 - 999.0).abs() < 1.0, "{s:?}");
        assert!((s.max - 1000.0).abs() < 1.0, "{s:?}");
        assert!((s.stddev - 288.7).abs() < 1.0, "{s:?}");
        assert!(s.min <= s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p99_9);
    }

    #[test]
    fn empty_and_saturated() {
        let h = new_histogram();
        assert_eq!(
            LatencySummary::from_histogram(&h, 5, 0),
            LatencySummary::default()
        );
        let mut h = new_histogram();
        h.saturating_record(u64::MAX);
        let s = LatencySummary::from_histogram(&h, 1, 1);
        assert!(s.max >= 59_000_000.0);
    }
}

/// What a client's timed loop did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopOutcome {
    pub warmup_transactions: u64,
    /// Timed transactions (each one is in the histogram).
    pub transactions: u64,
    /// Transactions that timed out (UDP_RR), not in the histogram.
    pub lost: u64,
    /// From the end of the warm-up to the end of the last transaction.
    pub elapsed_ns: u64,
    /// CPU time of the loop's thread over the measured part.
    pub cpu_ns: u64,
}

/// Runs `one` (one transaction: `Ok(true)` done, `Ok(false)` lost; its argument says whether the
/// measured part has begun) for `warmup_ns`, then for
/// `duration_ns` more, timing each transaction into `hist`. One clock read per transaction: the
/// end of one is the start of the next. Nothing is allocated here.
#[inline]
pub fn timed_loop<F>(
    warmup_ns: u64,
    duration_ns: u64,
    hist: &mut Histogram<u64>,
    mut one: F,
) -> io::Result<LoopOutcome>
where
    F: FnMut(bool) -> io::Result<bool>,
{
    // Everything below stays in registers and one histogram bucket per transaction.
    let mut out = LoopOutcome::default();
    let start = now_ns();
    let warm_end = start + warmup_ns;
    let mut t0 = start;
    while t0 < warm_end {
        one(false)?;
        out.warmup_transactions += 1;
        t0 = now_ns();
    }
    let end = t0 + duration_ns;
    let m0 = t0;
    let cpu0 = thread_cpu_ns();
    loop {
        if one(true)? {
            let t1 = now_ns();
            hist.saturating_record(t1 - t0);
            out.transactions += 1;
            t0 = t1;
        } else {
            out.lost += 1;
            t0 = now_ns();
        }
        if t0 >= end {
            break;
        }
    }
    out.cpu_ns = thread_cpu_ns() - cpu0;
    out.elapsed_ns = t0 - m0;
    Ok(out)
}

/// Whether an I/O error is a socket timeout (SO_RCVTIMEO / SO_SNDTIMEO expired).
pub fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Server side: fills `buf` from `r`, waiting through socket timeouts until `stop` is set.
/// Returns false on a clean end of stream before the first byte, or when stopped.
#[inline]
pub fn server_read_full(
    r: &mut impl io::Read,
    buf: &mut [u8],
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Server side: writes all of `buf`, waiting through socket timeouts until `stop` is set.
/// Returns false when stopped.
#[inline]
pub fn server_write_all(
    w: &mut impl io::Write,
    buf: &[u8],
    stop: &std::sync::atomic::AtomicBool,
) -> io::Result<bool> {
    let mut put = 0;
    while put < buf.len() {
        match w.write(&buf[put..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => put += n,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    return Ok(false);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// What a server data loop handled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServerCounts {
    pub transactions: u64,
    pub bytes: u64,
    /// UDP_RR: datagrams dropped because they came from an address other than the client's.
    pub foreign_datagrams: u64,
}

/// `send(2)` as a bare system call. glibc's `send` is a cancellation point: in a multi-threaded
/// process it brackets the call with two atomic operations, a measurable cost per transaction.
#[inline(always)]
pub fn sys_send(fd: std::os::fd::RawFd, buf: &[u8]) -> isize {
    // SAFETY: buf is valid for buf.len() bytes; no address is passed.
    unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf.as_ptr(),
            buf.len(),
            libc::MSG_NOSIGNAL,
            std::ptr::null::<libc::sockaddr>(),
            0,
        ) as isize
    }
}

/// `recv(2)` as a bare system call (see [`sys_send`]).
#[inline(always)]
pub fn sys_recv(fd: std::os::fd::RawFd, buf: &mut [u8]) -> isize {
    // SAFETY: buf is valid and writable for buf.len() bytes; no address is asked for.
    unsafe {
        libc::syscall(
            libc::SYS_recvfrom,
            fd,
            buf.as_mut_ptr(),
            buf.len(),
            0,
            std::ptr::null_mut::<libc::sockaddr>(),
            std::ptr::null_mut::<libc::socklen_t>(),
        ) as isize
    }
}

/// Sends all of `buf` on a connected socket: one `send` system call in the common case.
#[inline(always)]
pub fn send_all(fd: std::os::fd::RawFd, buf: &[u8]) -> io::Result<()> {
    let n = sys_send(fd, buf);
    if n >= 0 && n as usize == buf.len() {
        return Ok(());
    }
    send_rest(fd, buf, n)
}

#[cold]
fn send_rest(fd: std::os::fd::RawFd, buf: &[u8], first: isize) -> io::Result<()> {
    let mut put = 0usize;
    let mut n = first;
    loop {
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else {
            put += n as usize;
            if put >= buf.len() {
                return Ok(());
            }
        }
        n = sys_send(fd, &buf[put..]);
    }
}

/// Fills `buf` from a connected socket: one `recv` system call in the common case.
#[inline(always)]
pub fn recv_exact(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<()> {
    let n = sys_recv(fd, buf);
    if n > 0 && n as usize == buf.len() {
        return Ok(());
    }
    recv_rest(fd, buf, n)
}

/// Server side: like [`recv_exact`], but a peer that closes (or a socket shut down) before the
/// first byte is a clean end: `Ok(false)`.
#[inline(always)]
pub fn recv_exact_or_end(fd: std::os::fd::RawFd, buf: &mut [u8]) -> io::Result<bool> {
    let n = sys_recv(fd, buf);
    if n > 0 && n as usize == buf.len() {
        return Ok(true);
    }
    if n == 0 {
        return Ok(false);
    }
    recv_rest(fd, buf, n).map(|_| true)
}

#[cold]
fn recv_rest(fd: std::os::fd::RawFd, buf: &mut [u8], first: isize) -> io::Result<()> {
    let mut got = 0usize;
    let mut n = first;
    loop {
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        } else if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer closed the connection",
            ));
        } else {
            got += n as usize;
            if got >= buf.len() {
                return Ok(());
            }
        }
        n = sys_recv(fd, &mut buf[got..]);
    }
}
