//! `nslat check` on real labs: each check passes where the mode keeps the feature and fails
//! where it loses it (a check that cannot fail would be a defect), and the fixes repair them.

use crate::common;

use nslat::check::{self, CheckMatrix, ModeChecks};
use nslat::lab::{self, Lab, LabSpec, Mode};

/// Removes the lab even when an assertion fails.
struct LabGuard(String);

impl Drop for LabGuard {
    fn drop(&mut self) {
        let _ = lab::down(&self.0);
    }
}

fn build(tag: &str, modes: &[Mode], host_shim: bool) -> (Lab, LabGuard) {
    let name = common::unique(tag);
    let mut spec = LabSpec::new(&name);
    spec.modes = modes.to_vec();
    spec.host_shim = host_shim;
    let guard = LabGuard(name);
    let lab = Lab::up(&spec).expect("lab up");
    (lab, guard)
}

/// Records what the checks tell a progress bar.
#[derive(Default)]
struct Seen {
    planned: std::cell::RefCell<Vec<usize>>,
    started: std::cell::RefCell<Vec<String>>,
    finished: std::cell::Cell<usize>,
}

impl check::CheckProgress for Seen {
    fn planned(&self, checks: usize) {
        self.planned.borrow_mut().push(checks);
    }
    fn started(&self, mode: &str, check: &str) {
        assert_eq!(
            self.started.borrow().len(),
            self.finished.get(),
            "a check began before the last one ended"
        );
        self.started.borrow_mut().push(format!("{mode}: {check}"));
    }
    fn finished(&self) {
        self.finished.set(self.finished.get() + 1);
    }
}

impl Seen {
    /// Planned once, as many as ran, each one named and ended.
    fn assert_counted(&self, expected: usize) {
        assert_eq!(*self.planned.borrow(), [expected], "planned once");
        let started = self.started.borrow();
        assert_eq!(started.len(), expected, "{started:?}");
        assert_eq!(self.finished.get(), expected);
        assert!(
            started.contains(&"bridge: Service".to_string()),
            "{started:?}"
        );
        assert!(started.contains(&"host: MACs on the wire".to_string()));
    }
}

fn row(m: &CheckMatrix, mode: Mode) -> &ModeChecks {
    m.modes.iter().find(|r| r.mode == mode.name()).expect("row")
}

#[test]
fn veth_modes_keep_features_and_macvlan_loses_them() {
    if !common::need_root("veth_modes_keep_features_and_macvlan_loses_them") {
        return;
    }
    let root = common::RootSnapshot::take();
    let modes = [Mode::Host, Mode::Bridge, Mode::Ptp, Mode::Macvlan];
    let (lab, guard) = build("chk", &modes, false);
    let seen = Seen::default();
    let m = check::run_with(&lab, &modes, &seen).expect("checks run");
    seen.assert_counted(modes.iter().map(|&m| check::planned_checks(m)).sum());

    let host = row(&m, Mode::Host);
    assert_eq!(
        host.service,
        Some(true),
        "the node reaches its own Service: {host:?}"
    );
    assert_eq!(host.container_to_remote, Some(true));
    assert_eq!(
        host.node_to_container, None,
        "host is the node: not applicable"
    );
    assert_eq!(host.macs, Some(1));

    for mode in [Mode::Bridge, Mode::Ptp] {
        let r = row(&m, mode);
        assert_eq!(r.service, Some(true), "{mode} passes service: {r:?}");
        assert_eq!(r.node_to_container, Some(true), "{mode}: {r:?}");
        assert_eq!(r.container_to_node, Some(true), "{mode}: {r:?}");
        assert_eq!(r.container_to_remote, Some(true), "{mode}: {r:?}");
        assert_eq!(r.policy, Some(true), "{mode}: node policy enforced: {r:?}");
        assert_eq!(r.macs, Some(1), "{mode} hides behind the node's MAC: {r:?}");
    }

    let mv = row(&m, Mode::Macvlan);
    assert_eq!(
        mv.service,
        Some(false),
        "macvlan bypasses the node's DNAT: {mv:?}"
    );
    assert_eq!(mv.node_to_container, Some(false), "{mv:?}");
    assert_eq!(mv.container_to_node, Some(false), "{mv:?}");
    assert_eq!(mv.container_to_remote, Some(true), "{mv:?}");
    assert_eq!(
        mv.policy,
        Some(false),
        "macvlan bypasses node policy: {mv:?}"
    );
    assert_eq!(mv.macs, Some(2), "macvlan has a MAC of its own: {mv:?}");
    for failed in ["service", "node_to_container", "policy"] {
        assert!(mv.why.contains_key(failed), "no why for {failed}: {mv:?}");
    }
    assert!(
        mv.why["service"].contains("netfilter"),
        "{}",
        mv.why["service"]
    );

    // The check's rules are gone from the node afterwards.
    let rules = lab.firewall().ruleset_json().expect("ruleset");
    assert!(
        !rules.contains("nslat-svc") && !rules.contains("nslat-policy"),
        "{rules}"
    );
    drop(guard);
    root.assert_unchanged();
}

#[test]
fn host_shim_and_hybrid_repair_what_macvlan_loses() {
    if !common::need_root("host_shim_and_hybrid_repair_what_macvlan_loses") {
        return;
    }
    let root = common::RootSnapshot::take();
    let modes = [Mode::Host, Mode::Macvlan, Mode::MacvlanVeth];
    let (lab, _guard) = build("fix", &modes, true);
    let m = check::run(&lab, &modes).expect("checks run");
    assert!(m.host_shim);

    let mv = row(&m, Mode::Macvlan);
    assert_eq!(
        mv.node_to_container,
        Some(true),
        "the shim gives node -> container: {mv:?}"
    );
    assert_eq!(mv.container_to_node, Some(true), "{mv:?}");
    assert_eq!(
        mv.service,
        Some(false),
        "the shim does not bring Services back: {mv:?}"
    );

    let hy = row(&m, Mode::MacvlanVeth);
    assert_eq!(
        hy.service,
        Some(true),
        "the hybrid's veth carries Service traffic: {hy:?}"
    );
    assert_eq!(
        hy.policy_service,
        Some(true),
        "policy applies to Service traffic: {hy:?}"
    );
    assert_eq!(hy.container_to_remote, Some(true), "{hy:?}");
    assert_eq!(
        hy.policy,
        Some(false),
        "the data path still bypasses the node: {hy:?}"
    );
    root.assert_unchanged();
}

#[test]
fn unavailable_and_missing_modes_are_rows_with_reasons() {
    if !common::need_root("unavailable_and_missing_modes_are_rows_with_reasons") {
        return;
    }
    let (lab, _guard) = build("una", &[Mode::Host], false);
    let m = check::run(&lab, &[Mode::Host, Mode::Bridge]).expect("checks run");
    let b = row(&m, Mode::Bridge);
    assert!(!b.available);
    assert!(
        b.reason
            .as_deref()
            .unwrap_or("")
            .contains("not part of lab"),
        "{b:?}"
    );
}
