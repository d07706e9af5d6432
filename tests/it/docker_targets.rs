//! `compare --target` on the real Docker Engine: a fixture namespace plays the second machine
//! (joined to the root namespace by a veth pair with 198.18.x addresses: the test's only change
//! to the root namespace), containers on Docker's default bridge, a user-defined bridge,
//! `--network host`, a Docker macvlan network on the fixture wire, and `--network none` plus
//! `nslat attach --docker`. Their traffic to the fixture goes through Docker's own NAT.

use crate::common;
use crate::lab_util::FixtureWire;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker").args(args).output().expect("docker")
}

fn docker_ok(args: &[&str]) -> String {
    let o = docker(args);
    assert!(
        o.status.success(),
        "docker {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// Everything the test made, removed in reverse on drop (the containers, then the wire).
struct Fixture {
    containers: Vec<String>,
    networks: Vec<String>,
    /// Containers `nslat attach --docker` attached to (detached first: no record is left).
    attached: Vec<String>,
    /// The second machine; dropped after the containers.
    wire: FixtureWire,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &self.attached {
            let _ = common::nslat(&["detach", "--docker", c]);
        }
        for c in &self.containers {
            let _ = docker(&["rm", "-f", c]);
        }
        for n in &self.networks {
            let _ = docker(&["network", "rm", n]);
        }
    }
}

fn docker_ready(test: &str) -> bool {
    if !common::need_root(test) {
        return false;
    }
    let up = Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success());
    common::prerequisite(test, up, "no Docker Engine answers `docker info`")
        && common::prerequisite(
            test,
            common::docker_test_image().is_ok(),
            "cannot build the busybox test image",
        )
}

/// The second machine ([`FixtureWire`]) and nothing else yet. Returns the fixture, the server's
/// address and the third octet of the wire's network.
fn fixture(u: &str) -> (Fixture, String, u32) {
    let wire = FixtureWire::new(u, 100 + std::process::id() % 100);
    let (listen, net) = (wire.listen.clone(), wire.net);
    let fx = Fixture {
        containers: Vec::new(),
        networks: Vec::new(),
        attached: Vec::new(),
        wire,
    };
    (fx, listen, net)
}

#[test]
fn real_docker_containers_are_described_and_measured_beside_the_host_and_the_lab() {
    let test = "real_docker_containers_are_described_and_measured_beside_the_host_and_the_lab";
    if !docker_ready(test) {
        return;
    }
    // Changes the root namespace (a fixture wire, Docker's veths): no other test may snapshot
    // or change it meanwhile. Dropped last, after the snapshot's check.
    let _root_change = common::RootChange::lock();
    let root = common::RootSnapshot::take();
    let u = common::unique("dk");
    let (mut fx, listen, net) = fixture(&u);
    let name = |k: &str| format!("nslat-test-{u}-{k}");
    let usr_net = name("br");
    let mv_net = name("mv");
    docker_ok(&["network", "create", &usr_net]);
    fx.networks.push(usr_net.clone());
    docker_ok(&[
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        &format!("198.18.{net}.0/24"),
        "--ip-range",
        &format!("198.18.{net}.64/26"),
        "-o",
        &format!("parent={}", fx.wire.wire),
        &mv_net,
    ]);
    fx.networks.push(mv_net.clone());
    let img = common::DOCKER_TEST_IMAGE;
    for (k, network) in [
        ("def", "bridge"),
        ("usr", usr_net.as_str()),
        ("hnet", "host"),
        ("mv", mv_net.as_str()),
        ("none", "none"),
    ] {
        fx.containers.push(name(k));
        docker_ok(&["run", "-d", "--name", &name(k), "--network", network, img]);
    }
    // --network none + nslat attach --docker: a macvlan on the fixture wire.
    let attach_addr = format!("198.18.{net}.40/24");
    fx.attached.push(name("none"));
    common::nslat_ok(&[
        "attach",
        "--docker",
        &name("none"),
        "--mode",
        "macvlan",
        "--parent",
        &fx.wire.wire,
        "--addr",
        &attach_addr,
    ]);

    fx.wire.wait_for_server();

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.json");
    let t = |k: &str| format!("{k}=docker:{}", name(k));
    let out = Command::new("flock")
        .args([
            "/tmp/nslat-bench.lock",
            common::nslat_bin(),
            "compare",
            "--remote",
            &listen,
        ])
        .args([
            "--target",
            &t("def"),
            "--target",
            &t("usr"),
            "--target",
            &t("hnet"),
        ])
        .args(["--target", &t("mv"), "--target", &t("none")])
        // NIC-attached modes on the fixture wire in the same rounds: macvlan shares the wire
        // with Docker's macvlan children; ipvlan cannot (and this kernel may lack it).
        .args(["--attach", "macvlan,ipvlan-l2", "--parent", &fx.wire.wire])
        .args(["--addr", &format!("198.18.{net}.50/24")])
        .args(["--reps", "2", "-l", "0.5", "--warmup", "0.2", "--json"])
        .arg(&json)
        .arg("--markdown")
        .arg(dir.path().join("t.md"))
        .arg("--html")
        .arg(dir.path().join("html"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = |k: &str| common::mode_row(&report, k, &stdout);
    let tgt = |k: &str| row(k)["target"].clone();

    // One targets section, the same in the terminal, the Markdown and the HTML page.
    let md = std::fs::read_to_string(dir.path().join("t.md")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("html/index.html")).unwrap();
    let def_line = stdout
        .lines()
        .map(str::trim)
        .find(|l| l.starts_with("def: /proc/"))
        .unwrap_or_else(|| panic!("no path line for def: {stdout}"));
    assert!(def_line.contains("on bridge docker0"), "{def_line}");
    assert!(stdout.contains("Targets (your containers):"), "{stdout}");
    assert!(md.contains("## Targets (your containers)"), "{md}");
    assert!(md.contains(&format!("- {def_line}")), "{md}");
    assert!(html.contains("<h2>Targets (your containers)</h2>"));
    assert!(html.contains(&format!(
        "<li>{}</li>",
        nslat::report::html::escape(def_line)
    )));

    // describe(): the kernel's view of each path.
    let def = tgt("def");
    assert_eq!(def["spec"], format!("docker:{}", name("def")));
    assert!(
        def["resolved_netns"]
            .as_str()
            .unwrap()
            .starts_with("/proc/"),
        "{def}"
    );
    assert_eq!(def["looks_like"], "bridge", "{def}");
    assert_eq!(def["path"]["kind"], "veth", "{def}");
    assert_eq!(def["path"]["bridge"], "docker0", "{def}");
    assert_eq!(def["path"]["nat"]["action"], "MASQUERADE", "{def}");
    let usr = tgt("usr");
    assert_eq!(usr["looks_like"], "bridge", "{usr}");
    assert!(
        usr["path"]["bridge"].as_str().unwrap().starts_with("br-"),
        "{usr}"
    );
    assert_eq!(usr["path"]["nat"]["action"], "MASQUERADE", "{usr}");
    assert_eq!(tgt("hnet")["looks_like"], "host");
    assert_eq!(tgt("hnet")["path"]["host_namespace"], true);
    for k in ["mv", "none"] {
        let m = tgt(k);
        assert_eq!(m["looks_like"], "macvlan", "{k}: {m}");
        assert_eq!(
            m["path"]["host_side"]["name"],
            fx.wire.wire.as_str(),
            "{k}: {m}"
        );
        assert!(m["path"]["nat"].is_null(), "{k}: {m}");
    }
    // Lab figures beside bridge and macvlan.
    assert_eq!(def["lab"]["mode"], "bridge", "{def}");
    assert_eq!(tgt("mv")["lab"]["mode"], "macvlan");

    // The figures: host network = host; the default bridge significantly slower; macvlan not.
    let ratio = |k: &str| {
        let t = tgt(k);
        (
            t["ratio"].as_f64().unwrap(),
            t["ratio_ci95"].as_f64().unwrap(),
        )
    };
    let (h, hci) = ratio("hnet");
    assert!(
        (h - 1.0).abs() <= hci.max(0.03),
        "host network {h} ± {hci}\n{stdout}"
    );
    let (b, bci) = ratio("def");
    assert!(
        b - bci > 1.0,
        "default bridge {b} ± {bci} not slower\n{stdout}"
    );
    let (m, mci) = ratio("mv");
    assert!(m - mci < 1.03, "macvlan {m} ± {mci} slower\n{stdout}");
    for k in ["def", "usr", "hnet", "mv", "none"] {
        assert_eq!(row(k)["available"], true, "{k}");
    }
    // The attached macvlan: measured beside the targets, paired with the host, not slower.
    let amv = row("macvlan");
    assert_eq!(amv["available"], true, "{amv}");
    let (r, rci) = (
        amv["vs_host"]["ratio"].as_f64().unwrap(),
        amv["vs_host"]["ratio_ci95"][0].as_f64().unwrap(),
    );
    assert!(
        rci < 1.03 && r < 1.05,
        "attached macvlan {r} (lower {rci})\n{stdout}"
    );
    let aipv = row("ipvlan-l2");
    assert_eq!(aipv["available"], false, "{aipv}");
    assert!(
        aipv["reason"].as_str().unwrap().contains("attaching it to"),
        "{aipv}"
    );
    assert_eq!(
        stderr.matches("compare: ipvlan-l2: unavailable").count(),
        1,
        "{stderr}"
    );
    assert_eq!(row("lab/macvlan")["available"], true);

    // Nothing left: no lab namespaces of this compare, no temporary namespaces of its modes.
    let pid_labs = nslat::netns::list_with_prefix("nslat-cmp");
    // (nslat-r<pid>-<mode>: another engineer's live compare may have its own.)
    let temps: Vec<String> = nslat::netns::list_with_prefix("nslat-r")
        .into_iter()
        .filter(|n| {
            let pid = n["nslat-r".len()..].split('-').next().unwrap_or("");
            !pid.is_empty()
                && pid.bytes().all(|b| b.is_ascii_digit())
                && !std::path::Path::new(&format!("/proc/{pid}")).exists()
        })
        .collect();
    assert!(temps.is_empty(), "left behind: {temps:?}");
    drop(fx);
    let ps = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=nslat-test-{u}"),
        "-q",
    ]);
    assert!(ps.is_empty(), "containers left: {ps}");
    assert!(
        pid_labs
            .iter()
            .all(|n| !n.contains(&format!("cmp{}", std::process::id()))),
        "{pid_labs:?}"
    );
    root.assert_unchanged();
}

/// A target whose container is killed while the schedule runs: the rest finishes, that target
/// gets one line, the exit status is 3 (partial success), nothing is left behind.
#[test]
fn a_container_killed_mid_run_is_left_out_and_the_rest_finishes() {
    let test = "a_container_killed_mid_run_is_left_out_and_the_rest_finishes";
    if !docker_ready(test) {
        return;
    }
    // Changes the root namespace (a fixture wire, Docker's veths): no other test may snapshot
    // or change it meanwhile. Dropped last, after the snapshot's check.
    let _root_change = common::RootChange::lock();
    let root = common::RootSnapshot::take();
    let u = common::unique("dkk");
    let (mut fx, listen, _) = fixture(&u);
    let name = |k: &str| format!("nslat-test-{u}-{k}");
    for k in ["keep", "gone"] {
        fx.containers.push(name(k));
        docker_ok(&[
            "run",
            "-d",
            "--name",
            &name(k),
            "--network",
            "bridge",
            common::DOCKER_TEST_IMAGE,
        ]);
    }
    fx.wire.wait_for_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("k.json");
    let mut child = Command::new("flock")
        .args([
            "/tmp/nslat-bench.lock",
            common::nslat_bin(),
            "compare",
            "--remote",
            &listen,
            "--no-lab",
        ])
        .args(["--target", &format!("keep=docker:{}", name("keep"))])
        .args(["--target", &format!("gone=docker:{}", name("gone"))])
        .args(["--reps", "6", "-l", "0.5", "--warmup", "0.2", "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Kill the container's process from a thread once the schedule has started (the placement
    // line is printed just before it) and a second has passed: the container crashes, as
    // `docker kill` does it but without waiting for a daemon busy with other tests' containers.
    let stderr = child.stderr.take().unwrap();
    let gone_pid = docker_ok(&["inspect", "-f", "{{.State.Pid}}", &name("gone")]);
    let killer = std::thread::spawn(move || {
        use std::io::BufRead;
        let mut lines = Vec::new();
        let mut killed_at = None;
        for line in std::io::BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if killed_at.is_none() && line.contains("cpu placement") {
                std::thread::sleep(Duration::from_secs(1));
                let k = Command::new("kill")
                    .args(["-9", &gone_pid])
                    .status()
                    .unwrap();
                assert!(k.success(), "kill -9 {gone_pid}");
                killed_at = Some(Instant::now());
            }
            lines.push(line);
        }
        (lines.join("\n"), killed_at)
    });
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let (stderr, killed_at) = killer.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let killed_at = killed_at.unwrap_or_else(|| panic!("never killed: {stderr}"));
    assert_eq!(out.status.code(), Some(3), "{stderr}\n{stdout}");
    // The rest was not held up by the dead path's sockets (the watchdog would take 10 s more).
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "{:?} after the kill\n{stderr}",
        killed_at.elapsed()
    );
    let last = stderr.lines().last().unwrap_or_default();
    assert!(
        last.contains("partial success") && last.contains("gone") && last.contains("exited"),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("gone: left out").count(),
        1,
        "one line for the target: {stderr}"
    );
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let row = |k: &str| common::mode_row(&report, k, &stdout);
    assert_eq!(row("gone")["available"], false, "{}", row("gone"));
    for k in ["host", "keep"] {
        let r = row(k);
        assert_eq!(r["available"], true, "{k}: {r}");
        assert!(r["trans_per_s"]["mean"].as_f64().unwrap() > 1000.0, "{r}");
    }
    assert!(row("keep")["vs_host"]["ratio"].as_f64().unwrap() > 1.0);
    // Docker saw the container exit.
    let deadline = Instant::now() + Duration::from_secs(20);
    while docker_ok(&["inspect", "-f", "{{.State.Running}}", &name("gone")]) != "false" {
        assert!(
            Instant::now() < deadline,
            "docker still runs the killed container"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    drop(fx);
    let ps = docker_ok(&[
        "ps",
        "-a",
        "--filter",
        &format!("name=nslat-test-{u}"),
        "-q",
    ]);
    assert!(ps.is_empty(), "containers left: {ps}");
    root.assert_unchanged();
}

#[test]
fn a_docker_containers_waterfall_is_traced_beside_the_labs_bridge() {
    let test = "a_docker_containers_waterfall_is_traced_beside_the_labs_bridge";
    if !docker_ready(test) {
        return;
    }
    let _root_change = common::RootChange::lock();
    let root = common::RootSnapshot::take();
    let u = common::unique("dkw");
    let (mut fx, listen, _) = fixture(&u);
    let ctr = format!("nslat-test-{u}-def");
    fx.containers.push(ctr.clone());
    docker_ok(&["run", "-d", "--name", &ctr, common::DOCKER_TEST_IMAGE]);
    fx.wire.wait_for_server();
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("w.json");
    let out = Command::new("flock")
        .args(["/tmp/nslat-bench.lock", common::nslat_bin(), "compare"])
        .args([
            "--remote",
            &listen,
            "--target",
            &format!("def=docker:{ctr}"),
        ])
        .args(["--waterfall", "--waterfall-pairs", "4"])
        .args(["--reps", "2", "-l", "0.3", "--warmup", "0.1"])
        .arg("--json")
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let wf = |k: &str| common::mode_row(&report, k, &stdout)["waterfall"].clone();
    let per_rt = |w: &Value, kind: &str, dk: Option<&str>| -> f64 {
        w["stages"]
            .as_array()
            .unwrap_or_else(|| panic!("no stages: {w}"))
            .iter()
            .filter(|s| s["kind"] == kind && dk.is_none_or(|d| s["device_kind"] == d))
            .map(|s| s["per_rt"].as_f64().unwrap())
            .sum()
    };
    // host: the answer's wait on the wire; the bridges (Docker's and the lab's): + the
    // container's veth both ways. Each path leaves this machine once: one remote stage.
    for (k, waits) in [
        ("host", 1.0),
        ("def", 3.0),
        ("lab/host", 1.0),
        ("lab/bridge", 3.0),
    ] {
        let w = wf(k);
        eprintln!(
            "{k}: traced {:.2} µs, untraced {:.2}, overhead {:.2}, attributed {:.1}%, backlog waits {:.2}",
            w["traced_rtt_us"].as_f64().unwrap_or(0.0),
            w["untraced_rtt_us"].as_f64().unwrap_or(0.0),
            w["overhead_us"]["mean"].as_f64().unwrap_or(0.0),
            100.0 * w["attributed_us"].as_f64().unwrap_or(0.0)
                / w["traced_rtt_us"].as_f64().unwrap_or(1.0),
            w["backlog_waits_per_rt"].as_f64().unwrap_or(0.0)
        );
        assert_eq!(w["remote"], true, "{k}: {w}");
        let share = w["attributed_us"].as_f64().unwrap() / w["traced_rtt_us"].as_f64().unwrap();
        assert!(share > 0.9 && share < 1.02, "{k}: {share}\n{w:#}");
        assert!(
            (per_rt(&w, "remote", Some("wire")) - 1.0).abs() < 0.03,
            "{k}: {w:#}"
        );
        let b = per_rt(&w, "backlog_wait", None);
        assert!((b - waits).abs() < 0.05, "{k}: {b} backlog waits\n{w:#}");
        assert!(w["overhead_us"]["mean"].is_f64(), "{k}: {w}");
    }
    // docker0 transmits to the container's port on the way in, once; as the lab's br0.
    assert!((per_rt(&wf("def"), "device", Some("bridge")) - 1.0).abs() < 0.03);
    assert!((per_rt(&wf("lab/bridge"), "device", Some("bridge")) - 1.0).abs() < 0.03);
    let def = wf("def");
    assert_eq!(def["vs_lab"]["against"], "lab/bridge", "{def}");
    assert!(def["vs_host"]["groups"].is_array(), "{def}");
    assert!(wf("lab/bridge")["vs_host"]["groups"].is_array());
    assert!(stdout.contains("vs lab/bridge: def"), "{stdout}");
    for l in stdout.lines().filter(|l| l.contains("µs traced (stages")) {
        eprintln!("{}", l.trim());
    }
    for l in stdout
        .lines()
        .filter(|l| l.contains("│ def ") || l.contains("│ lab/bridge "))
    {
        eprintln!("{}", l.trim());
    }
    drop(fx);
    root.assert_unchanged();
}
