//! `/proc/stat`: per-CPU time in USER_HZ ticks (`cpuN user nice system idle iowait irq softirq
//! steal ...`), converted to microseconds. Global data, the same in every namespace. The tick is
//! coarse (10 ms at USER_HZ=100): divide by many transactions, never read one transaction.

use super::ProbeError;

/// The path this module reads.
pub const PATH: &str = "/proc/stat";

/// One CPU's accumulated times, in ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CpuTimes {
    pub cpu: usize,
    pub user: u64,
    pub nice: u64,
    pub system: u64,
    pub idle: u64,
    pub iowait: u64,
    pub irq: u64,
    pub softirq: u64,
    pub steal: u64,
}

impl CpuTimes {
    /// Ticks spent doing work: user + nice + system + irq + softirq + steal.
    pub fn busy(&self) -> u64 {
        self.user + self.nice + self.system + self.irq + self.softirq + self.steal
    }
}

/// Parses the per-CPU lines (`cpuN ...`); the aggregate `cpu` line and the rest are skipped.
pub fn parse(text: &str) -> Result<Vec<CpuTimes>, ProbeError> {
    let mut out = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let mut cols = line.split_whitespace();
        let Some(name) = cols.next() else { continue };
        let Some(id) = name.strip_prefix("cpu") else {
            continue;
        };
        if id.is_empty() {
            continue; // the all-CPU line
        }
        let bad = |m: String| ProbeError::parse(PATH, index + 1, m);
        let cpu: usize = id
            .parse()
            .map_err(|_| bad(format!("bad CPU name '{name}'")))?;
        let v: Vec<u64> = cols
            .map(str::parse)
            .collect::<Result<_, _>>()
            .map_err(|e| bad(format!("bad tick count: {e}")))?;
        if v.len() < 7 {
            return Err(bad(format!("{} columns, expected at least 7", v.len())));
        }
        out.push(CpuTimes {
            cpu,
            user: v[0],
            nice: v[1],
            system: v[2],
            idle: v[3],
            iowait: v[4],
            irq: v[5],
            softirq: v[6],
            steal: v.get(7).copied().unwrap_or(0),
        });
    }
    if out.is_empty() {
        return Err(ProbeError::parse(PATH, 0, "no cpuN lines".into()));
    }
    Ok(out)
}

/// Reads and parses [`PATH`].
pub fn read() -> Result<Vec<CpuTimes>, ProbeError> {
    parse(&super::read_file(PATH)?)
}

/// Microseconds per USER_HZ tick (`sysconf(_SC_CLK_TCK)`, 100 on Linux: 10 000 µs).
pub fn us_per_tick() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let hz = if hz > 0 { hz as f64 } else { 100.0 };
    1e6 / hz
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_6_18_fixture() {
        let v = parse(include_str!("../../tests/fixtures/stat.6_18")).unwrap();
        assert_eq!(v.len(), 2);
        assert_eq!(
            v[1],
            CpuTimes {
                cpu: 1,
                user: 8241,
                nice: 0,
                system: 1242,
                idle: 46811,
                iowait: 295,
                irq: 0,
                softirq: 23,
                steal: 11
            }
        );
        assert_eq!(v[1].busy(), 8241 + 1242 + 23 + 11);
    }

    #[test]
    fn old_format_without_steal() {
        let v = parse("cpu 1 2 3 4 5 6 7\ncpu0 1 2 3 4 5 6 7\nintr 5\n").unwrap();
        assert_eq!((v[0].softirq, v[0].steal), (7, 0));
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(parse("").is_err());
        assert!(parse("intr 1 2 3\n").is_err());
        assert!(parse("cpu0 1 2 3\n").is_err(), "too few columns");
        assert!(parse("cpu0 1 2 3 4 5 6 x\n").is_err());
        assert!(parse("cpuX 1 2 3 4 5 6 7\n").is_err());
    }

    #[test]
    fn tick_is_positive() {
        assert!(us_per_tick() > 0.0);
    }
}
