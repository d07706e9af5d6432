//! nslat's control protocol: versioned, length-prefixed, size-bounded JSON messages.
//!
//! A frame is a 4-byte big-endian length followed by that many bytes of JSON (one [`Message`]).
//! Lengths of zero or above [`MAX_MESSAGE`] are rejected before anything is allocated.
//!
//! A session: client `Hello` → server `Ack` (data port) or `Refused`; the client runs the test on
//! a separate data socket, then sends `Done`; the server answers `Done` with its side's figures;
//! the client says `Bye`.

use std::io::{self, Read, Write};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::TestKind;

/// The protocol version spoken by this build. Client and server must agree exactly.
pub const PROTOCOL_VERSION: u32 = 1;

/// The largest message body accepted (64 KiB).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// Errors reading or writing control messages.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("control message of {0} bytes is larger than the limit of {MAX_MESSAGE} bytes")]
    TooLarge(usize),
    /// The first bytes are text where a length prefix belongs: another protocol answered.
    #[error("the peer does not speak nslat's control protocol (it spoke like {0})")]
    Foreign(String),
    #[error("empty control message")]
    Empty,
    #[error("control message is truncated (peer closed the connection mid-message)")]
    Truncated,
    #[error("garbled control message: {0}")]
    Garbled(String),
    #[error("the peer closed the control connection")]
    Closed,
    #[error("timed out waiting for a control message")]
    Timeout,
    #[error("control connection: {0}")]
    Io(#[from] io::Error),
}

/// What a client asks for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hello {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    pub test: TestKind,
    pub request_size: u32,
    pub response_size: u32,
    pub send_size: u32,
    /// CPU the server should pin its data thread to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_cpu: Option<u32>,
    /// Warm-up plus measured time, in milliseconds.
    pub duration_ms: u64,
}

/// Why a server refused a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefuseCode {
    Version,
    Token,
    Busy,
    BadRequest,
}

/// The server's side of a finished test.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerDone {
    /// CPU time (user + system) of the server's data thread, in nanoseconds.
    pub cpu_ns: u64,
    /// Transactions (or send/recv calls for streams) the server handled, warm-up included.
    pub transactions: u64,
    /// Payload bytes the server received plus sent.
    pub bytes: u64,
    /// CPU the data thread was pinned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u32>,
    /// UDP_RR: datagrams dropped because they came from an address other than the control
    /// connection's. Left out when zero, so a server that saw none speaks exactly as before.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub foreign_datagrams: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One control message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum Message {
    Hello(Hello),
    Ack {
        version: u32,
        data_port: u16,
    },
    Refused {
        version: u32,
        code: RefuseCode,
        reason: String,
    },
    /// Client: the test is over. Server: its figures.
    Done {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        server: Option<ServerDone>,
    },
    Bye,
}

impl Message {
    /// The message's type as it is on the wire: hello, ack, refused, done, bye.
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Hello(_) => "hello",
            Message::Ack { .. } => "ack",
            Message::Refused { .. } => "refused",
            Message::Done { .. } => "done",
            Message::Bye => "bye",
        }
    }
}

/// Just the version of a message, for telling a version mismatch from garbage.
#[derive(Deserialize)]
struct VersionOnly {
    version: u32,
}

/// Encodes `msg` as one frame (length prefix + JSON).
pub fn encode(msg: &Message) -> Vec<u8> {
    let body = serde_json::to_vec(msg).expect("control messages always serialize");
    let mut out = Vec::with_capacity(4 + body.len());
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

/// Checks a length prefix, before anything is allocated for the body. A prefix that is text
/// (a real one is below 64 KiB, so its first two bytes are zero) means another protocol spoke:
/// [`ControlError::Foreign`] names it.
pub fn check_len(prefix: [u8; 4]) -> Result<usize, ControlError> {
    let len = u32::from_be_bytes(prefix) as usize;
    match len {
        0 => Err(ControlError::Empty),
        n if n > MAX_MESSAGE => Err(match foreign_protocol(&prefix) {
            Some(what) => ControlError::Foreign(what),
            None => ControlError::TooLarge(n),
        }),
        n => Ok(n),
    }
}

/// Which text protocol first bytes look like ("HTTP", "SSH", ...), or `None` for binary.
pub fn foreign_protocol(first: &[u8]) -> Option<String> {
    let text = |b: &u8| b.is_ascii_graphic() || *b == b' ' || *b == b'\r' || *b == b'\n';
    if first.is_empty() || !first.iter().all(text) {
        return None;
    }
    let known: [(&[u8], &str); 9] = [
        (b"HTTP", "HTTP"),
        (b"GET ", "HTTP"),
        (b"POST", "HTTP"),
        (b"HEAD", "HTTP"),
        (b"SSH-", "SSH"),
        (b"220", "SMTP or FTP"),
        (b"+OK", "POP3"),
        (b"* OK", "IMAP"),
        (b"-ERR", "Redis"),
    ];
    for (start, what) in known {
        if first.starts_with(start) || start.starts_with(first) && first.len() >= 3 {
            return Some(what.to_string());
        }
    }
    let shown: String = first.iter().map(|&b| b as char).collect();
    Some(format!("text ('{}')", shown.trim_end()))
}

/// Parses a message body (without the length prefix).
pub fn decode_body(body: &[u8]) -> Result<Message, ControlError> {
    serde_json::from_slice(body).map_err(|e| ControlError::Garbled(e.to_string()))
}

/// The `version` field of a body that did not parse as a message, if it has one.
pub fn peek_version(body: &[u8]) -> Option<u32> {
    serde_json::from_slice::<VersionOnly>(body)
        .ok()
        .map(|v| v.version)
}

/// Decodes one frame from the front of `buf`: the message and the bytes it used.
pub fn decode(buf: &[u8]) -> Result<(Message, usize), ControlError> {
    if buf.len() < 4 {
        return Err(ControlError::Truncated);
    }
    let len = check_len([buf[0], buf[1], buf[2], buf[3]])?;
    let body = buf.get(4..4 + len).ok_or(ControlError::Truncated)?;
    Ok((decode_body(body)?, 4 + len))
}

/// Writes one message.
pub fn write_message(w: &mut impl Write, msg: &Message) -> Result<(), ControlError> {
    w.write_all(&encode(msg))?;
    Ok(())
}

/// Reads one frame's body. The stream should have a read timeout set; `deadline` bounds the
/// whole message (so a client sending one byte a second cannot hold a session forever), and
/// `keep_going` is asked on every timeout (returning false aborts with [`ControlError::Timeout`]).
pub fn read_body(
    r: &mut impl Read,
    deadline: Instant,
    keep_going: &dyn Fn() -> bool,
) -> Result<Vec<u8>, ControlError> {
    let mut prefix = [0u8; 4];
    read_full(r, &mut prefix, deadline, keep_going, true)?;
    let len = check_len(prefix)?;
    let mut body = vec![0u8; len];
    read_full(r, &mut body, deadline, keep_going, false)?;
    Ok(body)
}

/// Reads one message (see [`read_body`]).
pub fn read_message(
    r: &mut impl Read,
    deadline: Instant,
    keep_going: &dyn Fn() -> bool,
) -> Result<Message, ControlError> {
    decode_body(&read_body(r, deadline, keep_going)?)
}

fn read_full(
    r: &mut impl Read,
    buf: &mut [u8],
    deadline: Instant,
    keep_going: &dyn Fn() -> bool,
    at_start: bool,
) -> Result<(), ControlError> {
    let mut got = 0;
    while got < buf.len() {
        match r.read(&mut buf[got..]) {
            Ok(0) if got == 0 && at_start => return Err(ControlError::Closed),
            Ok(0) => return Err(ControlError::Truncated),
            Ok(n) => got += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                if Instant::now() >= deadline || !keep_going() {
                    return Err(ControlError::Timeout);
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        if got < buf.len() && Instant::now() >= deadline {
            return Err(ControlError::Timeout);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    fn hello() -> Hello {
        Hello {
            version: PROTOCOL_VERSION,
            token: Some("s3cret".into()),
            test: TestKind::UdpRr,
            request_size: 1,
            response_size: 1024,
            send_size: 65536,
            server_cpu: Some(1),
            duration_ms: 11_000,
        }
    }

    #[test]
    fn other_protocols_are_named_not_taken_for_a_huge_length() {
        let e = check_len(*b"HTTP").unwrap_err();
        assert!(matches!(&e, ControlError::Foreign(w) if w == "HTTP"), "{e}");
        assert!(e.to_string().contains("spoke like HTTP"));
        assert!(matches!(check_len(*b"SSH-"), Err(ControlError::Foreign(w)) if w == "SSH"));
        assert!(
            matches!(check_len(*b"zzzz"), Err(ControlError::Foreign(w)) if w == "text ('zzzz')")
        );
        // A binary length above the limit stays a size error; a real one passes.
        assert!(matches!(
            check_len([0x7f, 0, 0, 1]),
            Err(ControlError::TooLarge(_))
        ));
        assert_eq!(check_len([0, 0, 1, 0]).unwrap(), 256);
    }

    fn all_messages() -> Vec<Message> {
        vec![
            Message::Hello(hello()),
            Message::Hello(Hello {
                token: None,
                server_cpu: None,
                ..hello()
            }),
            Message::Ack {
                version: 1,
                data_port: 40000,
            },
            Message::Refused {
                version: 1,
                code: RefuseCode::Token,
                reason: "bad token".into(),
            },
            Message::Done { server: None },
            Message::Done {
                server: Some(ServerDone {
                    cpu_ns: 123,
                    transactions: 456,
                    bytes: 789,
                    cpu: Some(0),
                    foreign_datagrams: 3,
                }),
            },
            Message::Bye,
        ]
    }

    fn far() -> Instant {
        Instant::now() + Duration::from_secs(5)
    }

    #[test]
    fn every_message_round_trips() {
        for m in all_messages() {
            let frame = encode(&m);
            let (back, used) = decode(&frame).unwrap();
            assert_eq!(back, m);
            assert_eq!(used, frame.len());
            let mut cur = io::Cursor::new(frame);
            assert_eq!(read_message(&mut cur, far(), &|| true).unwrap(), m);
        }
    }

    #[test]
    fn several_frames_in_a_stream() {
        let mut buf = Vec::new();
        for m in all_messages() {
            write_message(&mut buf, &m).unwrap();
        }
        let mut cur = io::Cursor::new(buf);
        for m in all_messages() {
            assert_eq!(read_message(&mut cur, far(), &|| true).unwrap(), m);
        }
        assert!(matches!(
            read_message(&mut cur, far(), &|| true),
            Err(ControlError::Closed)
        ));
    }

    #[test]
    fn oversized_is_rejected_before_reading_the_body() {
        let mut frame = ((MAX_MESSAGE + 1) as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(b"{}");
        assert!(matches!(decode(&frame), Err(ControlError::TooLarge(_))));
        let mut cur = io::Cursor::new(u32::MAX.to_be_bytes().to_vec());
        assert!(matches!(
            read_message(&mut cur, far(), &|| true),
            Err(ControlError::TooLarge(n)) if n == u32::MAX as usize
        ));
    }

    #[test]
    fn empty_garbled_and_truncated_are_rejected() {
        assert!(matches!(decode(&[0, 0, 0, 0]), Err(ControlError::Empty)));
        assert!(matches!(decode(&[0, 0]), Err(ControlError::Truncated)));
        let frame = encode(&Message::Bye);
        assert!(matches!(
            decode(&frame[..frame.len() - 1]),
            Err(ControlError::Truncated)
        ));
        let mut cur = io::Cursor::new(frame[..frame.len() - 1].to_vec());
        assert!(matches!(
            read_message(&mut cur, far(), &|| true),
            Err(ControlError::Truncated)
        ));
        let mut garbage = 5u32.to_be_bytes().to_vec();
        garbage.extend_from_slice(b"hello");
        assert!(matches!(decode(&garbage), Err(ControlError::Garbled(_))));
        let unknown = br#"{"type":"launch_missiles"}"#;
        let mut f = (unknown.len() as u32).to_be_bytes().to_vec();
        f.extend_from_slice(unknown);
        assert!(matches!(decode(&f), Err(ControlError::Garbled(_))));
    }

    #[test]
    fn a_future_hello_shows_its_version() {
        let body = br#"{"type":"hello","version":7,"new_field":true}"#;
        assert!(decode_body(body).is_err());
        assert_eq!(peek_version(body), Some(7));
        assert_eq!(peek_version(b"garbage"), None);
    }

    #[test]
    fn timeouts_are_reported() {
        struct Stalled;
        impl Read for Stalled {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                std::thread::sleep(Duration::from_millis(5));
                Err(io::ErrorKind::WouldBlock.into())
            }
        }
        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(matches!(
            read_message(&mut Stalled, deadline, &|| true),
            Err(ControlError::Timeout)
        ));
        assert!(matches!(
            read_message(&mut Stalled, far(), &|| false),
            Err(ControlError::Timeout)
        ));
    }

    proptest! {
        // Bounded for CI; NSLAT_FUZZ_CASES=1000000 for a longer hunt.
        #![proptest_config(ProptestConfig::with_cases(
            std::env::var("NSLAT_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(20_000)
        ))]

        /// The decoder never panics and never accepts a body longer than the limit.
        #[test]
        fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok((_, used)) = decode(&bytes) {
                prop_assert!(used <= bytes.len() && used <= 4 + MAX_MESSAGE);
            }
            let mut cur = io::Cursor::new(bytes.clone());
            let _ = read_message(&mut cur, Instant::now() + Duration::from_secs(1), &|| true);
            let _ = peek_version(&bytes);
        }

        /// Structured-looking bodies (valid prefix, JSON-ish content) never panic either.
        #[test]
        fn json_like_bodies_never_panic(body in "[{}\\[\\]\":,a-z0-9 ]{0,200}") {
            let mut frame = (body.len() as u32).to_be_bytes().to_vec();
            frame.extend_from_slice(body.as_bytes());
            let _ = decode(&frame);
        }

        /// Every Hello round-trips, whatever its field values.
        #[test]
        fn hello_round_trips(req in 1u32.., resp in 1u32.., cpu in proptest::option::of(0u32..1024),
                             dur in 0u64..u64::MAX / 2, token in proptest::option::of("[ -~]{0,40}")) {
            let m = Message::Hello(Hello { version: PROTOCOL_VERSION, token, test: TestKind::TcpRr,
                request_size: req, response_size: resp, send_size: 1, server_cpu: cpu, duration_ms: dur });
            let (back, _) = decode(&encode(&m)).unwrap();
            prop_assert_eq!(back, m);
        }
    }
}
