//! deploy/kubernetes: every manifest validates offline against the Kubernetes schemas
//! (kubernetes-validate, pinned in scripts/install-deps), and `nslat deploy job` renders a valid
//! Job for a node pair with the arguments the pair needs.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

fn manifests_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/kubernetes")
}

/// Validates files with kubernetes-validate --strict (unknown fields are errors); offline: it
/// ships the schemas.
fn validate(files: &[PathBuf]) {
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .args(files)
        .output()
        .expect("running kubernetes-validate");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            text.lines()
                .any(|l| l.contains(&name) && l.contains("passed")),
            "{name} not validated: {text}"
        );
    }
}

/// YAML → JSON with the YAML parser kubernetes-validate itself uses (PyYAML).
pub(crate) fn yaml_to_json(yaml: &str) -> Value {
    let mut child = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

const EXAMPLE_ARGS: [&str; 10] = [
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
];

#[test]
fn every_manifest_validates_offline() {
    let test = "every_manifest_validates_offline";
    if !common::need_tool(test, "kubernetes-validate") {
        return;
    }
    let dir = manifests_dir();
    let kustomization = std::fs::read_to_string(dir.join("kustomization.yaml")).unwrap();
    let resources: Vec<PathBuf> = kustomization
        .lines()
        .skip_while(|l| !l.starts_with("resources:"))
        .skip(1)
        .map_while(|l| l.trim().strip_prefix("- "))
        .map(|f| dir.join(f))
        .collect();
    assert_eq!(resources.len(), 4, "{kustomization}");
    let mut all: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .filter(|p| !p.ends_with("kustomization.yaml"))
        .collect();
    all.sort();
    for r in &resources {
        assert!(all.contains(r), "{} listed but missing", r.display());
    }
    validate(&all);

    // The validator is not a rubber stamp: a wrong field type fails.
    let tmp = tempfile::tempdir().unwrap();
    let bad = tmp.path().join("bad.yaml");
    let ds = std::fs::read_to_string(dir.join("serve-host.yaml"))
        .unwrap()
        .replace("hostNetwork: true", "hostNetwork: \"sometimes\"");
    std::fs::write(&bad, ds).unwrap();
    let out = Command::new("kubernetes-validate")
        .arg("--strict")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn the_job_for_a_node_pair_is_valid_and_measures_the_pair() {
    let test = "the_job_for_a_node_pair_is_valid_and_measures_the_pair";
    if !common::need_tool(test, "kubernetes-validate") || !common::need_tool(test, "python3") {
        return;
    }
    let out = common::nslat_ok(&[
        "deploy",
        "job",
        "--from",
        "ip-10-0-1-7.ec2.internal",
        "--to",
        "worker-2",
        "--peer-host-ip",
        "10.0.1.9",
        "--peer-pod-ip",
        "fd00:10:244:2::5",
        "--image",
        "registry.example.com/nslat:0.1.0",
        "-t",
        "UDP_RR",
        "-r",
        "64,64",
        "--reps",
        "7",
    ]);
    let yaml = String::from_utf8(out.stdout).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("job.yaml");
    std::fs::write(&file, &yaml).unwrap();
    validate(std::slice::from_ref(&file));

    let job = yaml_to_json(&yaml);
    assert_eq!(job["kind"], "Job");
    assert_eq!(
        job["metadata"]["name"],
        "nslat-ip-10-0-1-7-ec2-internal-to-worker-2"
    );
    assert_eq!(job["metadata"]["namespace"], "nslat");
    let pod = &job["spec"]["template"]["spec"];
    assert_eq!(pod["hostNetwork"], true);
    assert_eq!(pod["hostPID"], true);
    assert_eq!(pod["restartPolicy"], "Never");
    let terms = &pod["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
        ["nodeSelectorTerms"][0]["matchFields"][0];
    assert_eq!(terms["key"], "metadata.name");
    assert_eq!(
        terms["values"],
        serde_json::json!(["ip-10-0-1-7.ec2.internal"])
    );
    let c = &pod["containers"][0];
    assert_eq!(c["image"], "registry.example.com/nslat:0.1.0");
    assert_eq!(c["securityContext"]["privileged"], true);
    assert_eq!(c["command"][0], "sh");
    let script = c["command"][2].as_str().unwrap();
    let compares: Vec<&str> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix("if ! nslat compare "))
        .collect();
    assert_eq!(compares.len(), 2, "{script}");
    for (line, remote, network) in [
        (compares[0], "10.0.1.9:12866", "host"),
        (compares[1], "[fd00:10:244:2::5]:12866", "pod"),
    ] {
        let words: Vec<&str> = line.split_whitespace().collect();
        let arg = |flag: &str| {
            let i = words
                .iter()
                .position(|w| *w == flag)
                .unwrap_or_else(|| panic!("{flag}: {line}"));
            words[i + 1]
        };
        assert_eq!(arg("--remote").trim_matches('\''), remote, "{line}");
        assert_eq!(arg("--target"), "\"pod=pid:$pod_pid\"", "{line}");
        assert_eq!(arg("--modes"), "host");
        assert_eq!(arg("-t"), "UDP_RR");
        assert_eq!(arg("-r"), "64,64");
        assert_eq!(arg("--reps"), "7");
        assert_eq!(arg("--node"), "ip-10-0-1-7.ec2.internal");
        assert_eq!(arg("--peer"), "worker-2");
        assert_eq!(arg("--peer-network"), network);
        // The node is measured as it is: no checks, no lab built beside it.
        assert!(
            words.contains(&"--no-checks") && words.contains(&"--no-lab"),
            "{line}"
        );
        assert!(
            arg("--json").ends_with(&format!(".{network}.json")),
            "{line}"
        );
    }
    // The script is valid sh for the image's busybox.
    if common::need_tool(test, "busybox") {
        let st = Command::new("busybox")
            .args(["sh", "-n", "-c", script])
            .status()
            .unwrap();
        assert!(st.success(), "{script}");
    }
}

#[test]
fn the_committed_example_job_is_what_the_renderer_prints() {
    let out = common::nslat_ok(&EXAMPLE_ARGS);
    let rendered = String::from_utf8(out.stdout).unwrap();
    let committed = std::fs::read_to_string(manifests_dir().join("job-example.yaml")).unwrap();
    assert_eq!(
        committed,
        rendered,
        "deploy/kubernetes/job-example.yaml is stale: regenerate it with `nslat {}`",
        EXAMPLE_ARGS.join(" ")
    );
}

#[test]
fn bad_node_names_are_one_line_and_exit_2() {
    let mut args = EXAMPLE_ARGS.to_vec();
    args[3] = "Node_A";
    let out = common::nslat(&args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("--from 'Node_A'") && err.contains("kubectl get nodes"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
}
