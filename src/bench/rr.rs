//! TCP_RR and UDP_RR: one transaction in flight, request then response.
//!
//! Each side does exactly one send and one receive system call per transaction (for sizes that
//! fit one segment). UDP_RR numbers its requests in their first bytes (up to 8) and the server
//! echoes them, so a late response to a timed-out request is recognized and discarded.

use std::io;
use std::net::{IpAddr, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use super::timing::{
    is_timeout, recv_exact, recv_exact_or_end, send_all, sys_recv, sys_send, timed_loop,
    LoopOutcome, ServerCounts,
};

/// How long a UDP_RR transaction waits for its response before it counts as lost.
pub const UDP_TIMEOUT: Duration = Duration::from_millis(10);

/// How many leading bytes of a UDP_RR request carry its sequence number.
pub fn seq_len(request_size: usize, response_size: usize) -> usize {
    request_size.min(response_size).min(8)
}

/// Client: TCP_RR over a connected stream.
pub fn tcp_client(
    s: &TcpStream,
    req: &[u8],
    resp: &mut [u8],
    warmup_ns: u64,
    duration_ns: u64,
    hist: &mut Histogram<u64>,
) -> io::Result<LoopOutcome> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(s);
    timed_loop(warmup_ns, duration_ns, hist, |_| {
        tcp_transaction(fd, req, resp)?;
        Ok(true)
    })
}

/// One TCP_RR transaction on a connected stream: the request out, the whole response in. The
/// one both the timed run and the interleaved blocks ([`crate::measure::sockets`]) make.
#[inline(always)]
pub fn tcp_transaction(fd: i32, req: &[u8], resp: &mut [u8]) -> io::Result<()> {
    send_all(fd, req)?;
    recv_exact(fd, resp)
}

/// One UDP_RR transaction on a connected socket whose read timeout is the per-transaction
/// timeout: the request numbered `seq + 1` in its first `k` bytes ([`seq_len`]), then its
/// response. `Ok(false)`: lost (no answer in time, or an ICMP error from an earlier datagram);
/// late answers to earlier requests are skipped. The one both the timed run and the
/// interleaved blocks ([`crate::measure::sockets`]) make: no allocation, no clock read.
#[inline(always)]
pub fn udp_transaction(
    fd: i32,
    req: &mut [u8],
    resp: &mut [u8],
    k: usize,
    seq: &mut u64,
) -> io::Result<bool> {
    *seq = seq.wrapping_add(1);
    let tag = seq.to_le_bytes();
    req[..k].copy_from_slice(&tag[..k]);
    if sys_send(fd, req) < 0 {
        let e = io::Error::last_os_error();
        // An ICMP error from an earlier datagram: this request is lost, not the run.
        if e.kind() == io::ErrorKind::ConnectionRefused {
            return Ok(false);
        }
        return Err(e);
    }
    loop {
        let n = sys_recv(fd, resp);
        if n >= 0 {
            if n as usize >= k && resp[..k] == tag[..k] {
                return Ok(true);
            }
            continue; // a late answer to an earlier, timed-out request
        }
        let e = io::Error::last_os_error();
        match e.kind() {
            _ if is_timeout(&e) => return Ok(false),
            io::ErrorKind::Interrupted => continue,
            _ => return Err(e),
        }
    }
}

/// Client: UDP_RR over a connected socket whose read timeout is the per-transaction timeout.
pub fn udp_client(
    s: &UdpSocket,
    req: &mut [u8],
    resp: &mut [u8],
    warmup_ns: u64,
    duration_ns: u64,
    hist: &mut Histogram<u64>,
) -> io::Result<LoopOutcome> {
    let k = seq_len(req.len(), resp.len());
    let fd = std::os::fd::AsRawFd::as_raw_fd(s);
    let mut seq: u64 = 0;
    timed_loop(warmup_ns, duration_ns, hist, |_| {
        udp_transaction(fd, req, resp, k, &mut seq)
    })
}

/// Server: answers TCP_RR requests until the client closes or `stop` is set.
pub fn tcp_server(
    s: &TcpStream,
    request_size: usize,
    response_size: usize,
    stop: &AtomicBool,
) -> io::Result<ServerCounts> {
    // The socket has no timeouts: a stopping session shuts it down, which ends the recv.
    let fd = std::os::fd::AsRawFd::as_raw_fd(s);
    let mut req = vec![0u8; request_size];
    let resp = vec![0u8; response_size];
    let mut c = ServerCounts::default();
    loop {
        if !recv_exact_or_end(fd, &mut req)? || stop.load(Ordering::Relaxed) {
            break;
        }
        if let Err(e) = send_all(fd, &resp) {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            return Err(e);
        }
        c.transactions += 1;
        c.bytes += (request_size + response_size) as u64;
    }
    Ok(c)
}

/// Server: answers UDP_RR requests on `s` until `stop` is set (and the socket shut down).
/// The first datagram from `peer_ip` (the control connection's address, canonical) makes its
/// sender the only peer (the socket is connected to it, so the kernel drops everyone else's from
/// then on); datagrams from other addresses before that are dropped and counted in
/// `foreign_datagrams`, as the TCP data path refuses connections from other addresses. With
/// `drop_every = Some(n)`, every n-th request goes unanswered (for testing loss handling).
pub fn udp_server(
    s: &UdpSocket,
    peer_ip: IpAddr,
    request_size: usize,
    response_size: usize,
    drop_every: Option<u32>,
    stop: &AtomicBool,
) -> io::Result<ServerCounts> {
    let k = seq_len(request_size, response_size);
    let fd = std::os::fd::AsRawFd::as_raw_fd(s);
    let mut req = vec![0u8; request_size.max(1)];
    let mut resp = vec![0u8; response_size];
    let mut c = ServerCounts::default();
    let mut received: u64 = 0;
    let mut connected = false;
    while !stop.load(Ordering::Relaxed) {
        let got = if connected {
            let n = sys_recv(fd, &mut req);
            if n >= 0 {
                Ok(n as usize)
            } else {
                Err(io::Error::last_os_error())
            }
        } else {
            let r = s.recv_from(&mut req);
            if stop.load(Ordering::Relaxed) {
                break; // shut down (no peer ever came), not a datagram
            }
            match r {
                Ok((_, from)) if from.ip().to_canonical() != peer_ip => {
                    c.foreign_datagrams += 1;
                    continue;
                }
                Ok((n, from)) => s.connect(from).map(|_| {
                    connected = true;
                    n
                }),
                Err(e) => Err(e),
            }
        };
        let n = match got {
            Ok(0) if stop.load(Ordering::Relaxed) => break,
            Ok(n) => n,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            // ICMP errors from a vanished client: keep going until told to stop.
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => continue,
            Err(e) => return Err(e),
        };
        received += 1;
        if let Some(every) = drop_every {
            if every > 0 && received % every as u64 == 0 {
                continue;
            }
        }
        let kk = k.min(n);
        resp[..kk].copy_from_slice(&req[..kk]);
        if sys_send(fd, &resp) < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::ConnectionRefused {
                continue;
            }
            return Err(e);
        }
        c.transactions += 1;
        c.bytes += (n + response_size) as u64;
    }
    Ok(c)
}
