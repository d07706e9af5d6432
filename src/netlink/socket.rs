//! The socket: send one request with `NLM_F_ACK`, read until the ACK (or the error, or `DONE` for dumps).

use std::path::Path;

use netlink_packet_core::{
    NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

use super::{NetlinkError, Result};
use crate::netns;

/// The bytes of request `msg` with `NLM_F_REQUEST | NLM_F_ACK | flags` and sequence number
/// `seq`: built apart from sending, so the builders' output can be checked byte by byte.
pub(crate) fn encode(msg: RouteNetlinkMessage, flags: u16, seq: u32) -> Vec<u8> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    header.sequence_number = seq;
    let mut nl = NetlinkMessage::new(header, NetlinkPayload::from(msg));
    nl.finalize();
    let mut out = vec![0u8; nl.buffer_len()];
    nl.serialize(&mut out);
    out
}

/// A synchronous rtnetlink socket bound to the namespace it was opened in.
#[derive(Debug)]
pub struct Netlink {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
}

impl Netlink {
    /// Opens a socket in the calling thread's namespace.
    pub fn open() -> Result<Self> {
        let io = |what: &str| {
            let what = what.to_string();
            move |source| NetlinkError::Io { what, source }
        };
        let mut socket = Socket::new(NETLINK_ROUTE).map_err(io("opening a netlink socket"))?;
        socket.bind_auto().map_err(io("binding a netlink socket"))?;
        socket
            .connect(&SocketAddr::new(0, 0))
            .map_err(io("connecting a netlink socket"))?;
        // Extended acks give better messages, but are optional.
        let _ = socket.set_ext_ack(true);
        Ok(Netlink {
            socket,
            seq: 0,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Opens a socket inside the namespace at `path`: all its operations act there.
    pub fn open_in(path: &Path) -> Result<Self> {
        netns::run_in(Some(path), Netlink::open)
    }

    /// Sends `msg` with `NLM_F_REQUEST | NLM_F_ACK | flags` and waits for the kernel's answer.
    /// Returns the messages of a dump (with `NLM_F_DUMP`) or any echoed reply.
    pub(crate) fn request(
        &mut self,
        msg: RouteNetlinkMessage,
        flags: u16,
        what: impl FnOnce() -> String,
    ) -> Result<Vec<RouteNetlinkMessage>> {
        self.seq = self.seq.wrapping_add(1);
        let out = encode(msg, flags, self.seq);
        self.socket
            .send(&out, 0)
            .map_err(|source| NetlinkError::Io {
                what: "sending a netlink request".into(),
                source,
            })?;
        let mut replies = Vec::new();
        loop {
            let n = self
                .socket
                .recv(&mut &mut self.buf[..], 0)
                .map_err(|source| NetlinkError::Io {
                    what: "reading a netlink reply".into(),
                    source,
                })?;
            let mut offset = 0;
            while offset < n {
                let reply =
                    NetlinkMessage::<RouteNetlinkMessage>::deserialize(&self.buf[offset..n])
                        .map_err(|e| NetlinkError::Decode(e.to_string()))?;
                let len = reply.header.length as usize;
                if reply.header.sequence_number == self.seq {
                    match reply.payload {
                        NetlinkPayload::Error(e) => {
                            return match e.code {
                                Some(code) => Err(NetlinkError::Kernel {
                                    what: what(),
                                    errno: -code.get(),
                                }),
                                None => Ok(replies),
                            };
                        }
                        NetlinkPayload::Done(_) => return Ok(replies),
                        NetlinkPayload::InnerMessage(m) => replies.push(m),
                        _ => {}
                    }
                }
                if len == 0 {
                    break;
                }
                offset += len;
            }
        }
    }
}
