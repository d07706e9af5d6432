//! `compare --explain`: attributes the bridge mode's extra latency to its parts by measuring
//! variants that add one part at a time (veth, bridge, conntrack, MASQUERADE), and the node's
//! own traffic with and without the NAT table.
//!
//! Every variant exists at once ([`crate::lab::explain::ExplainSet`]: one explain node per NAT
//! level) and all six are measured by the comparison's one loop ([`super::interleave`]), paired
//! round by round with one baseline, "host, no NAT table". Each step's share is its paired delta
//! to the previous step. The backlog note comes from one short probed run per variant, outside
//! the timed blocks. This module builds no topology and changes no lab.

use std::net::SocketAddr;
use std::time::Instant;

use super::error::CompareError;
use super::interleave;
use super::model::{explain_from_paired, Explain, ExplainStep, RepInput};
use super::options::CpuPlacement;
use super::progress::Progress;
use super::runs::{probe_config, Runner};
use crate::bench::server::{Server, ServerConfig, ServerHandle};
use crate::lab::explain::{ExplainSet, VariantPath, VARIANTS};
use crate::lab::{Lab, LabError, Mode};
use crate::measure::sockets::PathSpec;
use crate::measure::{paired, Ci, Paired};
use crate::netns;

/// The mode the breakdown explains (the last step).
const TARGET: &str = "bridge";

/// Builds the variants, measures them interleaved, removes them, and builds the breakdown.
pub(super) fn run(
    runner: &Runner,
    lab: &Lab,
    placement: CpuPlacement,
    progress: &dyn Progress,
) -> Result<Explain, CompareError> {
    let started = Instant::now();
    let set = ExplainSet::build(lab).map_err(|e| match e {
        _ if runner.stopped() => CompareError::Interrupted(""),
        LabError::Step { source, .. } if matches!(*source, LabError::Interrupted) => {
            CompareError::Interrupted("")
        }
        e => CompareError::Lab(e),
    })?;
    let built_ms = started.elapsed().as_secs_f64() * 1e3;
    let paths = set.paths();
    progress.note(&format!(
        "--explain: {} variants built side by side in {built_ms:.0} ms (one node per NAT level): {}",
        paths.len(),
        paths
            .iter()
            .map(|p| p.variant.label)
            .collect::<Vec<_>>()
            .join("; ")
    ));
    if runner.stopped() {
        return Err(CompareError::Interrupted(""));
    }
    let servers = Servers::start(&set)?;
    let specs: Vec<PathSpec> = paths
        .iter()
        .map(|p| PathSpec {
            label: p.variant.label.to_string(),
            netns: Some(p.info.netns.clone()),
            server: servers.target(p),
            token: None,
        })
        .collect();
    progress.placement(&format!("{placement}, --explain"), specs.len(), 1.0);
    let measure_started = Instant::now();
    let m = interleave::measure(runner, &specs, placement, progress)?;
    let wall_s = measure_started.elapsed().as_secs_f64();
    if let Some((p, why)) = specs
        .iter()
        .zip(&m.inputs)
        .find_map(|(p, i)| i.unavailable.as_ref().map(|w| (p, w)))
    {
        return Err(CompareError::Invalid(format!(
            "--explain: the variant '{}' could not be measured: {why}",
            p.label
        )));
    }
    // Probe counters per variant: a short run of each, outside the timed blocks.
    let probes = probe_config(placement);
    let mut backlog = Vec::with_capacity(specs.len());
    for p in &specs {
        let label = format!("{} (probes)", p.label);
        progress.run_started(placement.name(), &label, 1, 1);
        let rep = runner.traced(placement, p, &probes)?;
        progress.run_finished(&label, rep.run.latency_us.mean);
        backlog.push(backlog_per_tx(&rep));
    }
    // `--waterfall`: each variant traced too, while its server runs.
    let traced = runner.opts.waterfall.then(|| {
        let todo: Vec<super::waterfall::PathToTrace> = paths
            .iter()
            .zip(&specs)
            .map(|(p, s)| super::waterfall::PathToTrace {
                label: s.label.clone(),
                netns: s.netns.clone(),
                server: s.server,
                wire: vec![p.remote.to_path_buf()],
                remote: None,
                token: None,
            })
            .collect();
        super::waterfall::trace_paths(&todo, placement, runner.opts, progress)
    });
    drop(servers);
    drop(set);

    let mut explain = breakdown(&m.means_ns, &backlog);
    if let Some(t) = traced {
        let steps: Vec<(String, f64)> = explain
            .parts
            .iter()
            .map(|p| (p.name.clone(), p.adds_us))
            .collect();
        explain.waterfall =
            crate::waterfall::explain_steps(VARIANTS[0].label, &steps, &t.waterfalls);
        match (&explain.waterfall, t.refused) {
            (Some(w), _) => explain.notes.push(w.line()),
            (None, Some(why)) => explain
                .notes
                .push(format!("--waterfall: not available: {why}")),
            (None, None) => explain.notes.push(format!(
                "--waterfall: not every variant could be traced ({})",
                t.failed
                    .iter()
                    .map(|(l, w)| format!("{l}: {w}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            )),
        }
    }
    explain.ci_method = Some(m.ci_method.clone());
    explain.notes.insert(
        0,
        format!(
            "every row measured in the same {} interleaved rounds of {} blocks ({:.1} s measured, \
             {wall_s:.1} s wall, variants built in {built_ms:.0} ms) and paired with the \
             baseline '{}' round by round; 'adds' is paired with the row above",
            m.rounds,
            specs.len(),
            m.measured_s,
            VARIANTS[0].label,
        ),
    );
    Ok(explain)
}

/// One `nslat serve` per explain node's remote, stopped when dropped.
struct Servers {
    /// (remote namespace, handle, port).
    running: Vec<(std::path::PathBuf, ServerHandle, u16)>,
}

impl Servers {
    fn start(set: &ExplainSet) -> Result<Servers, CompareError> {
        let mut servers = Servers {
            running: Vec::new(),
        };
        for remote in set.remotes() {
            let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
            let server = netns::run_in(Some(remote), move || {
                Server::bind(ServerConfig::new(listen)).map_err(CompareError::from)
            })?;
            let port = server.local_addr().port();
            servers
                .running
                .push((remote.to_path_buf(), server.spawn(), port));
        }
        Ok(servers)
    }

    /// The server address a variant's client connects to: its mode's server address on the
    /// port of its own node's remote.
    fn target(&self, p: &VariantPath) -> SocketAddr {
        let port = self
            .running
            .iter()
            .find(|(r, _, _)| r == p.remote)
            .map(|(_, _, port)| *port)
            .unwrap_or(0);
        SocketAddr::new(p.info.server.into(), port)
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        crate::bench::server::ServerHandle::stop_all(self.running.drain(..).map(|(_, h, _)| h));
    }
}

/// Backlog packets per transaction of a probed run.
fn backlog_per_tx(rep: &RepInput) -> Option<f64> {
    let p = rep.probes.as_ref()?;
    Some(
        p.per_tx(rep.run.transactions + rep.run.warmup_transactions)
            .backlog_pkts,
    )
}

fn us(c: Ci) -> Ci {
    Ci {
        estimate: c.estimate / 1e3,
        ci95: c.ci95.map(|(lo, hi)| (lo / 1e3, hi / 1e3)),
    }
}

fn paired_us(sample: &[f64], baseline: &[f64]) -> Option<Paired> {
    paired::paired(sample, baseline).map(|mut p| {
        p.delta = us(p.delta);
        p
    })
}

/// Turns the variants' block means by round (ns, in [`VARIANTS`] order) into the breakdown:
/// cumulative steps from the baseline to the full bridge mode, each paired with the one before,
/// plus the NAT table's cost to the node's own traffic and the backlog per variant.
fn breakdown(means_ns: &[Vec<f64>], backlog: &[Option<f64>]) -> Explain {
    let base = &means_ns[0];
    let mean_us = |xs: &[f64]| {
        paired::mean_ci(xs).map(us).unwrap_or(Ci {
            estimate: 0.0,
            ci95: None,
        })
    };
    let mut prev = base;
    let mut steps = Vec::new();
    for (v, xs) in VARIANTS.iter().zip(means_ns).filter(|(v, _)| v.step) {
        steps.push(ExplainStep {
            name: v.label.to_string(),
            latency: mean_us(xs),
            vs_baseline: paired_us(xs, base),
            vs_previous: paired_us(xs, prev),
        });
        prev = xs;
    }
    let mut explain = explain_from_paired(TARGET, VARIANTS[0].label, mean_us(base), &steps);

    let host_nat = VARIANTS
        .iter()
        .position(|v| v.mode == Mode::Host && !v.step && v.nat != VARIANTS[0].nat);
    if let Some(vs) = host_nat.and_then(|i| paired_us(&means_ns[i], base)) {
        let pct = |r: f64| (r - 1.0) * 100.0;
        let interval = vs
            .ratio
            .ci95
            .map(|(lo, hi)| format!(" [{:+.1}%, {:+.1}%]", pct(lo), pct(hi)))
            .unwrap_or_default();
        let p = vs
            .p_value
            .map(|p| format!(", p={p:.3}"))
            .unwrap_or_default();
        explain.notes.push(format!(
            "the node's own traffic: {:.2} µs without a NAT table, {:.2} µs with one loaded \
             ({:+.1}%{interval}{p}, {})",
            explain.baseline_us,
            explain.baseline_us + vs.delta.estimate,
            pct(vs.ratio.estimate),
            if vs.significant() {
                "significant"
            } else {
                "not significant"
            }
        ));
    }
    let backlog: Vec<String> = VARIANTS
        .iter()
        .zip(backlog)
        .filter_map(|(v, b)| b.map(|b| format!("{} {b:.2}", v.label)))
        .collect();
    if !backlog.is_empty() {
        explain.notes.push(format!(
            "backlog packets per transaction (one short probed run per variant, outside the \
             timed blocks): {}",
            backlog.join("; ")
        ));
    }
    explain
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakdown_pairs_each_step_with_the_one_before() {
        // Block means (ns) by round with a shared drift: each step adds a fixed cost.
        let drift: Vec<f64> = (0..60).map(|i| ((i * 7) % 11) as f64 * 30.0).collect();
        let add = |c: f64| drift.iter().map(|d| 10_000.0 + c + d).collect::<Vec<f64>>();
        let means = vec![
            add(0.0),    // host, no NAT table
            add(3000.0), // veth
            add(3400.0), // + bridge
            add(100.0),  // host, NAT table loaded
            add(3900.0), // + conntrack
            add(4000.0), // + MASQUERADE
        ];
        let backlog = vec![Some(2.0), Some(4.0), Some(4.0), Some(2.0), None, Some(4.0)];
        let e = breakdown(&means, &backlog);
        let adds: Vec<f64> = e.parts.iter().map(|p| p.adds_us).collect();
        for (got, want) in adds.iter().zip([3.0, 0.4, 0.5, 0.1]) {
            assert!((got - want).abs() < 1e-9, "{adds:?}");
        }
        for p in &e.parts {
            let (lo, hi) = p.adds_ci95.expect("interval");
            assert!(lo <= p.adds_us && p.adds_us <= hi);
        }
        assert!((e.gap_us - 4.0).abs() < 1e-9);
        assert_eq!(e.baseline, "host, no NAT table");
        assert!(e
            .notes
            .iter()
            .any(|n| n.contains("NAT table loaded") || n.contains("with one loaded")));
        let b = e.notes.iter().find(|n| n.contains("backlog")).unwrap();
        assert!(
            b.contains("veth (ptp, routed) 4.00") && !b.contains("conntrack"),
            "{b}"
        );
    }
}
