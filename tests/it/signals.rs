//! Crash safety of `nslat compare`: SIGINT and SIGTERM in the middle of a run stop it within a
//! few seconds with one clear error line and remove its lab; `kill -9` mid-run followed by
//! `nslat lab down` leaves nothing. (Signals and kill -9 during `lab up` are in lab_crash.rs.)

use crate::common;
use crate::lab_util;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lab_util::{leftovers, LabGuard};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// The compare runs pin to the same CPU: one at a time in this file.
static SERIAL: Mutex<()> = Mutex::new(());

/// How long compare may take to stop after a signal: the current run (1 s + 0.3 s warm-up) ends,
/// then the lab is removed. Generous: the machine is shared with other builds.
const STOP_LIMIT: Duration = Duration::from_secs(15);

/// A running `nslat compare` and its stderr lines as they come.
struct Compare {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Compare {
    fn start(lab: &str) -> Compare {
        Compare::start_with(lab, &[], &[])
    }

    /// `env`: test hooks for the lab build (NSLAT_PAUSE_AFTER_STEP); `extra`: more flags.
    fn start_with(lab: &str, env: &[(&str, &str)], extra: &[&str]) -> Compare {
        let mut args = vec![
            "compare",
            "--lab",
            lab,
            "--modes",
            "host,bridge,ptp",
            "--no-checks",
        ];
        for (flag, value) in [("--reps", "3"), ("-l", "1")] {
            if !extra.contains(&flag) {
                args.extend([flag, value]);
            }
        }
        args.extend_from_slice(extra);
        let mut child = Command::new(common::nslat_bin())
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn nslat compare");
        let stderr = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Compare {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Waits until the lab's node namespace exists (the build is under way).
    fn wait_for_node(&mut self, lab: &str) {
        let t = Instant::now();
        let node = nslat::netns::path_of(&format!("nslat-{lab}-node"));
        while !node.exists() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("compare ended before building: {status:?}");
            }
            assert!(t.elapsed() < Duration::from_secs(30), "no lab build seen");
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(50));
    }

    /// Waits for a stderr line containing `needle`, then lets `after` pass.
    fn wait_for_line(&mut self, needle: &str, after: Duration) {
        let t = Instant::now();
        while !self.seen.iter().any(|l| l.contains(needle)) {
            match self.lines.recv_timeout(Duration::from_millis(50)) {
                Ok(l) => self.seen.push(l),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    panic!("compare ended before '{needle}': {:?}", self.seen)
                }
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "never saw '{needle}': {:?}",
                self.seen
            );
        }
        std::thread::sleep(after);
    }

    /// Waits until the lab's namespaces exist and the runs started (the plan line is printed
    /// right before the first run), then lets `into_run` of the run pass.
    fn wait_until_running(&mut self, lab: &str, into_run: Duration) {
        let t = Instant::now();
        let node = nslat::netns::path_of(&format!("nslat-{lab}-node"));
        loop {
            while let Ok(l) = self.lines.try_recv() {
                self.seen.push(l);
            }
            let planned = self.seen.iter().any(|l| l.contains("runs of"));
            if planned && node.exists() {
                break;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("compare ended before running: {status:?} {:?}", self.seen);
            }
            assert!(
                t.elapsed() < Duration::from_secs(30),
                "compare never started running: {:?}",
                self.seen
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(into_run);
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), sig).expect("kill");
    }

    /// Waits for the exit (bounded); returns the status, the time it took, stdout, all of stderr.
    fn finish(mut self) -> (std::process::ExitStatus, Duration, String, Vec<String>) {
        let t = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            if t.elapsed() > STOP_LIMIT {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "compare did not stop within {STOP_LIMIT:?}; stderr: {:?}",
                    self.seen
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let took = t.elapsed();
        // The reader thread ends at EOF.
        while let Ok(l) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(l);
        }
        let mut out = String::new();
        use std::io::Read;
        self.child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut out)
            .unwrap();
        (status, took, out, self.seen)
    }
}

/// Everything a lab could leave: namespaces, their mounts, the state file, the lock file.
fn everything_left(lab: &str) -> Vec<String> {
    let mut left = leftovers(lab);
    if let Ok(entries) = std::fs::read_dir("/run/nslat/labs") {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with(&format!("{lab}.")) {
                left.push(e.path().display().to_string());
            }
        }
    }
    left
}

fn signal_mid_run(sig: Signal) {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::RootSnapshot::take();
    let lab = common::unique("sigc");
    let _guard = LabGuard(lab.clone());
    let mut cmp = Compare::start(&lab);
    cmp.wait_until_running(&lab, Duration::from_millis(400));
    assert!(
        !everything_left(&lab).is_empty(),
        "the lab was not there while compare ran"
    );
    cmp.signal(sig);
    let (status, took, stdout, stderr) = cmp.finish();
    eprintln!("{sig}: compare stopped {took:?} after the signal");
    assert_eq!(status.code(), Some(2), "{sig}: {status:?} {stderr:?}");
    let errors: Vec<&String> = stderr.iter().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{sig}: one error line: {stderr:?}");
    assert_eq!(
        stderr.last(),
        Some(errors[0]),
        "{sig}: the error is the last line: {stderr:?}"
    );
    assert!(
        errors[0].contains("interrupted"),
        "{sig}: the line says what happened: {stderr:?}"
    );
    assert!(
        stdout.is_empty(),
        "{sig}: no report after a signal: {stdout}"
    );
    assert_eq!(everything_left(&lab), Vec::<String>::new(), "{sig}");
    root.assert_unchanged();
}

#[test]
fn sigint_during_compare_removes_the_lab() {
    if !common::need_root("compare_sigint") {
        return;
    }
    signal_mid_run(Signal::SIGINT);
}

#[test]
fn sigterm_during_compare_removes_the_lab() {
    if !common::need_root("compare_sigterm") {
        return;
    }
    signal_mid_run(Signal::SIGTERM);
}

/// A closed terminal (SIGHUP) must not leave a lab behind either.
#[test]
fn sighup_during_compare_removes_the_lab() {
    if !common::need_root("compare_sighup") {
        return;
    }
    signal_mid_run(Signal::SIGHUP);
}

#[test]
fn kill_9_during_compare_then_lab_down_leaves_nothing() {
    if !common::need_root("compare_kill9") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::RootSnapshot::take();
    // Mid-run at two moments: just after the runs start, and inside a later run.
    for into_run in [Duration::from_millis(100), Duration::from_millis(1700)] {
        let lab = common::unique("k9c");
        let _guard = LabGuard(lab.clone());
        let mut cmp = Compare::start(&lab);
        cmp.wait_until_running(&lab, into_run);
        cmp.signal(Signal::SIGKILL);
        let (status, _, _, stderr) = cmp.finish();
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{stderr:?}");
        assert!(
            !everything_left(&lab).is_empty(),
            "kill -9 left nothing to clean: not killed mid-run ({stderr:?})"
        );
        let down = Command::new(common::nslat_bin())
            .args(["lab", "down", "--name", &lab])
            .output()
            .unwrap();
        assert!(down.status.success(), "{down:?}");
        assert_eq!(everything_left(&lab), Vec::<String>::new(), "{into_run:?}");
        // The name is free again: the lock of the killed process went with it.
        let again = Command::new(common::nslat_bin())
            .args(["lab", "up", "--name", &lab, "--modes", "host"])
            .output()
            .unwrap();
        assert!(again.status.success(), "{again:?}");
        let down = Command::new(common::nslat_bin())
            .args(["lab", "down", "--name", &lab])
            .output()
            .unwrap();
        assert!(down.status.success(), "{down:?}");
        assert_eq!(everything_left(&lab), Vec::<String>::new());
    }
    root.assert_unchanged();
}

/// Checks the exit after a signal: status 2, exactly one `Error:` line, the last one, saying
/// "interrupted"; returns that line.
fn one_interrupted_line(what: &str, status: std::process::ExitStatus, stderr: &[String]) -> String {
    assert_eq!(status.code(), Some(2), "{what}: {status:?} {stderr:?}");
    let errors: Vec<&String> = stderr.iter().filter(|l| l.starts_with("Error:")).collect();
    assert_eq!(errors.len(), 1, "{what}: {stderr:?}");
    assert_eq!(stderr.last(), Some(errors[0]), "{what}: {stderr:?}");
    assert!(errors[0].contains("interrupted"), "{what}: {stderr:?}");
    errors[0].clone()
}

#[test]
fn sigterm_while_compare_builds_its_lab_removes_it() {
    if !common::need_root("compare_sigterm_build") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::RootSnapshot::take();
    let lab = common::unique("sigb");
    let _guard = LabGuard(lab.clone());
    // The build pauses after step 6 (node and remote exist, the wire does not).
    let mut cmp = Compare::start_with(&lab, &[("NSLAT_PAUSE_AFTER_STEP", "6")], &[]);
    cmp.wait_for_node(&lab);
    cmp.signal(Signal::SIGTERM);
    let (status, took, stdout, stderr) = cmp.finish();
    eprintln!("SIGTERM during the build: stopped {took:?} after the signal");
    one_interrupted_line("build", status, &stderr);
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(everything_left(&lab), Vec::<String>::new());
    root.assert_unchanged();
}

/// The lab status a kept lab must keep (namespaces, addresses, NAT level).
fn status_json(lab: &str) -> String {
    let out = Command::new(common::nslat_bin())
        .args(["lab", "status", "--name", lab, "--json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sigint_during_compare_on_an_existing_lab_keeps_it() {
    if !common::need_root("compare_sigint_kept") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::RootSnapshot::take();
    let lab = common::unique("sigk");
    let _guard = LabGuard(lab.clone());
    let up = Command::new(common::nslat_bin())
        .args(["lab", "up", "--name", &lab, "--modes", "host,bridge,ptp"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");
    let before = (status_json(&lab), everything_left(&lab));
    let mut cmp = Compare::start(&lab);
    cmp.wait_until_running(&lab, Duration::from_millis(400));
    cmp.signal(Signal::SIGINT);
    let (status, _, stdout, stderr) = cmp.finish();
    one_interrupted_line("kept lab", status, &stderr);
    assert!(stdout.is_empty(), "{stdout}");
    // The lab compare did not build is left exactly as it was.
    assert_eq!((status_json(&lab), everything_left(&lab)), before);
    let down = Command::new(common::nslat_bin())
        .args(["lab", "down", "--name", &lab])
        .output()
        .unwrap();
    assert!(down.status.success(), "{down:?}");
    assert_eq!(everything_left(&lab), Vec::<String>::new());
    root.assert_unchanged();
}

/// The node's nftables ruleset (the NAT level lives there).
fn node_ruleset(lab: &str) -> String {
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            &format!("nslat-{lab}-node"),
            "nft",
            "list",
            "ruleset",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn sigint_during_explain_restores_the_nat_of_a_kept_lab() {
    if !common::need_root("compare_sigint_explain") || !common::need_tool("explain", "nft") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::RootSnapshot::take();
    let lab = common::unique("sige");
    let _guard = LabGuard(lab.clone());
    let up = Command::new(common::nslat_bin())
        .args(["lab", "up", "--name", &lab, "--modes", "host,bridge,ptp"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");
    let before = (status_json(&lab), node_ruleset(&lab), everything_left(&lab));
    // --explain builds its variants (one node per NAT level) beside the lab and measures them
    // all at once: interrupt that measurement.
    let mut cmp = Compare::start_with(&lab, &[], &["--explain", "--reps", "1", "-l", "0.5"]);
    cmp.wait_for_line("variants built side by side", Duration::from_millis(300));
    let during = nslat::netns::list_with_prefix(&format!("nslat-{lab}-x."));
    cmp.signal(Signal::SIGINT);
    let (status, took, stdout, stderr) = cmp.finish();
    eprintln!("SIGINT during --explain: stopped {took:?} after the signal");
    one_interrupted_line("explain", status, &stderr);
    assert!(
        during.len() >= 6,
        "not interrupted while the variants existed: {during:?}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(
        (status_json(&lab), node_ruleset(&lab), everything_left(&lab)),
        before,
        "the kept lab's NAT was not restored"
    );
    root.assert_unchanged();
}

/// The wording of the interrupted line (compare's; failures here are for the lead): it must
/// not repeat itself, and must not claim a kept lab was removed.
#[test]
fn compare_signal_messages() {
    if !common::need_root("compare_signal_messages") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let mut problems = Vec::new();
    // During the build.
    let lab = common::unique("sigm");
    let _guard = LabGuard(lab.clone());
    let mut cmp = Compare::start_with(&lab, &[("NSLAT_PAUSE_AFTER_STEP", "6")], &[]);
    cmp.wait_for_node(&lab);
    cmp.signal(Signal::SIGTERM);
    let (status, _, _, stderr) = cmp.finish();
    let line = one_interrupted_line("build", status, &stderr);
    let parts: Vec<&str> = line.split(": ").collect();
    if parts.windows(2).any(|w| w[0] == w[1]) {
        problems.push(format!("a segment is repeated: {line:?}"));
    }
    // On a lab that existed before (it is kept, so it was not removed).
    let kept = common::unique("sigm");
    let _guard2 = LabGuard(kept.clone());
    let up = Command::new(common::nslat_bin())
        .args(["lab", "up", "--name", &kept, "--modes", "host,bridge,ptp"])
        .output()
        .unwrap();
    assert!(up.status.success(), "{up:?}");
    let mut cmp = Compare::start(&kept);
    cmp.wait_until_running(&kept, Duration::from_millis(200));
    cmp.signal(Signal::SIGINT);
    let (status, _, _, stderr) = cmp.finish();
    let line = one_interrupted_line("kept lab", status, &stderr);
    if line.contains("removed") {
        problems.push(format!("a kept lab is said to be removed: {line:?}"));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn sigint_during_check_removes_its_lab() {
    if !common::need_root("check_sigint") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let root = common::RootSnapshot::take();
    let lab = common::unique("sigchk");
    let _guard = LabGuard(lab.clone());
    let mut child = Command::new(common::nslat_bin())
        .args(["check", "--lab", &lab, "--modes", "host,bridge,ptp,macvlan"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The lab is built (its last namespace exists): the checks are running.
    let last = nslat::netns::path_of(&format!("nslat-{lab}-macvlan"));
    let t = Instant::now();
    while !last.exists() {
        assert!(child.try_wait().unwrap().is_none(), "check ended early");
        assert!(t.elapsed() < Duration::from_secs(30), "check never built");
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    let t = Instant::now();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "SIGINT during check: stopped {:?} after the signal",
        t.elapsed()
    );
    let stderr: Vec<String> = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(String::from)
        .collect();
    let line = one_interrupted_line("check", out.status, &stderr);
    assert!(line.contains("the lab was removed"), "{line}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_eq!(everything_left(&lab), Vec::<String>::new());
    root.assert_unchanged();
}
