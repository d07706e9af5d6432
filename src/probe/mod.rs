//! Kernel counters read before and after a run, and divided by its transactions: the
//! explanation of a latency gap (how many times a packet is received, softirqs, CPU time).
//!
//! Sources, one module each: [`softnet`] (`/proc/net/softnet_stat`), [`softirqs`]
//! (`/proc/softirqs`), [`cpu`] (`/proc/stat`) and [`tracepoints`] (perf tracepoint counters).
//! All are global per-CPU data (not per network namespace), so a snapshot taken anywhere sees
//! the whole machine; restrict it to the CPUs the run is pinned to with [`ProbeConfig::cpus`].
//!
//! ```no_run
//! use nslat::probe::{ProbeConfig, Snapshot};
//! let cfg = ProbeConfig::with_tracepoints(Some(vec![0]), &nslat::probe::tracepoints::DEFAULT);
//! let before = Snapshot::take(&cfg)?;
//! // ... run 100_000 transactions ...
//! let after = Snapshot::take(&cfg)?;
//! let per_tx = Snapshot::delta(&before, &after).per_tx(100_000);
//! println!("{} backlog packets per transaction", per_tx.backlog_pkts);
//! # Ok::<(), nslat::probe::ProbeError>(())
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

pub mod backlog;
pub mod cpu;
pub mod snmp;
pub mod softirqs;
pub mod softnet;
pub mod tracepoints;

pub use tracepoints::TracepointCounters;

/// Errors of the probes.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
    /// A probe that cannot work here (no perf, no tracefs); the reason says why.
    #[error("{0}")]
    Unavailable(String),
}

impl ProbeError {
    fn parse(path: &str, line: usize, message: String) -> Self {
        ProbeError::Parse {
            path: path.to_string(),
            line,
            message,
        }
    }
}

fn read_file(path: &str) -> Result<String, ProbeError> {
    std::fs::read_to_string(path).map_err(|source| ProbeError::Read {
        path: path.to_string(),
        source,
    })
}

/// Parses a kernel CPU list such as `0-3,8,10-11` (`/sys/devices/system/cpu/online`).
pub fn parse_cpu_list(text: &str) -> Result<Vec<usize>, ProbeError> {
    let bad = || ProbeError::parse("cpu list", 1, format!("bad CPU list '{}'", text.trim()));
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) =
                    (a.parse().map_err(|_| bad())?, b.parse().map_err(|_| bad())?);
                if a > b {
                    return Err(bad());
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().map_err(|_| bad())?),
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// The online CPUs.
pub fn online_cpus() -> Result<Vec<usize>, ProbeError> {
    parse_cpu_list(&read_file("/sys/devices/system/cpu/online")?)
}

/// What to read. Cheap to clone (the perf counters are shared).
#[derive(Debug, Clone, Default)]
pub struct ProbeConfig {
    /// Count only these CPUs (the ones the run is pinned to); `None`: all CPUs.
    pub cpus: Option<Vec<usize>>,
    /// Open tracepoint counters, when available.
    pub tracepoints: Option<Arc<TracepointCounters>>,
    /// Why tracepoints are not counted, when they were asked for and are unavailable.
    pub tracepoints_unavailable: Option<String>,
}

impl ProbeConfig {
    /// The /proc counters only.
    pub fn new(cpus: Option<Vec<usize>>) -> Self {
        ProbeConfig {
            cpus,
            tracepoints: None,
            tracepoints_unavailable: None,
        }
    }

    /// The /proc counters plus perf counters for `names` on every online CPU. If perf or tracefs
    /// is unavailable, the reason is kept in `tracepoints_unavailable` and the rest still works.
    /// The counters stay open (and cost a little per event) until the config is dropped.
    pub fn with_tracepoints(cpus: Option<Vec<usize>>, names: &[&str]) -> Self {
        let mut cfg = ProbeConfig::new(cpus);
        match online_cpus().and_then(|online| TracepointCounters::open(names, &online)) {
            Ok(c) => cfg.tracepoints = Some(Arc::new(c)),
            Err(e) => cfg.tracepoints_unavailable = Some(format!("tracepoints not counted: {e}")),
        }
        cfg
    }
}

/// All counters at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub taken: Instant,
    pub softnet: Vec<softnet::SoftnetCpu>,
    pub softirqs: Vec<softirqs::SoftirqCpu>,
    pub cpu: Vec<cpu::CpuTimes>,
    /// Tracepoint name -> CPU -> count (empty when not counted).
    pub tracepoints: BTreeMap<String, BTreeMap<usize, u64>>,
    /// The CPU restriction of the config.
    pub cpus: Option<Vec<usize>>,
    /// One line per probe that could not be read, with the reason.
    pub notes: Vec<String>,
}

/// Counter increments between two snapshots, summed over the selected CPUs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProbeDelta {
    pub elapsed_s: f64,
    /// softnet_stat `processed`: packets received by the stack, once per device pass.
    pub backlog_pkts: u64,
    pub dropped: u64,
    pub time_squeeze: u64,
    pub net_rx: u64,
    pub net_tx: u64,
    /// user + nice.
    pub cpu_user_us: f64,
    pub cpu_system_us: f64,
    pub cpu_irq_us: f64,
    pub cpu_softirq_us: f64,
    /// user + nice + system + irq + softirq + steal.
    pub cpu_busy_us: f64,
    /// How many CPUs the figures are summed over.
    #[serde(default)]
    pub cpus_counted: usize,
    pub tracepoints: BTreeMap<String, u64>,
    pub notes: Vec<String>,
}

/// A [`ProbeDelta`] divided by a number of transactions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PerTx {
    pub backlog_pkts: f64,
    pub net_rx: f64,
    pub net_tx: f64,
    pub cpu_us: f64,
    pub cpu_user_us: f64,
    pub cpu_system_us: f64,
    pub cpu_softirq_us: f64,
    pub tracepoints: BTreeMap<String, f64>,
}

impl Snapshot {
    /// Reads every source. A missing /proc file is an error; unavailable tracepoints are a note.
    pub fn take(cfg: &ProbeConfig) -> Result<Snapshot, ProbeError> {
        let mut notes = Vec::new();
        let mut tracepoints = BTreeMap::new();
        if let Some(tp) = &cfg.tracepoints {
            match tp.read() {
                Ok(t) => tracepoints = t,
                Err(e) => notes.push(format!("tracepoints not counted: {e}")),
            }
        } else if let Some(reason) = &cfg.tracepoints_unavailable {
            notes.push(reason.clone());
        }
        Ok(Snapshot {
            taken: Instant::now(),
            softnet: softnet::read()?,
            softirqs: softirqs::read()?,
            cpu: cpu::read()?,
            tracepoints,
            cpus: cfg.cpus.clone(),
            notes,
        })
    }

    fn selected(&self, cpu: usize) -> bool {
        self.cpus.as_ref().is_none_or(|c| c.contains(&cpu))
    }

    /// The increments from `before` to `after`, over `after`'s CPU selection. CPUs missing from
    /// either snapshot (hot-plugged) are skipped; 32-bit softnet counters wrap modulo 2^32.
    pub fn delta(before: &Snapshot, after: &Snapshot) -> ProbeDelta {
        let mut d = ProbeDelta {
            elapsed_s: after
                .taken
                .saturating_duration_since(before.taken)
                .as_secs_f64(),
            ..ProbeDelta::default()
        };
        for a in after.softnet.iter().filter(|a| after.selected(a.cpu)) {
            if let Some(b) = before.softnet.iter().find(|b| b.cpu == a.cpu) {
                d.backlog_pkts += u64::from(a.processed.wrapping_sub(b.processed));
                d.dropped += u64::from(a.dropped.wrapping_sub(b.dropped));
                d.time_squeeze += u64::from(a.time_squeeze.wrapping_sub(b.time_squeeze));
            }
        }
        for a in after.softirqs.iter().filter(|a| after.selected(a.cpu)) {
            if let Some(b) = before.softirqs.iter().find(|b| b.cpu == a.cpu) {
                d.net_rx += a.net_rx.saturating_sub(b.net_rx);
                d.net_tx += a.net_tx.saturating_sub(b.net_tx);
            }
        }
        let us = cpu::us_per_tick();
        for a in after.cpu.iter().filter(|a| after.selected(a.cpu)) {
            if let Some(b) = before.cpu.iter().find(|b| b.cpu == a.cpu) {
                let t = |x: u64, y: u64| x.saturating_sub(y) as f64 * us;
                d.cpu_user_us += t(a.user + a.nice, b.user + b.nice);
                d.cpu_system_us += t(a.system, b.system);
                d.cpu_irq_us += t(a.irq, b.irq);
                d.cpu_softirq_us += t(a.softirq, b.softirq);
                d.cpu_busy_us += t(a.busy(), b.busy());
                d.cpus_counted += 1;
            }
        }
        for (name, per_cpu) in &after.tracepoints {
            let Some(prev) = before.tracepoints.get(name) else {
                continue;
            };
            let sum = per_cpu
                .iter()
                .filter(|(cpu, _)| after.selected(**cpu))
                .map(|(cpu, v)| v.saturating_sub(prev.get(cpu).copied().unwrap_or(*v)))
                .sum();
            d.tracepoints.insert(name.clone(), sum);
        }
        d.notes = after.notes.clone();
        d
    }
}

impl ProbeDelta {
    /// The share of the counted CPUs' time (0..1) that went to work other than `own_us` (the
    /// measuring threads' CPU time) and interrupts: other processes on the pinned CPUs. Softirq
    /// time is not foreign (the measured packets are processed there), nor is IRQ time. `None`
    /// when no CPU or no time was counted.
    pub fn foreign_share(&self, own_us: f64) -> Option<f64> {
        let total_us = self.elapsed_s * 1e6 * self.cpus_counted as f64;
        if total_us <= 0.0 {
            return None;
        }
        let foreign = self.cpu_busy_us - self.cpu_softirq_us - self.cpu_irq_us - own_us;
        Some((foreign / total_us).clamp(0.0, 1.0))
    }

    /// Every counter divided by `transactions` (all zeros for zero transactions).
    pub fn per_tx(&self, transactions: u64) -> PerTx {
        if transactions == 0 {
            return PerTx::default();
        }
        let n = transactions as f64;
        PerTx {
            backlog_pkts: self.backlog_pkts as f64 / n,
            net_rx: self.net_rx as f64 / n,
            net_tx: self.net_tx as f64 / n,
            cpu_us: self.cpu_busy_us / n,
            cpu_user_us: self.cpu_user_us / n,
            cpu_system_us: self.cpu_system_us / n,
            cpu_softirq_us: self.cpu_softirq_us / n,
            tracepoints: self
                .tracepoints
                .iter()
                .map(|(k, v)| (k.clone(), *v as f64 / n))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpu_list("0-1\n").unwrap(), vec![0, 1]);
        assert_eq!(parse_cpu_list("0,2-3,7").unwrap(), vec![0, 2, 3, 7]);
        assert!(parse_cpu_list("").is_err());
        assert!(parse_cpu_list("3-1").is_err());
        assert!(parse_cpu_list("a").is_err());
    }

    fn snap(
        cpus: Option<Vec<usize>>,
        processed: [u32; 2],
        rx: [u64; 2],
        user: [u64; 2],
    ) -> Snapshot {
        Snapshot {
            taken: Instant::now(),
            softnet: (0..2)
                .map(|c| softnet::SoftnetCpu {
                    cpu: c,
                    processed: processed[c],
                    ..Default::default()
                })
                .collect(),
            softirqs: (0..2)
                .map(|c| softirqs::SoftirqCpu {
                    cpu: c,
                    net_rx: rx[c],
                    net_tx: 0,
                })
                .collect(),
            cpu: (0..2)
                .map(|c| cpu::CpuTimes {
                    cpu: c,
                    user: user[c],
                    ..Default::default()
                })
                .collect(),
            tracepoints: BTreeMap::from([(
                "net:netif_rx".to_string(),
                BTreeMap::from([(0, rx[0] * 2), (1, rx[1] * 2)]),
            )]),
            cpus,
            notes: vec![],
        }
    }

    #[test]
    fn delta_sums_selected_cpus_and_wraps() {
        let b = snap(None, [u32::MAX - 1, 10], [100, 200], [1, 1]);
        let a = snap(None, [3, 15], [110, 230], [2, 4]);
        let d = Snapshot::delta(&b, &a);
        assert_eq!(d.backlog_pkts, 5 + 5, "wrapped counter: MAX-1 -> 3 is 5");
        assert_eq!(d.net_rx, 40);
        assert_eq!(d.tracepoints["net:netif_rx"], 80);
        assert!((d.cpu_user_us - 4.0 * cpu::us_per_tick()).abs() < 1e-9);

        let a1 = snap(Some(vec![1]), [3, 15], [110, 230], [2, 4]);
        let d1 = Snapshot::delta(&b, &a1);
        assert_eq!((d1.backlog_pkts, d1.net_rx), (5, 30));
        assert_eq!(d1.tracepoints["net:netif_rx"], 60);

        let p = d.per_tx(10);
        assert_eq!((p.backlog_pkts, p.net_rx), (1.0, 4.0));
        assert_eq!(p.tracepoints["net:netif_rx"], 8.0);
        assert_eq!(d.per_tx(0), PerTx::default());
    }
}
