//! Tracepoint counts via perf events (`perf_event_open`, type TRACEPOINT), counted system-wide
//! on every online CPU (pid -1, cpu N; kernel events included).
//!
//! A tracepoint's perf id is read from tracefs (`events/<sys>/<name>/id`). tracefs need not be
//! mounted: a short-lived thread unshares its mount namespace (`CLONE_NEWNS | CLONE_FS`), makes
//! every mount private (so nothing propagates back), mounts tracefs on `/sys/kernel/tracing`
//! inside that namespace, reads the ids and exits, which drops the namespace. The root mount
//! namespace is never changed. perf itself does not need tracefs once the ids are known.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Mutex;

use perf_event::events::Tracepoint;
use perf_event::{Builder, Counter};

use super::ProbeError;

/// The tracepoints nslat counts by default: packets entering the backlog (`netif_rx`), packets
/// handed to a device (`net_dev_xmit`), packets received by the stack (`netif_receive_skb`),
/// softirq runs (`softirq_entry`).
pub const DEFAULT: [&str; 4] = [
    "net:netif_rx",
    "net:net_dev_xmit",
    "net:netif_receive_skb",
    "irq:softirq_entry",
];

/// Where tracefs is mounted inside the private namespace.
const MOUNT_POINT: &str = "/sys/kernel/tracing";

/// Parses a tracefs `id` file.
pub fn parse_id(text: &str) -> Result<u64, ProbeError> {
    text.trim()
        .parse()
        .map_err(|_| ProbeError::parse("tracefs id", 1, format!("bad id '{}'", text.trim())))
}

/// Splits `sys:name` into its parts.
pub fn split_name(name: &str) -> Result<(&str, &str), ProbeError> {
    match name.split_once(':') {
        Some((s, n))
            if !s.is_empty()
                && !n.is_empty()
                && !n.contains(['/', '.'])
                && !s.contains(['/', '.']) =>
        {
            Ok((s, n))
        }
        _ => Err(ProbeError::Unavailable(format!(
            "bad tracepoint name '{name}': use SYSTEM:EVENT, e.g. net:netif_rx"
        ))),
    }
}

/// Reads the perf ids of `names` (`sys:name`), from an already mounted tracefs at `root`.
pub fn read_ids_at(root: &Path, names: &[&str]) -> Result<Vec<u64>, ProbeError> {
    names
        .iter()
        .map(|name| {
            let (sys, ev) = split_name(name)?;
            let path = root.join("events").join(sys).join(ev).join("id");
            let text = std::fs::read_to_string(&path).map_err(|e| {
                ProbeError::Unavailable(format!("tracepoint {name}: {}: {e}", path.display()))
            })?;
            parse_id(&text)
        })
        .collect()
}

/// Reads the perf ids of `names`, mounting tracefs in a private mount namespace on a
/// throw-away thread if it is not mounted already.
pub fn read_ids(names: &[&str]) -> Result<Vec<u64>, ProbeError> {
    let mounted = Path::new(MOUNT_POINT).join("events");
    if mounted.is_dir() {
        return read_ids_at(Path::new(MOUNT_POINT), names);
    }
    let names: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    std::thread::spawn(move || -> Result<Vec<u64>, ProbeError> {
        use nix::mount::{mount, MsFlags};
        use nix::sched::{unshare, CloneFlags};
        let fail = |what: &str, e: nix::Error| {
            ProbeError::Unavailable(format!("tracefs: {what}: {e} (needs root)"))
        };
        unshare(CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_FS)
            .map_err(|e| fail("unshare mount namespace", e))?;
        mount(
            None::<&str>,
            "/",
            None::<&str>,
            MsFlags::MS_REC | MsFlags::MS_PRIVATE,
            None::<&str>,
        )
        .map_err(|e| fail("make mounts private", e))?;
        mount(
            Some("tracefs"),
            MOUNT_POINT,
            Some("tracefs"),
            MsFlags::empty(),
            None::<&str>,
        )
        .map_err(|e| fail("mount tracefs", e))?;
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        read_ids_at(Path::new(MOUNT_POINT), &refs)
        // The thread exits here; its private namespace (and the mount) go with it.
    })
    .join()
    .map_err(|_| ProbeError::Unavailable("tracefs: reader thread panicked".into()))?
}

/// Open perf counters: one per (tracepoint, CPU), enabled, counting from the moment they open.
#[derive(Debug)]
pub struct TracepointCounters {
    names: Vec<String>,
    /// `counters[i]` holds tracepoint `names[i]`'s counter on each CPU.
    counters: Mutex<Vec<Vec<(usize, Counter)>>>,
}

impl TracepointCounters {
    /// Opens counters for `names` on each CPU of `cpus`.
    pub fn open(names: &[&str], cpus: &[usize]) -> Result<Self, ProbeError> {
        let ids = read_ids(names)?;
        let mut all = Vec::with_capacity(names.len());
        for (name, id) in names.iter().zip(ids) {
            let mut per_cpu = Vec::with_capacity(cpus.len());
            for &cpu in cpus {
                let mut counter = Builder::new(Tracepoint::with_id(id))
                    .any_pid()
                    .one_cpu(cpu)
                    .exclude_kernel(false)
                    .exclude_hv(false)
                    .build()
                    .map_err(|e| {
                        ProbeError::Unavailable(format!("perf_event_open {name} on CPU {cpu}: {e}"))
                    })?;
                counter.enable().map_err(|e| {
                    ProbeError::Unavailable(format!("perf enable {name} on CPU {cpu}: {e}"))
                })?;
                per_cpu.push((cpu, counter));
            }
            all.push(per_cpu);
        }
        Ok(TracepointCounters {
            names: names.iter().map(|s| s.to_string()).collect(),
            counters: Mutex::new(all),
        })
    }

    /// The counted tracepoints' names.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// Reads every counter: tracepoint name -> (CPU -> count since open).
    pub fn read(&self) -> Result<BTreeMap<String, BTreeMap<usize, u64>>, ProbeError> {
        let mut guard = self.counters.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = BTreeMap::new();
        for (name, per_cpu) in self.names.iter().zip(guard.iter_mut()) {
            let mut m = BTreeMap::new();
            for (cpu, c) in per_cpu.iter_mut() {
                let v = c
                    .read()
                    .map_err(|e| ProbeError::Unavailable(format!("perf read {name}: {e}")))?;
                m.insert(*cpu, v);
            }
            out.insert(name.clone(), m);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_names_parse() {
        assert_eq!(parse_id("1234\n").unwrap(), 1234);
        assert!(parse_id("").is_err());
        assert!(parse_id("12a").is_err());
        assert_eq!(split_name("net:netif_rx").unwrap(), ("net", "netif_rx"));
        assert!(split_name("netif_rx").is_err());
        assert!(split_name("net:../../x").is_err());
        assert!(split_name(":x").is_err());
    }

    #[test]
    fn ids_from_a_tracefs_like_tree() {
        let dir = tempfile::tempdir().unwrap();
        let ev = dir.path().join("events/net/netif_rx");
        std::fs::create_dir_all(&ev).unwrap();
        std::fs::write(ev.join("id"), "1500\n").unwrap();
        assert_eq!(
            read_ids_at(dir.path(), &["net:netif_rx"]).unwrap(),
            vec![1500]
        );
        let e = read_ids_at(dir.path(), &["net:nope"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("net:nope"), "{e}");
    }
}
