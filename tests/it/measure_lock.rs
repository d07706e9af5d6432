//! The machine-wide measurement lock, through the real binary: while one `nslat run` measures on
//! a CPU, a second one on the same CPU refuses (`--lock-wait 0`) with one line naming the
//! holder, waits with a line saying so (then measures), or with `--force` measures and is
//! flagged. Runs on loopback against an in-process server; root is not needed.

use crate::common;

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nslat::bench::server::{Server, ServerConfig};

fn run_args(addr: SocketAddr, secs: &str) -> Vec<String> {
    [
        "run",
        "-H",
        &addr.to_string(),
        "-t",
        "TCP_RR",
        "-T",
        "0,0",
        "--warmup",
        "0",
        "-l",
        secs,
    ]
    .map(String::from)
    .to_vec()
}

#[test]
fn a_second_measurement_on_the_same_cpu_refuses_waits_or_is_flagged() {
    let server = Server::bind(ServerConfig::new("127.0.0.1:0".parse().unwrap())).unwrap();
    let addr = server.local_addr();
    let server = server.spawn();

    // The first measurement holds CPU 0 for 4 s.
    let mut first = Command::new(common::nslat_bin())
        .args(run_args(addr, "4"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Give it time to take the lock (it does so before it connects).
    std::thread::sleep(Duration::from_millis(800));

    let mut refuse = run_args(addr, "0.2");
    refuse.extend(["--lock-wait".into(), "0".into()]);
    let refuse: Vec<&str> = refuse.iter().map(String::as_str).collect();
    let out = common::nslat(&refuse);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "not refused: {err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("CPU 0 is busy with another nslat measurement (pid ")
            && err.contains("--force"),
        "{err}"
    );

    let mut force = run_args(addr, "0.2");
    force.push("--force".into());
    let force: Vec<&str> = force.iter().map(String::as_str).collect();
    let out = common::nslat_ok(&force);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("FLAGGED"), "{stdout}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("warning: measured with --force"));

    let mut wait = run_args(addr, "0.2");
    wait.extend(["--lock-wait".into(), "60".into()]);
    let wait: Vec<&str> = wait.iter().map(String::as_str).collect();
    let t = Instant::now();
    let out = common::nslat_ok(&wait);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("waiting for CPU 0"), "{err}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("FLAGGED"));
    assert!(t.elapsed() > Duration::from_millis(500), "did not wait");

    assert!(first.wait().unwrap().success());
    server.stop();
}
