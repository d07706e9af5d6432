//! `compare --target podman:…` on real Podman (rootful, netavark): a fixture namespace plays the
//! second machine (joined to the root namespace by a 198.18.x veth pair), containers on Podman's
//! default network, on a user-defined network and on a Podman macvlan network on the fixture
//! wire, and a `--network none` container given a macvlan by `nslat attach --podman`. describe
//! names netavark's bridge and the chain that masquerades (netavark's per-network chain, reached
//! by a jump from POSTROUTING); the default network is significantly slower than the host,
//! macvlan is not. Podman runs with tests/fixtures/podman-containers.conf (CONTAINERS_CONF).

use crate::common;
use crate::lab_util::FixtureWire;

use std::process::Command;

use serde_json::Value;

const IMAGE: &str = "localhost/nslat-test-busybox:1";

fn conf() -> String {
    format!(
        "{}/tests/fixtures/podman-containers.conf",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn podman(args: &[&str]) -> std::process::Output {
    Command::new("podman")
        .env("CONTAINERS_CONF", conf())
        .args(args)
        .output()
        .expect("podman")
}

fn podman_ok(args: &[&str]) -> String {
    let o = podman(args);
    assert!(
        o.status.success(),
        "podman {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

/// The busybox image, imported from the host's busybox-static (no registry).
fn image() -> Result<(), String> {
    if podman(&["image", "exists", IMAGE]).status.success() {
        return Ok(());
    }
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let tar = common::busybox_rootfs_tar(dir.path())?;
    let out = podman(&[
        "import",
        "-c",
        r#"CMD ["/bin/busybox","sleep","3600"]"#,
        tar.to_str().unwrap(),
        IMAGE,
    ]);
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "podman import failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Everything the test made, removed in reverse on drop (the containers, then the wire).
struct Fixture {
    containers: Vec<String>,
    networks: Vec<String>,
    attached: Vec<String>,
    /// The second machine; dropped after the containers.
    wire: FixtureWire,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for c in &self.attached {
            let _ = Command::new(common::nslat_bin())
                .env("CONTAINERS_CONF", conf())
                .args(["detach", "--podman", c])
                .output();
        }
        for c in &self.containers {
            let _ = podman(&["rm", "-f", "-t", "0", c]);
        }
        for n in &self.networks {
            let _ = podman(&["network", "rm", "-f", n]);
        }
    }
}

#[test]
fn real_podman_containers_are_described_and_measured() {
    let test = "real_podman_containers_are_described_and_measured";
    if !common::need_root(test) || !common::need_tool(test, "podman") {
        return;
    }
    if let Err(e) = image() {
        assert!(!common::in_ci(), "{test}: {e}");
        eprintln!("SKIPPED {test}: {e}");
        return;
    }
    let _root_change = common::RootChange::lock();
    // Netavark's first container on a machine leaves chains that stay (NETAVARK-HOSTPORT-*,
    // NETAVARK_FORWARD, like Docker's own): made once before the snapshot, so that the snapshot
    // sees only what this test leaves behind.
    podman_ok(&[
        "run",
        "--rm",
        "--network",
        "podman",
        IMAGE,
        "/bin/busybox",
        "true",
    ]);
    let root = common::RootSnapshot::take();

    let u = common::unique("pm");
    let mut fx = Fixture {
        containers: Vec::new(),
        networks: Vec::new(),
        attached: Vec::new(),
        wire: FixtureWire::new(&u, 150 + std::process::id() % 50),
    };
    let (net, listen) = (fx.wire.net, fx.wire.listen.clone());

    let name = |k: &str| format!("nslat-test-{u}-{k}");
    let usr_net = name("net");
    podman_ok(&["network", "create", "--subnet", "198.19.200.0/24", &usr_net]);
    fx.networks.push(usr_net.clone());
    let mv_net = name("mv");
    podman_ok(&[
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
    for (k, network) in [
        ("def", "podman"),
        ("usr", usr_net.as_str()),
        ("mv", mv_net.as_str()),
        ("none", "none"),
    ] {
        fx.containers.push(name(k));
        podman_ok(&["run", "-d", "--name", &name(k), "--network", network, IMAGE]);
    }
    fx.attached.push(name("none"));
    let att = Command::new(common::nslat_bin())
        .env("CONTAINERS_CONF", conf())
        .args(["attach", "--podman", &name("none"), "--mode", "macvlan"])
        .args([
            "--parent",
            &fx.wire.wire,
            "--addr",
            &format!("198.18.{net}.40/24"),
        ])
        .output()
        .unwrap();
    assert!(
        att.status.success(),
        "attach --podman: {}",
        String::from_utf8_lossy(&att.stderr)
    );
    fx.wire.wait_for_server();

    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("t.json");
    let t = |k: &str| format!("{k}=podman:{}", name(k));
    let out = Command::new("flock")
        .env("CONTAINERS_CONF", conf())
        .args(["/tmp/nslat-bench.lock", common::nslat_bin(), "compare"])
        .args(["--remote", &listen])
        .args(["--target", &t("def"), "--target", &t("usr")])
        .args(["--target", &t("mv"), "--target", &t("none")])
        .args(["--reps", "2", "-l", "0.5", "--warmup", "0.2", "--json"])
        .arg(&json)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let tgt = |k: &str| common::mode_row(&report, k, &stdout)["target"].clone();
    // Podman's default bridge and its NAT chains are named by its network backend: netavark
    // (`podman0`, `NETAVARK-…`) or CNI (`cni-podman0`, `CNI-…`), as Debian 12's Podman 4.3 uses
    // when netavark is not installed.
    let backend = podman_ok(&["info", "--format", "{{.Host.NetworkBackend}}"]);
    let (default_bridge, bridge_prefix, chain_prefix) = match backend.trim() {
        "cni" => ("cni-podman0", "cni-podman", "CNI-"),
        _ => ("podman0", "podman", "NETAVARK-"),
    };
    for k in ["def", "usr"] {
        let d = tgt(k);
        assert_eq!(d["looks_like"], "bridge", "{k}: {d}");
        assert_eq!(d["path"]["kind"], "veth", "{k}: {d}");
        assert!(
            d["path"]["bridge"]
                .as_str()
                .unwrap_or("")
                .starts_with(bridge_prefix),
            "{k}: {d}"
        );
        let nat = &d["path"]["nat"];
        assert_eq!(nat["action"], "MASQUERADE", "{k}: {d}");
        assert!(
            nat["chain"]
                .as_str()
                .unwrap_or("")
                .starts_with(chain_prefix),
            "{k}: {nat}"
        );
        assert_eq!(nat["via"][0], "POSTROUTING", "{k}: {nat}");
    }
    assert_eq!(tgt("def")["path"]["bridge"], default_bridge);
    for k in ["mv", "none"] {
        let m = tgt(k);
        assert_eq!(m["looks_like"], "macvlan", "{k}: {m}");
        assert!(m["path"]["nat"].is_null(), "{k}: {m}");
    }
    assert_eq!(tgt("def")["lab"]["mode"], "bridge");
    let ratio = |k: &str| {
        let t = tgt(k);
        (
            t["ratio"].as_f64().unwrap(),
            t["ratio_ci95"].as_f64().unwrap(),
        )
    };
    let (b, bci) = ratio("def");
    assert!(
        b - bci > 1.0,
        "podman's default network {b} ± {bci} not slower\n{stdout}"
    );
    let (m, mci) = ratio("mv");
    assert!(
        m - mci < 1.03,
        "podman macvlan {m} ± {mci} slower\n{stdout}"
    );
    eprintln!("podman: default network {b:.3} ± {bci:.3}, macvlan {m:.3} ± {mci:.3}");
    drop(fx);
    root.assert_unchanged();
}
