//! The waterfall's tracing programs (`bpf/waterfall.bpf.c`, `tp_btf`): loading them, telling
//! them which threads to follow, attaching and detaching them (so traced and untraced blocks
//! can alternate), and reading the sums they keep in their maps.
//!
//! This module only moves bytes between the kernel and [`RawSums`]; what a stage means is
//! src/waterfall's (which also holds the Rust model of the programs' state machine).

use aya::maps::{Array, HashMap as BpfHashMap, MapData, PerCpuArray, PerCpuHashMap};
use aya::programs::{BtfTracePoint, ProgramError};
use aya::{Btf, Ebpf, EbpfLoader, Pod};

use super::Object;

/// `bpf/waterfall.bpf.c`.
pub const WATERFALL: Object = Object {
    name: "waterfall",
    bytes: include_object!("waterfall"),
};

/// Each program and the tracepoint (BTF name without `btf_trace_`) it attaches to.
pub const PROGRAMS: [(&str, &str); 11] = [
    ("wf_sys_enter", "sys_enter"),
    ("wf_sys_exit", "sys_exit"),
    ("wf_wakeup", "sched_wakeup"),
    ("wf_switch", "sched_switch"),
    ("wf_softirq_entry", "softirq_entry"),
    ("wf_softirq_exit", "softirq_exit"),
    ("wf_dev_queue", "net_dev_queue"),
    ("wf_netif_rx", "netif_rx"),
    ("wf_receive", "netif_receive_skb"),
    ("wf_gro", "napi_gro_receive_entry"),
    ("wf_dev_xmit", "net_dev_xmit"),
];

/// A device as the programs key it: interface index, network namespace inode, link kind
/// (`rtnl_link_ops->kind`, empty for a device without one, e.g. a physical NIC).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DevId {
    pub ifindex: u32,
    pub netns: u32,
    pub kind: [u8; 8],
}

impl DevId {
    /// The link kind as text (`veth`, `bridge`, ...; empty when the device has none).
    pub fn kind_str(&self) -> &str {
        let end = self.kind.iter().position(|&b| b == 0).unwrap_or(8);
        std::str::from_utf8(&self.kind[..end]).unwrap_or("")
    }
}

/// The key of one stage's sums (`struct stage_key`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StageKey {
    pub stage: u32,
    pub role: u32,
    pub dev: DevId,
}

/// One stage's sums (`struct stage_val`): occurrences, total ns, total ns².
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StageVal {
    pub count: u64,
    pub sum_ns: u64,
    pub sum_sq: u64,
}

/// The state machine's cursor (`struct cursor`); user space only resets it.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct Cursor {
    ts: u64,
    skb: u64,
    phase: u32,
    tid: u32,
    role: u32,
    cpu: u32,
    dev: DevId,
}

/// `struct remote_cfg`: remote mode's wire device and server (see [`Tracer::set_remote`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct RemoteCfg {
    on: u32,
    ifindex: u32,
    netns: u32,
    /// Network byte order.
    port: u16,
    family: u8,
    pad: u8,
    addr: [u8; 16],
}

/// Remote mode: the server is not a thread the programs can follow. The path leaves this
/// machine when the wire device (`ifindex` in the namespace with inode `netns`) transmits the
/// packet in flight and comes back with the first TCP packet from `server`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RemoteWire {
    pub ifindex: u32,
    pub netns: u32,
    /// The server; run.rs puts the data connection's port in (the packets come from it).
    pub server: std::net::SocketAddr,
}

// SAFETY: plain `repr(C)` integers without padding holes the kernel could leave uninitialised
// (every field is a u32/u64 or bytes, laid out as in the C structs).
unsafe impl Pod for StageKey {}
unsafe impl Pod for StageVal {}
unsafe impl Pod for Cursor {}
unsafe impl Pod for RemoteCfg {}

/// What the programs summed, as read from their maps.
#[derive(Debug, Clone, Default)]
pub struct RawSums {
    pub stages: Vec<(StageKey, StageVal)>,
    /// `STATS` (summed over CPUs): stale resets (a lost event), resyncs (a send not after a system call entry),
    /// threads that blocked before sending, events seen.
    pub stale: u64,
    pub resync: u64,
    pub left: u64,
    pub events: u64,
}

/// Why the tracing programs cannot run.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    #[error("nslat was built without clang, so it has no BPF programs (install clang, llvm and libbpf-dev and rebuild)")]
    NotBuilt,
    #[error("the kernel has no BTF (/sys/kernel/btf/vmlinux): {0}")]
    NoBtf(String),
    #[error("loading the waterfall's BPF object: {0}")]
    Load(String),
    #[error("tracepoint {tracepoint}: {reason}")]
    Tracepoint { tracepoint: String, reason: String },
    #[error("the waterfall's map {map}: {reason}")]
    Map { map: &'static str, reason: String },
}

/// The loaded programs (not attached until [`Tracer::attach`]).
pub struct Tracer {
    ebpf: Ebpf,
    /// Per program: the link while attached.
    links: Vec<Option<aya::programs::tp_btf::BtfTracePointLinkId>>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("attached", &self.links.iter().any(Option::is_some))
            .finish()
    }
}

impl Tracer {
    /// Loads every program of [`PROGRAMS`] against the running kernel's BTF. `tracepoints`
    /// overrides the tracepoint names (same order), e.g. to prove that a missing one is
    /// reported; `None` takes [`PROGRAMS`]'.
    pub fn load(tracepoints: Option<&[&str]>) -> Result<Tracer, TraceError> {
        if WATERFALL.bytes.is_empty() {
            return Err(TraceError::NotBuilt);
        }
        let btf = Btf::from_sys_fs().map_err(|e| TraceError::NoBtf(e.to_string()))?;
        let mut ebpf = EbpfLoader::new()
            .btf(Some(&btf))
            .load(WATERFALL.bytes)
            .map_err(|e| TraceError::Load(crate::error::error_chain(&e)))?;
        for (i, (prog, tp)) in PROGRAMS.iter().enumerate() {
            let tp = tracepoints.and_then(|t| t.get(i).copied()).unwrap_or(tp);
            let err = |reason: String| TraceError::Tracepoint {
                tracepoint: tp.to_string(),
                reason,
            };
            let p: &mut BtfTracePoint = ebpf
                .program_mut(prog)
                .ok_or_else(|| err(format!("no program {prog} in the object")))?
                .try_into()
                .map_err(|e: ProgramError| err(e.to_string()))?;
            p.load(tp, &btf).map_err(|e| err(load_reason(&e)))?;
        }
        Ok(Tracer {
            ebpf,
            links: PROGRAMS.iter().map(|_| None).collect(),
        })
    }

    /// The threads to follow: (tid, role) with role 1 = client, 2 = server.
    pub fn set_threads(&mut self, threads: &[(u32, u32)]) -> Result<(), TraceError> {
        let mut m: BpfHashMap<&mut MapData, u32, u32> = self.map("TIDS")?;
        for (tid, role) in threads {
            m.insert(tid, role, 0).map_err(|e| TraceError::Map {
                map: "TIDS",
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    /// Remote mode (see [`RemoteWire`]); `None` turns it off.
    pub fn set_remote(&mut self, remote: Option<&RemoteWire>) -> Result<(), TraceError> {
        let mut cfg = RemoteCfg::default();
        if let Some(r) = remote {
            cfg.on = 1;
            cfg.ifindex = r.ifindex;
            cfg.netns = r.netns;
            cfg.port = r.server.port().to_be();
            match r.server.ip() {
                std::net::IpAddr::V4(a) => {
                    cfg.family = 4;
                    cfg.addr[..4].copy_from_slice(&a.octets());
                }
                std::net::IpAddr::V6(a) => {
                    cfg.family = 6;
                    cfg.addr = a.octets();
                }
            }
        }
        let mut m: Array<&mut MapData, RemoteCfg> = self.map("REMOTE")?;
        m.set(0, cfg, 0).map_err(|e| TraceError::Map {
            map: "REMOTE",
            reason: e.to_string(),
        })
    }

    fn map<'a, T>(&'a mut self, name: &'static str) -> Result<T, TraceError>
    where
        T: TryFrom<&'a mut aya::maps::Map, Error = aya::maps::MapError>,
    {
        let m = self.ebpf.map_mut(name).ok_or(TraceError::Map {
            map: name,
            reason: "not in the object".into(),
        })?;
        T::try_from(m).map_err(|e| TraceError::Map {
            map: name,
            reason: e.to_string(),
        })
    }

    /// Resets the state machine to idle (before a traced block: the path it followed last is
    /// gone) and attaches every program.
    pub fn attach(&mut self) -> Result<(), TraceError> {
        let mut cursor: Array<&mut MapData, Cursor> = self.map("CURSOR")?;
        cursor
            .set(0, Cursor::default(), 0)
            .map_err(|e| TraceError::Map {
                map: "CURSOR",
                reason: e.to_string(),
            })?;
        for (i, (prog, tp)) in PROGRAMS.iter().enumerate() {
            if self.links[i].is_some() {
                continue;
            }
            let p: &mut BtfTracePoint = self
                .ebpf
                .program_mut(prog)
                .and_then(|p| p.try_into().ok())
                .ok_or_else(|| TraceError::Tracepoint {
                    tracepoint: tp.to_string(),
                    reason: format!("no program {prog}"),
                })?;
            let link = p.attach().map_err(|e| TraceError::Tracepoint {
                tracepoint: tp.to_string(),
                reason: crate::error::error_chain(&e),
            })?;
            self.links[i] = Some(link);
        }
        Ok(())
    }

    /// Detaches every program (the sums stay).
    pub fn detach(&mut self) {
        for (i, (prog, _)) in PROGRAMS.iter().enumerate() {
            let Some(link) = self.links[i].take() else {
                continue;
            };
            if let Some(p) = self
                .ebpf
                .program_mut(prog)
                .and_then(|p| <&mut BtfTracePoint>::try_from(p).ok())
            {
                let _ = p.detach(link);
            }
        }
    }

    /// Reads the sums.
    pub fn read(&mut self) -> Result<RawSums, TraceError> {
        let mut out = RawSums::default();
        {
            let stages: PerCpuHashMap<&mut MapData, StageKey, StageVal> = self.map("STAGES")?;
            for kv in stages.iter() {
                let (k, per_cpu) = kv.map_err(|e| TraceError::Map {
                    map: "STAGES",
                    reason: e.to_string(),
                })?;
                let mut v = StageVal::default();
                for c in per_cpu.iter() {
                    v.count += c.count;
                    v.sum_ns += c.sum_ns;
                    v.sum_sq = v.sum_sq.wrapping_add(c.sum_sq);
                }
                out.stages.push((k, v));
            }
        }
        let stats: PerCpuArray<&mut MapData, u64> = self.map("STATS")?;
        let get = |i: u32| stats.get(&i, 0).map(|v| v.iter().sum::<u64>()).unwrap_or(0);
        out.stale = get(0);
        out.resync = get(1);
        out.left = get(2);
        out.events = get(3);
        out.stages.sort_by_key(|(k, _)| *k);
        Ok(out)
    }
}

impl Drop for Tracer {
    fn drop(&mut self) {
        self.detach();
    }
}

/// A load error as one line; the kernel's verifier log is long, so only its last line.
fn load_reason(e: &ProgramError) -> String {
    match e {
        ProgramError::LoadError {
            io_error,
            verifier_log,
        } => {
            let last = verifier_log
                .to_string()
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .to_string();
            if last.is_empty() {
                io_error.to_string()
            } else {
                format!("{io_error} ({last})")
            }
        }
        other => crate::error::error_chain(other),
    }
}
