//! Issue 24: what deploy/kubernetes and `nslat deploy` render is safe to leave running: a token
//! Secret made at render time and mounted as a file into both DaemonSets and the Job (no token
//! in any command or args), serve on the node's/pod's own address, measurement-sized limits, and
//! a NetworkPolicy on the pod-network server. Validated offline with kubernetes-validate --strict.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const TOKEN_FILE: &str = "/var/run/secrets/nslat/token";

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

use crate::deploy::yaml_to_json;

fn validate(file: &Path) {
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(file)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains("passed"), "{text}");
}

/// The pod spec's one container: its command and args as one list, and whether it mounts the
/// token Secret read-only where `--token-file` points.
fn check_container(pod: &Value, secret_name: &str, what: &str) -> Vec<String> {
    let c = &pod["containers"][0];
    let mut words: Vec<String> = Vec::new();
    for key in ["command", "args"] {
        if let Some(a) = c[key].as_array() {
            words.extend(a.iter().map(|w| w.as_str().unwrap().to_string()));
        }
    }
    let all = words.join(" ");
    assert!(
        !all.contains("--token ") && !all.contains("--token="),
        "{what}: {all}"
    );
    assert!(
        all.contains(&format!("--token-file {TOKEN_FILE}")),
        "{what}: {all}"
    );
    let mount = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["mountPath"] == "/var/run/secrets/nslat")
        .unwrap_or_else(|| panic!("{what}: no token mount"));
    assert_eq!(mount["readOnly"], true, "{what}");
    let vol = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(vol["secret"]["secretName"], secret_name, "{what}");
    assert!(c["env"].is_null() || !c["env"].to_string().contains("NSLAT_TOKEN"));
    words
}

fn arg<'a>(words: &'a [String], flag: &str) -> &'a str {
    let i = words
        .iter()
        .position(|w| w == flag)
        .unwrap_or_else(|| panic!("{flag}: {words:?}"));
    &words[i + 1]
}

#[test]
fn rendered_manifests_carry_the_secret_mounts_limits_and_policy() {
    let test = "rendered_manifests_carry_the_secret_mounts_limits_and_policy";
    if !common::need_tool(test, "kubernetes-validate") || !common::need_tool(test, "python3") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();

    // The Secret: rendered fresh, valid, 64 hex digits, different each time.
    let render = || String::from_utf8(common::nslat_ok(&["deploy", "secret"]).stdout).unwrap();
    let (y1, y2) = (render(), render());
    let f = tmp.path().join("secret.yaml");
    std::fs::write(&f, &y1).unwrap();
    validate(&f);
    let s = yaml_to_json(&y1);
    assert_eq!(s["kind"], "Secret");
    assert_eq!(s["metadata"]["namespace"], "nslat");
    let secret_name = s["metadata"]["name"].as_str().unwrap().to_string();
    let token = s["stringData"]["token"].as_str().unwrap().to_string();
    assert!(
        token.len() == 64 && token.bytes().all(|b| b.is_ascii_hexdigit()),
        "{token}"
    );
    assert_ne!(yaml_to_json(&y2)["stringData"]["token"], token.as_str());

    // Both DaemonSets: the token as a file, their own address, limits sized for a measurement.
    for (file, field) in [
        ("serve-host.yaml", "status.hostIP"),
        ("serve-pod.yaml", "status.podIP"),
    ] {
        let path = dir().join(file);
        validate(&path);
        let ds = yaml_to_json(&std::fs::read_to_string(&path).unwrap());
        let pod = &ds["spec"]["template"]["spec"];
        let words = check_container(pod, &secret_name, file);
        let listen = arg(&words, "--listen");
        let env = &pod["containers"][0]["env"][0];
        assert_eq!(
            listen,
            format!("$({})", env["name"].as_str().unwrap()),
            "{file}"
        );
        assert_eq!(env["valueFrom"]["fieldRef"]["fieldPath"], field, "{file}");
        let max_duration: u64 = arg(&words, "--max-duration").parse().unwrap();
        assert!(max_duration <= 600, "{file}: --max-duration {max_duration}");
        assert_eq!(
            max_duration,
            nslat::deploy::job::SERVE_MAX_DURATION_S,
            "{file}"
        );
        let clients: u64 = arg(&words, "--max-clients").parse().unwrap();
        assert!(
            (2..=8).contains(&clients),
            "{file}: --max-clients {clients}"
        );
        let idle: u64 = arg(&words, "--idle-timeout").parse().unwrap();
        assert!(idle <= 10, "{file}: --idle-timeout {idle}");
        assert_eq!(
            pod["containers"][0]["securityContext"]["capabilities"]["drop"][0], "ALL",
            "{file}"
        );
    }

    // The NetworkPolicy: the pod-network servers admit only nslat's own pods and the ipBlock.
    let path = dir().join("networkpolicy.yaml");
    validate(&path);
    let np = yaml_to_json(&std::fs::read_to_string(&path).unwrap());
    assert_eq!(np["kind"], "NetworkPolicy");
    assert_eq!(
        np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"],
        "serve-pod"
    );
    assert_eq!(np["spec"]["policyTypes"], serde_json::json!(["Ingress"]));
    let from = np["spec"]["ingress"][0]["from"].as_array().unwrap();
    assert_eq!(np["spec"]["ingress"].as_array().unwrap().len(), 1);
    for peer in from {
        if let Some(sel) = peer.get("podSelector") {
            // Same namespace only (no namespaceSelector), nslat's pods only.
            assert!(peer.get("namespaceSelector").is_none(), "{peer}");
            assert_eq!(sel["matchLabels"]["app.kubernetes.io/name"], "nslat");
            let c = sel["matchLabels"]["app.kubernetes.io/component"]
                .as_str()
                .unwrap();
            assert!(c == "serve-pod" || c == "pair", "{peer}");
        } else {
            let cidr = peer["ipBlock"]["cidr"].as_str().unwrap();
            assert_ne!(cidr, "0.0.0.0/0", "{peer}");
        }
    }
    let kustomization = std::fs::read_to_string(dir().join("kustomization.yaml")).unwrap();
    assert!(
        kustomization.contains("- networkpolicy.yaml"),
        "{kustomization}"
    );

    // The Job: the same Secret mounted, --token-file on both compares, no token anywhere.
    let out = common::nslat_ok(&[
        "deploy",
        "job",
        "--from",
        "node-a",
        "--to",
        "node-b",
        "--peer-host-ip",
        "10.0.0.2",
        "--peer-pod-ip",
        "10.244.1.5",
    ]);
    let yaml = String::from_utf8(out.stdout).unwrap();
    let f = tmp.path().join("job.yaml");
    std::fs::write(&f, &yaml).unwrap();
    validate(&f);
    let job = yaml_to_json(&yaml);
    let words = check_container(&job["spec"]["template"]["spec"], &secret_name, "job");
    assert_eq!(
        words[2]
            .matches(&format!("--token-file {TOKEN_FILE}"))
            .count(),
        2,
        "{}",
        words[2]
    );
    // A Job whose sessions outlast the servers' --max-duration is refused, one line.
    let out = common::nslat(&[
        "deploy",
        "job",
        "--from",
        "a",
        "--to",
        "b",
        "--peer-host-ip",
        "10.0.0.2",
        "--peer-pod-ip",
        "10.244.1.5",
        "-l",
        "30",
        "--reps",
        "10",
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--max-duration") && err.lines().count() == 1,
        "{err}"
    );
}
