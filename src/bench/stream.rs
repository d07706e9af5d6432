//! TCP_STREAM (client sends) and TCP_MAERTS (server sends): bulk throughput one way.
//!
//! A "transaction" here is one send or receive call; its duration goes into the histogram.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};

use hdrhistogram::Histogram;

use super::timing::{is_timeout, timed_loop, LoopOutcome, ServerCounts};

/// Client side of either direction: `send` true for TCP_STREAM, false for TCP_MAERTS. Returns
/// the loop outcome and the payload bytes moved during the measured part.
pub fn client(
    s: &TcpStream,
    send: bool,
    buf: &mut [u8],
    warmup_ns: u64,
    duration_ns: u64,
    hist: &mut Histogram<u64>,
) -> io::Result<(LoopOutcome, u64)> {
    let mut s = s;
    let mut measured: u64 = 0;
    let out = timed_loop(warmup_ns, duration_ns, hist, |timed| {
        let n = if send { s.write(buf)? } else { s.read(buf)? };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the data connection",
            ));
        }
        if timed {
            measured += n as u64;
        }
        Ok(true)
    })?;
    Ok((out, measured))
}

/// Server: receives (`send` false, TCP_STREAM) or sends (`send` true, TCP_MAERTS) until the
/// client closes or `stop` is set.
pub fn server(
    s: &TcpStream,
    send: bool,
    size: usize,
    stop: &AtomicBool,
) -> io::Result<ServerCounts> {
    let mut s = s;
    let mut buf = vec![0u8; size];
    let mut c = ServerCounts::default();
    while !stop.load(Ordering::Relaxed) {
        let r = if send {
            s.write(&buf)
        } else {
            s.read(&mut buf)
        };
        match r {
            Ok(0) => break,
            Ok(n) => {
                c.transactions += 1;
                c.bytes += n as u64;
            }
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            // The client closing its end is how a MAERTS test ends.
            Err(e)
                if send
                    && matches!(
                        e.kind(),
                        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset
                    ) =>
            {
                break
            }
            Err(e) => return Err(e),
        }
    }
    Ok(c)
}
