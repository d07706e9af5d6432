//! A simulated [`PathSet`] for testing schedules and statistics without root: each path has a
//! base latency and its own noise, all paths share one simulated clock and an optional slow
//! drift of the whole machine. Nothing here touches a socket.

use std::time::Duration;

use super::schedule::{Block, BlockSize, BlockSpec, PathSet, XorShift};

/// One simulated path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakePath {
    /// Latency of one transaction without noise or drift, ns.
    pub base_ns: f64,
    /// Relative standard deviation of each transaction (0.05 = 5%, at most 1): the latency is
    /// `base * (1 + noise * (E - 1))` with E exponential of mean 1, so the mean stays `base` and
    /// the tail is long on the slow side, like real latencies.
    pub noise: f64,
}

/// The machine's slow drift, common to every path (a multiplier on every latency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Drift {
    None,
    /// 1 + amplitude * sin(2π t / period).
    Sine {
        amplitude: f64,
        period: Duration,
    },
}

impl Drift {
    fn factor(self, t_ns: f64) -> f64 {
        match self {
            Drift::None => 1.0,
            Drift::Sine { amplitude, period } => {
                1.0 + amplitude
                    * (2.0 * std::f64::consts::PI * t_ns / period.as_nanos() as f64).sin()
            }
        }
    }
}

/// Simulated paths on a simulated clock.
#[derive(Debug, Clone)]
pub struct FakePaths {
    pub paths: Vec<FakePath>,
    pub drift: Drift,
    /// Cost of switching from one path's block to another's, ns (counted on the clock, not in
    /// any block).
    pub switch_ns: f64,
    /// Probability that a transaction (on any path) is hit by a stall of `stall_len_ns`
    /// (the client thread preempted by other load).
    pub stall_prob: f64,
    pub stall_len_ns: f64,
    now_ns: f64,
    rng: XorShift,
    /// Blocks run per path (warm-up included).
    pub blocks: Vec<u64>,
}

impl FakePaths {
    pub fn new(paths: Vec<FakePath>, drift: Drift, seed: u64) -> Self {
        let n = paths.len();
        FakePaths {
            paths,
            drift,
            switch_ns: 0.0,
            stall_prob: 0.0,
            stall_len_ns: 0.0,
            now_ns: 0.0,
            rng: XorShift::new(seed),
            blocks: vec![0; n],
        }
    }

    /// An exponential deviate of mean 1.
    fn exp(&mut self) -> f64 {
        -(1.0 - self.rng.next_f64()).ln()
    }

    fn one(&mut self, path: usize) -> f64 {
        let p = self.paths[path];
        let noise = p.noise.clamp(0.0, 1.0);
        let x = p.base_ns * self.drift.factor(self.now_ns) * (1.0 + noise * (self.exp() - 1.0));
        if self.stall_prob > 0.0 && self.rng.next_f64() < self.stall_prob {
            x + self.stall_len_ns
        } else {
            x
        }
    }
}

/// A fake path never fails.
#[derive(Debug, thiserror::Error)]
#[error("never")]
pub struct Never;

impl PathSet for FakePaths {
    type Error = Never;

    fn len(&self) -> usize {
        self.paths.len()
    }

    fn block(&mut self, path: usize, spec: BlockSpec) -> Result<Block, Never> {
        let size = spec.size;
        self.now_ns += self.switch_ns;
        self.blocks[path] += 1;
        let mut b = Block::default();
        let mut elapsed = 0.0;
        loop {
            let done = match size {
                BlockSize::Transactions(n) => b.transactions >= n,
                BlockSize::Time(t) => elapsed >= t.as_nanos() as f64,
            };
            if done {
                break;
            }
            let x = self.one(path);
            elapsed += x;
            self.now_ns += x;
            b.transactions += 1;
            b.bytes += 1000;
            if x as u64 > spec.stall_ns {
                b.stalls += 1;
                b.stall_ns += x as u64;
            }
        }
        b.elapsed_ns = elapsed as u64;
        b.cpu_ns = b.elapsed_ns;
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::super::schedule::{run, Interleaved, ScheduleConfig, StopRule, Stopped};
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn p(base_ns: f64, noise: f64) -> FakePath {
        FakePath { base_ns, noise }
    }

    /// 16 µs host, with the given other paths, 5 s of measuring.
    fn measure(paths: Vec<FakePath>, drift: Drift, seed: u64) -> Interleaved<Never> {
        let mut set = FakePaths::new(paths, drift, seed);
        let cfg = ScheduleConfig {
            stop: StopRule::Time(Duration::from_secs(5)),
            ..ScheduleConfig::default()
        };
        run(&mut set, &cfg, &AtomicBool::new(false)).unwrap()
    }

    const SLOW: Drift = Drift::Sine {
        amplitude: 0.3,
        period: Duration::from_millis(1500),
    };

    /// Seeds each statistical test is repeated with: a 95% interval must hold the truth in
    /// at least [`COVERED`] of them (one miss in ten is what 95% allows for).
    const SEEDS: std::ops::RangeInclusive<u64> = 1..=10;
    const COVERED: usize = 8;

    #[test]
    fn a_path_125x_slower_comes_out_125_within_its_interval() {
        let mut covered = 0;
        for seed in SEEDS {
            let r = measure(vec![p(16_000.0, 0.2), p(20_000.0, 0.2)], SLOW, seed);
            let x = r.paired(1).unwrap();
            covered += x.ratio.contains(1.25) as usize;
            assert!(x.significant(), "seed {seed}: {:?}", x.ratio);
            assert!(x.ratio.half_width().unwrap() < 0.005, "{:?}", x.ratio);
            assert!((x.ratio.estimate - 1.25).abs() < 0.01, "{:?}", x.ratio);
            assert!(x.batches >= 20);
            // Δ in ns: 4 µs times the mean drift factor (≈ 1).
            assert!((x.delta.estimate - 4_000.0).abs() < 200.0, "{:?}", x.delta);
        }
        assert!(
            covered >= COVERED,
            "1.25 inside the interval in {covered} of 10"
        );
    }

    #[test]
    fn an_aa_pair_comes_out_one() {
        let mut covered = 0;
        for seed in SEEDS {
            let r = measure(vec![p(16_000.0, 0.2), p(16_000.0, 0.2)], SLOW, seed);
            let x = r.paired(1).unwrap();
            covered += x.ratio.contains(1.0) as usize;
            assert!((x.ratio.estimate - 1.0).abs() < 0.005, "{:?}", x.ratio);
        }
        assert!(
            covered >= COVERED,
            "1.0 inside the A/A interval in {covered} of 10"
        );
    }

    #[test]
    fn common_drift_does_not_widen_the_ratio_interval() {
        let paths = vec![p(16_000.0, 0.2), p(20_000.0, 0.2)];
        let (mut covered, mut sum_calm, mut sum_drifting) = (0, 0.0, 0.0);
        for seed in SEEDS {
            let calm = measure(paths.clone(), Drift::None, seed).paired(1).unwrap();
            let drifting = measure(paths.clone(), SLOW, seed);
            let d = drifting.paired(1).unwrap();
            let (hc, hd) = (
                calm.ratio.half_width().unwrap(),
                d.ratio.half_width().unwrap(),
            );
            // Interval widths are estimates themselves (±11% with 40 batches): per seed allow
            // twice, on average a fifth.
            assert!(hd < hc * 2.0, "seed {seed}: calm ±{hc}, drifting ±{hd}");
            sum_calm += hc;
            sum_drifting += hd;
            covered += d.ratio.contains(1.25) as usize;
            // The drift is real: the baseline's own mean is far less precise than the ratio.
            let own = drifting.mean_ci(0).unwrap();
            let rel = own.half_width().unwrap() / own.estimate;
            assert!(rel > 5.0 * hd, "own ±{rel}, ratio ±{hd}");
        }
        assert!(
            sum_drifting < 1.2 * sum_calm,
            "mean half-width: calm {sum_calm}, drifting {sum_drifting} (sums over 10 seeds)"
        );
        assert!(
            covered >= COVERED,
            "1.25 inside the interval in {covered} of 10"
        );
    }

    #[test]
    fn noise_on_one_path_widens_its_interval() {
        let mut covered = 0;
        for seed in SEEDS {
            let quiet = measure(vec![p(16_000.0, 0.1), p(20_000.0, 0.1)], SLOW, seed)
                .paired(1)
                .unwrap();
            let noisy = measure(vec![p(16_000.0, 0.1), p(20_000.0, 1.0)], SLOW, seed)
                .paired(1)
                .unwrap();
            let (hq, hn) = (
                quiet.ratio.half_width().unwrap(),
                noisy.ratio.half_width().unwrap(),
            );
            assert!(hn > 3.0 * hq, "seed {seed}: quiet ±{hq}, noisy ±{hn}");
            covered += noisy.ratio.contains(1.25) as usize;
        }
        assert!(
            covered >= COVERED,
            "1.25 inside the interval in {covered} of 10"
        );
    }

    #[test]
    fn stalls_are_left_out_of_block_means_and_counted() {
        // 0.1% of transactions hit by a 1 ms stall, as on a machine loaded by other work.
        let run_with = |factor: Option<f64>, seed: u64| {
            let mut set = FakePaths::new(vec![p(4_000.0, 0.2), p(5_000.0, 0.2)], SLOW, seed);
            set.stall_prob = 0.001;
            set.stall_len_ns = 1_000_000.0;
            let cfg = ScheduleConfig {
                stop: StopRule::Time(Duration::from_secs(5)),
                stall_factor: factor,
                ..ScheduleConfig::default()
            };
            run(&mut set, &cfg, &AtomicBool::new(false)).unwrap()
        };
        let mut covered = 0;
        for seed in SEEDS {
            let kept = run_with(None, seed);
            let cut = run_with(Some(10.0), seed);
            let (hk, hc) = (
                kept.paired(1).unwrap().ratio.half_width().unwrap(),
                cut.paired(1).unwrap().ratio.half_width().unwrap(),
            );
            assert!(
                hc * 3.0 < hk,
                "seed {seed}: stalls kept ±{hk}, left out ±{hc}"
            );
            assert_eq!(kept.stall_ns, u64::MAX);
            assert!(cut.stall_ns >= 50_000);
            let s = cut.totals[0];
            let rate = s.stalls as f64 / s.transactions as f64;
            assert!((0.0005..0.002).contains(&rate), "stall rate {rate}");
            covered += cut.paired(1).unwrap().ratio.contains(1.25) as usize;
        }
        assert!(
            covered >= COVERED,
            "1.25 inside the interval in {covered} of 10"
        );
    }

    #[test]
    fn block_size_comes_from_the_block_time() {
        let r = measure(vec![p(16_000.0, 0.0), p(24_000.0, 0.0)], Drift::None, 1);
        // 2 ms over the mean of 16 and 24 µs.
        assert_eq!(r.block, BlockSize::Transactions(100));
        assert!(r.warmup_rounds >= 2);
        assert_eq!(r.stopped, Stopped::Time);
        assert_eq!(r.means_ns[0].len(), r.means_ns[1].len());
        assert!(r.rounds() > 1000, "{}", r.rounds());
    }

    #[test]
    fn precision_stops_at_the_target_or_the_budget() {
        let mut set = FakePaths::new(vec![p(16_000.0, 0.2), p(20_000.0, 0.2)], SLOW, 9);
        let cfg = ScheduleConfig {
            stop: StopRule::Precision {
                half_width: 0.005,
                budget: Duration::from_secs(20),
            },
            ..ScheduleConfig::default()
        };
        let r = run(&mut set, &cfg, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.stopped, Stopped::Target);
        assert!(r.paired(1).unwrap().ratio.half_width().unwrap() <= 0.005);
        assert!(r.measured_ns < 20_000_000_000);

        let mut set = FakePaths::new(vec![p(16_000.0, 0.2), p(20_000.0, 1.0)], SLOW, 9);
        let cfg = ScheduleConfig {
            stop: StopRule::Precision {
                half_width: 0.0001,
                budget: Duration::from_secs(1),
            },
            ..cfg
        };
        let r = run(&mut set, &cfg, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.stopped, Stopped::Budget);
        assert!(r.measured_ns >= 1_000_000_000 && r.measured_ns < 1_100_000_000);
    }

    #[test]
    fn every_path_is_visited_equally_and_interrupts_stop() {
        let mut set = FakePaths::new(vec![p(1000.0, 0.0); 4], Drift::None, 2);
        let cfg = ScheduleConfig {
            block_transactions: Some(10),
            stop: StopRule::Time(Duration::from_millis(100)),
            ..ScheduleConfig::default()
        };
        let r = run(&mut set, &cfg, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.block, BlockSize::Transactions(10));
        assert!(set.blocks.iter().all(|&b| b == set.blocks[0]));
        let r = run(&mut set, &cfg, &AtomicBool::new(true)).unwrap();
        assert_eq!(r.stopped, Stopped::Interrupted);
        assert_eq!(r.rounds(), 0);
    }

    #[test]
    fn time_sliced_blocks_last_the_block_time() {
        let mut set = FakePaths::new(vec![p(5_000.0, 0.0), p(10_000.0, 0.0)], Drift::None, 2);
        let cfg = ScheduleConfig {
            time_sliced: true,
            stop: StopRule::Time(Duration::from_millis(200)),
            ..ScheduleConfig::default()
        };
        let r = run(&mut set, &cfg, &AtomicBool::new(false)).unwrap();
        assert_eq!(r.block, BlockSize::Time(Duration::from_millis(2)));
        let x = r.paired(1).unwrap();
        assert!((x.ratio.estimate - 2.0).abs() < 1e-9);
    }

    /// One simulated compare: a 10 µs baseline and a path 1.25 times slower, `replicates`
    /// instances of each; every instance's latency is off by its own random effect (relative
    /// standard deviation `offset`) for the whole run. Returns the ratio's interval.
    fn replicated_run(replicates: usize, offset: f64, seed: u64) -> crate::measure::Paired {
        let mut rng = XorShift::new(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        // Replicate-major, as the schedule lays groups out: path r * 2 + g.
        let mut paths = Vec::new();
        for _ in 0..replicates {
            for base in [10_000.0, 12_500.0] {
                paths.push(p(base * (1.0 + offset * rng.next_normal()), 0.05));
            }
        }
        let mut set = FakePaths::new(paths, Drift::None, seed);
        let cfg = ScheduleConfig {
            block_transactions: Some(20),
            warmup: Duration::ZERO,
            stop: StopRule::Time(Duration::from_millis(40 * replicates as u64)),
            replicates,
            stall_factor: None,
            ..ScheduleConfig::default()
        };
        let r = run(&mut set, &cfg, &AtomicBool::new(false)).unwrap();
        r.paired(1).unwrap()
    }

    /// Share of `runs` simulated compares whose interval holds 1.25, and the median half-width.
    fn coverage(replicates: usize, offset: f64, runs: u64) -> (f64, f64) {
        let mut covered = 0;
        let mut hw: Vec<f64> = Vec::new();
        for seed in 1..=runs {
            let x = replicated_run(replicates, offset, seed);
            assert_eq!(x.replicates, replicates);
            covered += x.ratio.contains(1.25) as usize;
            hw.push(x.ratio.half_width().unwrap());
        }
        hw.sort_by(f64::total_cmp);
        (covered as f64 / runs as f64, hw[hw.len() / 2])
    }

    #[test]
    fn a_random_effect_per_instance_needs_the_interval_over_replicates() {
        // Each instance 0.5% off for the whole run: one instance's batch-means interval
        // measures only the noise around its own draw and misses the truth most of the time;
        // the interval over 5 replicates covers it.
        let (old, old_hw) = coverage(1, 0.005, 200);
        let (new, new_hw) = coverage(5, 0.005, 200);
        eprintln!("offset 0.5%: one instance {old:.3} (±{old_hw:.4}), 5 replicates {new:.3} (±{new_hw:.4})");
        assert!(
            old < 0.6,
            "one instance covered 1.25 in {old:.2} (±{old_hw:.4})"
        );
        assert!(
            new >= 0.9,
            "5 replicates covered 1.25 in {new:.2} (±{new_hw:.4})"
        );
        assert!(new_hw > old_hw);
    }

    #[test]
    fn without_a_random_effect_both_intervals_cover_and_are_alike() {
        let (old, old_hw) = coverage(1, 0.0, 200);
        let (new, new_hw) = coverage(5, 0.0, 200);
        eprintln!(
            "no offset: one instance {old:.3} (±{old_hw:.4}), 5 replicates {new:.3} (±{new_hw:.4})"
        );
        assert!(old >= 0.88, "one instance covered 1.25 in {old:.2}");
        assert!(new >= 0.88, "5 replicates covered 1.25 in {new:.2}");
        // Equally narrow up to what t with 4 degrees of freedom against batch means costs.
        assert!(
            new_hw < 2.0 * old_hw && old_hw < 2.0 * new_hw,
            "half-widths {old_hw:.4} (one) and {new_hw:.4} (5 replicates)"
        );
    }
}
