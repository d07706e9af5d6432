//! The model's unit tests: statistics, flags, warnings, verdict, explain, old reports read.

use hdrhistogram::Histogram;

use super::*;
use crate::bench::{CpuUsage, LatencySummary, Placement};
use crate::bench::{RunResult, TestKind};
use crate::probe::ProbeDelta;

pub(crate) fn run(mean_us: f64, tps: f64, spread_ns: u64) -> RunResult {
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let base = (mean_us * 1000.0) as u64;
    for i in 0..1000u64 {
        h.record(base - spread_ns / 2 + (i * spread_ns) / 1000)
            .unwrap();
    }
    RunResult {
        test: TestKind::TcpRr,
        transactions: 1000,
        warmup_transactions: 0,
        elapsed_s: 1.0,
        trans_per_s: tps,
        latency_us: LatencySummary {
            mean: mean_us,
            rate_mean: mean_us,
            p50: mean_us,
            p99: mean_us,
            ..Default::default()
        },
        cpu: CpuUsage::default(),
        lost: None,
        foreign_datagrams: None,
        throughput_gbps: None,
        request_size: 1,
        response_size: 1,
        clock: "CLOCK_MONOTONIC".into(),
        placement: Placement::default(),
        data_socket: None,
        histogram: Some(h),
    }
}

fn mode(name: &str, means: &[f64], backlog: u64) -> ModeInput {
    ModeInput {
        trace_run: None,
        paired: None,
        mode: name.into(),
        unavailable: None,
        reps: means
            .iter()
            .map(|&m| RepInput {
                run: run(m, 1e6 / m, 400),
                probes: Some(ProbeDelta {
                    backlog_pkts: backlog * 1000,
                    net_rx: 2000,
                    ..Default::default()
                }),
            })
            .collect(),
    }
}

fn meta(placement: &str) -> ReportMeta {
    ReportMeta {
        test: TestKind::TcpRr,
        request_size: 1,
        response_size: 1,
        reps: 5,
        duration_s: 2.0,
        cpu_placement: placement.into(),
        kernel: "6.18".into(),
        host_name: None,
        schedule: ScheduleKind::Runs,
        block_transactions: None,
        ci_method: None,
        baseline: Baseline::unknown(),
    }
}

#[test]
fn baseline_reads_old_and_new_reports() {
    let old: Baseline = serde_json::from_str("\"host\"").unwrap();
    assert_eq!(old.mode, "host");
    assert_eq!(old.nat_table, None);
    let new = Baseline::chosen(
        crate::lab::cells::NodeState::Nat,
        Some("/run/netns/x".into()),
    );
    let json = serde_json::to_value(&new).unwrap();
    assert_eq!(json["namespace"], "/run/netns/x");
    assert_eq!(json["nat_table"], true);
    assert_eq!(json["conntrack"], true);
    let back: Baseline = serde_json::from_value(json).unwrap();
    assert_eq!(back, new);
    assert_eq!(new.describe(), "host (nat: NAT table loaded, conntrack on)");
    assert!(is_host_row("host (NAT table)") && is_host_row(AA_CONTROL));
    assert!(!is_host_row("bridge"));
}

#[test]
fn run_context_text() {
    let c = RunContext {
        started_utc: String::new(),
        command_line: ["nslat", "compare", "--target", "web=docker:my web", "it's"]
            .map(String::from)
            .to_vec(),
        cpu_count: None,
        cpu_model: None,
    };
    assert_eq!(
        c.command(),
        "nslat compare --target 'web=docker:my web' 'it'\\''s'"
    );
}

#[test]
fn aa_control_is_judged_by_its_interval_and_its_tolerance() {
    let judged = |ratio: f64, lo: f64, hi: f64| {
        let mut r = crate::report::sample_report();
        r.schedule = ScheduleKind::Interleaved;
        r.aa_control = Some(AaControl {
            ratio,
            ratio_ci95: Some([lo, hi]),
            within_ci: lo <= 1.0 && 1.0 <= hi,
            within_tolerance: (ratio - 1.0).abs() <= AA_TOLERANCE,
        });
        warnings(&r)
            .into_iter()
            .filter(|w| w.message.contains("A/A control"))
            .map(|w| w.message)
            .collect::<Vec<_>>()
    };
    assert!(judged(1.0004, 0.998, 1.002).is_empty());
    let near = judged(1.0018, 1.0002, 1.0034);
    assert_eq!(near.len(), 1);
    assert!(near[0].contains("0.18%") && !near[0].contains("not trustworthy"));
    let far = judged(1.02, 1.01, 1.03);
    assert_eq!(far.len(), 1);
    assert!(far[0].contains("not trustworthy"), "{far:?}");
}

#[test]
fn report_statistics_verdict_and_warnings() {
    let inputs = vec![
        mode("host", &[5.12, 5.08, 5.15, 5.10, 5.11], 2),
        mode("bridge", &[6.60, 6.55, 6.71, 6.62, 6.58], 5),
        mode("macvlan", &[5.10, 5.20, 4.95, 5.30, 5.05], 3),
        ModeInput {
            trace_run: None,
            paired: None,
            mode: "ipvlan-l2".into(),
            unavailable: Some("no ipvlan in this kernel".into()),
            reps: vec![],
        },
    ];
    let r = build_report(&meta("same"), &inputs);
    let host = &r.modes[0];
    assert!(host.vs_host.is_none());
    assert!((host.latency_us.unwrap().mean - 5.112).abs() < 1e-9);
    assert!((host.latency_us.unwrap().ci95.unwrap() - 0.0321396757073).abs() < 1e-6);
    assert_eq!(host.probes.backlog_pkts_per_tx, Some(2.0));
    assert_eq!(host.probes.net_rx_per_tx, Some(2.0));
    assert!(!host.cdf.is_empty());
    let bridge = r.modes[1].vs_host.unwrap();
    assert!(bridge.significant && bridge.delta_us > 1.4);
    assert!(!r.modes[2].vs_host.unwrap().significant);
    assert!(!r.modes[3].available);
    assert_eq!(
        r.verdict[0],
        "bridge adds 1.5 µs (+29%) per round trip, significant"
    );
    assert!(
        r.verdict[1].starts_with("macvlan: no significant cost"),
        "{}",
        r.verdict[1]
    );
    assert_eq!(
        r.verdict[2],
        "ipvlan-l2: not measured (no ipvlan in this kernel)"
    );
    // macvlan's ±3.7% interval is wider than WIDE_CI_REL: warned with a remedy.
    assert_eq!(r.warnings.len(), 1, "{:?}", r.warnings);
    assert!(
        r.warnings[0].message.contains("wider than 2%: macvlan ±")
            && r.warnings[0].remedy.contains("--reps"),
        "{:?}",
        r.warnings
    );

    let split = build_report(&meta("split"), &inputs[..2]);
    assert!(split
        .warnings
        .iter()
        .any(|w| w.remedy.contains("--cpu same")));

    let json = serde_json::to_value(&r).unwrap();
    for key in ["cpu_placement", "test", "reps", "duration_s", "kernel"] {
        assert!(json.get(key).is_some(), "{key}");
    }
    let m = &json["modes"][1];
    for key in [
        "mode",
        "available",
        "reason",
        "trans_per_s",
        "latency_us",
        "vs_host",
        "probes",
    ] {
        assert!(m.get(key).is_some(), "{key}");
    }
    for key in ["mean", "p50", "p99", "p99_9", "ci95"] {
        assert!(m["latency_us"].get(key).is_some(), "{key}");
    }
    for key in ["delta_us", "ratio", "p_value", "significant"] {
        assert!(m["vs_host"].get(key).is_some(), "{key}");
    }
    for key in [
        "backlog_pkts_per_tx",
        "net_rx_per_tx",
        "cpu_us_per_tx",
        "tracepoints_per_tx",
    ] {
        assert!(m["probes"].get(key).is_some(), "{key}");
    }
    let back: CompareReport = serde_json::from_value(json).unwrap();
    assert_eq!(back, r);
}

#[test]
fn foreign_load_and_fractional_counts_flag_the_report() {
    let clean = build_report(
        &meta("same"),
        &[mode("host", &[5.0, 5.1], 2), mode("bridge", &[6.0, 6.1], 5)],
    );
    assert!(clean.flags.is_empty(), "{:?}", clean.flags);

    // 3.98 backlog packets per transaction: another measurement's packets were counted.
    let mut host = mode("host", &[5.0, 5.1], 2);
    for r in &mut host.reps {
        r.probes.as_mut().unwrap().backlog_pkts = 3980;
    }
    let r = build_report(&meta("same"), &[host]);
    assert_eq!(r.flags.len(), 1, "{:?}", r.flags);
    assert!(
        r.flags[0].contains("host 3.98 backlog packets"),
        "{:?}",
        r.flags
    );

    // A second of one CPU, of which the measuring threads used 0.5 s and interrupts 0.1 s:
    // 0.3 s went to someone else.
    let mut host = mode("host", &[5.0, 5.1], 2);
    for r in &mut host.reps {
        r.run.cpu.client_cpu = 250.0;
        r.run.cpu.server_cpu = 250.0;
        let p = r.probes.as_mut().unwrap();
        p.elapsed_s = 1.0;
        p.cpus_counted = 1;
        p.cpu_busy_us = 900_000.0;
        p.cpu_softirq_us = 100_000.0;
    }
    let r = build_report(&meta("same"), &[host]);
    let share = r.modes[0].probes.foreign_cpu_share.unwrap();
    assert!((share - 0.3).abs() < 1e-9, "{share}");
    assert!(r.flags[0].contains("host 30%"), "{:?}", r.flags);
}

#[test]
fn single_rep_and_no_baseline() {
    let r = build_report(&meta("same"), &[mode("bridge", &[6.6], 5)]);
    assert!(r.verdict[0].starts_with("no host baseline"));
    assert!(r.warnings.iter().any(|w| w.remedy.contains("--reps 3")));
    let r = build_report(
        &meta("same"),
        &[mode("host", &[5.0], 2), mode("bridge", &[6.0], 5)],
    );
    assert!(
        r.verdict[0].contains("significance unknown"),
        "{}",
        r.verdict[0]
    );
}

#[test]
fn paired_explain_adds_paired_deltas_against_one_baseline() {
    use crate::measure::{paired, Ci};
    // Block means by round (µs): baseline 10 ± drift, veth +2, bridge +0.5 more.
    let base: Vec<f64> = (0..40).map(|i| 10.0 + (i % 5) as f64 * 0.1).collect();
    let veth: Vec<f64> = base.iter().map(|x| x + 2.0).collect();
    let bridge: Vec<f64> = veth.iter().map(|x| x + 0.5).collect();
    let step = |name: &str, xs: &[f64], prev: &[f64]| ExplainStep {
        name: name.into(),
        latency: paired::mean_ci(xs).unwrap(),
        vs_baseline: paired::paired(xs, &base),
        vs_previous: paired::paired(xs, prev),
    };
    let e = explain_from_paired(
        "bridge",
        "host, no NAT table",
        paired::mean_ci(&base).unwrap(),
        &[step("veth", &veth, &base), step("+ bridge", &bridge, &veth)],
    );
    assert!((e.gap_us - 2.5).abs() < 1e-9, "{}", e.gap_us);
    assert!((e.parts[1].adds_us - 0.5).abs() < 1e-9);
    let (lo, hi) = e.parts[1].adds_ci95.unwrap();
    assert!(lo > 0.0 && lo <= 0.5 && hi >= 0.5, "{lo} {hi}");
    let shares: f64 = e.parts.iter().map(|p| p.share).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let r: Ci = e.parts[0].ratio.unwrap();
    assert!(r.estimate > 1.1 && r.ci95.is_some());
    assert_eq!(e.baseline, "host, no NAT table");
    assert_eq!(e.rounds, Some(40));
}
