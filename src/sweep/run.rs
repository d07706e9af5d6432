//! Running a sweep: build a lab of its own, serve in the remote, then for every point change
//! the one thing the axis varies (Service rules in the node; neighbour containers streaming)
//! and measure the point's paths. The lab goes when the sweep ends, fails or is interrupted
//! (SIGINT/SIGTERM/SIGHUP stop it after the current point; the rules and neighbours live in the
//! lab's namespaces and go with them).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::measure::{self, MeasureError, PathSpec, PointConfig};
use super::model::{Axis, Backlog, Point, Queueing, SweepReport};
use super::neighbours;
use super::services::{self, Service, ServicePlan, ServicePort, Style};
use super::SweepError;
use crate::bench::server::{Server, ServerConfig};
use crate::bench::TestKind;
use crate::lab::{self, plan, Lab, LabSpec, Mode};
use crate::netlink::sysctl;
use crate::netns;
use crate::probe::backlog::Sampler;
use crate::probe::{ProbeConfig, Snapshot};

/// Progress lines (a no-op by default).
pub trait Progress {
    fn note(&self, _message: &str) {}
}

/// Progress that shows nothing.
pub struct Silent;
impl Progress for Silent {}

/// `nslat sweep services`.
#[derive(Debug, Clone)]
pub struct ServicesOptions {
    pub counts: Vec<usize>,
    pub styles: Vec<Style>,
    pub tests: Vec<TestKind>,
    /// Measuring time per point (both paths together).
    pub duration: Duration,
    /// The lab's name (default `swp<pid>`); it must not exist.
    pub lab: Option<String>,
}

impl Default for ServicesOptions {
    fn default() -> Self {
        ServicesOptions {
            counts: vec![0, 1000, 5000, 10000, 30000],
            styles: Style::ALL.to_vec(),
            tests: vec![TestKind::TcpCrr, TestKind::TcpRr],
            duration: Duration::from_secs(4),
            lab: None,
        }
    }
}

/// Where the neighbours' clients run relative to the victim's client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the victim's CPU (its backlog is theirs too).
    Same,
    /// On the other CPU.
    Other,
}

impl Placement {
    pub fn name(self) -> &'static str {
        match self {
            Placement::Same => "same",
            Placement::Other => "other",
        }
    }
}

impl std::str::FromStr for Placement {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim() {
            "same" => Ok(Placement::Same),
            "other" => Ok(Placement::Other),
            o => Err(format!("unknown placement '{o}': use same or other")),
        }
    }
}

/// `nslat sweep load`.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub neighbours: Vec<usize>,
    pub modes: Vec<Mode>,
    pub placements: Vec<Placement>,
    pub test: TestKind,
    pub duration: Duration,
    pub lab: Option<String>,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            neighbours: vec![0, 1, 2, 4],
            modes: vec![Mode::Host, Mode::Bridge, Mode::Ptp, Mode::Macvlan],
            placements: vec![Placement::Same, Placement::Other],
            test: TestKind::TcpRr,
            duration: Duration::from_secs(3),
            lab: None,
        }
    }
}

/// The measured client's CPU and its server thread's: one CPU, like `compare --cpu same` (on a
/// busy machine a cross-CPU wake-up costs more than any path and hides the differences).
const CLIENT_CPU: usize = 0;
const SERVER_CPU: usize = 0;
/// The other CPU (the load sweep's `other` placement).
const OTHER_CPU: usize = 1;

/// How often the victim CPU's backlog length is sampled.
const BACKLOG_SAMPLE_EVERY: Duration = Duration::from_millis(1);

/// The victim CPU's queueing over a point: `before` and `after` read every CPU; the
/// per-transaction figures divide by `transactions` (every victim transaction the counters
/// span).
fn queueing(
    before: &Snapshot,
    mut after: Snapshot,
    transactions: u64,
    samples: Option<crate::probe::backlog::BacklogSamples>,
) -> Option<Queueing> {
    after.cpus = Some(vec![CLIENT_CPU]);
    let d = Snapshot::delta(before, &after);
    if d.cpus_counted == 0 || transactions == 0 {
        return None;
    }
    let per = d.per_tx(transactions);
    let samples = samples.unwrap_or_default();
    Some(Queueing {
        cpu: CLIENT_CPU,
        pkts_per_tx: per.backlog_pkts,
        net_rx_per_tx: per.net_rx,
        softirq_share: if d.elapsed_s > 0.0 {
            (d.cpu_softirq_us / (d.elapsed_s * 1e6)).clamp(0.0, 1.0)
        } else {
            0.0
        },
        backlog_len_mean: samples.mean(),
        backlog_busy_share: samples.busy_share(),
        backlog_samples: samples,
    })
}

/// The measured Service: its ClusterIP, the port the control connection uses, and the data
/// ports (the remote's ephemeral range is narrowed to them, so the server's data listeners
/// fall inside; kube-proxy writes one KUBE-SVC chain per Service port, as here).
pub const CLUSTER_IP: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 10);
pub const CONTROL_PORT: u16 = 80;
pub const DATA_PORTS: std::ops::RangeInclusive<u16> = 61000..=61007;

/// The measured Service for a server whose control port is `control`.
pub fn measured_service(control: u16) -> Service {
    let mut ports = vec![ServicePort {
        port: CONTROL_PORT,
        target: control,
    }];
    ports.extend(DATA_PORTS.map(|p| ServicePort { port: p, target: p }));
    Service {
        name: "sweep/measured".into(),
        cluster_ip: CLUSTER_IP,
        ports,
        endpoint: plan::REMOTE,
    }
}

/// The plan of `n` Services plus the measured one.
pub fn service_plan(n: usize, control: u16) -> ServicePlan {
    ServicePlan {
        fakes: n,
        measured: measured_service(control),
        cluster_cidr: (plan::BRIDGE_NET, 24),
        service_cidr: (plan::CLUSTER_NET, plan::CLUSTER_PREFIX),
    }
}

/// Removes the lab when dropped.
struct Teardown(String);
impl Drop for Teardown {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

fn interrupt_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    lab::set_default_signal_action_outside_up(false);
    for sig in lab::STOP_SIGNALS {
        let _ = signal_hook::flag::register(sig, flag.clone());
    }
    flag
}

/// A lab of the modes, its teardown armed, and a server in its remote.
pub(super) struct Bench {
    pub(super) lab: Lab,
    pub(super) server: SocketAddr,
    pub(super) stop: Arc<AtomicBool>,
    handle: Option<crate::bench::server::ServerHandle>,
    _teardown: Teardown,
}

impl Bench {
    pub(super) fn up(
        name: Option<&str>,
        modes: Vec<Mode>,
        remote_sysctls: &[(&str, &str)],
        progress: &dyn Progress,
    ) -> Result<Bench, SweepError> {
        if !netns::is_root() {
            return Err(SweepError::NotRoot);
        }
        let stop = interrupt_flag();
        let name = name
            .map(str::to_string)
            .unwrap_or_else(|| format!("swp{}", std::process::id()));
        lab::validate_name(&name)?;
        if Lab::open(&name).is_ok() {
            return Err(SweepError::Invalid(format!(
                "lab '{name}' exists: a sweep builds its own lab; pick another --lab or remove it with `nslat lab down --name {name}`"
            )));
        }
        let mut spec = LabSpec::new(&name);
        spec.modes = modes;
        let started = Instant::now();
        let lab = Lab::up(&spec)?;
        let teardown = Teardown(name.clone());
        progress.note(&format!(
            "lab '{name}' built in {:.0} ms (removed when the sweep ends)",
            started.elapsed().as_secs_f64() * 1e3
        ));
        let remote = lab.remote_netns().to_path_buf();
        let listen = SocketAddr::new(lab.remote_addr().into(), 0);
        let server = netns::run_in(Some(&remote), move || {
            Server::bind(ServerConfig::new(listen)).map_err(SweepError::from)
        })?;
        if !remote_sysctls.is_empty() {
            sysctl::write_in(&remote, remote_sysctls)?;
        }
        let addr = server.local_addr();
        let handle = server.spawn();
        Ok(Bench {
            lab,
            server: addr,
            stop,
            handle: Some(handle),
            _teardown: teardown,
        })
    }

    pub(super) fn check_stop(&self) -> Result<(), SweepError> {
        if self.stop.load(Ordering::SeqCst) {
            Err(SweepError::Interrupted)
        } else {
            Ok(())
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.stop();
        }
    }
}

pub(super) fn kernel() -> String {
    crate::host_facts::kernel_release()
}

/// Runs the Service sweep.
pub fn services(
    opts: &ServicesOptions,
    progress: &dyn Progress,
) -> Result<SweepReport, SweepError> {
    validate_services(opts)?;
    let range = format!("{} {}", DATA_PORTS.start(), DATA_PORTS.end());
    // The server's data listeners take ports from the narrowed range; its closed CRR
    // connections leave no TIME_WAIT behind that would hold those few ports.
    let bench = Bench::up(
        opts.lab.as_deref(),
        vec![Mode::Bridge],
        &[
            ("net.ipv4.ip_local_port_range", range.as_str()),
            ("net.ipv4.tcp_max_tw_buckets", "0"),
        ],
        progress,
    )?;
    let node = bench.lab.node_netns().to_path_buf();
    let bridge = match bench.lab.mode(Mode::Bridge) {
        Some(Ok(info)) => info.netns.clone(),
        // The Services are DNAT rules in front of the bridge container: without it, nothing
        // of this sweep can be measured.
        Some(Err(why)) => {
            return Err(SweepError::Invalid(format!(
                "the Service sweep measures through the bridge mode, which is not available: {why}"
            )))
        }
        None => {
            return Err(SweepError::Invalid(
                "the lab has no bridge container".into(),
            ))
        }
    };
    let paths = [
        PathSpec {
            label: "direct to the endpoint".into(),
            netns: bridge.clone(),
            server: bench.server,
        },
        PathSpec {
            label: "through the ClusterIP".into(),
            netns: bridge,
            server: SocketAddr::new(CLUSTER_IP.into(), CONTROL_PORT),
        },
    ];
    let mut points = Vec::new();
    let mut unavailable = Vec::new();
    for &style in &opts.styles {
        for &n in &opts.counts {
            bench.check_stop()?;
            let plan = service_plan(n, bench.server.port());
            let load = services::install(&node, style, &plan)?;
            progress.note(&format!(
                "{style}: {n} Services loaded in {:.2} s",
                load.as_secs_f64()
            ));
            for &test in &opts.tests {
                bench.check_stop()?;
                let point = PointConfig {
                    test,
                    duration: opts.duration,
                    cpus: (CLIENT_CPU, SERVER_CPU),
                    leave_out_stalls: true,
                };
                match measure::measure(&paths, &point, &bench.stop) {
                    Ok(m) => {
                        let through = &m.paths[1];
                        progress.note(&format!(
                            "{style} N={n} {}: {:.2} µs through the ClusterIP, {:.2} µs direct",
                            test.name(),
                            through.latency.mean,
                            m.paths[0].latency.mean
                        ));
                        points.push(Point {
                            style: Some(style),
                            mode: None,
                            n,
                            test: test.name().into(),
                            placement: None,
                            latency_us: through.latency,
                            transactions: through.transactions,
                            rounds: m.rounds,
                            load_s: Some(load.as_secs_f64()),
                            direct_latency_us: Some(m.paths[0].latency),
                            vs_direct: m.vs_reference[1],
                            backlog: None,
                            wire_gbps: None,
                            neighbours_gbps: None,
                            queueing: None,
                            rate: None,
                            windows: Vec::new(),
                        });
                    }
                    Err(MeasureError::Interrupted) => return Err(SweepError::Interrupted),
                    Err(e) => unavailable.push(format!("{style} N={n} {}: {e}", test.name())),
                }
            }
        }
    }
    services::remove(&node)?;
    Ok(SweepReport {
        axis: Axis::Services,
        duration_s: opts.duration.as_secs_f64(),
        cpus: format!("client and server on CPU {CLIENT_CPU}"),
        kernel: kernel(),
        host_name: crate::host_facts::host_name(),
        points,
        notes: vec![
            "From the bridge container through one ClusterIP (its endpoint: the remote's server), paired round by round with the same container straight to the endpoint.".into(),
            "Measured on the interleaved seam: blocks of about 2 ms on each path in turn (TCP_CRR: blocks of connections), each after one untimed transaction (the first after a switch pays the path's cold caches), the order shuffled every round, 300 ms of warm-up dropped; mean ± 95% CI and the ratio's interval by batch means over the rounds; percentiles from every timed transaction. Transactions slower than ten times the warm-up's mean (preemption on a shared machine) stay in the percentiles but are left out of the block means.".into(),
            format!(
                "The N Services are loaded in bulk ({} for iptables, nft -f for nftables) in the lab's node namespace; load s is the loader's wall time.",
                Style::Iptables.loader()
            ),
            "iptables: the measured Service is the LAST in KUBE-SERVICES, so every new connection walks all N rules first (the worst case); nftables looks it up in the service-ips map.".into(),
            format!(
                "The measured Service has {} ports (control + the data ports the server may listen on); N counts the other Services.",
                1 + DATA_PORTS.count()
            ),
            "TCP_CRR opens a connection per transaction (the first packet walks the nat rules); TCP_RR reuses one (conntrack only).".into(),
        ],
        unavailable,
        knees: Vec::new(),
    })
}

/// Checks `opts` before anything is built or locked (bad input: one clear line).
pub fn validate_services(opts: &ServicesOptions) -> Result<(), SweepError> {
    if opts.counts.is_empty() || opts.styles.is_empty() || opts.tests.is_empty() {
        return Err(SweepError::Invalid(
            "nothing to sweep: give at least one count, style and test".into(),
        ));
    }
    if let Some(&n) = opts.counts.iter().find(|&&n| n > services::MAX_SERVICES) {
        return Err(SweepError::Invalid(format!(
            "--counts {n}: at most {} Services",
            services::MAX_SERVICES
        )));
    }
    if let Some(t) = opts.tests.iter().find(|t| !t.is_request_response()) {
        return Err(SweepError::Invalid(format!(
            "-t {}: the Service sweep measures request/response tests (TCP_CRR, TCP_RR, UDP_RR)",
            t.name()
        )));
    }
    if opts.duration < Duration::from_secs(1) {
        return Err(SweepError::Invalid("-l: at least 1 s per point".into()));
    }
    let missing = services::missing_tools(&opts.styles);
    if !missing.is_empty() {
        return Err(SweepError::Invalid(format!(
            "{} not installed: install it (scripts/install-deps) and retry",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// Runs the load sweep.
pub fn load(opts: &LoadOptions, progress: &dyn Progress) -> Result<SweepReport, SweepError> {
    validate_load(opts)?;
    let bench = Bench::up(opts.lab.as_deref(), opts.modes.clone(), &[], progress)?;
    let k_max = opts.neighbours.iter().copied().max().unwrap_or(0);
    let mut points = Vec::new();
    let mut unavailable = Vec::new();
    let probes = ProbeConfig::new(None);
    for &mode in &opts.modes {
        let victim = match bench.lab.mode(mode) {
            Some(Ok(info)) => info.netns.clone(),
            Some(Err(why)) => {
                unavailable.push(format!("{mode}: {why}"));
                continue;
            }
            None => continue,
        };
        let nbrs = match neighbours::build(&bench.lab, mode, k_max) {
            Ok(n) => n,
            Err(e) => {
                unavailable.push(format!("{mode}: {}", crate::error::error_chain(&e)));
                continue;
            }
        };
        let point = PointConfig {
            test: opts.test,
            duration: opts.duration,
            cpus: (CLIENT_CPU, SERVER_CPU),
            leave_out_stalls: false,
        };
        let path = [PathSpec {
            label: format!("{mode} victim"),
            netns: victim,
            server: bench.server,
        }];
        for &placement in &opts.placements {
            for &k in &opts.neighbours {
                if k == 0 && placement != opts.placements[0] {
                    // K = 0 has no neighbours to place: measured once per mode.
                    continue;
                }
                bench.check_stop()?;
                let nbr_cpu = match placement {
                    Placement::Same => CLIENT_CPU,
                    Placement::Other => OTHER_CPU,
                };
                // Streams outlast the victim's measurement by their warm-up and a margin, and
                // end by themselves.
                let streams = neighbours::start(
                    &nbrs[..k],
                    bench.server,
                    opts.duration + Duration::from_millis(900),
                    nbr_cpu,
                    nbr_cpu,
                );
                if k > 0 {
                    std::thread::sleep(Duration::from_millis(400));
                }
                let wire_before = neighbours::wire_tx_bytes(bench.lab.node_netns());
                let before = Snapshot::take(&probes).ok();
                let sampler = Sampler::start(CLIENT_CPU, OTHER_CPU, BACKLOG_SAMPLE_EVERY);
                let m = measure::measure(&path, &point, &bench.stop);
                let samples = sampler.stop().ok();
                let after = Snapshot::take(&probes).ok();
                let wire_after = neighbours::wire_tx_bytes(bench.lab.node_netns());
                let (gbps, errors) = streams.join();
                let m = match m {
                    Ok(m) => m,
                    Err(MeasureError::Interrupted) => return Err(SweepError::Interrupted),
                    Err(e) => {
                        unavailable.push(format!("{mode} K={k}: {e}"));
                        continue;
                    }
                };
                if let Some(e) = errors.first() {
                    unavailable.push(format!(
                        "{mode} K={k} ({} CPU): a neighbour stream failed: {e}",
                        placement.name()
                    ));
                    continue;
                }
                let v = &m.paths[0];
                let (backlog, queueing) = match (before, after) {
                    (Some(b), Some(a)) => {
                        let d = Snapshot::delta(&b, &a);
                        let backlog = Backlog {
                            processed: d.backlog_pkts,
                            dropped: d.dropped,
                            time_squeeze: d.time_squeeze,
                            elapsed_s: d.elapsed_s,
                        };
                        (Some(backlog), queueing(&b, a, v.all_transactions, samples))
                    }
                    _ => (None, None),
                };
                progress.note(&format!(
                    "{mode} K={k} ({} CPU): p99 {:.1} µs, neighbours {gbps:.2} Gbit/s{}",
                    placement.name(),
                    v.latency.p99,
                    match &queueing {
                        Some(q) => format!(
                            ", victim CPU: {:.1} packets and {:.2} NET_RX per transaction, backlog busy {:.1}% of samples",
                            q.pkts_per_tx,
                            q.net_rx_per_tx,
                            q.backlog_busy_share.unwrap_or(0.0) * 100.0
                        ),
                        None => String::new(),
                    }
                ));
                points.push(Point {
                    style: None,
                    mode: Some(mode.name().into()),
                    n: k,
                    test: opts.test.name().into(),
                    placement: (k > 0).then(|| placement.name().to_string()),
                    latency_us: v.latency,
                    transactions: v.transactions,
                    rounds: m.rounds,
                    load_s: None,
                    direct_latency_us: None,
                    vs_direct: None,
                    wire_gbps: match (wire_before, wire_after, &backlog) {
                        (Some(b), Some(a), Some(bl)) if bl.elapsed_s > 0.0 => {
                            Some(a.saturating_sub(b) as f64 * 8.0 / bl.elapsed_s / 1e9)
                        }
                        _ => None,
                    },
                    backlog,
                    neighbours_gbps: (k > 0).then_some(gbps),
                    queueing,
                    rate: None,
                    windows: Vec::new(),
                });
            }
        }
        neighbours::remove(&bench.lab, mode);
    }
    Ok(SweepReport {
        axis: Axis::Load,
        duration_s: opts.duration.as_secs_f64(),
        cpus: format!(
            "victim's client and server on CPU {CLIENT_CPU}; neighbours' clients and servers on CPU {CLIENT_CPU} (same) or {OTHER_CPU} (other)"
        ),
        kernel: kernel(),
        host_name: crate::host_facts::host_name(),
        points,
        notes: vec![
            format!(
                "The victim runs {} to the remote while K neighbour containers of the same mode on the same node each run a TCP_STREAM to the remote (bounded: each ends after its duration).",
                opts.test.name()
            ),
            "Backlog counters come from /proc/net/softnet_stat over the victim's measurement, all CPUs; the file is machine-wide, so other traffic on the machine counts too.".into(),
            format!(
                "Queueing is the victim's CPU {CLIENT_CPU} alone: packets received there and NET_RX softirqs per victim transaction (warm-up included), its softirq time share, and its backlog length sampled every {} ms from CPU {OTHER_CPU} (softnet_stat column 12).",
                BACKLOG_SAMPLE_EVERY.as_millis()
            ),
            "The victim's mean keeps every transaction (preemption by same-CPU neighbours is the effect measured); mean ± CI is over the schedule's block means.".into(),
            "K = 0 is measured once per mode (no neighbours to place).".into(),
        ],
        unavailable,
        knees: Vec::new(),
    })
}

/// Checks `opts` before anything is built or locked (bad input: one clear line).
pub fn validate_load(opts: &LoadOptions) -> Result<(), SweepError> {
    if opts.neighbours.is_empty() || opts.modes.is_empty() || opts.placements.is_empty() {
        return Err(SweepError::Invalid(
            "nothing to sweep: give at least one neighbour count, mode and placement".into(),
        ));
    }
    if let Some(&k) = opts
        .neighbours
        .iter()
        .find(|&&k| k > neighbours::MAX_NEIGHBOURS)
    {
        return Err(SweepError::Invalid(format!(
            "--neighbours {k}: at most {} neighbours",
            neighbours::MAX_NEIGHBOURS
        )));
    }
    if let Some(m) = opts.modes.iter().find(|m| !neighbours::supported(**m)) {
        return Err(SweepError::Invalid(format!(
            "--modes {m}: {}",
            neighbours::why_unsupported(*m)
        )));
    }
    if !opts.test.is_request_response() {
        return Err(SweepError::Invalid(format!(
            "-t {}: the victim runs a request/response test",
            opts.test.name()
        )));
    }
    if opts.duration < Duration::from_secs(1) {
        return Err(SweepError::Invalid("-l: at least 1 s per point".into()));
    }
    Ok(())
}
