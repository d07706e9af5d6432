//! `nslat sweep rate`: latency against offered load, per mode. At each rate every mode's
//! container runs the open-loop test ([`crate::bench::openloop`]) against the remote's server,
//! the modes interleaved block by block on the project's one schedule
//! ([`crate::measure::openloop`]) and paired with the host. `auto` climbs a doubling ladder
//! until every mode is past its bound and saturated, then bisects each mode's bracket; every
//! point measures every mode, so the curves share their rates.
//!
//! Each point comes in [`WINDOWS`] sub-windows, and [`super::knee`] finds each mode's three
//! markers from them (knee: p99 over `bound_factor ×` idle in 6 of 10 windows; wall: achieved
//! under 99 % of offered in 6 of 10; kept: what it still achieves at the wall), each as a ratio
//! to the host's with an interval, with the backlog counters at the idle rates and the CPU per
//! request at the knee that explain the order. The load is bounded: at most [`MAX_POINTS`]
//! rates, each below the generator's cap, blocks of [`BLOCK`] with a per-request timeout.

use std::time::Duration;

use super::knee::{self, WINDOWS};
use super::model::{
    Axis, Latency, Point, RateCounters, RateFigures, RateWindow, SweepReport, VsReference,
};
use super::run::{kernel, Bench, Progress};
use super::SweepError;
use crate::bench::openloop::{self, Spacing, MAX_RATE_RPS};
use crate::lab::Mode;
use crate::measure::openloop::{measure, MeasureError, Measured, OpenLoopConfig};
use crate::measure::sockets::PathSpec;

/// One block on one mode.
pub const BLOCK: Duration = Duration::from_millis(50);
/// The most rates one sweep measures (confirmations included).
pub const MAX_POINTS: usize = 40;
/// The shortest `-l`: one 50 ms block per window.
pub const MIN_LENGTH: Duration = Duration::from_millis(500);
/// The most connections per mode (the server takes 64 sessions at once).
pub const MAX_SWEEP_CONNECTIONS: usize = 8;
/// Where `auto` starts, requests/s.
pub const AUTO_START_RPS: f64 = 2_000.0;
/// The client's CPU and the servers' (the remote's data threads): one CPU, as the other sweeps
/// and `compare --cpu same` (on a VM a wake-up across CPUs costs more than any path, and a
/// halted CPU woken by an IPI adds millisecond outliers), so a mode's knee is where that CPU runs
/// out: the whole per-request work of client, path and server on it.
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 0;

/// Which rates to measure.
#[derive(Debug, Clone, PartialEq)]
pub enum Rates {
    List(Vec<f64>),
    Auto,
}

/// `nslat sweep rate`.
#[derive(Debug, Clone)]
pub struct RateOptions {
    /// Modes; the host is measured first whether named or not (the baseline).
    pub modes: Vec<Mode>,
    pub rates: Rates,
    pub connections: usize,
    pub request_size: usize,
    pub response_size: usize,
    pub spacing: Spacing,
    /// Measured time per mode per rate (rounds of [`BLOCK`]).
    pub length: Duration,
    /// The latency bound: this many times a mode's idle p99.
    pub bound_factor: f64,
    pub timeout: Duration,
    pub lab: Option<String>,
}

impl Default for RateOptions {
    fn default() -> Self {
        RateOptions {
            modes: vec![Mode::Host, Mode::Bridge, Mode::Ptp, Mode::Macvlan],
            rates: Rates::Auto,
            connections: 1,
            request_size: 1,
            response_size: 1,
            spacing: Spacing::Constant,
            length: Duration::from_secs(1),
            bound_factor: 3.0,
            timeout: Duration::from_millis(500),
            lab: None,
        }
    }
}

impl RateOptions {
    fn rounds(&self) -> usize {
        ((self.length.as_secs_f64() / BLOCK.as_secs_f64()).round() as usize).max(2)
    }

    /// The measured modes, host first.
    pub fn modes_host_first(&self) -> Vec<Mode> {
        let mut m = vec![Mode::Host];
        m.extend(self.modes.iter().copied().filter(|&x| x != Mode::Host));
        m
    }
}

/// Checks `opts` before anything is built (bad input: one clear line).
pub fn validate_rate(opts: &RateOptions) -> Result<(), SweepError> {
    let bad = |m: String| Err(SweepError::Invalid(m));
    if opts.modes.is_empty() {
        return bad("--modes: give at least one mode".into());
    }
    if let Rates::List(l) = &opts.rates {
        if l.is_empty() {
            return bad("--rates: give at least one rate, or auto".into());
        }
        if l.len() > MAX_POINTS {
            return bad(format!("--rates: at most {MAX_POINTS} rates"));
        }
        for &r in l {
            openloop::validate(r, 1, 1, 1)
                .map_err(|e| SweepError::Invalid(format!("--rates: {e}")))?;
        }
    }
    if !(1..=MAX_SWEEP_CONNECTIONS).contains(&opts.connections) {
        return bad(format!(
            "--connections {}: give 1..={MAX_SWEEP_CONNECTIONS} (each is a server thread per mode)",
            opts.connections
        ));
    }
    openloop::validate(1.0, opts.connections, opts.request_size, opts.response_size)
        .map_err(|e| SweepError::Invalid(format!("-r: {e}")))?;
    if opts.length < MIN_LENGTH || opts.length > Duration::from_secs(30) {
        return bad(format!(
            "-l: give {} s to 30 s per mode and rate ({WINDOWS} windows of at least one {} ms block)",
            MIN_LENGTH.as_secs_f64(),
            BLOCK.as_millis()
        ));
    }
    if !(opts.bound_factor.is_finite() && opts.bound_factor > 1.0 && opts.bound_factor <= 1000.0) {
        return bad("--bound: give a factor above 1 (e.g. 3: three times the idle p99)".into());
    }
    if crate::bench::timing::nproc() < 2 {
        return bad(
            "the rate sweep pins its client and servers to CPUs 0 and 1: this machine has one CPU"
                .into(),
        );
    }
    Ok(())
}

fn us(ns: f64) -> f64 {
    ns / 1e3
}

/// Turns one measured rate into a point per mode.
fn points_of(
    m: &Measured,
    modes: &[Mode],
    rate: f64,
    opts: &RateOptions,
    test: &str,
    repeat: bool,
) -> Vec<Point> {
    m.paths
        .iter()
        .enumerate()
        .filter(|(_, f)| !m.failures.iter().any(|(l, _)| l == &f.label))
        .map(|(i, f)| {
            let t = &f.timed;
            let per = |x: f64| {
                if t.completed > 0 {
                    x / t.completed as f64
                } else {
                    f64::NAN
                }
            };
            let client = per(t.cpu_ns as f64 / 1e3);
            let server = f.server.and_then(|s| s.cpu_us_per_tx());
            let l = &f.latency_us;
            let vs_host = (i > 0)
                .then(|| m.paired[i].as_ref())
                .flatten()
                .map(|p| VsReference {
                    ratio: p.ratio.estimate,
                    ratio_ci95: p.ratio.ci95,
                    delta_us: us(p.delta.estimate),
                    delta_ci95: p.delta.ci95.map(|(a, b)| (us(a), us(b))),
                });
            Point {
                style: None,
                mode: Some(modes[i].name().to_string()),
                n: rate.round() as usize,
                test: test.to_string(),
                placement: None,
                latency_us: Latency {
                    mean: f.mean_ns.map(|c| us(c.estimate)).unwrap_or(l.mean),
                    p50: l.p50,
                    p99: l.p99,
                    p99_9: l.p99_9,
                    ci95: f.mean_ns.and_then(|c| c.half_width()).map(us),
                },
                transactions: t.completed,
                rounds: m.rounds,
                load_s: None,
                direct_latency_us: None,
                vs_direct: None,
                backlog: None,
                wire_gbps: None,
                neighbours_gbps: None,
                queueing: None,
                windows: f
                    .windows
                    .iter()
                    .map(|w| RateWindow {
                        p50_us: w.p50_us,
                        p99_us: w.p99_us,
                        achieved_rps: w.timed.achieved_rps(),
                        completed: w.timed.completed,
                        lost: w.timed.timeouts + w.timed.dropped,
                    })
                    .collect(),
                rate: Some(RateFigures {
                    offered_rps: rate,
                    achieved_rps: t.achieved_rps(),
                    cpu_us_per_req: client + server.unwrap_or(0.0),
                    client_cpu_us_per_req: client,
                    server_cpu_us_per_req: server,
                    generator_busy: if t.wall_ns > 0 {
                        (t.cpu_ns as f64 / t.wall_ns as f64).min(1.0)
                    } else {
                        0.0
                    },
                    max_issue_lag_us: us(t.max_issue_lag_ns as f64),
                    sent: t.sent,
                    completed: t.completed,
                    timeouts: t.timeouts,
                    dropped: t.dropped,
                    connections: opts.connections,
                    vs_host,
                    counters: f.counters.map(|c| RateCounters {
                        backlog_pkts_per_req: per(c.backlog_pkts as f64),
                        net_rx_per_req: per(c.net_rx as f64),
                        softirq_us_per_req: per(c.softirq_us),
                        dropped: c.dropped,
                        time_squeeze: c.time_squeeze,
                    }),
                    repeat,
                }),
            }
        })
        .collect()
}

fn window_median_p99(p: &Point) -> f64 {
    let mut v: Vec<f64> = p.windows.iter().map(|w| w.p99_us).collect();
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Runs the rate sweep.
pub fn rate(opts: &RateOptions, progress: &dyn Progress) -> Result<SweepReport, SweepError> {
    validate_rate(opts)?;
    let wanted = opts.modes_host_first();
    let bench = Bench::up(opts.lab.as_deref(), wanted.clone(), &[], progress)?;
    let mut unavailable = Vec::new();
    let mut modes = Vec::new();
    let mut paths = Vec::new();
    for &mode in &wanted {
        match bench.lab.mode(mode) {
            Some(Ok(info)) => {
                modes.push(mode);
                paths.push(PathSpec {
                    label: mode.name().to_string(),
                    netns: Some(info.netns.clone()),
                    server: bench.server,
                    token: None,
                });
            }
            Some(Err(why)) => unavailable.push(format!("{mode}: {why}")),
            None => {}
        }
    }
    if modes.first() != Some(&Mode::Host) {
        return Err(SweepError::Invalid(
            "the host path is not available in the lab: nothing to compare with".into(),
        ));
    }
    let names: Vec<String> = modes.iter().map(|m| m.name().to_string()).collect();
    let test = format!("TCP_RR {},{}", opts.request_size, opts.response_size);
    let mut points: Vec<Point> = Vec::new();
    let mut list = match &opts.rates {
        Rates::List(l) => {
            let mut l = l.clone();
            l.sort_by(f64::total_cmp);
            l.dedup();
            l
        }
        Rates::Auto => Vec::new(),
    };
    list.reverse();
    let mut seed = 0x7261_7465u64;
    for _ in 0..MAX_POINTS {
        bench.check_stop()?;
        let next = match &opts.rates {
            Rates::List(_) => list.pop(),
            Rates::Auto => knee::next_rate(
                &points,
                &names,
                opts.bound_factor,
                AUTO_START_RPS,
                MAX_RATE_RPS,
            ),
        };
        let Some(rate) = next else { break };
        seed = seed.wrapping_add(1);
        let cfg = OpenLoopConfig {
            rate_rps: rate,
            spacing: opts.spacing,
            connections: opts.connections,
            block: BLOCK,
            rounds: opts.rounds(),
            timeout: opts.timeout,
            request_size: opts.request_size,
            response_size: opts.response_size,
            client_cpu: Some(CLIENT_CPU),
            server_cpu: Some(SERVER_CPU),
            probes: true,
            seed,
            windows: WINDOWS,
        };
        let repeat = points
            .iter()
            .any(|p| p.rate.is_some_and(|r| r.offered_rps == rate));
        match measure(&paths, &cfg, &bench.stop) {
            Ok(m) => {
                for (label, e) in &m.failures {
                    unavailable.push(format!("{label} at {rate:.0}/s: {e}"));
                }
                let new = points_of(&m, &modes, rate, opts, &test, repeat);
                progress.note(&format!(
                    "{rate:.0}/s{}: {}",
                    if repeat { " (again: confirming)" } else { "" },
                    new.iter()
                        .map(|p| format!(
                            "{} p99 {:.1} µs (window median {:.1}) ({:.0}/s)",
                            p.mode.as_deref().unwrap_or("?"),
                            p.latency_us.p99,
                            window_median_p99(p),
                            p.rate.map_or(0.0, |r| r.achieved_rps)
                        ))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                points.extend(new);
            }
            Err(MeasureError::Interrupted) => return Err(SweepError::Interrupted),
            Err(e) => unavailable.push(format!("{rate:.0}/s: {e}")),
        }
    }
    points.sort_by(|a, b| {
        let ai = names.iter().position(|n| a.mode.as_ref() == Some(n));
        let bi = names.iter().position(|n| b.mode.as_ref() == Some(n));
        ai.cmp(&bi).then(
            a.rate
                .map_or(0.0, |r| r.offered_rps)
                .total_cmp(&b.rate.map_or(0.0, |r| r.offered_rps)),
        )
    });
    let knees = knee::knees(&points, &names, opts.bound_factor);
    let generator_bound: Vec<String> = points
        .iter()
        .filter(|p| p.rate.is_some_and(|r| r.generator_busy > 0.9))
        .map(|p| format!("{} at {}/s", p.series_name(), p.n))
        .collect();
    let mut notes = vec![
        format!(
            "Open loop: requests leave on a fixed schedule ({} spacing) over {} TCP connection(s) per mode, each its own server thread; every latency is timed from the request's INTENDED send time, so queueing and stalls count for every request they delay (no coordinated omission).",
            opts.spacing.name(),
            opts.connections
        ),
        format!(
            "Each rate: blocks of {} ms per mode, the modes interleaved and shuffled round by round ({} timed rounds after 2 warm-up rounds), each block starting from an idle path and ending when its last response is in (or {} ms after its last request: a timeout). Mean ± 95% CI and the ratio to the host by batch means over the rounds; percentiles from every timed response.",
            BLOCK.as_millis(),
            opts.rounds(),
            opts.timeout.as_millis()
        ),
        format!(
            "Each point in {WINDOWS} windows of consecutive rounds, each with its own p99 and achieved rate; a point crosses when at least {} of its windows do, so one VM stall (one window) does not. Knee: the highest offered rate before the p99 exceeds {}× the mode's idle p99 (the median window p99 at {:.0}–{:.0}/s); wall: before it achieves under {:.0}% of the offered rate; kept: the mean window achieved rate at the wall's first short rate. Each marker as [last under, first over] (kept: its 95% CI over the windows) and as a ratio to the host's with the interval [lo / host's hi, hi / host's lo]. auto measures each first crossing twice (a rate crosses when both did) and bisects the brackets to {:.0}%.",
            knee::crossing_windows(WINDOWS),
            opts.bound_factor,
            knee::IDLE_FROM_RPS,
            knee::IDLE_TO_RPS,
            knee::WALL_SHARE * 100.0,
            (knee::BISECT_UNTIL - 1.0) * 100.0
        ),
        format!(
            "Client thread and the remote's server threads on CPU {CLIENT_CPU} (one CPU: the knee is where it runs out). CPU per request = the client thread's CPU time plus the server threads'. Backlog packets and NET_RX softirqs per request: /proc/net/softnet_stat and /proc/softirqs read around each timed block (machine-wide; one mode runs at a time)."
        ),
        format!(
            "The generator's own limit on loopback is measured by benches/openloop_limit.sh (docs/engine.md); rates above {MAX_RATE_RPS:.0}/s are refused. Generator busy % near 100 means the client, not the path, set the pace."
        ),
    ];
    if !generator_bound.is_empty() {
        notes.push(format!(
            "Generator-bound points (client thread busy over 90% of the time): {}.",
            generator_bound.join(", ")
        ));
    }
    Ok(SweepReport {
        axis: Axis::Rate,
        duration_s: opts.length.as_secs_f64(),
        cpus: format!("client and servers on CPU {CLIENT_CPU}"),
        kernel: kernel(),
        host_name: crate::host_facts::host_name(),
        points,
        notes,
        unavailable,
        knees,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_options_are_refused() {
        let ok = RateOptions::default();
        assert!(validate_rate(&ok).is_ok());
        for bad in [
            RateOptions {
                rates: Rates::List(vec![]),
                ..ok.clone()
            },
            RateOptions {
                rates: Rates::List(vec![5e6]),
                ..ok.clone()
            },
            RateOptions {
                connections: 0,
                ..ok.clone()
            },
            RateOptions {
                connections: 99,
                ..ok.clone()
            },
            RateOptions {
                bound_factor: 1.0,
                ..ok.clone()
            },
            RateOptions {
                length: Duration::from_secs(60),
                ..ok.clone()
            },
            RateOptions {
                length: Duration::from_millis(300),
                ..ok.clone()
            },
            RateOptions {
                request_size: 0,
                ..ok.clone()
            },
        ] {
            assert!(validate_rate(&bad).is_err(), "{bad:?}");
        }
        assert_eq!(ok.modes_host_first()[0], Mode::Host);
        let no_host = RateOptions {
            modes: vec![Mode::Bridge],
            ..ok
        };
        assert_eq!(no_host.modes_host_first(), vec![Mode::Host, Mode::Bridge]);
    }
}
