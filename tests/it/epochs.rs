//! Epochs: the interleaved schedule measured in fresh processes of the built `nslat` (its
//! hidden `epoch-child` command), the rounds put together (src/measure/epochs.rs). On loopback:
//! no root needed.

use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use nslat::bench::{RunSpec, TestKind};
use nslat::measure::epochs::{self, EpochPath};
use nslat::measure::sockets::PathSpec;
use nslat::measure::{ScheduleConfig, StopRule, Stopped};

use crate::common::nslat_bin;

fn loopback(labels: &[&str]) -> Vec<EpochPath> {
    labels
        .iter()
        .map(|l| EpochPath {
            path: PathSpec {
                label: (*l).into(),
                netns: None,
                server: "127.0.0.1:9".parse().unwrap(),
                token: None,
            },
            server_netns: None,
        })
        .collect()
}

#[test]
fn epochs_add_up_their_rounds_and_are_the_intervals_time_batches() {
    let paths = loopback(&["a", "b", "a", "b"]);
    let template = RunSpec::template(TestKind::TcpRr, Duration::from_secs(1));
    let cfg = ScheduleConfig {
        warmup: Duration::from_millis(20),
        stop: StopRule::Time(Duration::from_millis(600)),
        replicates: 2,
        ..ScheduleConfig::default()
    };
    let mut told = Vec::new();
    let m = epochs::measure(
        Path::new(nslat_bin()),
        &paths,
        3,
        &template,
        &cfg,
        &Arc::new(AtomicBool::new(false)),
        &mut |e| told.push(e),
    )
    .unwrap();
    assert_eq!(told, [0, 1, 2]);
    let r = &m.rounds;
    assert_eq!(r.epochs.len(), 3, "{:?}", r.epochs);
    assert!(r.epochs.iter().all(|&n| n >= 2), "{:?}", r.epochs);
    assert_eq!(r.rounds(), r.epochs.iter().sum::<usize>());
    assert_eq!(r.stopped, Stopped::Time);
    for (p, series) in r.means_ns.iter().enumerate() {
        assert_eq!(series.len(), r.rounds(), "path {p}");
        let run = m.runs[p].as_ref().unwrap();
        let h = run.histogram.as_ref().unwrap();
        assert_eq!(
            h.len(),
            run.transactions,
            "path {p}: every epoch's histogram merged"
        );
        assert_eq!(r.totals[p].transactions, run.transactions, "path {p}");
    }
    let pair = r.paired(1).unwrap();
    assert_eq!(pair.replicates, 2);
    assert_eq!(
        pair.batches, 3,
        "the epochs are the interval's time batches"
    );
    assert!(pair.ratio.ci95.is_some());
}

#[test]
fn a_path_whose_server_cannot_be_bound_fails_the_measurement_with_the_reason() {
    let mut paths = loopback(&["a", "b"]);
    paths[1].server_netns = Some("/run/netns/nslat-no-such-namespace".into());
    let template = RunSpec::template(TestKind::TcpRr, Duration::from_secs(1));
    let cfg = ScheduleConfig {
        stop: StopRule::Time(Duration::from_millis(200)),
        ..ScheduleConfig::default()
    };
    let e = epochs::measure(
        Path::new(nslat_bin()),
        &paths,
        2,
        &template,
        &cfg,
        &Arc::new(AtomicBool::new(false)),
        &mut |_| {},
    )
    .unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("b:") && e.contains("nslat-no-such-namespace"),
        "{e}"
    );
}
