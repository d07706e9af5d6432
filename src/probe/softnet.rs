//! `/proc/net/softnet_stat`: per-CPU packet-processing counters of the receive path.
//!
//! One line per online CPU, hexadecimal columns (kernel 6.x, `net/core/net-procfs.c`):
//! 1 `processed` (incremented in `__netif_receive_skb_core` once per packet *per pass*: a packet
//! that crosses veth and then a bridge is counted on each device it is received on, which is what
//! makes it a measure of path length), 2 `dropped` (backlog full), 3 `time_squeeze`, 4–9 unused,
//! 10 `received_rps`, 11 `flow_limit_count`, 12 backlog length (`softnet_backlog_len`: input +
//! process queue, packets waiting in this CPU's backlog at the moment of reading), 13 CPU id
//! (since 5.10), 14–15 input/process queue lengths (since 6.x; kernel 6.18 prints all 15).
//! Older kernels print fewer columns; then the CPU id is the line's position and a missing
//! queue length reads 0.
//!
//! The file sits under the per-network-namespace `/proc/net`, but the data is the global
//! per-CPU `softnet_data`: every namespace reads the same numbers (checked by `tests/it/probe.rs`).
//! The counters are 32 bits wide and wrap; deltas are taken modulo 2^32.

use super::ProbeError;

/// The path this module reads.
pub const PATH: &str = "/proc/net/softnet_stat";

/// One CPU's line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftnetCpu {
    pub cpu: usize,
    /// Packets received by `__netif_receive_skb_core` on this CPU (one per device pass).
    pub processed: u32,
    /// Packets dropped because the backlog queue was full.
    pub dropped: u32,
    /// Times the NET_RX softirq ran out of budget with work left.
    pub time_squeeze: u32,
    /// Packets in the backlog right now (column 12: input + process queue; 0 when absent).
    pub backlog_len: u32,
}

/// Parses the whole file.
pub fn parse(text: &str) -> Result<Vec<SoftnetCpu>, ProbeError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let cols: Vec<u32> = line
            .split_whitespace()
            .map(|c| u32::from_str_radix(c, 16))
            .collect::<Result<_, _>>()
            .map_err(|e| ProbeError::parse(PATH, index + 1, format!("bad hex column: {e}")))?;
        if cols.len() < 3 {
            return Err(ProbeError::parse(
                PATH,
                index + 1,
                format!("{} columns, expected at least 3", cols.len()),
            ));
        }
        let cpu = if cols.len() >= 13 {
            cols[12] as usize
        } else {
            index
        };
        out.push(SoftnetCpu {
            cpu,
            processed: cols[0],
            dropped: cols[1],
            time_squeeze: cols[2],
            backlog_len: cols.get(11).copied().unwrap_or(0),
        });
    }
    if out.is_empty() {
        return Err(ProbeError::parse(PATH, 0, "no CPU lines".into()));
    }
    Ok(out)
}

/// Reads and parses [`PATH`].
pub fn read() -> Result<Vec<SoftnetCpu>, ProbeError> {
    parse(&super::read_file(PATH)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_6_18_fixture() {
        let v = parse(include_str!("../../tests/fixtures/softnet_stat.6_18")).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(v[0].cpu, 0);
        assert_eq!(v[1].cpu, 1);
        assert_eq!(v[0].processed, 0x0000000c);
        assert_eq!(v[1].processed, 0x00002f01);
    }

    #[test]
    fn cpu_id_column_is_used_when_cpus_are_offline() {
        // CPU 1 offline: the lines are CPU 0 and CPU 2, the 13th column says so.
        let text = "00000010 00000001 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n\
                    000000ff 00000000 00000003 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000002\n";
        let v = parse(text).unwrap();
        assert_eq!(
            v[1],
            SoftnetCpu {
                cpu: 2,
                processed: 255,
                dropped: 0,
                time_squeeze: 3,
                backlog_len: 0,
            }
        );
        assert_eq!(v[0].dropped, 1);
    }

    #[test]
    fn backlog_length_is_the_twelfth_column() {
        // Kernel 6.18 (net/core/net-procfs.c): ... received_rps, flow_limit_count,
        // input_qlen + process_qlen, cpu, input_qlen, process_qlen.
        let text = "00000100 00000000 00000002 00000000 00000000 00000000 00000000 00000000 00000000 00000007 00000008 00000005 00000000 00000003 00000002\n\
                    00000200 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 0000001a 00000001 00000010 0000000a\n";
        let v = parse(text).unwrap();
        assert_eq!((v[0].cpu, v[0].backlog_len), (0, 5));
        assert_eq!((v[1].cpu, v[1].backlog_len), (1, 26));
        let fixture = parse(include_str!("../../tests/fixtures/softnet_stat.6_18")).unwrap();
        assert!(fixture.iter().all(|c| c.backlog_len == 0));
        // Eleven columns (before the backlog length was printed): 0.
        let old = parse("0000000a 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000009\n").unwrap();
        assert_eq!(old[0].backlog_len, 0);
    }

    #[test]
    fn old_kernel_without_cpu_column_uses_line_order() {
        let text = "0000000a 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n\
                    0000000b 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000 00000000\n";
        let v = parse(text).unwrap();
        assert_eq!((v[1].cpu, v[1].processed), (1, 11));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("zz 00 00\n").is_err());
        assert!(parse("00000001 00000002\n").is_err());
        assert!(parse("100000000 0 0\n").is_err(), "wider than 32 bits");
        let e = parse("0000000a 0000000x 0\n").unwrap_err().to_string();
        assert!(e.contains("softnet_stat") && e.contains("line 1"), "{e}");
    }
}
