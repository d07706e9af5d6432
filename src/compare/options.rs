//! What a comparison measures, checked before anything is built.

use std::time::Duration;

use crate::bench::{client, RunSpec, TestKind};
use crate::lab::Mode;

/// Where the client and server loops run (`--cpu`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum CpuChoice {
    /// Client and server pinned to one CPU (the default: the path's own cost shows).
    Same,
    /// Client and server on different CPUs (cross-CPU wake-ups dominate).
    Split,
    /// Both tables, one after the other.
    Both,
}

impl CpuChoice {
    /// The placements to measure, in order.
    pub fn placements(self) -> &'static [CpuPlacement] {
        match self {
            CpuChoice::Same => &[CpuPlacement::Same],
            CpuChoice::Split => &[CpuPlacement::Split],
            CpuChoice::Both => &[CpuPlacement::Same, CpuPlacement::Split],
        }
    }
}

/// One CPU placement of client and server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CpuPlacement {
    /// Both on one CPU.
    Same,
    /// On different CPUs.
    Split,
}

impl CpuPlacement {
    /// The report's name: `same` or `split`.
    pub fn name(self) -> &'static str {
        match self {
            CpuPlacement::Same => "same",
            CpuPlacement::Split => "split",
        }
    }
}

impl std::fmt::Display for CpuPlacement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the modes' measurements are scheduled (`--schedule`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ScheduleChoice {
    /// Every mode at once, in interleaved blocks, compared round by round (the default).
    #[default]
    Interleaved,
    /// One run per mode after another, repeated (the previous method).
    Runs,
}

/// The IP families the lab compare measures (`--family`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum FamilyChoice {
    /// IPv4 only (the default).
    #[default]
    #[value(name = "4")]
    V4,
    /// IPv6 only: every path over the lab's 2001:2::/48 addresses, against the host's IPv6.
    #[value(name = "6")]
    V6,
    /// Both, side by side in one interleaved run: each mode's IPv6 row against the host's IPv6.
    Both,
}

impl FamilyChoice {
    /// The families measured (4, 6), in report order.
    pub fn families(self) -> &'static [u8] {
        match self {
            FamilyChoice::V4 => &[4],
            FamilyChoice::V6 => &[6],
            FamilyChoice::Both => &[4, 6],
        }
    }

    /// Whether IPv6 paths are measured.
    pub fn has_v6(self) -> bool {
        self != FamilyChoice::V4
    }
}

/// How many repetitions per mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RepsChoice {
    /// Exactly this many.
    Fixed(usize),
    /// At least [`RepsChoice::AUTO_MIN`]; then more rounds while some mode's 95% CI half-width is
    /// above 1% of its mean and another round fits in the time budget.
    Auto,
}

impl RepsChoice {
    pub const AUTO_MIN: usize = 5;
    pub const AUTO_MAX: usize = 12;
    /// Target relative CI half-width for `Auto`.
    pub const AUTO_TARGET_REL_CI: f64 = 0.01;
}

/// Everything `compare` needs to know.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Modes to measure; `host` (the baseline) is always measured first.
    pub modes: Vec<Mode>,
    pub test: TestKind,
    pub request_size: usize,
    pub response_size: usize,
    /// Measured seconds per run.
    pub duration: Duration,
    /// Warm-up per run (not measured).
    pub warmup: Duration,
    pub reps: RepsChoice,
    pub cpu: CpuChoice,
    /// Run the bridge ablation (`--explain`).
    pub explain: bool,
    /// Trace each path after the timed rounds (`--waterfall`, src/waterfall).
    pub waterfall: bool,
    /// Pairs of traced and untraced blocks per traced path (`--waterfall-pairs`).
    pub waterfall_pairs: u32,
    /// Run the feature checks and put the matrix beside the latency table.
    pub checks: bool,
    /// Time budget per placement for `RepsChoice::Auto` (more rounds stop when the next would pass it).
    pub budget: Duration,
    /// `--schedule`.
    pub schedule: ScheduleChoice,
    /// `--block-time`: target time of one interleaved block.
    pub block_time: Duration,
    /// `--block-transactions`: a fixed B instead.
    pub block_transactions: Option<u64>,
    /// Untimed transactions at the start of every block.
    pub lead_in: u64,
    /// `--target-ci`: with `--reps auto`, interleaved rounds run until every ratio's 95% CI
    /// half-width is at most this many percentage points...
    pub target_ci_points: f64,
    /// ...or this much measuring time has passed (`--budget`).
    pub measure_budget: Duration,
    /// `--baseline`: the netfilter state of the host baseline's node, and of every mode's node
    /// before the mode loads its own rules.
    pub baseline: crate::lab::cells::NodeState,
    /// `--replicates`: independent instances of every lab path (own namespaces, links,
    /// connection and server thread), measured in the same rounds; the ratio's interval is
    /// over them.
    pub replicates: usize,
    /// `--epochs`: the lab compare's measuring time split into this many epochs, each in a
    /// fresh process (its own servers, connections and client thread) over the same cells; the
    /// interval's time term is the spread between epochs. 1: one process, as before.
    pub epochs: usize,
    /// The nslat binary each epoch runs (`None`: this program, `/proc/self/exe`). A program
    /// that embeds the library and is not nslat itself (a test) names the nslat binary here.
    pub epoch_exe: Option<std::path::PathBuf>,
    /// Also measure the host on a node of the other state (`--no-other-host` turns it off).
    pub other_host: bool,
    /// `--family`: IPv4, IPv6 or both (the lab's interleaved schedule).
    pub family: FamilyChoice,
}

/// The fewest and the most replicates per path.
pub const MIN_REPLICATES: usize = 1;
pub const MAX_REPLICATES: usize = 12;
/// The default: enough that Student's t over the replicates (7 degrees of freedom) gives an
/// interval of about half a point on this kind of machine, few enough to build in a second
/// (issue 19's coverage runs of 6 December 2026: docs/method.md).
pub const DEFAULT_REPLICATES: usize = 8;

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            modes: Mode::defaults(),
            test: TestKind::TcpRr,
            request_size: 1,
            response_size: 1,
            duration: Duration::from_millis(1500),
            warmup: Duration::from_millis(300),
            reps: RepsChoice::Auto,
            cpu: CpuChoice::Same,
            explain: false,
            waterfall: false,
            waterfall_pairs: crate::waterfall::run::DEFAULT_PAIRS,
            checks: true,
            budget: Duration::from_secs(50),
            schedule: ScheduleChoice::Interleaved,
            block_time: Duration::from_millis(1),
            block_transactions: None,
            lead_in: crate::measure::ScheduleConfig::default().lead_in,
            target_ci_points: 0.5,
            measure_budget: Duration::from_secs(12),
            baseline: crate::lab::cells::NodeState::Bare,
            replicates: DEFAULT_REPLICATES,
            epochs: crate::measure::epochs::DEFAULT_EPOCHS,
            epoch_exe: None,
            other_host: true,
            family: FamilyChoice::V4,
        }
    }
}

impl CompareOptions {
    /// The modes in measuring order: `host` first, the rest as given, no duplicates.
    pub fn measured_modes(&self) -> Vec<Mode> {
        let mut out = vec![Mode::Host];
        out.extend(self.modes.iter().copied().filter(|m| *m != Mode::Host));
        out.dedup();
        out
    }

    /// Modes the lab must build: the measured ones (`--explain` builds its own variants beside
    /// the lab, see [`crate::lab::explain`]).
    pub fn lab_modes(&self) -> Vec<Mode> {
        self.measured_modes()
    }

    /// Checks the options with the engine's own rules (sizes, CPUs), before anything is built.
    pub fn validate(&self) -> Result<(), String> {
        if self.duration.is_zero() {
            return Err("the run length -l must be more than 0 seconds".into());
        }
        if let RepsChoice::Fixed(0) = self.reps {
            return Err("--reps must be at least 1".into());
        }
        if self.block_time.is_zero() || self.block_time > Duration::from_secs(1) {
            return Err("--block-time must be more than 0 and at most 1 second".into());
        }
        if self.block_transactions == Some(0) {
            return Err("--block-transactions must be at least 1".into());
        }
        if !(self.target_ci_points > 0.0 && self.target_ci_points <= 100.0) {
            return Err("--target-ci must be more than 0 and at most 100 points".into());
        }
        if !(MIN_REPLICATES..=MAX_REPLICATES).contains(&self.replicates) {
            return Err(format!(
                "--replicates must be {MIN_REPLICATES} to {MAX_REPLICATES} (got {})",
                self.replicates
            ));
        }
        if self.measure_budget.is_zero() {
            return Err("--budget must be more than 0 seconds".into());
        }
        let max_epochs = crate::measure::epochs::MAX_EPOCHS;
        if !(1..=max_epochs).contains(&self.epochs) {
            return Err(format!(
                "--epochs must be 1 to {max_epochs} (got {})",
                self.epochs
            ));
        }
        if self.explain && self.schedule == ScheduleChoice::Runs {
            return Err(
                "--explain measures its variants interleaved and paired; it cannot run with \
                 --schedule runs (drop one of the two)"
                    .into(),
            );
        }
        if self.family.has_v6() && self.schedule == ScheduleChoice::Runs {
            return Err(
                "--family 6|both measures on the interleaved schedule; it cannot run with \
                 --schedule runs (drop one of the two)"
                    .into(),
            );
        }
        if self.family.has_v6() && self.explain {
            return Err(
                "--explain's variants are IPv4 only; it cannot run with --family 6|both (drop one \
                 of the two)"
                    .into(),
            );
        }
        if self.family.has_v6() && self.waterfall {
            return Err(
                "--waterfall traces IPv4 paths only; it cannot run with --family 6|both (drop one \
                 of the two)"
                    .into(),
            );
        }
        if self.waterfall && (self.test != TestKind::TcpRr || self.schedule == ScheduleChoice::Runs)
        {
            return Err(
                "--waterfall traces TCP_RR round trips on the lab's interleaved schedule; it cannot run with another --test or --schedule runs (yet)"
                    .into(),
            );
        }
        if self.explain && !self.test.is_request_response() {
            return Err(format!(
                "--explain attributes latency, so it needs a request/response test, not {}",
                self.test
            ));
        }
        let ncpu = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if self.cpu != CpuChoice::Same && ncpu < 2 {
            return Err("--cpu split needs at least 2 CPUs".into());
        }
        self.cpu
            .placements()
            .iter()
            .try_for_each(|&p| client::validate(&self.run_spec(p)))
            .map_err(|e| e.to_string())
    }

    /// The engine's settings of every run of a placement: test, sizes, length, warm-up and CPUs.
    /// The one place a comparison's [`RunSpec`] is built; each path then gives its server,
    /// namespace and token.
    pub fn run_spec(&self, placement: CpuPlacement) -> RunSpec {
        let (client_cpu, server_cpu) = Self::cpus_for(placement);
        let mut spec = RunSpec::template(self.test, self.duration);
        spec.warmup = self.warmup;
        spec.request_size = self.request_size;
        spec.response_size = self.response_size;
        spec.client_cpu = Some(client_cpu);
        spec.server_cpu = Some(server_cpu);
        spec
    }

    /// The (client CPU, server CPU) pair of a placement. `same` uses the last CPU (CPU 0 usually
    /// carries more of the machine's housekeeping); `split` puts the server on the CPU before it.
    pub fn cpus_for(placement: CpuPlacement) -> (usize, usize) {
        let n = crate::probe::online_cpus()
            .ok()
            .and_then(|c| c.last().copied())
            .unwrap_or(0);
        match placement {
            CpuPlacement::Split if n > 0 => (n, n - 1),
            _ => (n, n),
        }
    }

    /// The interleaved schedule's settings for `paths` paths (`replicates` of each group).
    pub fn schedule_config(
        &self,
        paths: usize,
        replicates: usize,
    ) -> crate::measure::ScheduleConfig {
        use crate::measure::{ScheduleConfig, StopRule};
        let stop = match self.reps {
            // Each path gets about what N runs of -l would have given it.
            RepsChoice::Fixed(n) => StopRule::Time(
                self.duration
                    .saturating_mul((n * (paths / replicates.max(1)).max(1)) as u32),
            ),
            RepsChoice::Auto => StopRule::Precision {
                half_width: self.target_ci_points / 100.0,
                budget: self.measure_budget,
            },
        };
        ScheduleConfig {
            // No early stop before 400 rounds, replicates or not: a stop taken the first time
            // an interval looks narrow enough picks the runs whose noise happened to be small
            // (optional stopping), and the intervals then under-cover.
            replicates,
            block_time: self.block_time,
            block_transactions: self.block_transactions,
            lead_in: self.lead_in,
            time_sliced: !self.test.is_request_response(),
            warmup: self.warmup,
            stop,
            ..ScheduleConfig::default()
        }
    }

    /// Seconds one run takes, roughly (warm-up, measured time, set-up).
    pub fn seconds_per_run(&self) -> f64 {
        self.warmup.as_secs_f64() + self.duration.as_secs_f64() + 0.02
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_is_measured_first_once() {
        let o = CompareOptions {
            modes: vec![Mode::Bridge, Mode::Host, Mode::Macvlan],
            ..Default::default()
        };
        assert_eq!(
            o.measured_modes(),
            vec![Mode::Host, Mode::Bridge, Mode::Macvlan]
        );
    }

    #[test]
    fn explain_builds_its_own_variants_and_needs_the_interleaved_schedule() {
        let o = CompareOptions {
            modes: vec![Mode::Macvlan],
            explain: true,
            ..Default::default()
        };
        assert_eq!(o.lab_modes(), vec![Mode::Host, Mode::Macvlan]);
        assert!(o.validate().is_ok());
        let runs = CompareOptions {
            schedule: ScheduleChoice::Runs,
            ..o
        };
        assert!(runs.validate().unwrap_err().contains("--schedule runs"));
    }

    #[test]
    fn bad_options_are_rejected() {
        let zero = CompareOptions {
            duration: Duration::ZERO,
            ..Default::default()
        };
        assert!(zero.validate().unwrap_err().contains("-l"));
        let reps = CompareOptions {
            reps: RepsChoice::Fixed(0),
            ..Default::default()
        };
        assert!(reps.validate().is_err());
        let size = CompareOptions {
            request_size: 0,
            ..Default::default()
        };
        assert!(size.validate().is_err());
        let explain_stream = CompareOptions {
            test: TestKind::TcpStream,
            explain: true,
            ..Default::default()
        };
        assert!(explain_stream.validate().is_err());
        assert!(CompareOptions::default().validate().is_ok());
    }

    #[test]
    fn placements() {
        let (c, s) = CompareOptions::cpus_for(CpuPlacement::Same);
        assert_eq!(c, s);
        if std::thread::available_parallelism().unwrap().get() > 1 {
            let (c, s) = CompareOptions::cpus_for(CpuPlacement::Split);
            assert_ne!(c, s);
        }
    }
}
