//! What a report's figures are worth: the flags (other load on the pinned CPUs, counts that
//! should be whole numbers) and the warnings (too few repetitions, intervals too wide to
//! conclude, an A/A control that does not come out 1, split CPUs), with their thresholds.

use super::schema::{CompareReport, ModeResult, ScheduleKind, Warning};
use crate::bench::TestKind;

/// With the interleaved schedule, a ratio whose 95% CI half-width exceeds this (1 point) gets
/// a warning.
pub const WIDE_RATIO_CI: f64 = 0.01;

/// How far from 1 the A/A ratio may be before the figures are not trustworthy (half a point:
/// the default `--target-ci`).
pub const AA_TOLERANCE: f64 = 0.005;

/// A mode whose latency CI half-width exceeds this fraction of its mean gets a warning.
pub const WIDE_CI_REL: f64 = 0.02;

/// A mode whose runs left more than this share of the pinned CPUs' time to other processes is
/// flagged: its figures include someone else's work.
pub const FOREIGN_LOAD_FLAG: f64 = 0.05;

/// A per-transaction packet count further than this from a whole number is flagged (in a
/// request/response test every transaction moves the same packets; a fraction means other
/// traffic was counted).
pub const WHOLE_COUNT_TOLERANCE: f64 = 0.02;

/// Why a report's figures are not clean: load from other processes above
/// [`FOREIGN_LOAD_FLAG`], and (request/response tests) packet counts per transaction that are
/// not whole numbers.
pub fn flags(report: &CompareReport) -> Vec<String> {
    let mut out = Vec::new();
    let measured: Vec<&ModeResult> = report.modes.iter().filter(|m| m.available).collect();
    let loaded: Vec<String> = measured
        .iter()
        .filter_map(|m| {
            let share = m.probes.foreign_cpu_share?;
            (share > FOREIGN_LOAD_FLAG).then(|| format!("{} {:.0}%", m.mode, share * 100.0))
        })
        .collect();
    if !loaded.is_empty() {
        out.push(format!(
            "other processes used the pinned CPUs during the runs ({}): the latencies include their work; measure on an idle machine or move the load off these CPUs",
            loaded.join(", ")
        ));
    }
    let rr = report.test == TestKind::TcpRr.name() || report.test == TestKind::UdpRr.name();
    if rr {
        let fractional: Vec<String> = measured
            .iter()
            .flat_map(|m| {
                [
                    ("backlog packets", m.probes.backlog_pkts_per_tx),
                    ("NET_RX softirqs", m.probes.net_rx_per_tx),
                ]
                .into_iter()
                .filter_map(move |(what, v)| {
                    let v = v?;
                    ((v - v.round()).abs() > WHOLE_COUNT_TOLERANCE)
                        .then(|| format!("{} {v:.2} {what}", m.mode))
                })
            })
            .collect();
        if !fractional.is_empty() {
            out.push(format!(
                "per-transaction counts that should be whole numbers are not ({}): other \
                 traffic on these CPUs was counted with the test's",
                fractional.join(", ")
            ));
        }
    }
    out
}

/// The warnings the numbers call for: too few repetitions, intervals too wide to conclude, and
/// split CPU placement (the cross-CPU wake-up dominates every path).
pub fn warnings(report: &CompareReport) -> Vec<Warning> {
    let mut out = Vec::new();
    let measured: Vec<&ModeResult> = report.modes.iter().filter(|m| m.available).collect();
    if report.schedule == ScheduleKind::Interleaved {
        interleaved_warnings(report, &measured, &mut out);
    } else if report.reps < 2 || measured.iter().any(|m| m.reps.len() < 2) {
        out.push(Warning {
            message: "fewer than 2 repetitions: no confidence interval and no significance test"
                .into(),
            remedy: "use --reps 3 or more".into(),
        });
    }
    // One line for every mode whose interval is too wide, with one remedy.
    // (The interleaved schedule's figures are the paired ratios, whose CIs the target governs.)
    let wide: Vec<String> = measured
        .iter()
        .filter(|_| report.schedule == ScheduleKind::Runs)
        .filter_map(|m| {
            let l = m.latency_us?;
            let h = l.ci95?;
            let rel = if l.mean != 0.0 { h / l.mean } else { 0.0 };
            (rel > WIDE_CI_REL).then(|| format!("{} ±{:.1}%", m.mode, rel * 100.0))
        })
        .collect();
    if !wide.is_empty() {
        out.push(Warning {
            message: format!(
                "95% CIs of the mean latency wider than {:.0}%: {}; differences smaller than \
                 that cannot be told apart",
                WIDE_CI_REL * 100.0,
                wide.join(", ")
            ),
            remedy: "raise --reps or -l, and keep the machine otherwise idle".into(),
        });
    }
    if report.cpu_placement == "split" {
        let host = report
            .modes
            .iter()
            .find(|m| m.mode == report.baseline.mode)
            .and_then(|m| m.latency_us)
            .map(|l| format!(" (host: {:.1} µs)", l.mean))
            .unwrap_or_default();
        out.push(Warning {
            message: format!(
                "client and server run on different CPUs: the cross-CPU wake-up dominates every \
                 mode's latency{host} and hides the network path's own cost"
            ),
            remedy: "use --cpu same to measure the network path itself".into(),
        });
    }
    out
}

/// The interleaved schedule's warnings: ratios too wide to conclude, an A/A control that does
/// not come out 1.
fn interleaved_warnings(report: &CompareReport, measured: &[&ModeResult], out: &mut Vec<Warning>) {
    for m in measured {
        let Some(v) = m.vs_host else { continue };
        match v.ratio_ci95 {
            None => out.push(Warning {
                message: format!(
                    "{}: too few rounds for a confidence interval of its ratio",
                    m.mode
                ),
                remedy: "raise --reps or --budget".into(),
            }),
            Some([lo, hi]) if (hi - lo) / 2.0 > WIDE_RATIO_CI => out.push(Warning {
                message: format!(
                    "{}: ratio {:.3} ± {:.1} points (95% CI): too wide to conclude on differences \
                     smaller than that",
                    m.mode,
                    v.ratio,
                    (hi - lo) / 2.0 * 100.0
                ),
                remedy: "raise --budget, and keep the machine otherwise idle".into(),
            }),
            Some(_) => {}
        }
    }
    if let Some(aa) = report.aa_control.filter(|a| !a.within_ci) {
        let ci = aa
            .ratio_ci95
            .map(|[lo, hi]| format!(" [{lo:.4}, {hi:.4}]"))
            .unwrap_or_default();
        out.push(if aa.within_tolerance {
            Warning {
                message: format!(
                    "the A/A control (a second connection from the host's namespace) came out \
                     {:.4}{ci}: two connections of one path differ by {:.2}%, within the \
                     {:.1}-point tolerance; differences between modes smaller than that are not \
                     to be read (the intervals measure this run's noise, not what differs \
                     between connections)",
                    aa.ratio,
                    (aa.ratio - 1.0).abs() * 100.0,
                    AA_TOLERANCE * 100.0
                ),
                remedy: "repeat the comparison to see differences of that size come and go".into(),
            }
        } else {
            Warning {
                message: format!(
                    "the A/A control (a second connection from the host's namespace) came out \
                     {:.4}{ci}, not 1: the measurement is not trustworthy on this machine now; \
                     something treats two identical connections differently (other load in step \
                     with the blocks, CPU frequency changes, interrupts of one socket's queue on \
                     a busy CPU)",
                    aa.ratio
                ),
                remedy: "rerun on an otherwise idle machine, or with another --block-time".into(),
            }
        });
    }
}
