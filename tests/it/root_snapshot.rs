//! The root-namespace snapshot and the root test lock themselves (tests/it/common.rs): a snapshot
//! fails when the tools it runs fail (an error message compared with itself proves nothing), it
//! sees policy routing rules (v4 and v6), tc qdiscs and filters and the nftables ruleset, it
//! leaves out Docker's container ports, and the lock keeps a root fixture and a snapshot apart
//! (a change waits for open snapshots, a snapshot waits for a change). The rule, tc and nftables
//! changes are made in a throwaway namespace, never in the root one.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::{self, RootChange, RootSnapshot, RootState, Tools, SYSTEM_TOOLS};
use crate::lab_util::Container;

fn panic_text(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_failing_tool_fails_the_snapshot() {
    let broken = [
        (
            "ip",
            Tools {
                ip: "false",
                ..SYSTEM_TOOLS
            },
        ),
        (
            "tc",
            Tools {
                tc: "false",
                ..SYSTEM_TOOLS
            },
        ),
        (
            "nft",
            Tools {
                nft: "false",
                ..SYSTEM_TOOLS
            },
        ),
        (
            "missing ip",
            Tools {
                ip: "/nonexistent/ip",
                ..SYSTEM_TOOLS
            },
        ),
    ];
    for (what, tools) in broken {
        let r = catch_unwind(AssertUnwindSafe(|| RootState::read(&tools)));
        let msg = panic_text(r.expect_err(&format!("{what}: the snapshot did not fail")));
        assert!(msg.contains("root snapshot:"), "{what}: {msg}");
    }
}

#[test]
fn docker_container_ports_are_left_out_and_nothing_else() {
    // `ip -o -d link`, trimmed: a container's port on docker0, one on a user-defined bridge,
    // docker0 itself and a veth nslat could have left behind (no master).
    let raw = "\
5: docker0: <BROADCAST,MULTICAST,UP> mtu 1500 qdisc noqueue state DOWN mode DEFAULT\n\
9: veth1a2b3c4@if8: <BROADCAST,UP> mtu 1500 qdisc noqueue master docker0 state UP\n\
11: veth9f8e7d6@if10: <BROADCAST,UP> mtu 1500 qdisc noqueue master br-0123456789ab state UP\n\
12: vethleft@if13: <BROADCAST,UP> mtu 1500 qdisc noqueue state UP\n";
    let ports = common::docker_ports(raw);
    assert_eq!(ports, ["veth1a2b3c4", "veth9f8e7d6"]);
    let kept = common::without_ports(raw, &ports);
    assert!(kept.contains("docker0:") && kept.contains("vethleft@if13"));
    assert!(!kept.contains("veth1a2b3c4") && !kept.contains("veth9f8e7d6"));
    let routes = "fe80::/64 dev veth1a2b3c4 proto kernel metric 256\n\
fe80::/64 dev vethleft proto kernel metric 256\n";
    assert_eq!(
        common::without_ports(routes, &ports),
        "fe80::/64 dev vethleft proto kernel metric 256\n"
    );
    let qdiscs =
        "qdisc noqueue 0: dev veth1a2b3c4 root\nqdisc clsact ffff: dev vethleft parent ffff:fff1\n";
    assert_eq!(
        common::without_ports(qdiscs, &ports),
        "qdisc clsact ffff: dev vethleft parent ffff:fff1\n"
    );
}

#[test]
fn a_container_bridges_link_local_state_is_left_out_and_no_other_links() {
    // What the kernel adds to a container engine's bridge after duplicate address detection
    // (Podman's CNI `cni-podman0` appeared tentative in one snapshot and settled in the next);
    // the same on eth0, or on a bridge nslat could have left (`nslat-x-br`), still counts.
    let text = "\
29: cni-podman0    inet6 fe80::5094:44ff:fe35:a82d/64 scope link tentative \\\n\
7: podman0    inet6 fe80::1/64 scope link \\\n\
4: eth0    inet6 fe80::fc:ff:fe00:1/64 scope link \\\n\
local fe80::5094:44ff:fe35:a82d dev cni-podman0 table local proto kernel metric 0 pref medium\n\
multicast ff00::/8 dev podman0 table local proto kernel metric 256 pref medium\n\
fe80::/64 dev nslat-x-br proto kernel metric 256 pref medium\n\
29: cni-podman0    inet 10.88.0.1/16 brd 10.88.255.255 scope global cni-podman0\n\
fe80::/64 dev podman0x proto kernel metric 256 pref medium\n";
    assert_eq!(
        common::without_bridge_link_local(text),
        "\
4: eth0    inet6 fe80::fc:ff:fe00:1/64 scope link \\\n\
fe80::/64 dev nslat-x-br proto kernel metric 256 pref medium\n\
29: cni-podman0    inet 10.88.0.1/16 brd 10.88.255.255 scope global cni-podman0\n\
fe80::/64 dev podman0x proto kernel metric 256 pref medium\n"
    );
}

/// `cmd args` in the calling thread's namespace; panics unless it succeeds.
fn run(cmd: &str, args: &[&str]) {
    let o = Command::new(cmd).args(args).output().unwrap();
    assert!(
        o.status.success(),
        "{cmd} {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn the_snapshot_sees_rules_tc_and_nftables() {
    let test = "the_snapshot_sees_rules_tc_and_nftables";
    if !common::need_root(test) || !common::need_tool(test, "tc") || !common::need_tool(test, "nft")
    {
        return;
    }
    let ns = Container::new(common::unique("snap"));
    let changes: Vec<(&str, &str, Vec<&str>)> = vec![
        (
            "rules",
            "ip",
            vec!["rule", "add", "from", "198.18.0.9", "lookup", "100"],
        ),
        (
            "rules",
            "ip",
            vec!["-6", "rule", "add", "from", "2001:db8::9", "lookup", "100"],
        ),
        ("tc", "tc", vec!["qdisc", "add", "dev", "lo", "clsact"]),
        (
            "tc",
            "tc",
            vec![
                "filter", "add", "dev", "lo", "ingress", "protocol", "ip", "prio", "1", "u32",
                "match", "u32", "0", "0",
            ],
        ),
        (
            "nftables",
            "nft",
            vec!["add", "table", "inet", "nslat_snapshot_test"],
        ),
    ];
    // In the throwaway namespace (its thread; children of the thread run there too).
    nslat::netns::run_in(
        Some(&ns.path),
        move || -> Result<(), nslat::netns::NetnsError> {
            let mut before = RootState::read(&SYSTEM_TOOLS);
            for (part, cmd, args) in changes {
                run(cmd, &args);
                let now = RootState::read(&SYSTEM_TOOLS);
                let diffs = before.differences(&now);
                assert_eq!(diffs.len(), 1, "{cmd} {args:?}: {diffs:#?}");
                assert!(
                    diffs[0].contains(part),
                    "{cmd} {args:?} shows as: {}",
                    diffs[0]
                );
                before = now;
            }
            Ok(())
        },
    )
    .unwrap();
}

#[test]
fn a_root_change_waits_for_open_snapshots_and_a_snapshot_for_a_change() {
    if !common::need_root("a_root_change_waits_for_open_snapshots_and_a_snapshot_for_a_change") {
        return;
    }
    // A snapshot is open: a change (another test's fixture) must wait until it is dropped.
    let snapshot = RootSnapshot::take();
    let (acquired_tx, acquired) = mpsc::channel();
    let (release, release_rx) = mpsc::channel::<()>();
    let changer = std::thread::spawn(move || {
        let change = RootChange::lock();
        acquired_tx.send(()).unwrap();
        let _ = release_rx.recv();
        drop(change);
    });
    assert!(
        acquired.recv_timeout(Duration::from_millis(500)).is_err(),
        "a root change went ahead while a snapshot was open"
    );
    drop(snapshot);
    acquired
        .recv_timeout(Duration::from_secs(30))
        .expect("the change did not go ahead after the snapshot closed");
    // The change is held: a snapshot must wait until it is released.
    let (taken_tx, taken) = mpsc::channel();
    let snapper = std::thread::spawn(move || {
        let s = RootSnapshot::take();
        taken_tx.send(()).unwrap();
        drop(s);
    });
    assert!(
        taken.recv_timeout(Duration::from_millis(500)).is_err(),
        "a snapshot was taken while a root change was held"
    );
    release.send(()).unwrap();
    changer.join().unwrap();
    taken
        .recv_timeout(Duration::from_secs(30))
        .expect("the snapshot did not go ahead after the change");
    snapper.join().unwrap();
}

#[test]
fn the_ruleset_compares_as_sets_of_rules_per_chain() {
    // As in a CI run: Docker moved its jumps above a `CNI-FORWARD` jump Podman had left there.
    let before = "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\t counter jump CNI-FORWARD\n\t\tcounter jump DOCKER-USER\n\t}\n}\n";
    let moved = "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tcounter jump DOCKER-USER\n\t\tcounter jump CNI-FORWARD\n\t}\n}\n";
    assert_eq!(
        common::ruleset_as_sets(before),
        common::ruleset_as_sets(moved)
    );
    // A rule added, or one removed, still differs.
    let added = moved.replace(
        "\t\tcounter jump CNI-FORWARD\n",
        "\t\tcounter jump CNI-FORWARD\n\t\tip daddr 198.18.0.1 accept\n",
    );
    assert_ne!(
        common::ruleset_as_sets(before),
        common::ruleset_as_sets(&added)
    );
    let removed = moved.replace("\t\tcounter jump CNI-FORWARD\n", "");
    assert_ne!(
        common::ruleset_as_sets(before),
        common::ruleset_as_sets(&removed)
    );
    // A rule moved to another chain differs too.
    let other_chain = "table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t\tcounter jump DOCKER-USER\n\t}\n\tchain INPUT {\n\t\tcounter jump CNI-FORWARD\n\t}\n}\n";
    assert_ne!(
        common::ruleset_as_sets(before),
        common::ruleset_as_sets(other_chain)
    );
}
