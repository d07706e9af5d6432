//! Helpers shared by the integration tests: privilege and tool checks that skip with a printed
//! reason (but fail under CI, where nothing may be skipped), unique names, the root-namespace
//! safety snapshot and the root test lock that keeps snapshots and root fixtures apart.
#![allow(dead_code)]

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// Whether this run is CI's (CI=true): there, missing prerequisites are failures, not skips.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Returns true when `test` can run; otherwise prints why it is skipped (outside CI) or panics (in CI).
pub fn prerequisite(test: &str, ok: bool, reason: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("{test}: cannot run under CI: {reason}");
    }
    eprintln!("SKIPPED {test}: {reason}");
    false
}

/// Root is needed for namespaces, links and rules.
pub fn need_root(test: &str) -> bool {
    prerequisite(
        test,
        nix::unistd::geteuid().is_root(),
        "needs root (run the tests with sudo)",
    )
}

/// An external program must be on PATH.
pub fn need_tool(test: &str, tool: &str) -> bool {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    prerequisite(
        test,
        found,
        &format!("`{tool}` is not installed (scripts/install-deps installs it)"),
    )
}

/// A short name unique to this test process and call, e.g. `t1234a3`: lab names, namespace
/// prefixes. Tests running in parallel never collide.
pub fn unique(tag: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("t{}{}{}", std::process::id() % 100_000, tag, n)
}

/// The path of the built `nslat` binary.
pub fn nslat_bin() -> &'static str {
    env!("CARGO_BIN_EXE_nslat")
}

/// Runs the built `nslat` with `args` and returns what it did.
pub fn nslat(args: &[&str]) -> std::process::Output {
    Command::new(nslat_bin())
        .args(args)
        .output()
        .expect("running nslat")
}

/// Runs the built `nslat` with `args`; panics with its stderr unless it succeeds.
pub fn nslat_ok(args: &[&str]) -> std::process::Output {
    let out = nslat(args);
    assert!(
        out.status.success(),
        "nslat {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The root-namespace test lock: a file lock every test that looks at or changes the root
/// namespace holds, so that no runner order or parallelism (nextest's processes, `cargo test`'s
/// threads, two worktrees' suites) lets one test's fixture show in another's snapshot.
/// [`RootSnapshot`] holds it shared from `take` to its drop; [`RootChange`] holds it exclusive.
pub const ROOT_LOCK_PATH: &str = "/run/nslat-tests-root.lock";

thread_local! {
    /// Whether this thread holds the exclusive lock (its snapshots are taken under it), and how
    /// many shared locks it holds (it must not then ask for the exclusive one: that would wait on
    /// itself).
    static HOLDS_EXCLUSIVE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    static SHARED_HELD: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// An flock on [`ROOT_LOCK_PATH`] (a descriptor of its own: flock locks of two descriptors
/// conflict even within one process); released when dropped.
struct FileLock(std::fs::File);

impl FileLock {
    fn acquire(exclusive: bool) -> FileLock {
        use std::os::fd::AsRawFd;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(ROOT_LOCK_PATH)
            .unwrap_or_else(|e| panic!("opening the root test lock {ROOT_LOCK_PATH}: {e}"));
        let op = if exclusive {
            libc::LOCK_EX
        } else {
            libc::LOCK_SH
        };
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(file.as_raw_fd(), op | libc::LOCK_NB) } != 0 {
            eprintln!(
                "waiting for the root test lock {ROOT_LOCK_PATH} ({}): another test {}",
                if exclusive { "exclusive" } else { "shared" },
                if exclusive {
                    "is snapshotting the root namespace"
                } else {
                    "is changing the root namespace"
                }
            );
            // SAFETY: as above, blocking this time.
            let rc = unsafe { libc::flock(file.as_raw_fd(), op) };
            assert_eq!(
                rc,
                0,
                "flock {ROOT_LOCK_PATH}: {}",
                std::io::Error::last_os_error()
            );
        }
        FileLock(file)
    }
}

/// Held by a test that changes the root namespace (a fixture wire in 198.18.0.0/15, Docker
/// containers whose veths join docker0): while it lives, no other test snapshots or changes the
/// root namespace. Take it first, before the test's own [`RootSnapshot`] (which is then taken
/// under it) and before building the fixture, and keep it until after `assert_unchanged`:
/// `let _root = common::RootChange::lock();` as the test's first binding after the skips.
pub struct RootChange {
    _lock: FileLock,
}

impl RootChange {
    pub fn lock() -> RootChange {
        assert!(
            !HOLDS_EXCLUSIVE.get(),
            "this thread already holds the root change lock"
        );
        assert_eq!(
            SHARED_HELD.get(),
            0,
            "take RootChange::lock() before any RootSnapshot: the snapshot's shared lock would \
             make it wait on itself"
        );
        let lock = FileLock::acquire(true);
        HOLDS_EXCLUSIVE.set(true);
        RootChange { _lock: lock }
    }
}

impl Drop for RootChange {
    fn drop(&mut self) {
        HOLDS_EXCLUSIVE.set(false);
    }
}

/// A shared hold on the root lock, counted per thread.
struct SharedHold(Option<FileLock>);

impl SharedHold {
    fn acquire() -> SharedHold {
        if HOLDS_EXCLUSIVE.get() {
            // Under this thread's own exclusive lock: nobody else changes the root namespace.
            return SharedHold(None);
        }
        let lock = FileLock::acquire(false);
        SHARED_HELD.set(SHARED_HELD.get() + 1);
        SharedHold(Some(lock))
    }
}

impl Drop for SharedHold {
    fn drop(&mut self) {
        if self.0.take().is_some() {
            SHARED_HELD.set(SHARED_HELD.get() - 1);
        }
    }
}

/// The programs a snapshot runs (tests of the snapshot itself replace them with failing ones).
pub struct Tools<'a> {
    pub ip: &'a str,
    pub tc: &'a str,
    pub nft: &'a str,
}

pub const SYSTEM_TOOLS: Tools<'static> = Tools {
    ip: "ip",
    tc: "tc",
    nft: "nft",
};

/// `program args` must run and succeed: a snapshot made of error messages would compare equal
/// to itself and prove nothing.
fn capture(program: &str, args: &[&str]) -> String {
    let cmd = format!("{program} {}", args.join(" "));
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("root snapshot: cannot run `{cmd}`: {e}"));
    assert!(
        out.status.success(),
        "root snapshot: `{cmd}` failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// An `nft list ruleset` text with each chain's rules sorted and trimmed: what the snapshot
/// compares is which rules each chain holds, not their order. Docker and CNI move their own jumps
/// to the top of `FORWARD` when a container starts (Docker re-inserts `DOCKER-USER` and
/// `DOCKER-ISOLATION-STAGE-1` above a `CNI-FORWARD` jump Podman left there), which is their doing,
/// not nslat's; a rule added or removed still shows.
pub fn ruleset_as_sets(ruleset: &str) -> String {
    let mut out = String::new();
    let mut chain: Option<Vec<&str>> = None;
    for line in ruleset.lines().map(str::trim) {
        match chain.as_mut() {
            Some(rules) if line == "}" => {
                rules.sort_unstable();
                for r in rules.iter() {
                    out.push_str(r);
                    out.push('\n');
                }
                out.push_str("}\n");
                chain = None;
            }
            Some(rules) => {
                if !line.is_empty() {
                    rules.push(line);
                }
            }
            None => {
                out.push_str(line);
                out.push('\n');
                if line.starts_with("chain ") && line.ends_with('{') {
                    chain = Some(Vec::new());
                }
            }
        }
    }
    out
}

/// What nslat must never change in the root namespace: links, addresses, routes, policy routing
/// rules, tc qdiscs and filters, the sysctls it could touch, and the nftables ruleset.
#[derive(Debug, PartialEq, Eq)]
pub struct RootState {
    pub links: String,
    pub addresses: String,
    pub routes: String,
    pub rules: String,
    pub tc: String,
    pub sysctls: String,
    pub ruleset: String,
}

/// A link's name in an `ip -o link` line (`3: veth1a2b@if4: <...`), without the `@peer`.
fn link_name(line: &str) -> Option<&str> {
    let name = line.split(": ").nth(1)?;
    Some(name.split('@').next().unwrap_or(name))
}

/// Docker's own container ports: veths enslaved to docker0 or a user-defined `br-*` bridge.
/// They come and go with any container on the machine (another suite's, a user's), so they and
/// their addresses, routes and qdiscs are left out; nslat never makes such a link.
pub fn docker_ports(raw_links: &str) -> Vec<String> {
    raw_links
        .lines()
        .filter(|l| l.contains(" master docker0 ") || l.contains(" master br-"))
        .filter_map(link_name)
        .filter(|n| n.starts_with("veth"))
        .map(str::to_string)
        .collect()
}

/// `text` without the lines about one of `ports` (`dev NAME`, or the link line itself).
pub fn without_ports(text: &str, ports: &[String]) -> String {
    text.lines()
        .filter(|l| {
            !ports.iter().any(|p| {
                let toks: Vec<&str> = l.split_whitespace().collect();
                toks.windows(2).any(|w| w[0] == "dev" && w[1] == p)
                    || link_name(l) == Some(p.as_str())
                    || toks.get(1).map(|t| t.trim_end_matches(':')) == Some(p.as_str())
            })
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `text` without a Docker or Podman bridge's IPv6 link-local address and its fe80::/64 and
/// ff00::/8 routes: the kernel gives docker0 (or a `br-*` bridge; Podman's `cni-podman0` or
/// `podman0`) these when its first container's veth brings it up, after duplicate address
/// detection (the address is `tentative` until then, and its local route appears later), and
/// they stay; the container engine's doing, not nslat's.
pub fn without_bridge_link_local(text: &str) -> String {
    text.lines()
        .filter(|l| {
            let toks: Vec<&str> = l.split_whitespace().collect();
            let bridge = toks.iter().any(|t| {
                let t = t.trim_end_matches(':');
                t == "docker0"
                    || t.starts_with("br-")
                    || t.starts_with("cni-podman")
                    || (t.starts_with("podman") && t[6..].parse::<u32>().is_ok())
            });
            !(bridge && (l.contains("fe80:") || l.contains("ff00::/8")))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `ip -d link` output without the values that change while nothing is configured: running
/// timers (a bridge's `gc_timer` counts down), operational state, a bridge's offload limits.
fn without_timers(links: &str) -> String {
    links
        .lines()
        .map(|line| {
            let mut out = Vec::new();
            let mut skip = false;
            for tok in line.split_whitespace() {
                if !std::mem::take(&mut skip) {
                    out.push(tok);
                }
                // Operational state, not configuration: docker0 loses and regains its carrier
                // as Docker's containers come and go, and a bridge's GSO/TSO/GRO limits are the
                // least of its ports' (they change when a container's veth leaves docker0).
                skip = tok.ends_with("_timer")
                    || tok == "state"
                    || ((tok.ends_with("_max_size") || tok.ends_with("_max_segs"))
                        && ["gso", "tso", "gro"].iter().any(|k| tok.starts_with(k)));
            }
            let flags = out.iter().position(|t| t.starts_with('<'));
            if let Some(i) = flags {
                let kept: Vec<&str> = out[i]
                    .trim_matches(|c| c == '<' || c == '>')
                    .split(',')
                    .filter(|f| *f != "NO-CARRIER" && *f != "LOWER_UP")
                    .collect();
                let f = format!("<{}>", kept.join(","));
                return out[..i].join(" ") + " " + &f + " " + &out[i + 1..].join(" ") + "\n";
            }
            out.join(" ") + "\n"
        })
        .collect()
}

impl RootState {
    /// Reads the state of the network namespace the calling thread is in (the root namespace
    /// for a test's own thread); panics when one of `tools` fails.
    pub fn read(tools: &Tools) -> RootState {
        let mut sysctls = String::new();
        for dir in [
            "/proc/sys/net/ipv4",
            "/proc/sys/net/ipv6/conf/all",
            "/proc/sys/net/ipv4/conf/all",
        ] {
            let Ok(entries) = std::fs::read_dir(dir) else {
                continue;
            };
            let mut files: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.is_file())
                .collect();
            files.sort();
            for f in files {
                if let Ok(v) = std::fs::read_to_string(&f) {
                    sysctls.push_str(&format!("{}={}", f.display(), v));
                }
            }
        }
        let raw_links = capture(tools.ip, &["-o", "-d", "link", "show"]);
        let ports = docker_ports(&raw_links);
        // tc: every qdisc, and the filters of each link's egress root and clsact/ingress hooks
        // (`refcnt` counts users of a qdisc, not configuration).
        let mut tc = capture(tools.tc, &["qdisc", "show"]);
        for name in raw_links.lines().filter_map(link_name) {
            if ports.iter().any(|p| p == name) {
                continue;
            }
            for hook in [&[][..], &["ingress"][..], &["egress"][..]] {
                let filters = capture(
                    tools.tc,
                    &[&["filter", "show", "dev", name][..], hook].concat(),
                );
                if !filters.trim().is_empty() {
                    tc.push_str(&format!("filters of {name} {hook:?}:\n{filters}"));
                }
            }
        }
        let tc = tc
            .lines()
            .map(|l| {
                let toks: Vec<&str> = l.split_whitespace().collect();
                let mut kept = Vec::new();
                let mut i = 0;
                while i < toks.len() {
                    if toks[i] == "refcnt" {
                        i += 2;
                        continue;
                    }
                    kept.push(toks[i]);
                    i += 1;
                }
                kept.join(" ") + "\n"
            })
            .collect::<String>();
        RootState {
            links: without_ports(&without_timers(&raw_links), &ports),
            addresses: without_bridge_link_local(&without_ports(
                &capture(tools.ip, &["-o", "addr", "show"]),
                &ports,
            )),
            // `linkdown` is operational state (docker0 without containers), not a route's setting.
            routes: without_bridge_link_local(&without_ports(
                &(capture(tools.ip, &["route", "show", "table", "all"])
                    + &capture(tools.ip, &["-6", "route", "show", "table", "all"]))
                    .replace(" linkdown", ""),
                &ports,
            )),
            rules: capture(tools.ip, &["rule", "show"])
                + &capture(tools.ip, &["-6", "rule", "show"]),
            tc: without_ports(&tc, &ports),
            sysctls,
            // -s (stateless): the rules without their counters' values; traffic to this
            // machine's own addresses counts in Docker's nat rules without changing any rule.
            ruleset: ruleset_as_sets(&capture(tools.nft, &["-s", "list", "ruleset"])),
        }
    }

    /// The parts that differ from `now`, each with its before and after text.
    pub fn differences(&self, now: &RootState) -> Vec<String> {
        [
            ("links", &self.links, &now.links),
            ("addresses", &self.addresses, &now.addresses),
            ("routes", &self.routes, &now.routes),
            ("rules", &self.rules, &now.rules),
            ("tc qdiscs and filters", &self.tc, &now.tc),
            ("sysctls", &self.sysctls, &now.sysctls),
            ("nftables ruleset", &self.ruleset, &now.ruleset),
        ]
        .into_iter()
        .filter(|(_, before, after)| before != after)
        .map(|(what, before, after)| {
            format!("root namespace {what} changed:\n--- before\n{before}\n--- after\n{after}")
        })
        .collect()
    }
}

/// The root namespace as a test found it, held with the root lock shared (see
/// [`ROOT_LOCK_PATH`]) until dropped, so that no fixture of another test comes or goes between
/// `take` and `assert_unchanged`.
pub struct RootSnapshot {
    pub before: RootState,
    _hold: SharedHold,
}

impl RootSnapshot {
    /// Reads the root namespace's state (the test's thread runs in it).
    pub fn take() -> Self {
        let hold = SharedHold::acquire();
        RootSnapshot {
            before: RootState::read(&SYSTEM_TOOLS),
            _hold: hold,
        }
    }

    /// Panics with the differing parts when the root namespace changed since `self` was taken.
    pub fn assert_unchanged(&self) {
        let diffs = self.before.differences(&RootState::read(&SYSTEM_TOOLS));
        assert!(diffs.is_empty(), "{}", diffs.join("\n"));
    }
}

/// The image the Docker tests run (busybox-static imported from a local tarball; kept tagged
/// for reuse: no registry is needed).
pub const DOCKER_TEST_IMAGE: &str = "nslat-test-busybox:1";

/// The test image's root filesystem as a tarball in `dir`: the host's busybox-static as
/// `/bin/busybox` (scripts/install-deps installs it). Docker and Podman import it; no registry.
pub fn busybox_rootfs_tar(dir: &std::path::Path) -> Result<std::path::PathBuf, String> {
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("busybox-static is not installed (scripts/install-deps installs it)")?;
    let root = dir.join("root");
    std::fs::create_dir_all(root.join("bin")).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, root.join("bin/busybox")).map_err(|e| e.to_string())?;
    let tar = dir.join("image.tar");
    let ok = Command::new("tar")
        .arg("-C")
        .arg(&root)
        .arg("-cf")
        .arg(&tar)
        .arg(".")
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(tar)
    } else {
        Err("tar of the busybox root filesystem failed".into())
    }
}

/// Makes sure [`DOCKER_TEST_IMAGE`] exists: `docker import` of [`busybox_rootfs_tar`].
pub fn docker_test_image() -> Result<(), String> {
    let have = Command::new("docker")
        .args(["image", "inspect", DOCKER_TEST_IMAGE])
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if have.status.success() {
        return Ok(());
    }
    let dir = tempfile_dir();
    let tar = busybox_rootfs_tar(std::path::Path::new(&dir));
    let ok = tar.as_ref().is_ok_and(|tar| {
        Command::new("docker")
            .args(["import", "-c", r#"CMD ["/bin/busybox","sleep","3600"]"#])
            .arg(tar)
            .arg(DOCKER_TEST_IMAGE)
            .output()
            .is_ok_and(|o| o.status.success())
    });
    let _ = std::fs::remove_dir_all(&dir);
    tar?;
    if ok {
        Ok(())
    } else {
        Err("docker import of the busybox tarball failed".into())
    }
}

fn tempfile_dir() -> String {
    format!("/tmp/nslat-image-{}", unique("img"))
}

/// The row of `mode` in a compare report's JSON (its `modes`), cloned; panics naming the
/// mode and showing `context` (the command's output) when there is none.
pub fn mode_row(report: &serde_json::Value, mode: &str, context: &str) -> serde_json::Value {
    report["modes"]
        .as_array()
        .unwrap_or_else(|| panic!("no modes in the report: {context}"))
        .iter()
        .find(|m| m["mode"] == mode)
        .unwrap_or_else(|| panic!("no row {mode}: {context}"))
        .clone()
}
