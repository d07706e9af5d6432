//! Measuring in epochs: the interleaved schedule run several times in a row over the same
//! paths, each time in a fresh process ([`super::child`]: this program started again) with its
//! own servers, sessions and client thread, and the rounds put together.
//!
//! Why: where a process's code and data land (a new address-space layout every exec, and the
//! memory behind it) shifts a path's latency by a few tenths of a percent, and bridge's by up
//! to a point, for the process's whole life. Rebuilding the paths inside one process, or a
//! forked child, keeps it; a new process draws a new one (measured 6 December 2026,
//! docs/method.md). One process's interval cannot see it; epochs make it a term of the interval
//! ([`super::paired::replicated_in`]: the epochs are its time batches) and average it down.
//!
//! The caller keeps what the paths are (namespaces, cells); each epoch's process binds a
//! server of its own in every path's server namespace ([`EpochPath`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::child;
pub use super::child::SELF_EXE;
use super::schedule::{
    Block, BlockSize, Interleaved, PathFailure, ScheduleConfig, StopRule, Stopped,
};
use super::sockets::{self, MeasureError, Measured, PathSpec};
use crate::bench::client::ClientError;
use crate::bench::server::{Server, ServerConfig, ServerHandle};
use crate::bench::timing::new_histogram;
use crate::bench::{RunResult, RunSpec};
use crate::error::error_chain;
use crate::stats::LatencySummary;

/// Epochs of a lab compare with replicates (`--epochs`).
pub const DEFAULT_EPOCHS: usize = 10;
/// The most epochs.
pub const MAX_EPOCHS: usize = 40;
/// Warm-up of every epoch after the first (the first sets B; later epochs keep it).
pub const LATER_WARMUP: Duration = Duration::from_millis(100);

/// The hidden subcommand an epoch's process runs ([`child_main`]).
pub const CHILD_COMMAND: &str = "epoch-child";

/// One path of an epoch: its client side as measured, and the namespace its server is bound
/// in (every epoch binds its own server there: the path's port is the epoch's).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EpochPath {
    pub path: PathSpec,
    /// `None`: the caller's namespace.
    pub server_netns: Option<std::path::PathBuf>,
}

/// What an epoch's process is asked to do.
#[derive(Serialize, Deserialize)]
struct Job {
    paths: Vec<EpochPath>,
    template: RunSpec,
    cfg: ScheduleConfig,
}

/// What an epoch's child sends back.
#[derive(Serialize, Deserialize)]
enum Outcome {
    Measured(Box<Wire>),
    Baseline { label: String, message: String },
    Failed(String),
}

/// [`Measured`] in a form that crosses a pipe (errors as messages, histograms as counts).
#[derive(Serialize, Deserialize)]
struct Wire {
    runs: Vec<Option<RunResult>>,
    hists: Vec<Vec<(u64, u64)>>,
    block: BlockSize,
    stall_ns: u64,
    warmup_rounds: usize,
    means_ns: Vec<Vec<Option<f64>>>,
    totals: Vec<Block>,
    warmup: Vec<Block>,
    measured_ns: u64,
    stopped: Stopped,
    failures: Vec<(usize, String)>,
    cleanup: Vec<(usize, String)>,
}

impl Wire {
    fn of(m: Measured) -> Wire {
        let hists = m
            .runs
            .iter()
            .map(|r| {
                r.as_ref()
                    .and_then(|r| r.histogram.as_ref())
                    .map(|h| {
                        h.iter_recorded()
                            .map(|v| (v.value_iterated_to(), v.count_at_value()))
                            .collect()
                    })
                    .unwrap_or_default()
            })
            .collect();
        let r = m.rounds;
        Wire {
            runs: m.runs,
            hists,
            block: r.block,
            stall_ns: r.stall_ns,
            warmup_rounds: r.warmup_rounds,
            means_ns: r
                .means_ns
                .iter()
                .map(|s| s.iter().map(|x| x.is_finite().then_some(*x)).collect())
                .collect(),
            totals: r.totals,
            warmup: r.warmup,
            measured_ns: r.measured_ns,
            stopped: r.stopped,
            failures: r
                .failures
                .iter()
                .map(|f| (f.path, error_chain(&f.error)))
                .collect(),
            cleanup: m
                .cleanup
                .iter()
                .map(|(i, e)| (*i, error_chain(e)))
                .collect(),
        }
    }
}

/// Measures `paths` (grouped as [`ScheduleConfig::replicates`] says) in `epochs` fresh
/// processes of `exe` (normally [`SELF_EXE`]) one after another, each measuring its share of the
/// time `cfg` gives (its budget, or its fixed time) with its own shuffle seed; every epoch
/// after the first keeps the first's B and warms up for [`LATER_WARMUP`]. A precision stop
/// (`cfg`'s target) is taken after an epoch, once half the epochs and `cfg.min_rounds` rounds
/// are done. `on_epoch(e)` is told before epoch `e` (0-based) starts. The rounds'
/// [`Interleaved::epochs`] gives each epoch's rounds; a path that fails in one epoch is failed
/// for all.
pub fn measure(
    exe: &std::path::Path,
    paths: &[EpochPath],
    epochs: usize,
    template: &RunSpec,
    cfg: &ScheduleConfig,
    stop: &Arc<AtomicBool>,
    on_epoch: &mut dyn FnMut(usize),
) -> Result<Measured, MeasureError> {
    let labels: Vec<String> = paths.iter().map(|p| p.path.label.clone()).collect();
    let epochs = epochs.clamp(1, MAX_EPOCHS);
    let total = match cfg.stop {
        StopRule::Time(t) => t,
        StopRule::Precision { budget, .. } => budget,
    };
    let share = total / epochs as u32;
    let mut acc: Option<Acc> = None;
    let mut stopped = match cfg.stop {
        StopRule::Time(_) => Stopped::Time,
        StopRule::Precision { .. } => Stopped::Budget,
    };
    for e in 0..epochs {
        if stop.load(Ordering::Relaxed) {
            stopped = Stopped::Interrupted;
            break;
        }
        on_epoch(e);
        let mut c = *cfg;
        c.stop = StopRule::Time(share);
        c.seed = cfg
            .seed
            .wrapping_add((e as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        if let Some(a) = &acc {
            c.warmup = cfg.warmup.min(LATER_WARMUP);
            if let (BlockSize::Transactions(b), false) = (a.block, cfg.time_sliced) {
                c.block_transactions = Some(b);
            }
        }
        let timeout = sockets::session_length(&c) + Duration::from_secs(30);
        let job = Job {
            paths: paths.to_vec(),
            template: template.clone(),
            cfg: c,
        };
        let outcome: Outcome = child::run(exe, &[CHILD_COMMAND], &job, timeout).map_err(|err| {
            if stop.load(Ordering::Relaxed) {
                MeasureError::Invalid("interrupted".into())
            } else {
                MeasureError::Thread(format!("epoch {}: {}", e + 1, error_chain(&err)))
            }
        })?;
        let wire = match outcome {
            Outcome::Measured(w) => w,
            Outcome::Baseline { label, message } => {
                return Err(MeasureError::Baseline {
                    label,
                    error: ClientError::Invalid(message),
                })
            }
            Outcome::Failed(m) => return Err(MeasureError::Invalid(m)),
        };
        let interrupted = wire.stopped == Stopped::Interrupted;
        match acc.as_mut() {
            None => acc = Some(Acc::first(labels.len(), *wire)),
            Some(a) => a.add(*wire),
        }
        if interrupted || stop.load(Ordering::Relaxed) {
            stopped = Stopped::Interrupted;
            break;
        }
        if let (StopRule::Precision { half_width, .. }, Some(a)) = (cfg.stop, &acc) {
            if e + 1 < epochs && 2 * (e + 1) >= epochs && a.precise(cfg, half_width) {
                stopped = Stopped::Target;
                break;
            }
        }
    }
    let acc = acc.ok_or_else(|| MeasureError::Invalid("interrupted before any epoch".into()))?;
    Ok(acc.into_measured(&labels, cfg, stopped))
}

/// The epoch process's side (`nslat epoch-child`, hidden): reads the job from standard input,
/// binds a server in every path's server namespace, measures, stops the servers, prints the
/// outcome. SIGINT and SIGTERM end the schedule early (its rounds so far come back), and the
/// parent's death sends SIGTERM. Returns the exit status.
pub fn child_main() -> i32 {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, stop.clone());
    }
    // A compare that dies (even by SIGKILL) ends its epoch too: its schedule stops at once.
    let _ = nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM);
    child::serve(|job: Job| -> Result<Outcome, String> {
        let mut handles = Vec::with_capacity(job.paths.len());
        let mut paths = Vec::with_capacity(job.paths.len());
        for p in &job.paths {
            let ip: std::net::IpAddr = if p.path.server.is_ipv6() {
                std::net::Ipv6Addr::UNSPECIFIED.into()
            } else {
                std::net::Ipv4Addr::UNSPECIFIED.into()
            };
            let listen = std::net::SocketAddr::new(ip, 0);
            let bound = crate::netns::run_in(p.server_netns.as_deref(), move || {
                Server::bind(ServerConfig::new(listen)).map_err(ChildSetup::from)
            });
            let server = match bound {
                Ok(s) => s,
                Err(e) => {
                    ServerHandle::stop_all(handles);
                    return Err(format!("{}: {}", p.path.label, error_chain(&e)));
                }
            };
            let mut path = p.path.clone();
            path.server.set_port(server.local_addr().port());
            paths.push(path);
            handles.push(server.spawn());
        }
        let r = sockets::measure(&paths, &job.template, &job.cfg, &stop);
        ServerHandle::stop_all(handles);
        Ok(match r {
            Ok(m) => Outcome::Measured(Box::new(Wire::of(m))),
            Err(MeasureError::Baseline { label, error }) => Outcome::Baseline {
                label,
                message: error_chain(&error),
            },
            Err(e) => Outcome::Failed(error_chain(&e)),
        })
    })
}

/// Binding an epoch's server inside a namespace.
#[derive(Debug, thiserror::Error)]
enum ChildSetup {
    #[error(transparent)]
    Netns(#[from] crate::netns::NetnsError),
    #[error(transparent)]
    Server(#[from] crate::bench::server::ServerError),
}

/// The epochs so far.
struct Acc {
    runs: Vec<Option<RunResult>>,
    block: BlockSize,
    stall_ns: u64,
    warmup_rounds: usize,
    means_ns: Vec<Vec<f64>>,
    totals: Vec<Block>,
    warmup: Vec<Block>,
    measured_ns: u64,
    failures: Vec<(usize, String)>,
    cleanup: Vec<(usize, String)>,
    epochs: Vec<usize>,
}

impl Acc {
    fn first(n: usize, w: Wire) -> Acc {
        let mut a = Acc {
            runs: vec![None; n],
            block: w.block,
            stall_ns: w.stall_ns,
            warmup_rounds: 0,
            means_ns: vec![Vec::new(); n],
            totals: vec![Block::default(); n],
            warmup: vec![Block::default(); n],
            measured_ns: 0,
            failures: Vec::new(),
            cleanup: Vec::new(),
            epochs: Vec::new(),
        };
        a.add(w);
        a
    }

    fn failed(&self, p: usize) -> bool {
        self.failures.iter().any(|(i, _)| *i == p)
    }

    fn add(&mut self, w: Wire) {
        let first = self.epochs.is_empty();
        for (p, why) in w.failures {
            if !self.failed(p) {
                self.failures.push((p, why));
            }
        }
        self.cleanup.extend(w.cleanup);
        let rounds = w.means_ns.iter().map(Vec::len).max().unwrap_or(0);
        for (p, ((series, run), hist)) in w
            .means_ns
            .into_iter()
            .zip(w.runs)
            .zip(w.hists)
            .enumerate()
            .take(self.means_ns.len())
        {
            if self.failed(p) {
                self.means_ns[p].clear();
                self.runs[p] = None;
                continue;
            }
            self.means_ns[p].extend(series.into_iter().map(|x| x.unwrap_or(f64::NAN)));
            self.totals[p].add(&w.totals[p]);
            self.warmup[p].add(&w.warmup[p]);
            let Some(mut run) = run else {
                continue;
            };
            let mut h = new_histogram();
            for (v, c) in hist {
                let _ = h.record_n(v, c);
            }
            run.histogram = Some(h);
            match (&mut self.runs[p], first) {
                (slot @ None, true) => *slot = Some(run),
                (Some(acc), false) => merge_run(acc, run),
                _ => {}
            }
        }
        self.measured_ns += w.measured_ns;
        self.warmup_rounds += w.warmup_rounds;
        self.epochs.push(rounds);
    }

    fn rounds(&self, cfg: &ScheduleConfig) -> Interleaved<ClientError> {
        Interleaved {
            block: self.block,
            stall_ns: self.stall_ns,
            warmup_rounds: self.warmup_rounds,
            means_ns: self.means_ns.clone(),
            totals: self.totals.clone(),
            warmup: self.warmup.clone(),
            measured_ns: self.measured_ns,
            stopped: Stopped::Time,
            failures: self
                .failures
                .iter()
                .map(|(p, why)| PathFailure {
                    path: *p,
                    error: ClientError::Invalid(why.clone()),
                })
                .collect(),
            baseline: cfg.baseline,
            replicates: cfg.replicates.max(1),
            epochs: self.epochs.clone(),
        }
    }

    /// Every ratio's interval within `half_width`, with enough rounds for a stop.
    fn precise(&self, cfg: &ScheduleConfig, half_width: f64) -> bool {
        let r = self.rounds(cfg);
        if r.rounds() < cfg.min_rounds {
            return false;
        }
        (0..r.groups())
            .filter(|&g| g != cfg.baseline && r.group_failed(g).is_none())
            .all(|g| {
                r.paired(g)
                    .and_then(|p| p.ratio.half_width())
                    .is_some_and(|h| h <= half_width)
            })
    }

    fn into_measured(self, labels: &[String], cfg: &ScheduleConfig, stopped: Stopped) -> Measured {
        let mut rounds = self.rounds(cfg);
        rounds.stopped = stopped;
        Measured {
            labels: labels.to_vec(),
            runs: self.runs,
            rounds,
            cleanup: self
                .cleanup
                .into_iter()
                .map(|(i, why)| (i, ClientError::Invalid(why)))
                .collect(),
        }
    }
}

/// `b`'s transactions added to `a`'s: counts and times summed, the histograms merged and the
/// latency figures taken from the merged histogram, CPU per transaction weighted by
/// transactions. `a` keeps its data socket (the first epoch's).
fn merge_run(a: &mut RunResult, b: RunResult) {
    let (na, nb) = (a.transactions as f64, b.transactions as f64);
    let weighted = |x: f64, y: f64| {
        if na + nb > 0.0 {
            (x * na + y * nb) / (na + nb)
        } else {
            x
        }
    };
    a.cpu.client_cpu = weighted(a.cpu.client_cpu, b.cpu.client_cpu);
    a.cpu.server_cpu = weighted(a.cpu.server_cpu, b.cpu.server_cpu);
    a.throughput_gbps = match (a.throughput_gbps, b.throughput_gbps) {
        (Some(x), Some(y)) if a.elapsed_s + b.elapsed_s > 0.0 => {
            Some((x * a.elapsed_s + y * b.elapsed_s) / (a.elapsed_s + b.elapsed_s))
        }
        (x, _) => x,
    };
    a.transactions += b.transactions;
    a.warmup_transactions += b.warmup_transactions;
    a.elapsed_s += b.elapsed_s;
    a.trans_per_s = if a.elapsed_s > 0.0 {
        a.transactions as f64 / a.elapsed_s
    } else {
        0.0
    };
    a.lost = match (a.lost, b.lost) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    a.foreign_datagrams = match (a.foreign_datagrams, b.foreign_datagrams) {
        (None, None) => None,
        (x, y) => Some(x.unwrap_or(0) + y.unwrap_or(0)),
    };
    if let (Some(h), Some(g)) = (a.histogram.as_mut(), b.histogram.as_ref()) {
        let _ = h.add(g);
    }
    if let Some(h) = &a.histogram {
        a.latency_us =
            LatencySummary::from_histogram(h, (a.elapsed_s * 1e9) as u64, a.transactions);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::TestKind;

    #[test]
    fn a_program_that_is_not_an_epoch_child_fails_the_measurement_with_its_reason() {
        let path = EpochPath {
            path: PathSpec {
                label: "a".into(),
                netns: None,
                server: "127.0.0.1:1".parse().unwrap(),
                token: None,
            },
            server_netns: None,
        };
        let template = RunSpec::template(TestKind::TcpRr, Duration::from_secs(1));
        let e = measure(
            std::path::Path::new("/bin/false"),
            &[path],
            2,
            &template,
            &ScheduleConfig::default(),
            &Arc::new(AtomicBool::new(false)),
            &mut |_| {},
        )
        .unwrap_err();
        assert!(e.to_string().contains("epoch 1"), "{e}");
    }

    fn wire(means: Vec<Vec<Option<f64>>>, failed: &[usize]) -> Wire {
        let n = means.len();
        let block = Block {
            transactions: 10,
            elapsed_ns: 1000,
            ..Block::default()
        };
        Wire {
            runs: vec![None; n],
            hists: vec![Vec::new(); n],
            block: BlockSize::Transactions(10),
            stall_ns: 50_000,
            warmup_rounds: 2,
            means_ns: means,
            totals: vec![block; n],
            warmup: vec![Block::default(); n],
            measured_ns: 5000,
            stopped: Stopped::Time,
            failures: failed.iter().map(|&p| (p, "broke".to_string())).collect(),
            cleanup: Vec::new(),
        }
    }

    #[test]
    fn epochs_merge_in_order_and_a_path_failed_in_one_is_failed_in_all() {
        let cfg = ScheduleConfig::default();
        let mut acc = Acc::first(
            3,
            wire(
                vec![
                    vec![Some(1.0), Some(2.0)],
                    vec![Some(3.0), None],
                    vec![Some(5.0), Some(6.0)],
                ],
                &[],
            ),
        );
        acc.add(wire(
            vec![
                vec![Some(7.0), Some(8.0), Some(9.0)],
                vec![],
                vec![Some(1.0), Some(2.0), Some(3.0)],
            ],
            &[1],
        ));
        let m = acc.into_measured(&["a".into(), "b".into(), "c".into()], &cfg, Stopped::Budget);
        let r = &m.rounds;
        assert_eq!(r.epochs, [2, 3]);
        assert_eq!(r.means_ns[0], [1.0, 2.0, 7.0, 8.0, 9.0]);
        assert!(r.means_ns[1].is_empty(), "a failed path keeps no rounds");
        assert!(r.failed(1).is_some_and(|e| e.to_string().contains("broke")));
        assert_eq!(r.means_ns[2].len(), 5);
        assert_eq!(r.totals[0].transactions, 20);
        assert_eq!(r.measured_ns, 10_000);
        assert_eq!(r.warmup_rounds, 4);
        assert_eq!(r.stopped, Stopped::Budget);
    }

    #[test]
    fn merged_runs_add_their_transactions_and_histograms() {
        let run = |n: u64, v: u64| {
            let mut h = new_histogram();
            h.record_n(v, n).unwrap();
            RunResult {
                test: TestKind::TcpRr,
                transactions: n,
                warmup_transactions: 1,
                elapsed_s: n as f64 * v as f64 / 1e9,
                trans_per_s: 0.0,
                latency_us: LatencySummary::from_histogram(&h, n * v, n),
                cpu: crate::bench::CpuUsage {
                    client_cpu: v as f64 / 1e3,
                    server_cpu: 0.0,
                    unit: "us/tx".into(),
                },
                lost: None,
                foreign_datagrams: None,
                throughput_gbps: None,
                request_size: 1,
                response_size: 1,
                clock: "CLOCK_MONOTONIC".into(),
                placement: Default::default(),
                data_socket: None,
                histogram: Some(h),
            }
        };
        let mut a = run(1000, 8_000);
        merge_run(&mut a, run(3000, 12_000));
        assert_eq!(a.transactions, 4000);
        assert_eq!(a.warmup_transactions, 2);
        assert_eq!(a.histogram.as_ref().unwrap().len(), 4000);
        assert!(
            (a.latency_us.mean - 11.0).abs() < 0.05,
            "{}",
            a.latency_us.mean
        );
        assert!(
            (a.cpu.client_cpu - 11.0).abs() < 1e-9,
            "{}",
            a.cpu.client_cpu
        );
        assert!((a.trans_per_s - 4000.0 / a.elapsed_s).abs() < 1e-6);
    }
}
