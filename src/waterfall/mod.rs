//! The waterfall: where the microseconds of one round trip go, stage by stage, from the sums the
//! tracing programs keep in the kernel (src/bpf/waterfall.rs, bpf/waterfall.bpf.c).
//!
//! This module owns what a stage is ([`StageKind`], [`Stage`]), the assembly of a path's stages
//! from per-block sums ([`assemble`]), the device names ([`Names`]), and the deltas between a
//! mode and the host ([`delta`]). It does no I/O except naming devices; run.rs drives the traced
//! and untraced blocks on a real path; machine.rs is the Rust model of the kernel's state
//! machine (the unit tests drive recorded events through it).

pub mod machine;
pub mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::bpf::waterfall::{DevId, RawSums, StageKey, StageVal};
use machine::stage;

/// What a stage is. Device-bound kinds name the device; thread-bound ones the thread's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageKind {
    /// A thread in user space, from its receive call's return to its next send call.
    User,
    /// The send system call until the packet reaches its first device.
    Send,
    /// A device's transmit: from `net_dev_queue` to the next device or the peer's backlog.
    Device,
    /// From the backlog enqueue (`netif_rx`) until the NET_RX softirq starts on that CPU.
    SoftirqDelay,
    /// From the softirq's start (or the enqueue, if it was running) until the packet is taken
    /// out of the backlog (`netif_receive_skb`).
    BacklogWait,
    /// After a device's receive until the next device (bridge, routing, netfilter work).
    Processing,
    /// After the last device's receive until the receiving thread is woken (IP, TCP).
    SocketReceive,
    /// From the wake-up until the thread runs.
    Wakeup,
    /// From the thread's switch-in until its receive call returns.
    RecvReturn,
    /// A system call other than the send (the thread returned before sending).
    Syscall,
    /// A server this machine cannot follow (`--remote`, `--target`): from the wire device's
    /// transmit (`net_dev_xmit`) to the first TCP packet back from the server's address and
    /// port. The wire, the other machine's stack and its server.
    Remote,
}

impl StageKind {
    pub fn from_id(id: u32) -> Option<StageKind> {
        Some(match id {
            stage::USER => StageKind::User,
            stage::SEND => StageKind::Send,
            stage::DEVICE => StageKind::Device,
            stage::SOFTIRQ_DELAY => StageKind::SoftirqDelay,
            stage::BACKLOG_WAIT => StageKind::BacklogWait,
            stage::PROCESSING => StageKind::Processing,
            stage::SOCKET_RX => StageKind::SocketReceive,
            stage::WAKEUP => StageKind::Wakeup,
            stage::RECV_RETURN => StageKind::RecvReturn,
            stage::SYSCALL_OTHER => StageKind::Syscall,
            stage::REMOTE => StageKind::Remote,
            _ => return None,
        })
    }

    /// As JSON and CSV spell it.
    pub fn name(self) -> &'static str {
        match self {
            StageKind::User => "user",
            StageKind::Send => "send",
            StageKind::Device => "device",
            StageKind::SoftirqDelay => "softirq_delay",
            StageKind::BacklogWait => "backlog_wait",
            StageKind::Processing => "processing",
            StageKind::SocketReceive => "socket_receive",
            StageKind::Wakeup => "wakeup",
            StageKind::RecvReturn => "recv_return",
            StageKind::Syscall => "syscall",
            StageKind::Remote => "remote",
        }
    }

    /// Words for a person.
    pub fn words(self) -> &'static str {
        match self {
            StageKind::User => "user space",
            StageKind::Send => "send call",
            StageKind::Device => "device",
            StageKind::SoftirqDelay => "softirq delay",
            StageKind::BacklogWait => "backlog wait",
            StageKind::Processing => "processing",
            StageKind::SocketReceive => "socket receive",
            StageKind::Wakeup => "wake-up to run",
            StageKind::RecvReturn => "receive return",
            StageKind::Syscall => "other system call",
            StageKind::Remote => "remote (wire and server)",
        }
    }

    /// Work the CPU does (not waiting for the CPU): what the CPU figure sums.
    pub fn is_work(self) -> bool {
        !matches!(
            self,
            StageKind::SoftirqDelay | StageKind::Wakeup | StageKind::Remote
        )
    }
}

/// A device as a report names it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Device {
    /// `veth`, `bridge`, `macvlan`, `vxlan`, `netkit`, `wire` (the lab's node–remote veth), or
    /// `nic` (a device without a link kind).
    pub kind: String,
    /// `eth0@nslat-lab-c.0-node` (the interface and its namespace, as far as known).
    pub name: String,
}

/// Names devices: namespace inodes to names (`/run/netns`), interface indexes to names.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// Namespace inode → (name, path).
    namespaces: BTreeMap<u32, (String, PathBuf)>,
    /// The namespaces at the ends of the lab's wire (their `eth0` is the wire).
    wire: Vec<u32>,
    /// Remote mode's wire device (ifindex, namespace inode), named `wire` too.
    wire_dev: Option<(u32, u32)>,
}

impl Names {
    /// Every namespace in /run/netns, and the given wire namespaces (node and remote).
    pub fn from_system(wire: &[PathBuf]) -> Names {
        use std::os::unix::fs::MetadataExt;
        let mut namespaces = BTreeMap::new();
        if let Ok(dir) = std::fs::read_dir("/run/netns") {
            for e in dir.flatten() {
                if let Ok(md) = std::fs::metadata(e.path()) {
                    namespaces.insert(
                        md.ino() as u32,
                        (e.file_name().to_string_lossy().into_owned(), e.path()),
                    );
                }
            }
        }
        let wire = wire
            .iter()
            .filter_map(|p| std::fs::metadata(p).ok().map(|m| m.ino() as u32))
            .collect();
        Names {
            namespaces,
            wire,
            wire_dev: None,
        }
    }

    /// Names the device `ifindex` in the namespace with inode `netns` a `wire` (remote mode).
    pub fn with_wire_device(mut self, ifindex: u32, netns: u32) -> Names {
        self.wire_dev = Some((ifindex, netns));
        self
    }

    /// The name of `dev` (its interface name looked up inside its namespace).
    pub fn device(&self, dev: &DevId) -> Device {
        let ns = self.namespaces.get(&dev.netns);
        let ifname = ns
            .and_then(|(_, path)| ifname_in(path, dev.ifindex))
            .unwrap_or_else(|| format!("if{}", dev.ifindex));
        let ns_name = ns
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| format!("netns {}", dev.netns));
        let kind = match dev.kind_str() {
            _ if self.wire_dev == Some((dev.ifindex, dev.netns)) => "wire".to_string(),
            "veth" if ifname == "eth0" && self.wire.contains(&dev.netns) => "wire".to_string(),
            "" => "nic".to_string(),
            k => k.to_string(),
        };
        Device {
            kind,
            name: format!("{ifname}@{ns_name}"),
        }
    }
}

fn ifname_in(path: &std::path::Path, ifindex: u32) -> Option<String> {
    crate::netns::run_in(Some(path), move || {
        let mut buf = [0 as libc::c_char; libc::IF_NAMESIZE];
        // SAFETY: buf has IF_NAMESIZE bytes, as if_indextoname requires.
        let p = unsafe { libc::if_indextoname(ifindex, buf.as_mut_ptr()) };
        if p.is_null() {
            return Ok::<_, crate::netns::NetnsError>(None);
        }
        // SAFETY: if_indextoname wrote a NUL-terminated name into buf.
        let s = unsafe { std::ffi::CStr::from_ptr(buf.as_ptr()) };
        Ok(Some(s.to_string_lossy().into_owned()))
    })
    .ok()
    .flatten()
}

/// One stage of a path's round trip.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stage {
    /// e.g. `backlog wait eth0@nslat-x-c.0-remote`, `server user space`.
    pub name: String,
    pub kind: StageKind,
    /// The device (device-bound kinds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// The device's kind (`veth`, `bridge`, `wire`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub device_kind: Option<String>,
    /// `client` or `server` (thread-bound kinds and the socket receive).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Occurrences per round trip.
    pub per_rt: f64,
    /// Time per round trip (µs): mean over the traced blocks.
    pub us: f64,
    /// Half-width of the 95% CI of `us` (Student t over the traced blocks).
    pub ci95: Option<f64>,
    /// Mean length of one occurrence (µs).
    pub each_us: f64,
    /// Occurrences counted.
    pub count: u64,
}

/// A path's stage sums over one traced block, as read (differences of the kernel's totals).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockSums {
    pub round_trips: u64,
    pub stages: BTreeMap<StageKey, StageVal>,
}

impl BlockSums {
    /// `after` minus `before` (the kernel's sums only grow).
    pub fn between(before: &RawSums, after: &RawSums, round_trips: u64) -> BlockSums {
        let old: BTreeMap<StageKey, StageVal> = before.stages.iter().copied().collect();
        let stages = after
            .stages
            .iter()
            .map(|(k, v)| {
                let o = old.get(k).copied().unwrap_or_default();
                (
                    *k,
                    StageVal {
                        count: v.count.saturating_sub(o.count),
                        sum_ns: v.sum_ns.saturating_sub(o.sum_ns),
                        sum_sq: v.sum_sq.saturating_sub(o.sum_sq),
                    },
                )
            })
            .filter(|(_, v)| v.count > 0)
            .collect();
        BlockSums {
            round_trips,
            stages,
        }
    }
}

fn role_name(role: u32) -> Option<String> {
    match role {
        1 => Some("client".into()),
        2 => Some("server".into()),
        _ => None,
    }
}

/// A stage's identity across blocks, and how a report names it.
fn describe(k: &StageKey, names: &dyn Fn(&DevId) -> Device) -> Option<Stage> {
    let kind = StageKind::from_id(k.stage)?;
    let role = role_name(k.role);
    let device = matches!(
        kind,
        StageKind::Device
            | StageKind::SoftirqDelay
            | StageKind::BacklogWait
            | StageKind::Processing
            | StageKind::SocketReceive
            | StageKind::Remote
    )
    .then(|| names(&k.dev));
    let name = match (&device, &role) {
        (Some(d), Some(r)) => format!("{} {} → {r}", kind.words(), d.name),
        (Some(d), None) => format!("{} {} {}", kind.words(), d.kind, d.name),
        (None, Some(r)) => format!("{r} {}", kind.words()),
        (None, None) => kind.words().to_string(),
    };
    Some(Stage {
        name,
        kind,
        device: device.as_ref().map(|d| d.name.clone()),
        device_kind: device.map(|d| d.kind),
        role,
        per_rt: 0.0,
        us: 0.0,
        ci95: None,
        each_us: 0.0,
        count: 0,
    })
}

/// The stages of a path from its traced blocks: per stage the occurrences per round trip, the
/// time per round trip (total over all blocks / round trips) with a 95% CI from the spread of
/// the per-block values, and the mean occurrence. Ordered by kind, then name.
pub fn assemble(blocks: &[BlockSums], names: &dyn Fn(&DevId) -> Device) -> Vec<Stage> {
    let total_rt: u64 = blocks.iter().map(|b| b.round_trips).sum();
    if total_rt == 0 {
        return Vec::new();
    }
    let keys: std::collections::BTreeSet<StageKey> = blocks
        .iter()
        .flat_map(|b| b.stages.keys().copied())
        .collect();
    let mut out: Vec<Stage> = keys
        .iter()
        .filter_map(|k| {
            let mut s = describe(k, names)?;
            let (mut count, mut sum) = (0u64, 0u64);
            let mut per_block = Vec::with_capacity(blocks.len());
            for b in blocks.iter().filter(|b| b.round_trips > 0) {
                let v = b.stages.get(k).copied().unwrap_or_default();
                count += v.count;
                sum += v.sum_ns;
                per_block.push(v.sum_ns as f64 / 1000.0 / b.round_trips as f64);
            }
            s.count = count;
            s.per_rt = count as f64 / total_rt as f64;
            s.us = sum as f64 / 1000.0 / total_rt as f64;
            s.each_us = if count > 0 {
                sum as f64 / 1000.0 / count as f64
            } else {
                0.0
            };
            s.ci95 = crate::stats::mean_ci95(&per_block).and_then(|m| m.ci95);
            Some(s)
        })
        .collect();
    // Stages the same device or thread has in several keys (none today) would merge here.
    out.sort_by(|a, b| (a.kind, &a.name).cmp(&(b.kind, &b.name)));
    out
}

/// A mean with its 95% CI half-width.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Figure {
    pub mean: f64,
    pub ci95: Option<f64>,
    pub n: usize,
}

impl Figure {
    pub fn of(xs: &[f64]) -> Option<Figure> {
        crate::stats::mean_ci95(xs).map(|m| Figure {
            mean: m.mean,
            ci95: m.ci95,
            n: m.n,
        })
    }
}

/// A path's waterfall (the JSON's `waterfall` of a mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waterfall {
    /// Mean round trip of the traced blocks (the engine's own clock), µs.
    pub traced_rtt_us: f64,
    /// Mean round trip of the untraced blocks interleaved with them, µs.
    pub untraced_rtt_us: f64,
    /// Tracing overhead: traced − untraced per block pair, mean and 95% CI (µs).
    pub overhead_us: Figure,
    /// Sum of the stages per round trip (µs).
    pub attributed_us: f64,
    /// `traced_rtt_us − attributed_us`: time no stage covers (a lost event, the first round
    /// trip of each block before the machine syncs, time between blocks).
    pub unattributed_us: f64,
    /// Round trips in the traced blocks; blocks per kind.
    pub round_trips: u64,
    pub blocks: usize,
    /// Backlog waits per round trip (the sum of the `backlog_wait` stages' `per_rt`).
    pub backlog_waits_per_rt: f64,
    /// CPU work per round trip: the stages that are work, not waiting (`StageKind::is_work`), µs.
    pub cpu_work_us: f64,
    pub stages: Vec<Stage>,
    /// The state machine's own counts: stale stages dropped (a lost event), resyncs, threads
    /// that blocked before sending.
    pub stale: u64,
    pub resync: u64,
    pub left: u64,
    /// This mode against the host (set by the compare; `None` for the host itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_host: Option<WaterfallDelta>,
    /// The server was not followed (`--remote`, `--target`): its part is the `remote` stage.
    #[serde(default)]
    pub remote: bool,
    /// A target against the lab's emulation of its mode (`--target`: e.g. a Docker container
    /// on the default bridge against `lab/bridge`), both traced the same way.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vs_lab: Option<WaterfallDelta>,
}

impl Waterfall {
    /// Builds the figures from the blocks' round-trip times and the stages.
    pub fn new(
        traced_block_us: &[f64],
        untraced_block_us: &[f64],
        round_trips: u64,
        stages: Vec<Stage>,
        raw: &RawSums,
    ) -> Option<Waterfall> {
        let traced = Figure::of(traced_block_us)?;
        let untraced = Figure::of(untraced_block_us)?;
        let diffs: Vec<f64> = traced_block_us
            .iter()
            .zip(untraced_block_us)
            .map(|(t, u)| t - u)
            .collect();
        let attributed_us: f64 = stages.iter().map(|s| s.us).sum();
        let backlog_waits_per_rt = stages
            .iter()
            .filter(|s| s.kind == StageKind::BacklogWait)
            .map(|s| s.per_rt)
            .sum();
        let cpu_work_us = stages
            .iter()
            .filter(|s| s.kind.is_work())
            .map(|s| s.us)
            .sum();
        Some(Waterfall {
            traced_rtt_us: traced.mean,
            untraced_rtt_us: untraced.mean,
            overhead_us: Figure::of(&diffs)?,
            attributed_us,
            unattributed_us: traced.mean - attributed_us,
            round_trips,
            blocks: traced_block_us.len(),
            backlog_waits_per_rt,
            cpu_work_us,
            stages,
            stale: raw.stale,
            resync: raw.resync,
            left: raw.left,
            vs_host: None,
            remote: false,
            vs_lab: None,
        })
    }

    /// Share of the traced round trip the stages cover.
    pub fn attributed_share(&self) -> f64 {
        if self.traced_rtt_us > 0.0 {
            self.attributed_us / self.traced_rtt_us
        } else {
            0.0
        }
    }

    /// Time and occurrences per round trip by group (kind, device kind): what [`delta`] compares.
    pub fn groups(&self) -> BTreeMap<(StageKind, String), (f64, f64)> {
        let mut g: BTreeMap<(StageKind, String), (f64, f64)> = BTreeMap::new();
        for s in &self.stages {
            // Where the softirq starts and which device a packet reaches its socket from are
            // one stage each per direction, whatever the device: grouped by kind alone.
            let device_kind = match s.kind {
                StageKind::SoftirqDelay | StageKind::SocketReceive => String::new(),
                _ => s.device_kind.clone().unwrap_or_default(),
            };
            let key = (s.kind, device_kind);
            let e = g.entry(key).or_default();
            e.0 += s.per_rt;
            e.1 += s.us;
        }
        g
    }
}

/// One group's change against the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupDelta {
    pub kind: StageKind,
    /// The device kind (empty for thread stages).
    pub device_kind: String,
    /// Occurrences per round trip: mode − host.
    pub per_rt: f64,
    /// Time per round trip: mode − host (µs).
    pub us: f64,
    /// The mode's mean occurrence (µs).
    pub each_us: f64,
}

/// A mode's waterfall against the host's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WaterfallDelta {
    /// What it is against, where that is not the host (`lab/bridge` for `vs_lab`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
    /// Traced round trip: mode − host (µs).
    pub traced_us: f64,
    /// Sum of the group deltas (µs) = attributed mode − attributed host.
    pub stages_us: f64,
    /// Largest change first.
    pub groups: Vec<GroupDelta>,
}

/// `mode` against `host`, by (kind, device kind).
pub fn delta(mode: &Waterfall, host: &Waterfall) -> WaterfallDelta {
    let (gm, gh) = (mode.groups(), host.groups());
    let keys: std::collections::BTreeSet<_> = gm.keys().chain(gh.keys()).cloned().collect();
    let mut groups: Vec<GroupDelta> = keys
        .into_iter()
        .map(|k| {
            let m = gm.get(&k).copied().unwrap_or_default();
            let h = gh.get(&k).copied().unwrap_or_default();
            GroupDelta {
                kind: k.0,
                device_kind: k.1,
                per_rt: m.0 - h.0,
                us: m.1 - h.1,
                each_us: if m.0 > 0.0 { m.1 / m.0 } else { 0.0 },
            }
        })
        .collect();
    groups.sort_by(|a, b| b.us.abs().total_cmp(&a.us.abs()));
    WaterfallDelta {
        against: None,
        traced_us: mode.traced_rtt_us - host.traced_rtt_us,
        stages_us: groups.iter().map(|g| g.us).sum(),
        groups,
    }
}

/// "bridge +1.63 µs = +2 backlog wait (0.31 µs each) +0.42 processing bridge + …": the groups
/// that moved by at least 0.05 µs or 0.5 occurrences.
pub fn delta_line(mode: &str, d: &WaterfallDelta) -> String {
    let mut parts = Vec::new();
    for g in &d.groups {
        if g.us.abs() < 0.05 && g.per_rt.abs() < 0.5 {
            continue;
        }
        let what = if g.device_kind.is_empty() {
            g.kind.words().to_string()
        } else {
            format!("{} {}", g.kind.words(), g.device_kind)
        };
        let count = if g.per_rt.abs() >= 0.5 {
            format!(" ({:+.0} × {:.2} µs)", g.per_rt, g.each_us)
        } else {
            String::new()
        };
        parts.push(format!("{:+.2} {what}{count}", g.us));
    }
    format!(
        "{mode} {:+.2} µs traced (stages {:+.2}) = {}",
        d.traced_us,
        d.stages_us,
        if parts.is_empty() {
            "no stage moved".to_string()
        } else {
            parts.join(", ")
        }
    )
}

/// `--explain --waterfall`: each ablation variant traced, and each step's ablation delta beside
/// its traced and stage-sum deltas (the JSON's `explain.waterfall`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainWaterfall {
    /// Every traced variant (the baseline first).
    pub variants: Vec<ExplainVariant>,
    /// The cumulative steps, each against the one before (the first: against the baseline).
    pub steps: Vec<ExplainStepWaterfall>,
}

/// One variant's traced figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainVariant {
    pub name: String,
    pub traced_rtt_us: f64,
    pub untraced_rtt_us: f64,
    pub overhead_us: f64,
    pub attributed_us: f64,
    pub backlog_waits_per_rt: f64,
}

/// One step: what the ablation measured (untraced, in the timed rounds) and what the traced
/// runs and their stage sums say it adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExplainStepWaterfall {
    pub name: String,
    /// The ablation's `adds_us` (paired, untraced).
    pub ablation_us: f64,
    /// Traced round trip: this variant − the previous one (µs).
    pub traced_us: f64,
    /// Stage sums (`attributed_us`): this variant − the previous one (µs).
    pub stages_us: f64,
    /// Tracing overhead: this variant's − the previous one's (µs).
    pub overhead_us: f64,
}

/// The steps `(name, ablation adds_us)` in order after `baseline`, matched by name to the traced
/// variants; `None` when the baseline or a step was not traced.
pub fn explain_steps(
    baseline: &str,
    steps: &[(String, f64)],
    traced: &[(String, Waterfall)],
) -> Option<ExplainWaterfall> {
    let get = |n: &str| traced.iter().find(|(l, _)| l == n).map(|(_, w)| w);
    let mut prev = get(baseline)?;
    let mut out = Vec::with_capacity(steps.len());
    for (name, ablation) in steps {
        let w = get(name)?;
        out.push(ExplainStepWaterfall {
            name: name.clone(),
            ablation_us: *ablation,
            traced_us: w.traced_rtt_us - prev.traced_rtt_us,
            stages_us: w.attributed_us - prev.attributed_us,
            overhead_us: w.overhead_us.mean - prev.overhead_us.mean,
        });
        prev = w;
    }
    Some(ExplainWaterfall {
        variants: traced
            .iter()
            .map(|(n, w)| ExplainVariant {
                name: n.clone(),
                traced_rtt_us: w.traced_rtt_us,
                untraced_rtt_us: w.untraced_rtt_us,
                overhead_us: w.overhead_us.mean,
                attributed_us: w.attributed_us,
                backlog_waits_per_rt: w.backlog_waits_per_rt,
            })
            .collect(),
        steps: out,
    })
}

impl ExplainWaterfall {
    /// "veth +2.42 µs (ablation) vs +4.90 (stage sums, traced +5.01); …".
    pub fn line(&self) -> String {
        let parts: Vec<String> = self
            .steps
            .iter()
            .map(|s| {
                format!(
                    "{} {:+.2} µs (ablation) vs {:+.2} (stage sums; traced {:+.2}, overhead {:+.2})",
                    s.name, s.ablation_us, s.stages_us, s.traced_us, s.overhead_us
                )
            })
            .collect();
        format!(
            "--waterfall per step (each variant traced; tracing inflates the steps that add hops): {}",
            parts.join("; ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::machine::tests::*;
    use super::machine::*;
    use super::*;

    fn names(d: &DevId) -> Device {
        Device {
            kind: if d.netns == 20 {
                "wire".into()
            } else {
                d.kind_str().to_string()
            },
            name: format!("if{}@{}", d.ifindex, d.netns),
        }
    }

    fn raw_of(m: &Machine) -> RawSums {
        RawSums {
            stages: m.stages.iter().map(|(k, v)| (*k, *v)).collect(),
            stale: m.stale,
            resync: m.resync,
            left: m.left,
            events: m.events,
        }
    }

    /// `n` host round trips through the machine, read as one block.
    fn block(m: &mut Machine, n: u64) -> BlockSums {
        let before = raw_of(m);
        let mut tape = Tape::new();
        for _ in 0..n {
            host_round_trip(&mut tape, 0xa, 0xb);
        }
        m.reset_cursor();
        tape.run(m);
        BlockSums::between(&before, &raw_of(m), n)
    }

    #[test]
    fn stages_per_round_trip_and_their_sum() {
        let mut m = Machine::new(&[(CLIENT, 1), (SERVER, 2)]);
        let blocks = vec![block(&mut m, 10), block(&mut m, 10)];
        let stages = assemble(&blocks, &names);
        let backlog: Vec<&Stage> = stages
            .iter()
            .filter(|s| s.kind == StageKind::BacklogWait)
            .collect();
        // One wait per direction; the first request of each block is before the sync point
        // (the first send), so 10 of 10 requests (the sync is at the request's queue).
        assert_eq!(backlog.len(), 2);
        let waits: f64 = backlog.iter().map(|s| s.per_rt).sum();
        assert!((waits - 2.0).abs() < 1e-9, "{waits}");
        assert!((backlog[0].each_us - 0.25).abs() < 1e-9);
        // Identical blocks: no spread.
        assert_eq!(backlog[0].ci95, Some(0.0));
        // A round trip of the tape is 9.9 µs; each block is tiled from its first send on, so
        // it misses the first 1.1 µs (the client's user space and send call before it).
        let attributed: f64 = stages.iter().map(|s| s.us).sum();
        let expect = (10.0 * 9_900.0 - 1_100.0) / 10.0 / 1000.0;
        assert!((attributed - expect).abs() < 1e-9, "{attributed} {expect}");
        let wf = Waterfall::new(
            &[attributed, attributed],
            &[attributed - 0.1, attributed - 0.1],
            20,
            stages,
            &raw_of(&m),
        )
        .unwrap();
        assert!(wf.unattributed_us.abs() < 1e-9);
        assert!((wf.overhead_us.mean - 0.1).abs() < 1e-9);
        assert!((wf.backlog_waits_per_rt - 2.0).abs() < 1e-9);
        assert!(wf.cpu_work_us < wf.attributed_us);
    }

    #[test]
    fn a_missing_block_stage_widens_the_interval_and_counts_zero_there() {
        let k = StageKey {
            stage: stage::BACKLOG_WAIT,
            role: 0,
            dev: dev(2, 20, "veth"),
        };
        let v = |n: u64, ns: u64| StageVal {
            count: n,
            sum_ns: ns,
            sum_sq: ns * ns / n.max(1),
        };
        let blocks = vec![
            BlockSums {
                round_trips: 100,
                stages: BTreeMap::from([(k, v(200, 60_000))]),
            },
            BlockSums {
                round_trips: 100,
                stages: BTreeMap::new(),
            },
        ];
        let s = assemble(&blocks, &names);
        assert_eq!(s.len(), 1);
        assert!((s[0].per_rt - 1.0).abs() < 1e-9);
        assert!((s[0].us - 0.3).abs() < 1e-9);
        assert!(s[0].ci95.unwrap() > 0.3);
        assert_eq!(s[0].device_kind.as_deref(), Some("wire"));
    }

    #[test]
    fn explain_steps_pair_each_variant_with_the_one_before() {
        let wf = |traced: f64, untraced: f64, attributed: f64| {
            let mut w = Waterfall::new(
                &[traced, traced],
                &[untraced, untraced],
                10,
                Vec::new(),
                &RawSums::default(),
            )
            .unwrap();
            w.attributed_us = attributed;
            w
        };
        let traced = vec![
            ("base".to_string(), wf(20.0, 15.0, 19.9)),
            ("veth".to_string(), wf(25.0, 17.5, 24.8)),
            ("+ bridge".to_string(), wf(26.5, 18.8, 26.3)),
        ];
        let steps = vec![("veth".to_string(), 2.4), ("+ bridge".to_string(), 1.3)];
        let e = explain_steps("base", &steps, &traced).unwrap();
        assert_eq!(e.variants.len(), 3);
        let s: Vec<(f64, f64, f64, f64)> = e
            .steps
            .iter()
            .map(|s| (s.ablation_us, s.traced_us, s.stages_us, s.overhead_us))
            .collect();
        let want = [(2.4, 5.0, 4.9, 2.5), (1.3, 1.5, 1.5, 0.2)];
        for (g, w) in s.iter().zip(want) {
            assert!((g.0 - w.0).abs() < 1e-9 && (g.1 - w.1).abs() < 1e-9);
            assert!(
                (g.2 - w.2).abs() < 1e-9 && (g.3 - w.3).abs() < 1e-9,
                "{s:?}"
            );
        }
        assert!(e
            .line()
            .contains("veth +2.40 µs (ablation) vs +4.90 (stage sums"));
        // A step that was not traced: no comparison.
        assert!(explain_steps("base", &[("x".into(), 1.0)], &traced).is_none());
    }

    #[test]
    fn delta_groups_by_kind_and_device_kind_and_adds_up() {
        let stage = |kind: StageKind, dk: &str, per_rt: f64, us: f64| Stage {
            name: format!("{kind:?} {dk}"),
            kind,
            device: Some("x".into()),
            device_kind: Some(dk.into()),
            role: None,
            per_rt,
            us,
            ci95: None,
            each_us: us / per_rt,
            count: 1,
        };
        let raw = RawSums::default();
        let host = Waterfall::new(
            &[10.0, 10.0],
            &[9.0, 9.0],
            100,
            vec![
                stage(StageKind::BacklogWait, "wire", 2.0, 0.6),
                stage(StageKind::Device, "wire", 2.0, 1.0),
            ],
            &raw,
        )
        .unwrap();
        let bridge = Waterfall::new(
            &[12.0, 12.0],
            &[11.0, 11.0],
            100,
            vec![
                stage(StageKind::BacklogWait, "wire", 2.0, 0.6),
                stage(StageKind::BacklogWait, "veth", 2.0, 0.62),
                stage(StageKind::Device, "wire", 2.0, 1.0),
                stage(StageKind::Device, "bridge", 1.0, 0.4),
            ],
            &raw,
        )
        .unwrap();
        let d = delta(&bridge, &host);
        assert!((d.traced_us - 2.0).abs() < 1e-9);
        assert!((d.stages_us - 1.02).abs() < 1e-9);
        assert_eq!(d.groups[0].kind, StageKind::BacklogWait);
        assert_eq!(d.groups[0].device_kind, "veth");
        assert!((d.groups[0].per_rt - 2.0).abs() < 1e-9);
        let line = delta_line("bridge", &d);
        assert!(
            line.starts_with(
                "bridge +2.00 µs traced (stages +1.02) = +0.62 backlog wait veth (+2 × 0.31 µs)"
            ),
            "{line}"
        );
    }
}
