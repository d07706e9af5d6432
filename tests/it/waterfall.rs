//! The waterfall on a real lab: host, ptp and bridge traced with the tp_btf programs. Every hop
//! of a path must be a stage exactly once per round trip (a missing or doubled hop fails), ptp
//! waits in a backlog exactly twice more than host per round trip, and the stages cover the
//! traced round trip. A tracepoint the kernel does not have makes the load fail with one line.

use crate::common;

use std::net::{IpAddr, SocketAddr};

use nslat::bench::server::{Server, ServerConfig};
use nslat::lab::{self, Lab, LabSpec, Mode};
use nslat::netns;
use nslat::waterfall::run::{self as wf_run, TraceSpec};
use nslat::waterfall::{StageKind, Waterfall};

struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

fn per_rt(wf: &Waterfall, kind: StageKind, device_kind: Option<&str>) -> f64 {
    wf.stages
        .iter()
        .filter(|s| s.kind == kind && (device_kind.is_none() || s.device_kind.as_deref() == device_kind))
        .map(|s| s.per_rt)
        .sum()
}

/// Each stage's occurrences per round trip must be a whole number (1 per hop): a hop seen on
/// half the round trips or twice is a defect. 3% slack for round trips cut by block edges and
/// the occasional lost event.
fn assert_whole(mode: &str, wf: &Waterfall) {
    let hop = |k: StageKind| {
        matches!(
            k,
            StageKind::Device | StageKind::BacklogWait | StageKind::Processing
        )
    };
    for s in wf.stages.iter().filter(|s| hop(s.kind)) {
        if s.per_rt < 0.2 {
            continue; // an ACK's or a lost event's rare stage
        }
        let r = s.per_rt.round();
        assert!(
            (s.per_rt - r).abs() < 0.03 && r >= 1.0,
            "{mode}: stage '{}' happens {:.3} times per round trip\n{wf:#?}",
            s.name,
            s.per_rt
        );
    }
}

#[test]
fn host_ptp_and_bridge_waterfalls_have_every_hop_once() {
    if !common::need_root("host_ptp_and_bridge_waterfalls_have_every_hop_once") {
        return;
    }
    let name = common::unique("wf");
    let mut spec = LabSpec::new(&name);
    spec.modes = vec![Mode::Host, Mode::Ptp, Mode::Bridge];
    let _guard = LabGuard(name.clone());
    let lab = Lab::up(&spec).expect("lab up");
    let remote = lab.remote_netns().to_path_buf();
    let listen = SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0);
    let server = netns::run_in(Some(&remote), move || Server::bind(ServerConfig::new(listen)))
        .expect("server");
    let port = server.local_addr().port();
    let handle = server.spawn();
    let mut out = Vec::new();
    for mode in [Mode::Host, Mode::Ptp, Mode::Bridge] {
        let info = lab.mode(mode).unwrap().as_ref().unwrap().clone();
        let mut t = TraceSpec::new(
            Some(info.netns.clone()),
            SocketAddr::new(IpAddr::V4(info.server), port),
        );
        t.block = std::time::Duration::from_millis(60);
        t.pairs = 4;
        t.wire = vec![lab.node_netns().to_path_buf(), remote.clone()];
        let wf = wf_run::run(&t).unwrap_or_else(|e| panic!("{mode}: {e}"));
        eprintln!(
            "{mode}: traced {:.2} µs, untraced {:.2}, attributed {:.1}%, backlog waits {:.3}",
            wf.traced_rtt_us,
            wf.untraced_rtt_us,
            100.0 * wf.attributed_share(),
            wf.backlog_waits_per_rt
        );
        for s in &wf.stages {
            eprintln!("  {:<60} {:>6.3}/rt {:>7.3} µs", s.name, s.per_rt, s.us);
        }
        assert_whole(mode.name(), &wf);
        assert!(wf.round_trips > 1000, "{mode}: {} round trips", wf.round_trips);
        assert!(
            wf.attributed_share() > 0.85 && wf.attributed_share() < 1.02,
            "{mode}: {:.3} of the round trip attributed",
            wf.attributed_share()
        );
        // Both threads are followed: their user space, send calls and socket receives (a
        // receiver is woken, or finds the packet when it returns from the call it was in).
        for kind in [StageKind::User, StageKind::Send, StageKind::SocketReceive] {
            let n = per_rt(&wf, kind, None);
            assert!((n - 2.0).abs() < 0.05, "{mode}: {kind:?} {n:.3} per round trip");
        }
        out.push(wf);
    }
    handle.stop();
    let waits: Vec<f64> = out.iter().map(|w| w.backlog_waits_per_rt).collect();
    // host: the wire's veth, once each way.
    assert!((waits[0] - 2.0).abs() < 0.05, "host backlog waits {waits:?}");
    assert!((per_rt(&out[0], StageKind::Device, Some("wire")) - 2.0).abs() < 0.05);
    // ptp: + the container's veth pair, once each way.
    assert!((waits[1] - waits[0] - 2.0).abs() < 0.05, "ptp vs host {waits:?}");
    assert!((per_rt(&out[1], StageKind::Device, Some("veth")) - 2.0).abs() < 0.05);
    // bridge: the same waits as ptp; the bridge device on the way in (br0 transmits to the
    // port) and one more receive pass on the way out (the port hands the frame to br0).
    assert!((waits[2] - waits[0] - 2.0).abs() < 0.05, "bridge vs host {waits:?}");
    assert!((per_rt(&out[2], StageKind::Device, Some("bridge")) - 1.0).abs() < 0.05);
    assert!(
        per_rt(&out[2], StageKind::Processing, None) > per_rt(&out[1], StageKind::Processing, None) + 0.9,
        "bridge has one more processing stage than ptp"
    );
}

#[test]
fn a_missing_tracepoint_is_refused_in_one_line() {
    if !common::need_root("a_missing_tracepoint_is_refused_in_one_line") {
        return;
    }
    let mut tps: Vec<&str> = nslat::bpf::waterfall::PROGRAMS.iter().map(|(_, t)| *t).collect();
    tps[6] = "nslat_no_such_tracepoint";
    let err = nslat::bpf::waterfall::Tracer::load(Some(&tps)).unwrap_err().to_string();
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("nslat_no_such_tracepoint"), "{err}");
    // The real names load.
    nslat::bpf::waterfall::Tracer::load(None).expect("the waterfall's programs load as root");
}
