//! IP packets per family from `/proc/net/snmp` (`Ip: InReceives`, `OutRequests`) and
//! `/proc/net/snmp6` (`Ip6InReceives`, `Ip6OutRequests`). Unlike the other probes these are
//! per network namespace: read inside the namespace a client runs in, around a run, they say
//! which family its packets really used (`compare --family 6` must not measure IPv4 in disguise).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Errors of the per-namespace SNMP counters.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
}

/// Packets received and sent by IP, per family (one namespace, all interfaces).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpPackets {
    pub v4_in: u64,
    pub v4_out: u64,
    pub v6_in: u64,
    pub v6_out: u64,
}

/// Packets per transaction of each family (received + sent in the client's namespace).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PacketsPerTx {
    pub ipv4: f64,
    pub ipv6: f64,
}

impl IpPackets {
    /// `later - self`, counter by counter (saturating).
    pub fn delta(&self, later: &IpPackets) -> IpPackets {
        IpPackets {
            v4_in: later.v4_in.saturating_sub(self.v4_in),
            v4_out: later.v4_out.saturating_sub(self.v4_out),
            v6_in: later.v6_in.saturating_sub(self.v6_in),
            v6_out: later.v6_out.saturating_sub(self.v6_out),
        }
    }

    /// Per transaction (`None` for no transactions).
    pub fn per_tx(&self, transactions: u64) -> Option<PacketsPerTx> {
        (transactions > 0).then(|| PacketsPerTx {
            ipv4: (self.v4_in + self.v4_out) as f64 / transactions as f64,
            ipv6: (self.v6_in + self.v6_out) as f64 / transactions as f64,
        })
    }

    /// The counters of the namespace at `netns` (`None`: the caller's), read on a thread inside
    /// it (`/proc/thread-self/net`: `/proc/self/net` would show the main thread's namespace).
    pub fn read_in(netns: Option<&Path>) -> Result<IpPackets, SnmpError> {
        crate::netns::run_in(netns, || {
            IpPackets::read(Path::new("/proc/thread-self/net"))
        })
    }

    /// The counters under `dir` (`snmp`, and `snmp6` when the kernel has IPv6).
    pub fn read(dir: &Path) -> Result<IpPackets, SnmpError> {
        let read = |p: PathBuf| {
            std::fs::read_to_string(&p).map_err(|source| SnmpError::Read {
                path: p.display().to_string(),
                source,
            })
        };
        let (v4_in, v4_out) =
            parse_snmp(&read(dir.join("snmp"))?).ok_or_else(|| SnmpError::Parse {
                path: dir.join("snmp").display().to_string(),
                message: "no Ip: InReceives/OutRequests".into(),
            })?;
        let (v6_in, v6_out) = match std::fs::read_to_string(dir.join("snmp6")) {
            Ok(t) => parse_snmp6(&t).unwrap_or((0, 0)),
            Err(_) => (0, 0),
        };
        Ok(IpPackets {
            v4_in,
            v4_out,
            v6_in,
            v6_out,
        })
    }
}

/// `(InReceives, OutRequests)` of the `Ip:` header/value line pair of `/proc/net/snmp`.
pub fn parse_snmp(text: &str) -> Option<(u64, u64)> {
    let mut lines = text.lines().filter(|l| l.starts_with("Ip: "));
    let names: Vec<&str> = lines.next()?.split_whitespace().skip(1).collect();
    let values: Vec<&str> = lines.next()?.split_whitespace().skip(1).collect();
    let get = |k: &str| -> Option<u64> {
        let i = names.iter().position(|n| *n == k)?;
        values.get(i)?.parse().ok()
    };
    Some((get("InReceives")?, get("OutRequests")?))
}

/// `(Ip6InReceives, Ip6OutRequests)` of `/proc/net/snmp6` (`NAME value` lines).
pub fn parse_snmp6(text: &str) -> Option<(u64, u64)> {
    let get = |k: &str| -> Option<u64> {
        text.lines().find_map(|l| {
            let mut f = l.split_whitespace();
            (f.next()? == k).then(|| f.next()?.parse().ok())?
        })
    };
    Some((get("Ip6InReceives")?, get("Ip6OutRequests")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SNMP: &str = "Ip: Forwarding DefaultTTL InReceives InHdrErrors InAddrErrors ForwDatagrams InUnknownProtos InDiscards InDelivers OutRequests OutDiscards OutNoRoutes ReasmTimeout ReasmReqds ReasmOKs ReasmFails FragOKs FragFails FragCreates OutTransmits\n\
Ip: 1 64 1234 0 0 0 0 0 1234 987 0 0 0 0 0 0 0 0 0 987\n\
Icmp: InMsgs InErrors\n\
Icmp: 0 0\n";

    const SNMP6: &str = "Ip6InReceives                   	4321\n\
Ip6InHdrErrors                  	0\n\
Ip6OutRequests                  	4300\n\
Icmp6InMsgs                     	3\n";

    #[test]
    fn parses_both_files() {
        assert_eq!(parse_snmp(SNMP), Some((1234, 987)));
        assert_eq!(parse_snmp6(SNMP6), Some((4321, 4300)));
        assert_eq!(parse_snmp("Tcp: A\nTcp: 1\n"), None);
        assert_eq!(parse_snmp6("Ip6InReceives 5\n"), None);
    }

    #[test]
    fn delta_per_transaction() {
        let a = IpPackets {
            v4_in: 10,
            v4_out: 10,
            v6_in: 100,
            v6_out: 100,
        };
        let b = IpPackets {
            v4_in: 11,
            v4_out: 10,
            v6_in: 300,
            v6_out: 300,
        };
        let p = a.delta(&b).per_tx(200).unwrap();
        assert_eq!((p.ipv4, p.ipv6), (0.005, 2.0));
        assert!(a.delta(&b).per_tx(0).is_none());
    }

    #[test]
    fn reads_this_namespace() {
        // /proc/net/snmp exists on every Linux kernel with IPv4.
        IpPackets::read(Path::new("/proc/self/net")).unwrap();
    }
}
