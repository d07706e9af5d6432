//! Every text a user reads is for people: no Debug formatting (`Some(1)`, `None`, CamelCase enum
//! names like `Macvlan`) in the output of the user-facing commands, error chains without
//! repeats, and a peer that is not an nslat server named as such. The commands run for real:
//! help, serve's log, run, lab up/status/list, attach/detach, check and compare on a lab.

use crate::common;
use crate::lab_util;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use lab_util::{Container, LabGuard};

/// Debug renderings that must never reach a user, as whole words.
const FORBIDDEN: &[&str] = &[
    "Some(",
    "None",
    "Bridge",
    "Macvlan",
    "MacvlanVeth",
    "IpvlanL2",
    "IpvlanL3",
    "IpvlanL3s",
    "IpvlanVeth",
    "Ptp",
    "ConntrackOnly",
    "Masquerade",
    "TcpRr",
    "UdpRr",
    "TcpCrr",
    "TcpStream",
    "TcpMaerts",
];

/// The forbidden words in `text` (a word: not preceded or followed by a letter or digit).
fn debug_words(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for w in FORBIDDEN {
        let mut from = 0;
        while let Some(i) = text[from..].find(w) {
            let at = from + i;
            let before = text[..at].chars().next_back();
            let after = text[at + w.len()..].chars().next();
            let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric());
            if !word(before) && (w.ends_with('(') || !word(after)) {
                let line = text[..at].rsplit('\n').next().unwrap_or("").to_string()
                    + text[at..].split('\n').next().unwrap_or("");
                found.push(format!("{w} in: {line}"));
            }
            from = at + w.len();
        }
    }
    found
}

/// What a user sees of one command: its stdout and stderr.
fn seen(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

struct Transcript(Vec<(String, String)>);

impl Transcript {
    fn run(&mut self, args: &[&str]) -> std::process::Output {
        let out = common::nslat(args);
        self.0
            .push((format!("nslat {}", args.join(" ")), seen(&out)));
        out
    }

    fn ok(&mut self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "nslat {} failed: {}",
            args.join(" "),
            seen(&out)
        );
        seen(&out)
    }

    fn assert_clean(&self) {
        let mut bad = Vec::new();
        for (cmd, text) in &self.0 {
            for w in debug_words(text) {
                bad.push(format!("`{cmd}`: {w}"));
            }
        }
        assert!(
            bad.is_empty(),
            "Debug formatting in user text:\n{}",
            bad.join("\n")
        );
    }
}

#[test]
fn the_checker_finds_debug_words() {
    assert_eq!(debug_words("server CPU Some(1)").len(), 1);
    assert_eq!(debug_words("attached Macvlan nslat0").len(), 1);
    assert_eq!(debug_words("NAT None").len(), 1);
    assert!(debug_words("attached macvlan nslat0, NAT none, MASQUERADE, Nonesuch").is_empty());
}

#[test]
fn help_texts_have_no_debug_formatting() {
    let mut t = Transcript(Vec::new());
    t.ok(&["--help"]);
    for sub in [
        "serve", "run", "lab", "attach", "detach", "compare", "check",
    ] {
        t.ok(&[sub, "--help"]);
    }
    for sub in ["up", "down", "status", "list"] {
        t.ok(&["lab", sub, "--help"]);
    }
    t.assert_clean();
}

/// A TCP server on loopback that answers anything like a web server.
fn http_server() -> (u16, std::thread::JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let h = std::thread::spawn(move || {
        if let Ok((mut s, _)) = l.accept() {
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf);
            let _ = s.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    (port, h)
}

#[test]
fn run_against_a_web_server_says_it_is_not_an_nslat_server_once() {
    let (port, h) = http_server();
    let out = common::nslat(&[
        "run",
        "-H",
        &format!("127.0.0.1:{port}"),
        "-t",
        "TCP_RR",
        "-l",
        "0.2",
        "--warmup",
        "0",
    ]);
    h.join().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // (Another test's measurement may hold the CPUs: then a line says it waited.)
    let err: String = err
        .lines()
        .filter(|l| !l.starts_with("waiting for CPU"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("is not an nslat server (it answered like HTTP)"),
        "{err}"
    );
    let parts: Vec<&str> = err.trim().split(": ").collect();
    for (i, p) in parts.iter().enumerate() {
        assert!(
            !parts[i + 1..].contains(p),
            "'{p}' repeated in the error chain: {err}"
        );
    }
}

#[test]
fn serve_run_lab_attach_check_and_compare_print_no_debug_formatting() {
    if !common::need_root("user_text") {
        return;
    }
    let mut t = Transcript(Vec::new());

    // serve's log, with a pinned and an unpinned client.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let listen = format!("127.0.0.1:{port}");
    let mut serve = Command::new(common::nslat_bin())
        .args(["serve", "--listen", &listen])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut up = false;
    for _ in 0..100 {
        if std::net::TcpStream::connect(&listen).is_ok() {
            up = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(up, "nslat serve did not start");
    let run = [
        "run", "-H", &listen, "-t", "TCP_RR", "-l", "0.2", "--warmup", "0",
    ];
    t.ok(&run);
    let mut pinned = run.to_vec();
    pinned.extend(["-T", "0,0"]);
    t.ok(&pinned);
    let mut udp = run.to_vec();
    udp[4] = "UDP_RR";
    t.ok(&udp);
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(serve.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    let _ = serve.wait();
    let mut log = String::new();
    serve
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    assert!(log.contains("done:"), "serve logged no test: {log}");
    t.0.push(("nslat serve".into(), log));

    // A lab, its status and the list.
    let name = common::unique("txt");
    let _guard = LabGuard(name.clone());
    t.ok(&[
        "lab",
        "up",
        "--name",
        &name,
        "--modes",
        "host,bridge,ptp,macvlan",
    ]);
    t.ok(&["lab", "status", "--name", &name]);
    t.ok(&["lab", "list"]);
    let node = format!("/run/netns/nslat-{name}-node");

    // attach / detach, macvlan and bridge.
    let mac = Container::new(common::unique("tm"));
    let br = Container::new(common::unique("tb"));
    t.ok(&[
        "attach",
        "--netns",
        &mac.name,
        "--mode",
        "macvlan",
        "--parent",
        "eth0",
        "--parent-netns",
        &node,
        "--addr",
        "198.18.0.61/24",
    ]);
    t.ok(&[
        "attach",
        "--netns",
        &br.name,
        "--mode",
        "bridge",
        "--parent",
        "docker0",
        "--parent-netns",
        &node,
        "--addr",
        "198.18.1.61/24",
    ]);
    t.ok(&["detach", "--netns", &mac.name]);
    t.ok(&["detach", "--netns", &br.name]);

    // check and compare on the lab (both leave it: --lab).
    t.ok(&[
        "check",
        "--lab",
        &name,
        "--modes",
        "host,bridge,ptp,macvlan",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("r.md");
    t.ok(&[
        "compare",
        "--lab",
        &name,
        "--modes",
        "host,bridge,ptp,macvlan",
        "--reps",
        "2",
        "--replicates",
        "2",
        "-l",
        "0.2",
        "--warmup",
        "0",
        "--explain",
        "--markdown",
        md.to_str().unwrap(),
    ]);
    t.0.push((
        "compare --markdown".into(),
        std::fs::read_to_string(&md).unwrap(),
    ));
    t.ok(&["lab", "down", "--name", &name]);
    t.assert_clean();
}
