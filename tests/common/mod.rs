//! Helpers shared by the integration tests: privilege and tool checks that skip with a printed
//! reason (but fail under CI, where nothing may be skipped), unique names, and the root-namespace
//! safety snapshot.
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

fn capture(program: &str, args: &[&str]) -> String {
    match Command::new(program).args(args).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout).into_owned(),
        Err(e) => format!("<{program} failed: {e}>"),
    }
}

/// What nslat must never change in the root namespace: links, addresses, routes, the sysctls it
/// could touch, and the nftables ruleset.
#[derive(Debug, PartialEq, Eq)]
pub struct RootSnapshot {
    pub links: String,
    pub addresses: String,
    pub routes: String,
    pub sysctls: String,
    pub ruleset: String,
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

impl RootSnapshot {
    /// Reads the root namespace's state (the test process runs in it).
    pub fn take() -> Self {
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
        RootSnapshot {
            links: without_timers(&capture("ip", &["-o", "-d", "link", "show"])),
            addresses: capture("ip", &["-o", "addr", "show"]),
            // `linkdown` is operational state (docker0 without containers), not a route's setting.
            routes: (capture("ip", &["route", "show", "table", "all"])
                + &capture("ip", &["-6", "route", "show", "table", "all"]))
                .replace(" linkdown", ""),
            sysctls,
            // -s (stateless): the rules without their counters' values; traffic to this
            // machine's own addresses counts in Docker's nat rules without changing any rule.
            ruleset: capture("nft", &["-s", "list", "ruleset"]),
        }
    }

    /// Panics with the differing part when the root namespace changed since `self` was taken.
    pub fn assert_unchanged(&self) {
        let now = RootSnapshot::take();
        for (what, before, after) in [
            ("links", &self.links, &now.links),
            ("addresses", &self.addresses, &now.addresses),
            ("routes", &self.routes, &now.routes),
            ("sysctls", &self.sysctls, &now.sysctls),
            ("nftables ruleset", &self.ruleset, &now.ruleset),
        ] {
            assert!(
                before == after,
                "root namespace {what} changed:\n--- before\n{before}\n--- after\n{after}"
            );
        }
    }
}

/// The image the Docker tests run (busybox-static imported from a local tarball; kept tagged
/// for reuse: no registry is needed).
pub const DOCKER_TEST_IMAGE: &str = "nslat-test-busybox:1";

/// Makes sure [`DOCKER_TEST_IMAGE`] exists: `docker import` of a tarball holding the host's
/// busybox-static (scripts/install-deps installs it).
pub fn docker_test_image() -> Result<(), String> {
    let have = Command::new("docker")
        .args(["image", "inspect", DOCKER_TEST_IMAGE])
        .output()
        .map_err(|e| format!("docker: {e}"))?;
    if have.status.success() {
        return Ok(());
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .ok_or("busybox-static is not installed (scripts/install-deps installs it)")?;
    let dir = tempfile_dir();
    std::fs::create_dir_all(format!("{dir}/root/bin")).map_err(|e| e.to_string())?;
    std::fs::copy(busybox, format!("{dir}/root/bin/busybox")).map_err(|e| e.to_string())?;
    let tar = format!("{dir}/image.tar");
    let ok = Command::new("tar")
        .args(["-C", &format!("{dir}/root"), "-cf", &tar, "."])
        .status()
        .is_ok_and(|s| s.success())
        && Command::new("docker")
            .args([
                "import",
                "-c",
                r#"CMD ["/bin/busybox","sleep","3600"]"#,
                &tar,
                DOCKER_TEST_IMAGE,
            ])
            .output()
            .is_ok_and(|o| o.status.success());
    let _ = std::fs::remove_dir_all(&dir);
    if ok {
        Ok(())
    } else {
        Err("docker import of the busybox tarball failed".into())
    }
}

fn tempfile_dir() -> String {
    format!("/tmp/nslat-image-{}", unique("img"))
}
