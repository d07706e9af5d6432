//! `compare --explain`: attributes the bridge mode's extra latency to its parts by measuring
//! variants that add one part at a time (veth, bridge, conntrack, MASQUERADE), interleaved like
//! the main rounds, and the node's own traffic with and without the NAT table.

use super::experiment::{Bench, CompareError, Progress};
use super::model::{self, explain_from_steps, Explain, ModeInput};
use super::options::{CpuPlacement, RepsChoice};
use crate::firewall::NatLevel;
use crate::lab::{Lab, Mode};
use crate::probe::ProbeConfig;
use crate::stats::{self, MeanCi};

/// One variant of the ablation: a mode measured at a NAT level.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExplainVariant {
    /// What the variant is, as a step of the breakdown.
    pub label: &'static str,
    pub mode: Mode,
    pub nat: NatLevel,
    /// Whether it is a cumulative step towards the full bridge mode (host variants are not).
    pub step: bool,
}

/// The variants, in measuring order.
pub fn explain_variants() -> [ExplainVariant; 6] {
    let v = |label, mode, nat, step| ExplainVariant {
        label,
        mode,
        nat,
        step,
    };
    [
        v("host, no NAT table", Mode::Host, NatLevel::None, false),
        v("veth (ptp, routed)", Mode::Ptp, NatLevel::None, true),
        v("+ bridge", Mode::Bridge, NatLevel::None, true),
        v(
            "host, NAT table loaded",
            Mode::Host,
            NatLevel::ConntrackOnly,
            false,
        ),
        v(
            "+ conntrack (NAT table loaded)",
            Mode::Bridge,
            NatLevel::ConntrackOnly,
            true,
        ),
        v(
            "+ MASQUERADE (Docker's rule)",
            Mode::Bridge,
            NatLevel::Masquerade,
            true,
        ),
    ]
}

/// Measures every variant, restores the lab's NAT level, and builds the breakdown.
pub(super) fn run(
    bench: &Bench,
    lab: &mut Lab,
    placement: CpuPlacement,
    probes: &ProbeConfig,
    progress: &dyn Progress,
) -> Result<Explain, CompareError> {
    let variants = explain_variants();
    let reps = match bench.opts.reps {
        RepsChoice::Fixed(n) => n,
        RepsChoice::Auto => RepsChoice::AUTO_MIN,
    };
    progress.placement(
        &format!("{placement}, --explain"),
        reps * variants.len(),
        bench.opts.seconds_per_run(),
    );
    let mut inputs: Vec<ModeInput> = variants
        .iter()
        .map(|v| ModeInput {
            trace_run: None,
            paired: None,
            mode: v.label.to_string(),
            unavailable: None,
            reps: Vec::new(),
        })
        .collect();

    let original = lab.nat();
    let measured = (|| -> Result<(), CompareError> {
        for round in 0..reps {
            for (v, input) in variants.iter().zip(inputs.iter_mut()) {
                if lab.nat() != v.nat {
                    lab.set_nat(v.nat)?;
                }
                progress.run_started(placement.name(), v.label, round + 1, reps);
                let rep = bench.measure_mode(lab, v.mode, placement, probes)?;
                progress.run_finished(v.label, rep.run.latency_us.mean);
                input.reps.push(rep);
            }
        }
        Ok(())
    })();
    let restored = lab.set_nat(original);
    measured?;
    restored?;
    Ok(breakdown(&variants, &inputs))
}

fn mean_ci(input: &ModeInput) -> MeanCi {
    let xs = model::rep_latencies(input);
    stats::mean_ci95(&xs).unwrap_or(MeanCi {
        n: xs.len(),
        mean: xs.first().copied().unwrap_or(0.0),
        stddev: 0.0,
        ci95: None,
    })
}

/// Backlog packets per transaction, averaged over the variant's runs.
fn backlog_per_tx(input: &ModeInput) -> Option<f64> {
    let per: Vec<f64> = input
        .reps
        .iter()
        .filter_map(|r| {
            let p = r.probes.as_ref()?;
            Some(
                p.per_tx(r.run.transactions + r.run.warmup_transactions)
                    .backlog_pkts,
            )
        })
        .collect();
    (!per.is_empty()).then(|| per.iter().sum::<f64>() / per.len() as f64)
}

/// Turns measured variants into the breakdown: cumulative steps from the host without NAT to
/// the full bridge mode, plus notes on the NAT table's cost to the node's own traffic.
fn breakdown(variants: &[ExplainVariant], inputs: &[ModeInput]) -> Explain {
    let baseline = mean_ci(&inputs[0]);
    let steps: Vec<(String, MeanCi)> = variants
        .iter()
        .zip(inputs)
        .filter(|(v, _)| v.step)
        .map(|(v, i)| (v.label.to_string(), mean_ci(i)))
        .collect();
    let mut explain = explain_from_steps("bridge", baseline.mean, &steps);

    let host_with = variants
        .iter()
        .position(|v| v.mode == Mode::Host && v.nat != NatLevel::None)
        .map(|i| &inputs[i]);
    if let Some(with) = host_with {
        let without = model::rep_latencies(&inputs[0]);
        let with_xs = model::rep_latencies(with);
        if let Some(vs) = stats::vs_baseline(&with_xs, &without) {
            let p = vs
                .p_value
                .map(|p| format!(", p={p:.3}"))
                .unwrap_or_default();
            explain.notes.push(format!(
                "the node's own traffic: {:.2} µs without a NAT table, {:.2} µs with one loaded ({:+.1}%{p}{})",
                baseline.mean,
                mean_ci(with).mean,
                (vs.ratio - 1.0) * 100.0,
                if vs.significant { ", significant" } else { ", not significant" }
            ));
        }
    }
    let backlog: Vec<String> = variants
        .iter()
        .zip(inputs)
        .filter_map(|(v, i)| backlog_per_tx(i).map(|b| format!("{} {b:.2}", v.label)))
        .collect();
    if !backlog.is_empty() {
        explain.notes.push(format!(
            "backlog packets per transaction: {}",
            backlog.join("; ")
        ));
    }
    explain
}
