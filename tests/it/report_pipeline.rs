//! The analysis pipeline on real measurements: loopback TCP round trips (127.0.0.1 only), timed
//! per transaction into an HDR histogram, probed before/after, built into a report and exported
//! in every format.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use hdrhistogram::Histogram;
use nslat::bench::{CpuUsage, Placement, RunResult, TestKind};
use nslat::compare::{self, ModeInput, RepInput, ReportMeta};
use nslat::probe::{ProbeConfig, Snapshot};
use nslat::report::{self, CsvExporter, Exporter, JsonExporter, MarkdownExporter, TableExporter};
use nslat::stats::LatencySummary;

const N: u64 = 5000;

fn measured_rep(cfg: &ProbeConfig) -> RepInput {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        s.set_nodelay(true).unwrap();
        let mut b = [0u8; 1];
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b).unwrap();
        }
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_nodelay(true).unwrap();
    let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3).unwrap();
    let mut b = [1u8; 1];
    let before = Snapshot::take(cfg).unwrap();
    let start = Instant::now();
    for _ in 0..N {
        let t = Instant::now();
        c.write_all(&b).unwrap();
        c.read_exact(&mut b).unwrap();
        h.record(t.elapsed().as_nanos() as u64).unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let after = Snapshot::take(cfg).unwrap();
    drop(c);
    server.join().unwrap();
    let s = nslat::stats::summarize_ns(&h);
    RepInput {
        run: RunResult {
            test: TestKind::TcpRr,
            transactions: N,
            warmup_transactions: 0,
            elapsed_s: elapsed,
            trans_per_s: N as f64 / elapsed,
            latency_us: LatencySummary {
                rate_mean: elapsed * 1e6 / N as f64,
                ..s
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
        },
        probes: Some(Snapshot::delta(&before, &after)),
    }
}

#[test]
fn real_loopback_runs_through_every_exporter() {
    let cfg = ProbeConfig::new(None);
    let reps: Vec<RepInput> = (0..3).map(|_| measured_rep(&cfg)).collect();
    let meta = ReportMeta {
        test: TestKind::TcpRr,
        request_size: 1,
        response_size: 1,
        reps: 3,
        duration_s: 0.0,
        cpu_placement: "same".into(),
        kernel: nslat::host_facts::kernel_release(),
        host_name: nslat::host_facts::host_name(),
        schedule: compare::ScheduleKind::Runs,
        block_transactions: None,
        ci_method: None,
        baseline: compare::Baseline::unknown(),
    };
    let inputs = vec![
        ModeInput {
            trace_run: None,
            paired: None,
            mode: "host".into(),
            unavailable: None,
            reps,
        },
        ModeInput {
            trace_run: None,
            paired: None,
            mode: "ipvlan-l2".into(),
            unavailable: Some("not in this test".into()),
            reps: vec![],
        },
    ];
    let r = compare::build_report(&meta, &inputs);
    let host = &r.modes[0];
    let lat = host.latency_us.unwrap();
    assert!(
        lat.mean > 0.0 && lat.p50 <= lat.p99 && lat.p99 <= lat.p99_9,
        "{lat:?}"
    );
    assert!(lat.ci95.is_some());
    // Two data segments per round trip through loopback's backlog; other traffic only adds.
    assert!(
        host.probes.backlog_pkts_per_tx.unwrap() >= 2.0,
        "{:?}",
        host.probes
    );
    assert!(host.cdf.len() > 10 && host.cdf.last().unwrap().1 == 1.0);
    assert_eq!(
        r.kernel,
        String::from_utf8(
            std::process::Command::new("uname")
                .arg("-r")
                .output()
                .unwrap()
                .stdout
        )
        .unwrap()
        .trim()
    );

    for e in [
        &TableExporter as &dyn Exporter,
        &JsonExporter,
        &CsvExporter,
        &MarkdownExporter,
    ] {
        let mut out = Vec::new();
        e.export(&r, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("host") && text.contains("ipvlan-l2"),
            "{text}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let page = report::write_html_dir(&r, &dir.path().join("html")).unwrap();
    let html = std::fs::read_to_string(page).unwrap();
    assert_eq!(html.matches("<svg").count(), 3);
    assert!(html.contains("<polyline"), "a CDF line was drawn");
    assert!(
        html.contains("<figure id=\"percentiles\">"),
        "the percentile plot"
    );
    let json_path = dir.path().join("r.json");
    report::export_to_path(&JsonExporter, &r, &json_path).unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json_path).unwrap()).unwrap();
    assert_eq!(v["modes"][0]["mode"], "host");
    // The percentile distribution of the real histogram: increasing, ending at 100%.
    let pts = v["modes"][0]["percentiles"]
        .as_array()
        .expect("percentiles");
    assert!(pts.len() > 10, "{pts:?}");
    let q = |p: &serde_json::Value| p[0].as_f64().unwrap();
    assert!(pts.windows(2).all(|w| q(&w[0]) < q(&w[1])));
    assert_eq!(q(pts.last().unwrap()), 1.0);
    assert!(
        v["modes"][0]["probes"]["backlog_pkts_per_tx"]
            .as_f64()
            .unwrap()
            >= 2.0
    );
    assert_eq!(v["modes"][1]["available"], false);
}

#[test]
fn unwritable_path_is_a_clear_error() {
    let r = report::sample_report();
    let e = report::export_to_path(
        &JsonExporter,
        &r,
        std::path::Path::new("/nonexistent-dir/x.json"),
    )
    .unwrap_err()
    .to_string();
    assert!(e.starts_with("/nonexistent-dir/x.json:"), "{e}");
}
