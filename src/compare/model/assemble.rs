//! The statistics assembly: a comparison's measured inputs (runs, probe deltas, the
//! interleaved schedule's paired figures) turned into each mode's figures and the whole report,
//! with its flags, warnings and verdict.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;

use super::quality::{flags, warnings, AA_TOLERANCE};
use super::schema::*;
use super::verdict::verdict;
use crate::bench::{RunResult, TestKind};
use crate::probe::ProbeDelta;
use crate::stats::{self, MeanCi};

/// Points kept of each mode's latency CDF.
pub const CDF_POINTS: usize = 120;

/// One measured repetition of a mode: the engine's result and the probe delta around it.
#[derive(Debug, Clone)]
pub struct RepInput {
    pub run: RunResult,
    /// Counters from before the warm-up to after the run (divided by warm-up + measured
    /// transactions); `None` when not probed.
    pub probes: Option<ProbeDelta>,
}

/// All repetitions of one mode, or why it could not be measured.
#[derive(Debug, Clone)]
pub struct ModeInput {
    pub mode: String,
    /// `Some(reason)`: the mode is unavailable here (e.g. "ipvlan: kernel module missing").
    pub unavailable: Option<String>,
    pub reps: Vec<RepInput>,
    /// A separate run with tracepoint counters open: counting costs nanoseconds per event and
    /// paths with more events would pay more, so the timed reps run without them and
    /// `tracepoints_per_tx` comes from this run (from the reps when it is absent).
    pub trace_run: Option<RepInput>,
    /// Interleaved schedule: the block-mean statistics (then `reps` holds one aggregate run,
    /// and the probe counters come from `trace_run`).
    pub paired: Option<PairedInput>,
}

/// One path's figures from the interleaved schedule, in µs.
#[derive(Debug, Clone)]
pub struct PairedInput {
    /// Mean of the path's block means with its batch-means interval.
    pub mean_us: crate::measure::Ci,
    /// Against the baseline's blocks in the same rounds (`None` for the baseline).
    pub vs_baseline: Option<crate::measure::Paired>,
}

/// The run's settings, copied into the report.
#[derive(Debug, Clone)]
pub struct ReportMeta {
    pub test: TestKind,
    pub request_size: usize,
    pub response_size: usize,
    pub reps: usize,
    pub duration_s: f64,
    /// `same` or `split`.
    pub cpu_placement: String,
    pub kernel: String,
    pub host_name: Option<String>,
    pub schedule: ScheduleKind,
    pub block_transactions: Option<u64>,
    pub ci_method: Option<String>,
    pub baseline: Baseline,
}

fn rep_latency(run: &RunResult) -> f64 {
    if run.latency_us.mean > 0.0 {
        run.latency_us.mean
    } else {
        run.latency_us.rate_mean
    }
}

/// The repetitions' mean latencies (µs) of a mode: the sample the t-test compares.
pub fn rep_latencies(input: &ModeInput) -> Vec<f64> {
    input.reps.iter().map(|r| rep_latency(&r.run)).collect()
}

fn merged_histogram(reps: &[RepInput]) -> Option<Histogram<u64>> {
    let mut it = reps.iter().map(|r| r.run.histogram.as_ref());
    let mut merged = it.next()??.clone();
    for h in it {
        merged.add(h?).ok()?;
    }
    Some(merged)
}

fn mean_of(xs: impl Iterator<Item = f64>) -> Option<f64> {
    let v: Vec<f64> = xs.collect();
    stats::mean_sd(&v).map(|(m, _)| m)
}

fn estimate(c: MeanCi) -> Estimate {
    Estimate {
        mean: c.mean,
        ci95: c.ci95,
    }
}

/// The share of the pinned CPUs' time other processes took during a repetition: CPU time
/// (/proc/stat) minus the measuring threads' own (client and server loops, per transaction times
/// all transactions, warm-up included as the probes are) and interrupts. Request/response tests only.
fn foreign_share(rep: &RepInput) -> Option<f64> {
    let probes = rep.probes.as_ref()?;
    if !rep.run.test.is_request_response() {
        return None;
    }
    let tx = (rep.run.transactions + rep.run.warmup_transactions) as f64;
    let own_us = (rep.run.cpu.client_cpu + rep.run.cpu.server_cpu) * tx;
    probes.foreign_share(own_us)
}

/// Builds one mode's result; `baseline` is the baseline's per-rep latencies (µs), if any and if
/// this is not the baseline itself.
pub fn build_mode(input: &ModeInput, baseline: Option<&[f64]>) -> ModeResult {
    let unavailable = |reason: String| ModeResult {
        mode: input.mode.clone(),
        available: false,
        reason: Some(reason),
        trans_per_s: None,
        latency_us: None,
        vs_host: None,
        probes: ProbeFigures::default(),
        reps: Vec::new(),
        cdf: Vec::new(),
        percentiles: Vec::new(),
        target: None,
        waterfall: None,
        family: None,
        wire: None,
    };
    if let Some(reason) = &input.unavailable {
        return unavailable(reason.clone());
    }
    if input.reps.is_empty() {
        return unavailable("no repetition completed".into());
    }
    let lat = rep_latencies(input);
    let tps: Vec<f64> = input.reps.iter().map(|r| r.run.trans_per_s).collect();
    let mut lat_ci = stats::mean_ci95(&lat).expect("non-empty");
    let tps_ci = stats::mean_ci95(&tps).expect("non-empty");
    if let Some(p) = &input.paired {
        lat_ci.mean = p.mean_us.estimate;
        lat_ci.ci95 = p.mean_us.half_width();
    }

    let merged = merged_histogram(&input.reps);
    let (p50, p99, p99_9, cdf, percentiles) = match &merged {
        Some(h) if !h.is_empty() => {
            let s = stats::summarize_ns(h);
            (
                s.p50,
                s.p99,
                s.p99_9,
                stats::cdf_points_us(h, CDF_POINTS),
                stats::percentile_points_us(h, stats::PERCENTILE_TICKS),
            )
        }
        _ => {
            let m = |f: fn(&RunResult) -> f64| {
                mean_of(input.reps.iter().map(|r| f(&r.run))).unwrap_or(0.0)
            };
            (
                m(|r| r.latency_us.p50),
                m(|r| r.latency_us.p99),
                m(|r| r.latency_us.p99_9),
                Vec::new(),
                Vec::new(),
            )
        }
    };

    let per_tx: Vec<Option<crate::probe::PerTx>> = input
        .reps
        .iter()
        .map(|r| {
            r.probes
                .as_ref()
                .map(|p| p.per_tx(r.run.transactions + r.run.warmup_transactions))
        })
        .collect();
    let mut tracepoints_per_tx = BTreeMap::new();
    let traced: Option<crate::probe::PerTx> = input.trace_run.as_ref().and_then(|r| {
        r.probes
            .as_ref()
            .map(|p| p.per_tx(r.run.transactions + r.run.warmup_transactions))
    });
    // The /proc counters come from the timed reps; the interleaved schedule reads none inside
    // its blocks, so there they come from the short per-mode run.
    let counted: Vec<&crate::probe::PerTx> = if per_tx.iter().flatten().next().is_some() {
        per_tx.iter().flatten().collect()
    } else {
        traced.iter().collect()
    };
    let avg = |f: fn(&crate::probe::PerTx) -> f64| mean_of(counted.iter().map(|p| f(p)));
    let probed: Vec<&crate::probe::PerTx> = match &traced {
        Some(t) => vec![t],
        None => per_tx.iter().flatten().collect(),
    };
    if let Some(first) = probed.first() {
        for name in first.tracepoints.keys() {
            if let Some(m) = mean_of(
                probed
                    .iter()
                    .filter_map(|p| p.tracepoints.get(name).copied()),
            ) {
                tracepoints_per_tx.insert(name.clone(), m);
            }
        }
    }
    let foreign: Vec<Option<f64>> = input.reps.iter().map(foreign_share).collect();
    let probes = ProbeFigures {
        backlog_pkts_per_tx: avg(|p| p.backlog_pkts),
        net_rx_per_tx: avg(|p| p.net_rx),
        cpu_us_per_tx: avg(|p| p.cpu_us),
        tracepoints_per_tx,
        foreign_cpu_share: mean_of(foreign.iter().flatten().copied()),
    };

    let reps = input
        .reps
        .iter()
        .zip(&per_tx)
        .zip(&foreign)
        .map(|((r, p), foreign)| RepFigures {
            transactions: r.run.transactions,
            trans_per_s: r.run.trans_per_s,
            latency_mean_us: rep_latency(&r.run),
            latency_p50_us: r.run.latency_us.p50,
            latency_p99_us: r.run.latency_us.p99,
            backlog_pkts_per_tx: p.as_ref().map(|p| p.backlog_pkts),
            net_rx_per_tx: p.as_ref().map(|p| p.net_rx),
            cpu_us_per_tx: p.as_ref().map(|p| p.cpu_us),
            foreign_cpu_share: *foreign,
        })
        .collect();

    let pair = |c: crate::measure::Ci| c.ci95.map(|(lo, hi)| [lo, hi]);
    let vs_host = match input.paired.as_ref() {
        Some(p) => p.vs_baseline.map(|v| VsHost {
            delta_us: v.delta.estimate,
            delta_pct: (v.ratio.estimate - 1.0) * 100.0,
            ratio: v.ratio.estimate,
            p_value: v.p_value,
            significant: v.significant(),
            ratio_ci95: pair(v.ratio),
            delta_us_ci95: pair(v.delta),
            rounds: Some(v.rounds),
            replicates: Some(v.replicates),
            epochs: (v.epochs > 1).then_some(v.epochs),
        }),
        None => baseline
            .and_then(|b| stats::vs_baseline(&lat, b))
            .map(|v| VsHost {
                delta_us: v.delta,
                delta_pct: (v.ratio - 1.0) * 100.0,
                ratio: v.ratio,
                p_value: v.p_value,
                significant: v.significant,
                ratio_ci95: None,
                delta_us_ci95: None,
                rounds: None,
                replicates: None,
                epochs: None,
            }),
    };

    ModeResult {
        mode: input.mode.clone(),
        available: true,
        reason: None,
        trans_per_s: Some(estimate(tps_ci)),
        latency_us: Some(LatencyEstimate {
            mean: lat_ci.mean,
            p50,
            p99,
            p99_9,
            ci95: lat_ci.ci95,
        }),
        vs_host,
        probes,
        reps,
        cdf,
        percentiles,
        target: None,
        waterfall: None,
        family: None,
        wire: None,
    }
}

/// Builds the report: every mode against [`BASELINE`] (when measured), warnings, verdict.
pub fn build_report(meta: &ReportMeta, inputs: &[ModeInput]) -> CompareReport {
    let baseline = inputs
        .iter()
        .find(|m| m.mode == BASELINE && m.unavailable.is_none() && !m.reps.is_empty())
        .map(rep_latencies);
    let modes: Vec<ModeResult> = inputs
        .iter()
        .map(|m| {
            let b = if m.mode == BASELINE {
                None
            } else {
                baseline.as_deref()
            };
            build_mode(m, b)
        })
        .collect();
    let mut notes: Vec<String> = inputs
        .iter()
        .flat_map(|m| m.reps.iter())
        .filter_map(|r| r.probes.as_ref())
        .flat_map(|p| p.notes.iter().cloned())
        .collect();
    notes.sort();
    notes.dedup();
    let mut report = CompareReport {
        test: meta.test.name().to_string(),
        request_size: meta.request_size,
        response_size: meta.response_size,
        reps: meta.reps,
        duration_s: meta.duration_s,
        cpu_placement: meta.cpu_placement.clone(),
        kernel: meta.kernel.clone(),
        host_name: meta.host_name.clone(),
        baseline: meta.baseline.clone(),
        verdict: Vec::new(),
        warnings: Vec::new(),
        modes,
        explain: None,
        checks: None,
        schedule: meta.schedule,
        block_transactions: meta.block_transactions,
        ci_method: meta.ci_method.clone(),
        aa_control: None,
        flags: Vec::new(),
        pair: None,
        context: None,
        recommendation: Vec::new(),
    };
    report.aa_control = report
        .modes
        .iter()
        .find(|m| m.mode == AA_CONTROL)
        .and_then(|m| m.vs_host)
        .map(|v| AaControl {
            ratio: v.ratio,
            ratio_ci95: v.ratio_ci95,
            within_ci: v.ratio_ci95.is_some_and(|[lo, hi]| lo <= 1.0 && 1.0 <= hi),
            within_tolerance: (v.ratio - 1.0).abs() <= AA_TOLERANCE,
        });
    report.flags = flags(&report);
    report.warnings = warnings(&report);
    report.warnings.extend(notes.into_iter().map(|n| Warning {
        message: n,
        remedy: "run as root on a kernel with perf events and tracefs for tracepoint counts".into(),
    }));
    report.verdict = verdict(&report);
    report
}
