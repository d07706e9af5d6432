//! TCP_CRR: connect, request, response, close; one new connection per transaction.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};

use hdrhistogram::Histogram;

use super::timing::{
    is_timeout, server_read_full, server_write_all, timed_loop, LoopOutcome, ServerCounts,
};

/// Client: one connection per transaction to `addr`.
pub fn client(
    addr: SocketAddr,
    req: &[u8],
    resp: &mut [u8],
    warmup_ns: u64,
    duration_ns: u64,
    hist: &mut Histogram<u64>,
) -> io::Result<LoopOutcome> {
    timed_loop(warmup_ns, duration_ns, hist, |_| {
        let mut s = TcpStream::connect(addr)?;
        s.set_nodelay(true)?;
        s.write_all(req)?;
        s.read_exact(resp)?;
        Ok(true)
    })
}

/// Server: accepts connections from `peer_ip` on `l`, answers one request on each and closes it,
/// until `stop` is set (and the listener shut down, which makes `accept` fail).
pub fn server(
    l: &TcpListener,
    peer_ip: std::net::IpAddr,
    request_size: usize,
    response_size: usize,
    stop: &AtomicBool,
) -> io::Result<ServerCounts> {
    let mut req = vec![0u8; request_size];
    let resp = vec![0u8; response_size];
    let mut c = ServerCounts::default();
    while !stop.load(Ordering::Relaxed) {
        let mut s = match l.accept() {
            Ok((s, from)) if from.ip().to_canonical() == peer_ip => s,
            Ok(_) => continue,
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
            Err(_) if stop.load(Ordering::Relaxed) => break,
            Err(e) => return Err(e),
        };
        s.set_nodelay(true)?;
        // A client that vanishes mid-transaction costs one connection, not the test.
        match server_read_full(&mut s, &mut req, stop) {
            Ok(true) => {}
            Ok(false) | Err(_) => continue,
        }
        if let Ok(true) = server_write_all(&mut s, &resp, stop) {
            c.transactions += 1;
            c.bytes += (request_size + response_size) as u64;
        }
    }
    Ok(c)
}
