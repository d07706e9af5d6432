//! The container image (deploy/image/build): built with `docker build` FROM scratch, run with
//! `--network host` serving on a fixture wire, and measured from the host with `nslat run` and
//! `nslat compare --remote`. The fixture namespace plays this machine's NIC side: a veth pair
//! with 198.19.x addresses joins it to the root namespace (the test's only root change, removed
//! afterwards and checked by the root snapshot).

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use serde_json::Value;

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn run_ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn docker_works() -> bool {
    run("sh", &["-c", "command -v docker"]).status.success()
        && run("docker", &["info", "--format", "{{.ServerVersion}}"])
            .status
            .success()
}

/// Removes what the test made: the container, the image, the wire and the fixture namespace.
struct Cleanup {
    container: String,
    image: String,
    root_link: String,
    fixture_ns: String,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = run("docker", &["rm", "-f", &self.container]);
        let _ = run("docker", &["rmi", "-f", &self.image]);
        let _ = run("ip", &["link", "del", &self.root_link]);
        let _ = run("ip", &["netns", "del", &self.fixture_ns]);
    }
}

fn wait_for_port(ns: &Path, addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ok = nslat::netns::run_in(Some(ns), move || {
            Ok::<_, nslat::netns::NetnsError>(
                TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
            )
        })
        .unwrap();
        if ok {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "nslat serve in the container did not come up at {addr}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_image_serves_with_host_network_and_is_measured_by_run_and_compare_remote() {
    let test = "the_image_serves_with_host_network_and_is_measured_by_run_and_compare_remote";
    if !common::need_root(test)
        || !common::need_tool(test, "ip")
        || !common::need_tool(test, "busybox")
        || !common::prerequisite(
            test,
            docker_works(),
            "no Docker Engine answers `docker info`",
        )
    {
        return;
    }
    // Changes the root namespace (a fixture wire, Docker's veths): no other test may snapshot
    // or change it meanwhile. Dropped last, after the snapshot's check.
    let _root_change = common::RootChange::lock();
    let root = common::RootSnapshot::take();
    let u = common::unique("img");
    let subnet = 20 + std::process::id() % 200;
    let cleanup = Cleanup {
        container: format!("nslat-{u}"),
        image: format!("nslat:{u}"),
        root_link: format!("{u}r"),
        fixture_ns: format!("nslat-{u}-fx"),
    };

    // The image: the binary under test (with its libraries) FROM scratch.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/image/build");
    let started = Instant::now();
    let tag = run_ok(
        script,
        &[
            "--tag",
            &cleanup.image,
            "--binary",
            env!("CARGO_BIN_EXE_nslat"),
        ],
    );
    assert_eq!(tag.lines().last(), Some(cleanup.image.as_str()), "{tag}");
    eprintln!("image built in {:.0?}", started.elapsed());
    let inspect = run_ok(
        "docker",
        &[
            "image",
            "inspect",
            "--format",
            "{{json .RootFS.Layers}} {{.Os}}",
            &cleanup.image,
        ],
    );
    // FROM scratch + one COPY: exactly one layer.
    assert_eq!(inspect.matches("sha256:").count(), 1, "{inspect}");
    let version = run_ok("docker", &["run", "--rm", &cleanup.image, "--version"]);
    assert!(version.starts_with("nslat "), "{version}");
    let nft = run_ok(
        "docker",
        &[
            "run",
            "--rm",
            "--entrypoint",
            "nft",
            &cleanup.image,
            "--version",
        ],
    );
    assert!(nft.starts_with("nftables"), "{nft}");

    // The wire: root end 198.19.S.1, the fixture namespace's eth0 198.19.S.2.
    let server_ip = format!("198.19.{subnet}.1");
    let fixture_ip = format!("198.19.{subnet}.2/24");
    let fixture_end = format!("{u}f");
    run_ok("ip", &["netns", "add", &cleanup.fixture_ns]);
    run_ok(
        "ip",
        &[
            "link",
            "add",
            &cleanup.root_link,
            "type",
            "veth",
            "peer",
            "name",
            &fixture_end,
            "netns",
            &cleanup.fixture_ns,
        ],
    );
    run_ok(
        "ip",
        &[
            "addr",
            "add",
            &format!("{server_ip}/24"),
            "dev",
            &cleanup.root_link,
        ],
    );
    run_ok("ip", &["link", "set", &cleanup.root_link, "up"]);
    let fx = ["-n", cleanup.fixture_ns.as_str()];
    run_ok(
        "ip",
        &[&fx[..], &["link", "set", &fixture_end, "name", "eth0"]].concat(),
    );
    run_ok(
        "ip",
        &[&fx[..], &["addr", "add", &fixture_ip, "dev", "eth0"]].concat(),
    );
    run_ok("ip", &[&fx[..], &["link", "set", "eth0", "up"]].concat());
    run_ok("ip", &[&fx[..], &["link", "set", "lo", "up"]].concat());

    // `nslat serve` in the container, on the host's network, listening on the wire's root end.
    let port = 20000 + (std::process::id() % 20000) as u16;
    let listen: SocketAddr = format!("{server_ip}:{port}").parse().unwrap();
    run_ok(
        "docker",
        &[
            "run",
            "-d",
            "--network",
            "host",
            "--name",
            &cleanup.container,
            &cleanup.image,
            "serve",
            "--listen",
            &listen.to_string(),
        ],
    );
    let fx_path = nslat::netns::resolve(&cleanup.fixture_ns).unwrap();
    wait_for_port(&fx_path, listen);

    // From the host: one run (the root namespace reaches its own address over loopback).
    let out = common::nslat_ok(&[
        "run",
        "-H",
        &listen.to_string(),
        "-t",
        "TCP_RR",
        "-l",
        "0.3",
        "--warmup",
        "0.1",
        "--json",
    ]);
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(r["transactions"].as_u64().unwrap() > 100, "{r}");

    // From "this machine" (the fixture namespace): compare --remote, macvlan attached to its NIC.
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("remote.json");
    common::nslat_ok(&[
        "compare",
        "--remote",
        &listen.to_string(),
        "--parent",
        "eth0",
        "--addr",
        &format!("198.19.{subnet}.50/24"),
        "--machine-netns",
        &cleanup.fixture_ns,
        "--modes",
        "host,macvlan",
        "--reps",
        "2",
        "-l",
        "0.3",
        "--warmup",
        "0.1",
        "--no-checks",
        "--node",
        "fixture",
        "--peer",
        "container",
        "--json",
        json.to_str().unwrap(),
    ]);
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for name in ["host", "macvlan"] {
        let m = report["modes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["mode"] == name)
            .unwrap_or_else(|| panic!("{name} missing: {report}"));
        assert_eq!(m["available"], true, "{name}: {m}");
        assert!(m["trans_per_s"]["mean"].as_f64().unwrap() > 1000.0, "{m}");
        // Interleaved (the one measuring loop): one aggregate run per path, paired by round.
        assert_eq!(m["reps"].as_array().unwrap().len(), 1, "{m}");
    }
    assert_eq!(report["schedule"], "interleaved", "{report}");
    assert_eq!(report["pair"]["node"], "fixture");
    assert_eq!(report["pair"]["peer"], "container");
    assert_eq!(report["pair"]["peer_network"], "host");

    // The container answered: its log has a line per test.
    let logs = run("docker", &["logs", &cleanup.container]);
    let logs =
        String::from_utf8_lossy(&logs.stdout).into_owned() + &String::from_utf8_lossy(&logs.stderr);
    assert!(logs.contains("TCP_RR"), "{logs}");

    drop(cleanup);
    let left = run_ok("docker", &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(!left.contains(&format!("nslat-{u}")), "{left}");
    root.assert_unchanged();
}
