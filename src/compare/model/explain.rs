//! The `--explain` breakdown from its variants' paired figures: what each step adds, its
//! ratio to the one baseline, its share of the gap.

use super::schema::{Explain, ExplainPart};

/// One cumulative variant measured in the same interleaved rounds as the baseline, in µs.
#[derive(Debug, Clone)]
pub struct ExplainStep {
    /// What the variant adds.
    pub name: String,
    /// Its latency with the batch-means interval.
    pub latency: crate::measure::Ci,
    /// Against the baseline (for the ratio).
    pub vs_baseline: Option<crate::measure::Paired>,
    /// Against the previous step (the first: the baseline), for what this step adds.
    pub vs_previous: Option<crate::measure::Paired>,
}

/// Builds the `--explain` breakdown from variants measured in the same interleaved rounds as
/// the baseline `baseline` (its latency `baseline_us`): each step adds its paired delta to the
/// previous step, each ratio is to the one baseline; shares are of the paired gap of the last
/// step (the complete target mode) to the baseline.
pub fn explain_from_paired(
    target: &str,
    baseline: &str,
    baseline_us: crate::measure::Ci,
    steps: &[ExplainStep],
) -> Explain {
    let gap_us = steps
        .last()
        .map(|s| match &s.vs_baseline {
            Some(p) => p.delta.estimate,
            None => s.latency.estimate - baseline_us.estimate,
        })
        .unwrap_or(0.0);
    let mut prev = baseline_us.estimate;
    let parts = steps
        .iter()
        .map(|s| {
            let (adds_us, adds_ci95) = match &s.vs_previous {
                Some(p) => (p.delta.estimate, p.delta.ci95),
                None => (s.latency.estimate - prev, None),
            };
            prev = s.latency.estimate;
            ExplainPart {
                name: s.name.clone(),
                latency_us: s.latency.estimate,
                ci95: s.latency.half_width(),
                adds_us,
                adds_ci95,
                ratio: s.vs_baseline.map(|p| p.ratio),
                share: if gap_us != 0.0 { adds_us / gap_us } else { 0.0 },
            }
        })
        .collect();
    Explain {
        target: target.to_string(),
        baseline: baseline.to_string(),
        baseline_us: baseline_us.estimate,
        baseline_ci95: baseline_us.half_width(),
        rounds: steps
            .iter()
            .filter_map(|s| s.vs_baseline.map(|p| p.rounds))
            .max(),
        ci_method: None,
        target_us: baseline_us.estimate + gap_us,
        gap_us,
        parts,
        notes: Vec::new(),
        waterfall: None,
    }
}
