//! Crash safety of `nslat lab up`: kill -9 (abort) at many steps, SIGTERM mid-way, two `up`s at once.

use crate::common;
use crate::lab_util;

use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_util::{leftovers, LabGuard};

const MODES: &str = "host,bridge,ptp,macvlan,macvlan+veth";

fn nslat(args: &[&str]) -> Command {
    let mut c = Command::new(common::nslat_bin());
    c.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    c
}

#[test]
fn abort_at_twenty_steps_then_down_leaves_nothing() {
    if !common::need_root("lab_crash_steps") {
        return;
    }
    let root = common::RootSnapshot::take();
    // Spread 20 abort points over the whole `up` (it has more than 40 steps for these modes).
    let steps: Vec<u32> = (1..=20).map(|i| i * 2 - 1).collect();
    for n in steps {
        let name = common::unique("crash");
        let _guard = LabGuard(name.clone());
        let out = nslat(&["lab", "up", "--name", &name, "--modes", MODES, "--ipv6"])
            .env("NSLAT_ABORT_AFTER_STEP", n.to_string())
            .output()
            .unwrap();
        assert_eq!(
            out.status.signal(),
            Some(libc::SIGABRT),
            "step {n}: up did not abort: {out:?}"
        );
        assert!(
            !leftovers(&name).is_empty(),
            "step {n}: the aborted up left nothing to clean"
        );
        let down = nslat(&["lab", "down", "--name", &name]).output().unwrap();
        assert!(down.status.success(), "step {n}: {down:?}");
        assert_eq!(leftovers(&name), Vec::<String>::new(), "step {n}");
        // The same name can be built again after the cleanup.
        let again = nslat(&["lab", "up", "--name", &name, "--modes", "host"])
            .output()
            .unwrap();
        assert!(again.status.success(), "step {n}: {again:?}");
        assert!(nslat(&["lab", "down", "--name", &name])
            .output()
            .unwrap()
            .status
            .success());
        assert_eq!(leftovers(&name), Vec::<String>::new(), "step {n}");
    }
    root.assert_unchanged();
}

#[test]
fn sigterm_and_sigint_during_up_clean_up() {
    if !common::need_root("lab_crash_signal") {
        return;
    }
    let root = common::RootSnapshot::take();
    for (sig, step) in [(libc::SIGTERM, 6), (libc::SIGINT, 15)] {
        let name = common::unique("sig");
        let _guard = LabGuard(name.clone());
        let child = nslat(&["lab", "up", "--name", &name, "--modes", MODES])
            .env("NSLAT_PAUSE_AFTER_STEP", step.to_string())
            .spawn()
            .unwrap();
        // Wait until the up is paused mid-way (its node namespace exists).
        let t = Instant::now();
        while !nslat::netns::path_of(&format!("nslat-{name}-node")).exists() {
            assert!(t.elapsed() < Duration::from_secs(5), "up never got going");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
        unsafe { libc::kill(child.id() as i32, sig) };
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("interrupted"), "{err}");
        assert_eq!(leftovers(&name), Vec::<String>::new());
    }
    root.assert_unchanged();
}

#[test]
fn two_ups_of_one_name_one_wins() {
    if !common::need_root("lab_crash_lock") {
        return;
    }
    let root = common::RootSnapshot::take();
    let name = common::unique("race");
    let _guard = LabGuard(name.clone());
    // The first holds the lock (paused), the second must fail at once and change nothing.
    let first = nslat(&["lab", "up", "--name", &name, "--modes", "host,bridge"])
        .env("NSLAT_PAUSE_AFTER_STEP", "3")
        .spawn()
        .unwrap();
    let t = Instant::now();
    while !nslat::netns::path_of(&format!("nslat-{name}-remote")).exists() {
        assert!(t.elapsed() < Duration::from_secs(5));
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = nslat(&["lab", "up", "--name", &name, "--modes", "host"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(2), "{err}");
    assert!(err.contains("busy"), "{err}");
    // `down` refuses too while `up` runs.
    let down = nslat(&["lab", "down", "--name", &name]).output().unwrap();
    assert_eq!(down.status.code(), Some(2));
    unsafe { libc::kill(first.id() as i32, libc::SIGTERM) };
    let out = first.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(leftovers(&name), Vec::<String>::new());
    // Truly concurrent: two at once, exactly one succeeds.
    let a = nslat(&["lab", "up", "--name", &name, "--modes", "host,ptp"])
        .spawn()
        .unwrap();
    let b = nslat(&["lab", "up", "--name", &name, "--modes", "host,ptp"])
        .spawn()
        .unwrap();
    let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
    assert_eq!(
        [a.status.success(), b.status.success()]
            .iter()
            .filter(|s| **s)
            .count(),
        1,
        "{a:?} {b:?}"
    );
    assert!(nslat::lab::Lab::open(&name).is_ok());
    assert!(nslat(&["lab", "down", "--name", &name])
        .output()
        .unwrap()
        .status
        .success());
    assert_eq!(leftovers(&name), Vec::<String>::new());
    root.assert_unchanged();
}

#[test]
fn kill_9_at_random_times_then_down_leaves_nothing() {
    if !common::need_root("lab_crash_kill9") {
        return;
    }
    let root = common::RootSnapshot::take();
    // Real SIGKILLs at pseudo-random moments of `up` (10 trials; NSLAT_SOAK=N for more).
    let trials: u64 = std::env::var("NSLAT_SOAK")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mut seed = std::process::id() as u64 | 1;
    let mut killed_mid_way = 0;
    for t in 0..trials {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 8000);
        let name = common::unique("k9");
        let _guard = LabGuard(name.clone());
        let mut child = nslat(&["lab", "up", "--name", &name, "--modes", MODES])
            .spawn()
            .unwrap();
        std::thread::sleep(delay);
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let status = child.wait().unwrap();
        if status.signal() == Some(libc::SIGKILL) {
            killed_mid_way += 1;
        }
        let down = nslat(&["lab", "down", "--name", &name]).output().unwrap();
        assert!(down.status.success(), "trial {t} ({delay:?}): {down:?}");
        assert_eq!(
            leftovers(&name),
            Vec::<String>::new(),
            "trial {t} ({delay:?})"
        );
    }
    eprintln!("kill -9: {trials} trials, {killed_mid_way} killed before `up` finished");
    root.assert_unchanged();
}
