//! `/proc/softirqs`: per-CPU counts of each softirq vector (raised and run), here NET_RX and
//! NET_TX. A header line names the CPUs (`CPU0 CPU1 ...`, online CPUs only), then one line per
//! vector (`NET_RX: 5951 7997`). Global data, the same in every namespace.

use super::ProbeError;

/// The path this module reads.
pub const PATH: &str = "/proc/softirqs";

/// One CPU's network softirq counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SoftirqCpu {
    pub cpu: usize,
    pub net_rx: u64,
    pub net_tx: u64,
}

/// Parses the whole file.
pub fn parse(text: &str) -> Result<Vec<SoftirqCpu>, ProbeError> {
    let mut lines = text.lines().enumerate();
    let (_, header) = lines
        .next()
        .ok_or_else(|| ProbeError::parse(PATH, 0, "empty file".into()))?;
    let cpus: Vec<usize> = header
        .split_whitespace()
        .map(|c| c.strip_prefix("CPU").and_then(|n| n.parse().ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| ProbeError::parse(PATH, 1, format!("bad header '{header}'")))?;
    if cpus.is_empty() {
        return Err(ProbeError::parse(PATH, 1, "no CPUs in header".into()));
    }
    let mut rx = None;
    let mut tx = None;
    for (index, line) in lines {
        let Some((name, rest)) = line.split_once(':') else {
            continue;
        };
        let slot = match name.trim() {
            "NET_RX" => &mut rx,
            "NET_TX" => &mut tx,
            _ => continue,
        };
        let values: Vec<u64> = rest
            .split_whitespace()
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| ProbeError::parse(PATH, index + 1, format!("bad count: {e}")))?;
        if values.len() != cpus.len() {
            return Err(ProbeError::parse(
                PATH,
                index + 1,
                format!("{} counts for {} CPUs", values.len(), cpus.len()),
            ));
        }
        *slot = Some(values);
    }
    let (Some(rx), Some(tx)) = (rx, tx) else {
        return Err(ProbeError::parse(
            PATH,
            0,
            "no NET_RX or NET_TX line".into(),
        ));
    };
    Ok(cpus
        .iter()
        .enumerate()
        .map(|(i, &cpu)| SoftirqCpu {
            cpu,
            net_rx: rx[i],
            net_tx: tx[i],
        })
        .collect())
}

/// Reads and parses [`PATH`].
pub fn read() -> Result<Vec<SoftirqCpu>, ProbeError> {
    parse(&super::read_file(PATH)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_6_18_fixture() {
        let v = parse(include_str!("../../tests/fixtures/softirqs.6_18")).unwrap();
        assert_eq!(
            v,
            vec![
                SoftirqCpu {
                    cpu: 0,
                    net_rx: 7043,
                    net_tx: 4
                },
                SoftirqCpu {
                    cpu: 1,
                    net_rx: 9147,
                    net_tx: 0
                },
            ]
        );
    }

    #[test]
    fn sparse_cpu_ids_follow_the_header() {
        let text = "       CPU0  CPU3\n NET_TX: 1 2\n NET_RX: 30 40\n";
        let v = parse(text).unwrap();
        assert_eq!(
            v[1],
            SoftirqCpu {
                cpu: 3,
                net_rx: 40,
                net_tx: 2
            }
        );
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("CPU0 CPUx\nNET_RX: 1 2\nNET_TX: 1 2\n").is_err());
        assert!(
            parse("CPU0 CPU1\nNET_RX: 1\nNET_TX: 1 2\n").is_err(),
            "short row"
        );
        assert!(parse("CPU0 CPU1\nNET_RX: 1 -2\nNET_TX: 1 2\n").is_err());
        assert!(parse("CPU0 CPU1\nTIMER: 1 2\n").is_err(), "no NET_RX");
    }
}
