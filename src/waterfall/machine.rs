//! The Rust model of `bpf/waterfall.bpf.c`'s state machine, rule by rule: the unit tests drive
//! recorded event sequences (lost events, a reused packet address, ACKs, other threads) through
//! it. The kernel runs the C copy; change both or neither.
//!
//! The machine follows one round trip's critical path. Its cursor says what the path is doing
//! now (a thread in user space or in a system call, a packet in a device, in a backlog, being
//! processed, a thread being woken) and since when; an event that moves the path on closes the
//! open stage (its length goes to that stage's sums) and opens the next. Events of other
//! packets and threads leave it alone. A stage open longer than [`STALE_NS`] lost an event: the
//! cursor goes idle (the time is not attributed) until a tracked thread is woken again.

use std::collections::BTreeMap;

use crate::bpf::waterfall::{DevId, StageKey, StageVal};

/// As `STALE_NS` in the C program.
pub const STALE_NS: u64 = 2_000_000;

/// `enum phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    #[default]
    Idle = 0,
    User = 1,
    Syscall = 2,
    DevTx = 3,
    Backlog = 4,
    BacklogRun = 5,
    RxProc = 6,
    Waking = 7,
    RunKernel = 8,
    /// Remote mode: the packet left by the wire; the other machine has the path.
    Remote = 9,
}

/// `enum stage`: the stage ids in the kernel's keys.
pub mod stage {
    pub const USER: u32 = 1;
    pub const SEND: u32 = 2;
    pub const DEVICE: u32 = 3;
    pub const SOFTIRQ_DELAY: u32 = 4;
    pub const BACKLOG_WAIT: u32 = 5;
    pub const PROCESSING: u32 = 6;
    pub const SOCKET_RX: u32 = 7;
    pub const WAKEUP: u32 = 8;
    pub const RECV_RETURN: u32 = 9;
    pub const SYSCALL_OTHER: u32 = 10;
    pub const REMOTE: u32 = 11;
}

/// Where a packet from the server is seen ([`Event::Reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// `netif_rx` (a veth wire: into this machine's backlog).
    Rx,
    /// `netif_receive_skb`.
    Receive,
    /// `napi_gro_receive_entry` (a NIC).
    Gro,
}

/// One tracepoint hit as the programs see it. `cpu` is where it fired; `tid` the thread that
/// was running there (for the packet events, that decides "sent from a system call").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    SysEnter {
        tid: u32,
    },
    SysExit {
        tid: u32,
    },
    Wakeup {
        tid: u32,
    },
    Switch {
        prev: u32,
        next: u32,
        prev_blocked: bool,
    },
    SoftirqEntry {
        cpu: u32,
    },
    SoftirqExit {
        cpu: u32,
    },
    DevQueue {
        skb: u64,
        dev: DevId,
        tid: u32,
        cpu: u32,
    },
    NetifRx {
        skb: u64,
        dev: DevId,
        cpu: u32,
    },
    Receive {
        skb: u64,
        dev: DevId,
    },
    Gro {
        skb: u64,
        dev: DevId,
    },
    /// `net_dev_xmit`: `dev` has sent `skb` (remote mode only acts on it).
    DevXmit {
        skb: u64,
        dev: DevId,
    },
    /// A `netif_rx`, `netif_receive_skb` or `napi_gro_receive_entry` of a TCP packet from the
    /// server's address and port (what the C program checks in the packet's headers).
    Reply {
        skb: u64,
        dev: DevId,
        cpu: u32,
        at: Arrival,
    },
}

/// `struct cursor`.
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    ts: u64,
    skb: u64,
    phase: Phase,
    tid: u32,
    role: u32,
    cpu: u32,
    dev: DevId,
}

/// The machine: tracked threads, cursor, per-CPU "in NET_RX softirq", sums, counters.
#[derive(Debug, Clone, Default)]
pub struct Machine {
    tids: BTreeMap<u32, u32>,
    cursor: Cursor,
    in_net_rx: BTreeMap<u32, bool>,
    pub stages: BTreeMap<StageKey, StageVal>,
    pub stale: u64,
    pub resync: u64,
    pub left: u64,
    pub events: u64,
    /// Remote mode's wire device (ifindex, netns inode): `struct remote_cfg`.
    remote: Option<(u32, u32)>,
}

impl Machine {
    /// A machine in remote mode: only the client is followed; the path leaves by `wire`.
    pub fn remote(threads: &[(u32, u32)], wire: DevId) -> Machine {
        Machine {
            remote: Some((wire.ifindex, wire.netns)),
            ..Machine::new(threads)
        }
    }

    /// `on_wire`: the packet in flight is in the wire device (remote mode).
    fn on_wire(&self) -> bool {
        self.remote == Some((self.cursor.dev.ifindex, self.cursor.dev.netns))
    }

    /// A machine following `threads` ((tid, role): 1 client, 2 server).
    pub fn new(threads: &[(u32, u32)]) -> Machine {
        Machine {
            tids: threads.iter().copied().collect(),
            ..Machine::default()
        }
    }

    /// Back to idle (user space does this before every traced block).
    pub fn reset_cursor(&mut self) {
        self.cursor = Cursor::default();
    }

    fn role_of(&self, tid: u32) -> u32 {
        self.tids.get(&tid).copied().unwrap_or(0)
    }

    /// Brings the cursor to `now` ([`Self::cursor_at`]) and, if the path is still in `expect`,
    /// closes `stage` there: the event moves the path on. False: it does not.
    fn closes(&mut self, now: u64, expect: Phase, stage: u32) -> bool {
        self.cursor_at(now);
        if self.cursor.phase != expect {
            return false;
        }
        self.close(stage, now);
        true
    }

    /// The path enters `phase` at `now` (same device, CPU and packet).
    fn enter(&mut self, phase: Phase, now: u64) {
        self.cursor.phase = phase;
        self.cursor.ts = now;
    }

    /// `cursor_at`: counts the event; a stage open too long goes idle.
    fn cursor_at(&mut self, now: u64) {
        self.events += 1;
        if self.cursor.phase != Phase::Idle && now.wrapping_sub(self.cursor.ts) > STALE_NS {
            self.cursor.phase = Phase::Idle;
            self.stale += 1;
        }
    }

    fn close(&mut self, stage: u32, now: u64) {
        let c = &self.cursor;
        let d = now.wrapping_sub(c.ts);
        let mut k = StageKey {
            stage,
            ..StageKey::default()
        };
        match stage {
            stage::DEVICE
            | stage::SOFTIRQ_DELAY
            | stage::BACKLOG_WAIT
            | stage::PROCESSING
            | stage::REMOTE => k.dev = c.dev,
            stage::SOCKET_RX => {
                k.dev = c.dev;
                k.role = c.role;
            }
            _ => k.role = c.role,
        }
        let v = self.stages.entry(k).or_default();
        v.count += 1;
        v.sum_ns = v.sum_ns.wrapping_add(d);
        v.sum_sq = v.sum_sq.wrapping_add(d.wrapping_mul(d));
    }

    fn enter_thread(&mut self, phase: Phase, tid: u32, role: u32, now: u64) {
        let c = &mut self.cursor;
        c.phase = phase;
        c.tid = tid;
        c.role = role;
        c.ts = now;
    }

    fn enter_dev(&mut self, phase: Phase, dev: DevId, now: u64) {
        let c = &mut self.cursor;
        c.phase = phase;
        c.dev = dev;
        c.ts = now;
    }

    /// One event at time `now` (ns).
    pub fn step(&mut self, now: u64, ev: Event) {
        match ev {
            Event::SysEnter { tid } => {
                let role = self.role_of(tid);
                if role == 0 {
                    return;
                }
                self.cursor_at(now);
                if self.cursor.phase == Phase::User && self.cursor.tid == tid {
                    self.close(stage::USER, now);
                    self.enter_thread(Phase::Syscall, tid, role, now);
                }
            }
            Event::SysExit { tid } => {
                let role = self.role_of(tid);
                if role == 0 {
                    return;
                }
                self.cursor_at(now);
                if self.cursor.phase == Phase::RxProc && self.cursor.tid != tid {
                    // A receiver that was not asleep: the packet waited in its socket.
                    self.cursor.role = role;
                    self.close(stage::SOCKET_RX, now);
                    self.enter_thread(Phase::User, tid, role, now);
                    return;
                }
                if self.cursor.tid != tid {
                    return;
                }
                let s = match self.cursor.phase {
                    Phase::RunKernel => stage::RECV_RETURN,
                    Phase::Waking => stage::WAKEUP,
                    Phase::Syscall => stage::SYSCALL_OTHER,
                    _ => return,
                };
                self.close(s, now);
                self.enter_thread(Phase::User, tid, role, now);
            }
            Event::Wakeup { tid } => {
                let role = self.role_of(tid);
                if role == 0 {
                    return;
                }
                self.cursor_at(now);
                if self.cursor.phase == Phase::RxProc {
                    self.cursor.role = role;
                    self.close(stage::SOCKET_RX, now);
                } else if self.cursor.phase != Phase::Idle {
                    return;
                }
                self.enter_thread(Phase::Waking, tid, role, now);
            }
            Event::Switch {
                prev,
                next,
                prev_blocked,
            } => {
                if self.role_of(next) == 0 && self.role_of(prev) == 0 {
                    return;
                }
                self.cursor_at(now);
                let c = self.cursor;
                if c.phase == Phase::Waking && c.tid == next {
                    self.close(stage::WAKEUP, now);
                    self.enter_thread(Phase::RunKernel, next, c.role, now);
                } else if c.phase == Phase::Syscall && c.tid == prev && prev_blocked {
                    self.enter(Phase::Idle, now);
                    self.left += 1;
                }
            }
            Event::SoftirqEntry { cpu } => {
                self.in_net_rx.insert(cpu, true);
                if self.cursor.phase != Phase::Backlog || self.cursor.cpu != cpu {
                    return;
                }
                if self.closes(now, Phase::Backlog, stage::SOFTIRQ_DELAY) {
                    self.enter(Phase::BacklogRun, now);
                }
            }
            Event::SoftirqExit { cpu } => {
                self.in_net_rx.insert(cpu, false);
            }
            Event::DevQueue { skb, dev, tid, cpu } => {
                let softirq = self.in_net_rx.get(&cpu).copied().unwrap_or(false);
                let role = if softirq { 0 } else { self.role_of(tid) };
                if role == 0 && skb != self.cursor.skb {
                    return;
                }
                self.cursor_at(now);
                let c = self.cursor;
                if skb == c.skb && c.phase == Phase::DevTx {
                    // One device hands the packet to the next, in a softirq or a system call.
                    self.close(stage::DEVICE, now);
                } else if skb == c.skb && c.phase == Phase::RxProc && softirq {
                    self.close(stage::PROCESSING, now);
                } else if role != 0 {
                    if c.phase == Phase::Syscall && c.tid == tid {
                        self.close(stage::SEND, now);
                    } else if matches!(c.phase, Phase::RunKernel | Phase::Waking | Phase::User)
                        && c.tid == tid
                    {
                        return;
                    } else if c.phase != Phase::Idle {
                        self.resync += 1;
                    }
                    self.cursor.skb = skb;
                } else {
                    return;
                }
                self.enter_dev(Phase::DevTx, dev, now);
            }
            Event::NetifRx { skb, dev, cpu } => {
                if self.cursor.phase == Phase::Remote {
                    return;
                }
                if skb != self.cursor.skb || self.cursor.phase != Phase::DevTx {
                    return;
                }
                if self.on_wire() {
                    // A veth wire hands the packet to its peer before its net_dev_xmit.
                    return;
                }
                if self.closes(now, Phase::DevTx, stage::DEVICE) {
                    self.enter_dev(Phase::Backlog, dev, now);
                    self.cursor.cpu = cpu;
                }
            }
            Event::Receive { skb, dev } => self.receive(now, skb, dev, false),
            Event::Gro { skb, dev } => self.receive(now, skb, dev, true),
            Event::DevXmit { skb, dev } => {
                let Some(wire) = self.remote else { return };
                if skb != self.cursor.skb
                    || self.cursor.phase != Phase::DevTx
                    || (dev.ifindex, dev.netns) != wire
                {
                    return;
                }
                if self.closes(now, Phase::DevTx, stage::DEVICE) {
                    self.enter(Phase::Remote, now);
                }
            }
            Event::Reply { skb, dev, cpu, at } => {
                if self.cursor.phase != Phase::Remote || self.remote.is_none() {
                    // Not awaited: the event as any other packet's.
                    return self.step(
                        now,
                        match at {
                            Arrival::Rx => Event::NetifRx { skb, dev, cpu },
                            Arrival::Receive => Event::Receive { skb, dev },
                            Arrival::Gro => Event::Gro { skb, dev },
                        },
                    );
                }
                if !self.closes(now, Phase::Remote, stage::REMOTE) {
                    return;
                }
                let phase = match at {
                    Arrival::Rx => Phase::Backlog,
                    Arrival::Receive | Arrival::Gro => Phase::RxProc,
                };
                self.enter_dev(phase, dev, now);
                self.cursor.skb = skb;
                self.cursor.tid = 0;
                self.cursor.cpu = cpu;
            }
        }
    }

    fn receive(&mut self, now: u64, skb: u64, dev: DevId, gro: bool) {
        if self.cursor.phase == Phase::Remote {
            return;
        }
        if skb != self.cursor.skb {
            return;
        }
        if self.cursor.phase == Phase::DevTx && self.on_wire() {
            return;
        }
        self.cursor_at(now);
        let s = match self.cursor.phase {
            Phase::DevTx => stage::DEVICE,
            _ if gro => return,
            Phase::Backlog | Phase::BacklogRun => stage::BACKLOG_WAIT,
            Phase::RxProc => stage::PROCESSING,
            _ => return,
        };
        self.close(s, now);
        self.enter_dev(Phase::RxProc, dev, now);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub const CLIENT: u32 = 100;
    pub const SERVER: u32 = 200;
    pub const OTHER: u32 = 300;

    pub fn dev(ifindex: u32, netns: u32, kind: &str) -> DevId {
        let mut k = [0u8; 8];
        k[..kind.len()].copy_from_slice(kind.as_bytes());
        DevId {
            ifindex,
            netns,
            kind: k,
        }
    }

    /// A recorder of timed events: each `at(dt, ev)` is `dt` ns after the previous one.
    pub struct Tape {
        pub t: u64,
        pub events: Vec<(u64, Event)>,
    }

    impl Tape {
        pub fn new() -> Tape {
            Tape {
                t: 1_000,
                events: Vec::new(),
            }
        }
        pub fn at(&mut self, dt: u64, ev: Event) -> &mut Tape {
            self.t += dt;
            self.events.push((self.t, ev));
            self
        }
        pub fn run(&self, m: &mut Machine) {
            for &(t, ev) in &self.events {
                m.step(t, ev);
            }
        }
        /// The client wakes, returns to user space, and `after_ns` later enters a system call.
        pub fn client_enters_send(&mut self, after_ns: u64) -> &mut Tape {
            self.at(0, Event::Wakeup { tid: CLIENT })
                .at(10, Event::SysExit { tid: CLIENT })
                .at(after_ns, Event::SysEnter { tid: CLIENT })
        }
        /// [`Tape::client_enters_send`] after 100 ns, and the call queues `skb` on `dev` (CPU 0).
        pub fn client_sends(&mut self, skb: u64, dev: DevId) -> &mut Tape {
            self.client_enters_send(100).at(
                100,
                Event::DevQueue {
                    skb,
                    dev,
                    tid: CLIENT,
                    cpu: 0,
                },
            )
        }
        /// The time of the tape's first packet queued (where the machine syncs) to its last
        /// event: what a tiled trace attributes.
        pub fn synced_span(&self) -> u64 {
            let first_send = self
                .events
                .iter()
                .find(|(_, e)| matches!(e, Event::DevQueue { .. }))
                .unwrap()
                .0;
            self.events.last().unwrap().0 - first_send
        }
    }

    /// One veth hop on CPU 0, from a process-context send or softirq forwarding: queue on
    /// `from`, enqueue on `to`'s backlog, softirq starts (if `entry`), received.
    pub fn veth_hop(tape: &mut Tape, skb: u64, from: DevId, to: DevId, tid: u32, entry: bool) {
        tape.at(
            100,
            Event::DevQueue {
                skb,
                dev: from,
                tid,
                cpu: 0,
            },
        )
        .at(
            300,
            Event::NetifRx {
                skb,
                dev: to,
                cpu: 0,
            },
        );
        if entry {
            tape.at(50, Event::SoftirqEntry { cpu: 0 });
        }
        tape.at(250, Event::Receive { skb, dev: to });
    }

    /// A host-mode round trip on one CPU: client sends over the wire (one veth hop), the
    /// server wakes, answers over the wire back, the client wakes. `skb_req`/`skb_resp` are the
    /// packets' addresses.
    pub fn host_round_trip(tape: &mut Tape, skb_req: u64, skb_resp: u64) {
        let (node, remote) = (dev(2, 10, "veth"), dev(2, 20, "veth"));
        tape.at(1_000, Event::SysEnter { tid: CLIENT });
        veth_hop(tape, skb_req, node, remote, CLIENT, true);
        tape.at(2_000, Event::Wakeup { tid: SERVER })
            .at(100, Event::SoftirqExit { cpu: 0 })
            .at(100, Event::SysExit { tid: CLIENT })
            .at(200, Event::SysEnter { tid: CLIENT })
            .at(
                500,
                Event::Switch {
                    prev: CLIENT,
                    next: SERVER,
                    prev_blocked: true,
                },
            )
            .at(700, Event::SysExit { tid: SERVER })
            .at(300, Event::SysEnter { tid: SERVER });
        veth_hop(tape, skb_resp, remote, node, SERVER, true);
        tape.at(2_000, Event::Wakeup { tid: CLIENT })
            .at(100, Event::SoftirqExit { cpu: 0 })
            .at(100, Event::SysExit { tid: SERVER })
            .at(200, Event::SysEnter { tid: SERVER })
            .at(
                500,
                Event::Switch {
                    prev: SERVER,
                    next: CLIENT,
                    prev_blocked: true,
                },
            )
            .at(700, Event::SysExit { tid: CLIENT });
    }

    fn get(m: &Machine, stage_id: u32) -> (u64, u64) {
        m.stages
            .iter()
            .filter(|(k, _)| k.stage == stage_id)
            .fold((0, 0), |(c, s), (_, v)| (c + v.count, s + v.sum_ns))
    }

    fn total(m: &Machine) -> u64 {
        m.stages.values().map(|v| v.sum_ns).sum()
    }

    fn machine() -> Machine {
        Machine::new(&[(CLIENT, 1), (SERVER, 2)])
    }

    #[test]
    fn a_round_trip_is_tiled_without_gaps_once_in_step() {
        let mut tape = Tape::new();
        for _ in 0..3 {
            host_round_trip(&mut tape, 0xa000, 0xb000);
        }
        let mut m = machine();
        tape.run(&mut m);
        // The first round trip syncs at the client's first send (a tracked thread queues a
        // packet from its system call); from there on every ns is in a stage.
        assert_eq!(total(&m), tape.synced_span());
        // Two backlog waits per round trip, each with its softirq delay.
        assert_eq!(get(&m, stage::BACKLOG_WAIT), (6, 6 * 250));
        assert_eq!(get(&m, stage::SOFTIRQ_DELAY), (6, 6 * 50));
        assert_eq!(get(&m, stage::DEVICE), (6, 6 * 300));
        assert_eq!(get(&m, stage::SOCKET_RX), (6, 6 * 2_000));
        // The woken thread waits for the other to block: 100 + 100 + 200 + 500.
        assert_eq!(get(&m, stage::WAKEUP), (6, 6 * 900));
        assert_eq!(get(&m, stage::RECV_RETURN), (6, 6 * 700));
        // User space: the server's 300 ns thrice, the client's 1000 ns between round trips.
        assert_eq!(get(&m, stage::USER), (5, 3 * 300 + 2 * 1_000));
        assert_eq!(get(&m, stage::SEND), (5, 5 * 100));
        assert_eq!((m.stale, m.resync, m.left), (0, 0, 0));
    }

    #[test]
    fn a_forwarding_hop_in_the_softirq_has_no_softirq_delay_and_its_processing_is_a_stage() {
        // ptp: container veth -> node (routing) -> wire veth -> remote.
        let (ctr, host_side, node, remote) = (
            dev(2, 30, "veth"),
            dev(5, 10, "veth"),
            dev(2, 10, "veth"),
            dev(2, 20, "veth"),
        );
        let mut tape = Tape::new();
        tape.client_enters_send(1_000);
        veth_hop(&mut tape, 0xa, ctr, host_side, CLIENT, true);
        // Forwarded in the same softirq: queue on the wire, straight into the backlog.
        tape.at(
            400,
            Event::DevQueue {
                skb: 0xa,
                dev: node,
                tid: CLIENT,
                cpu: 0,
            },
        )
        .at(
            300,
            Event::NetifRx {
                skb: 0xa,
                dev: remote,
                cpu: 0,
            },
        )
        .at(
            250,
            Event::Receive {
                skb: 0xa,
                dev: remote,
            },
        )
        .at(2_000, Event::Wakeup { tid: SERVER });
        let mut m = machine();
        tape.run(&mut m);
        assert_eq!(get(&m, stage::BACKLOG_WAIT), (2, 500));
        assert_eq!(get(&m, stage::SOFTIRQ_DELAY), (1, 50));
        let processing: Vec<_> = m
            .stages
            .iter()
            .filter(|(k, _)| k.stage == stage::PROCESSING)
            .collect();
        assert_eq!(processing.len(), 1);
        assert_eq!(processing[0].0.dev, host_side);
        assert_eq!(processing[0].1.sum_ns, 400);
        let devices: BTreeMap<DevId, u64> = m
            .stages
            .iter()
            .filter(|(k, _)| k.stage == stage::DEVICE)
            .map(|(k, v)| (k.dev, v.count))
            .collect();
        assert_eq!(devices, BTreeMap::from([(ctr, 1), (node, 1)]));
    }

    #[test]
    fn a_lost_event_goes_unattributed_and_the_machine_resyncs_at_the_next_wakeup() {
        let mut tape = Tape::new();
        host_round_trip(&mut tape, 0xa, 0xb);
        // Round trip 2 loses the request's netif_receive_skb: the cursor waits in the backlog.
        let (node, remote) = (dev(2, 10, "veth"), dev(2, 20, "veth"));
        tape.at(1_000, Event::SysEnter { tid: CLIENT })
            .at(
                100,
                Event::DevQueue {
                    skb: 0xa,
                    dev: node,
                    tid: CLIENT,
                    cpu: 0,
                },
            )
            .at(
                300,
                Event::NetifRx {
                    skb: 0xa,
                    dev: remote,
                    cpu: 0,
                },
            )
            .at(50, Event::SoftirqEntry { cpu: 0 })
            // (netif_receive_skb lost)
            .at(2_250, Event::Wakeup { tid: SERVER })
            .at(100, Event::SoftirqExit { cpu: 0 });
        let mut m = machine();
        tape.run(&mut m);
        let before = m.clone();
        // The wake-up in the backlog phase is not a stage: nothing was added after the loss.
        assert_eq!(get(&m, stage::SOCKET_RX).0, 2);
        assert_eq!(get(&m, stage::BACKLOG_WAIT).0, 2);
        // The server's response then comes from a thread the cursor does not follow: resync.
        let mut tape2 = Tape {
            t: tape.t,
            events: Vec::new(),
        };
        tape2
            .at(100, Event::SysExit { tid: CLIENT })
            .at(200, Event::SysEnter { tid: CLIENT })
            .at(
                500,
                Event::Switch {
                    prev: CLIENT,
                    next: SERVER,
                    prev_blocked: true,
                },
            )
            .at(700, Event::SysExit { tid: SERVER })
            .at(300, Event::SysEnter { tid: SERVER });
        veth_hop(&mut tape2, 0xb, remote, node, SERVER, true);
        tape2.at(2_000, Event::Wakeup { tid: CLIENT });
        tape2.run(&mut m);
        assert_eq!(m.resync, 1);
        // From the resync on, the response's stages count again (the send stage does not).
        assert_eq!(get(&m, stage::SEND).0, get(&before, stage::SEND).0);
        assert_eq!(get(&m, stage::BACKLOG_WAIT).0, 3);
        assert_eq!(get(&m, stage::SOCKET_RX).0, 3);
        // A stage left open past STALE_NS is dropped, not attributed.
        let mut m2 = machine();
        let mut t3 = Tape::new();
        t3.at(0, Event::Wakeup { tid: SERVER }).at(
            STALE_NS + 1,
            Event::Switch {
                prev: CLIENT,
                next: SERVER,
                prev_blocked: true,
            },
        );
        t3.run(&mut m2);
        assert_eq!(m2.stale, 1);
        assert!(m2.stages.is_empty());
    }

    #[test]
    fn a_reused_packet_address_is_not_taken_for_the_packet_in_flight() {
        let (node, remote, br) = (dev(2, 10, "veth"), dev(2, 20, "veth"), dev(3, 10, "bridge"));
        let mut tape = Tape::new();
        tape.client_enters_send(1_000);
        veth_hop(&mut tape, 0xa, node, remote, CLIENT, true);
        // The packet is in RX processing. Another thread's packet gets the same address (the
        // first was freed early, say) and is queued from process context: not ours.
        tape.at(100, Event::SoftirqExit { cpu: 0 })
            .at(
                100,
                Event::DevQueue {
                    skb: 0xa,
                    dev: br,
                    tid: OTHER,
                    cpu: 0,
                },
            )
            // And one queued in another CPU's softirq is not ours either.
            .at(
                50,
                Event::DevQueue {
                    skb: 0xa,
                    dev: br,
                    tid: OTHER,
                    cpu: 1,
                },
            )
            .at(1_750, Event::Wakeup { tid: SERVER });
        let mut m = machine();
        tape.run(&mut m);
        assert_eq!(get(&m, stage::PROCESSING).0, 0);
        assert_eq!(get(&m, stage::DEVICE).0, 1);
        assert_eq!(get(&m, stage::SOCKET_RX), (1, 2_000));
        // An ACK the server sends from its own receive call does not start a new path.
        let mut t2 = Tape {
            t: tape.t,
            events: Vec::new(),
        };
        t2.at(
            500,
            Event::Switch {
                prev: CLIENT,
                next: SERVER,
                prev_blocked: true,
            },
        )
        .at(
            100,
            Event::DevQueue {
                skb: 0xc,
                dev: remote,
                tid: SERVER,
                cpu: 0,
            },
        )
        .at(600, Event::SysExit { tid: SERVER });
        t2.run(&mut m);
        assert_eq!(m.resync, 0);
        assert_eq!(get(&m, stage::RECV_RETURN), (1, 700));
    }

    #[test]
    fn a_receiver_that_was_not_asleep_takes_the_packet_at_its_system_call_return() {
        // One CPU: the server, woken by the request, preempts the client inside its send call;
        // the response reaches the client's socket while the client is not asleep (no
        // wake-up); the client returns from its send call and finds the response.
        let (node, remote) = (dev(2, 10, "veth"), dev(2, 20, "veth"));
        let mut tape = Tape::new();
        tape.at(0, Event::Wakeup { tid: SERVER })
            .at(
                300,
                Event::Switch {
                    prev: CLIENT,
                    next: SERVER,
                    prev_blocked: false,
                },
            )
            .at(700, Event::SysExit { tid: SERVER })
            .at(300, Event::SysEnter { tid: SERVER });
        veth_hop(&mut tape, 0xb, remote, node, SERVER, true);
        tape.at(1_500, Event::SoftirqExit { cpu: 0 })
            .at(100, Event::SysExit { tid: SERVER })
            .at(100, Event::SysEnter { tid: SERVER })
            .at(
                300,
                Event::Switch {
                    prev: SERVER,
                    next: CLIENT,
                    prev_blocked: true,
                },
            )
            .at(400, Event::SysExit { tid: CLIENT })
            .at(200, Event::SysEnter { tid: CLIENT })
            .at(500, Event::SysExit { tid: CLIENT })
            .at(300, Event::SysEnter { tid: CLIENT });
        let mut m = machine();
        tape.run(&mut m);
        // Socket receive: from the client's receive pass to its send call's return.
        assert_eq!(
            get(&m, stage::SOCKET_RX),
            (1, 1_500 + 100 + 100 + 300 + 400)
        );
        // Then the client's user space, its receive call (data already there), user space.
        assert_eq!(get(&m, stage::SYSCALL_OTHER), (1, 500));
        assert_eq!(get(&m, stage::USER), (3, 300 + 200 + 300));
        assert_eq!(m.resync, 0);
    }

    #[test]
    fn a_device_stacked_on_another_is_a_hop_of_its_own_in_the_send_call() {
        // macvlan (or vxlan): the child transmits by queueing on its lower device, still in
        // the sender's system call (process context, a tracked thread).
        let (mv, lower, remote) = (
            dev(2, 30, "macvlan"),
            dev(2, 10, "veth"),
            dev(2, 20, "veth"),
        );
        let mut tape = Tape::new();
        tape.client_sends(0xa, mv);
        veth_hop(&mut tape, 0xa, lower, remote, CLIENT, true);
        let mut m = machine();
        tape.run(&mut m);
        let devices: BTreeMap<DevId, (u64, u64)> = m
            .stages
            .iter()
            .filter(|(k, _)| k.stage == stage::DEVICE)
            .map(|(k, v)| (k.dev, (v.count, v.sum_ns)))
            .collect();
        assert_eq!(devices, BTreeMap::from([(mv, (1, 100)), (lower, (1, 300))]));
        assert_eq!(m.resync, 0);
    }

    #[test]
    fn a_thread_that_blocks_before_sending_leaves_the_path() {
        let mut tape = Tape::new();
        tape.client_enters_send(100).at(
            100,
            Event::Switch {
                prev: CLIENT,
                next: OTHER,
                prev_blocked: true,
            },
        );
        let mut m = machine();
        tape.run(&mut m);
        assert_eq!(m.left, 1);
        assert_eq!(get(&m, stage::USER), (1, 100));
    }

    /// Remote mode on a NIC: the client in a container (veth into the node), routed out of the
    /// wire `nic`; the server's first packet back is seen at GRO on the NIC.
    fn remote_round_trip(tape: &mut Tape, req: u64, resp: u64) {
        let (ctr, host_side, nic) = (dev(2, 30, "veth"), dev(5, 10, "veth"), dev(3, 10, ""));
        tape.at(1_000, Event::SysEnter { tid: CLIENT });
        veth_hop(tape, req, ctr, host_side, CLIENT, true);
        tape.at(
            400,
            Event::DevQueue {
                skb: req,
                dev: nic,
                tid: CLIENT,
                cpu: 0,
            },
        )
        .at(200, Event::DevXmit { skb: req, dev: nic })
        .at(100, Event::SoftirqExit { cpu: 0 })
        .at(100, Event::SysExit { tid: CLIENT })
        .at(200, Event::SysEnter { tid: CLIENT })
        .at(
            300,
            Event::Switch {
                prev: CLIENT,
                next: OTHER,
                prev_blocked: true,
            },
        )
        // The other machine: 8.8 µs from the transmit to its first packet back, seen in
        // the NIC's NET_RX softirq.
        .at(8_000, Event::SoftirqEntry { cpu: 0 })
        .at(
            100,
            Event::Reply {
                skb: resp,
                dev: nic,
                cpu: 0,
                at: Arrival::Gro,
            },
        )
        .at(
            150,
            Event::Receive {
                skb: resp,
                dev: nic,
            },
        )
        .at(
            500,
            Event::DevQueue {
                skb: resp,
                dev: host_side,
                tid: OTHER,
                cpu: 0,
            },
        )
        .at(
            300,
            Event::NetifRx {
                skb: resp,
                dev: ctr,
                cpu: 0,
            },
        )
        .at(
            250,
            Event::Receive {
                skb: resp,
                dev: ctr,
            },
        )
        .at(1_500, Event::Wakeup { tid: CLIENT })
        .at(100, Event::SoftirqExit { cpu: 0 })
        .at(
            500,
            Event::Switch {
                prev: OTHER,
                next: CLIENT,
                prev_blocked: true,
            },
        )
        .at(700, Event::SysExit { tid: CLIENT });
    }

    #[test]
    fn a_remote_round_trip_is_tiled_from_the_wire_transmit_to_the_servers_first_packet() {
        let nic = dev(3, 10, "");
        let mut tape = Tape::new();
        for _ in 0..3 {
            remote_round_trip(&mut tape, 0xa, 0xb);
        }
        let mut m = Machine::remote(&[(CLIENT, 1)], nic);
        tape.run(&mut m);
        assert_eq!(total(&m), tape.synced_span(), "{:#?} {m:?}", m.stages);
        // The remote stage, keyed by the wire: transmit → first packet back.
        let remote: Vec<_> = m
            .stages
            .iter()
            .filter(|(k, _)| k.stage == stage::REMOTE)
            .collect();
        assert_eq!(remote.len(), 1);
        assert_eq!(remote[0].0.dev, nic);
        assert_eq!(
            (remote[0].1.count, remote[0].1.sum_ns),
            (3, 3 * (100 + 100 + 200 + 300 + 8_000 + 100))
        );
        // The wire's own transmit (queue → xmit) is a device stage of the NIC.
        assert_eq!(
            m.stages
                .iter()
                .filter(|(k, _)| k.stage == stage::DEVICE && k.dev == nic)
                .map(|(_, v)| (v.count, v.sum_ns))
                .next(),
            Some((3, 3 * 200))
        );
        // The container's veth, once each way; the wire's waits are the other machine's.
        assert_eq!(get(&m, stage::BACKLOG_WAIT), (6, 6 * 250));
        assert_eq!(get(&m, stage::SOCKET_RX), (3, 3 * 1_500));
        assert_eq!(get(&m, stage::WAKEUP), (3, 3 * 600));
        assert_eq!((m.stale, m.resync, m.left), (0, 0, 0));
    }

    #[test]
    fn a_veth_wire_hands_over_before_its_transmit_and_only_the_servers_packet_ends_the_remote_stage(
    ) {
        // The wire is a veth: its peer's netif_rx comes before the wire's net_dev_xmit.
        let (wire, peer) = (dev(2, 10, "veth"), dev(2, 20, "veth"));
        let mut tape = Tape::new();
        tape.client_sends(0xa, wire)
            .at(
                300,
                Event::NetifRx {
                    skb: 0xa,
                    dev: peer,
                    cpu: 0,
                },
            )
            .at(
                50,
                Event::DevXmit {
                    skb: 0xa,
                    dev: wire,
                },
            )
            // The other side receives the request (the same skb): not this machine's stage.
            .at(50, Event::SoftirqEntry { cpu: 0 })
            .at(
                200,
                Event::Receive {
                    skb: 0xa,
                    dev: peer,
                },
            )
            .at(100, Event::SoftirqExit { cpu: 0 })
            // Another packet arrives on the wire (not from the server): nothing.
            .at(
                1_000,
                Event::NetifRx {
                    skb: 0xc,
                    dev: wire,
                    cpu: 0,
                },
            )
            // The server's answer, into this machine's backlog.
            .at(
                2_000,
                Event::Reply {
                    skb: 0xb,
                    dev: wire,
                    cpu: 0,
                    at: Arrival::Rx,
                },
            )
            .at(50, Event::SoftirqEntry { cpu: 0 })
            .at(
                250,
                Event::Receive {
                    skb: 0xb,
                    dev: wire,
                },
            );
        let mut m = Machine::remote(&[(CLIENT, 1)], wire);
        tape.run(&mut m);
        assert_eq!(get(&m, stage::DEVICE), (1, 350));
        assert_eq!(get(&m, stage::REMOTE), (1, 50 + 200 + 100 + 1_000 + 2_000));
        assert_eq!(get(&m, stage::SOFTIRQ_DELAY), (1, 50));
        assert_eq!(get(&m, stage::BACKLOG_WAIT), (1, 250));
        // A server packet when none is awaited is an ordinary packet (not ours: nothing).
        let before = m.stages.clone();
        Tape {
            t: tape.t,
            events: vec![(
                tape.t + 10,
                Event::Reply {
                    skb: 0xd,
                    dev: wire,
                    cpu: 0,
                    at: Arrival::Receive,
                },
            )],
        }
        .run(&mut m);
        assert_eq!(m.stages, before);
    }

    #[test]
    fn without_a_wire_transmits_and_replies_are_ordinary_events_and_a_lost_reply_goes_stale() {
        // The lab (server followed): a net_dev_xmit changes nothing, a reply is a plain receive.
        let mut lab = Tape::new();
        host_round_trip(&mut lab, 0xa, 0xb);
        let mut plain = machine();
        lab.run(&mut plain);
        let mut with_xmit = machine();
        let mut t2 = Tape::new();
        host_round_trip(&mut t2, 0xa, 0xb);
        let xmits: Vec<(u64, Event)> = t2
            .events
            .iter()
            .filter_map(|&(t, e)| match e {
                Event::DevQueue { skb, dev, .. } => Some((t + 1, Event::DevXmit { skb, dev })),
                _ => None,
            })
            .collect();
        t2.events.extend(xmits);
        t2.events.sort_by_key(|(t, _)| *t);
        t2.run(&mut with_xmit);
        assert_eq!(plain.stages, with_xmit.stages);
        // Remote mode, and the answer never comes: past STALE_NS the remote stage is dropped
        // (unattributed) and the next send starts the path again.
        let nic = dev(3, 10, "");
        let mut m = Machine::remote(&[(CLIENT, 1)], nic);
        let mut t = Tape::new();
        t.client_sends(0xa, nic)
            .at(100, Event::DevXmit { skb: 0xa, dev: nic })
            .at(STALE_NS + 1, Event::SysExit { tid: CLIENT })
            .at(
                100,
                Event::DevQueue {
                    skb: 0xe,
                    dev: nic,
                    tid: CLIENT,
                    cpu: 0,
                },
            );
        t.run(&mut m);
        assert_eq!(m.stale, 1);
        assert_eq!(get(&m, stage::REMOTE).0, 0);
        assert_eq!(m.resync, 0);
        assert_eq!(get(&m, stage::DEVICE), (1, 100));
    }

    #[test]
    fn untracked_threads_and_other_softirqs_do_nothing() {
        let mut tape = Tape::new();
        tape.at(0, Event::Wakeup { tid: OTHER })
            .at(0, Event::SysExit { tid: OTHER })
            .at(0, Event::SoftirqEntry { cpu: 1 })
            .at(
                0,
                Event::Receive {
                    skb: 0,
                    dev: dev(1, 1, ""),
                },
            );
        let mut m = machine();
        tape.run(&mut m);
        assert!(m.stages.is_empty());
        // A receive of address 0 with an idle cursor (skb 0) is counted as an event but
        // closes nothing.
        assert_eq!(m.events, 1);
    }
}
