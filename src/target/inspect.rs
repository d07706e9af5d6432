//! The JSON the container tools print (`docker inspect`, `podman inspect`, `crictl inspectp`,
//! `crictl pods -o json`), parsed into the few fields that locate a network namespace. Pure:
//! running the tools is resolve.rs's job.

use serde::Deserialize;

use super::TargetError;

/// Where a tool says a namespace is: a process whose `/proc/PID/ns/net` it is, and/or a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The process to take `/proc/PID/ns/net` from (preferred: it also tells when the container exits).
    pub pid: Option<u32>,
    /// An nsfs path the tool names (Docker's and Podman's SandboxKey, the CRI runtime spec's path).
    pub path: Option<String>,
    /// Which field gave it, for the report, e.g. "docker inspect State.Pid".
    pub how: String,
    /// The tool says the container uses the host's network (Docker/Podman NetworkMode host, CRI NODE).
    pub host_network: bool,
}

/// `docker inspect` / `podman inspect`: an array of container objects. Both follow Docker's shape.
#[derive(Debug, Deserialize)]
struct ContainerJson {
    #[serde(rename = "State")]
    state: ContainerState,
    #[serde(rename = "NetworkSettings", default)]
    network: Option<NetworkSettings>,
    #[serde(rename = "HostConfig", default)]
    host_config: Option<HostConfig>,
}

#[derive(Debug, Deserialize)]
struct ContainerState {
    #[serde(rename = "Status", default)]
    status: String,
    #[serde(rename = "Running", default)]
    running: bool,
    #[serde(rename = "Pid", default)]
    pid: i64,
}

#[derive(Debug, Deserialize)]
struct NetworkSettings {
    #[serde(rename = "SandboxKey", default)]
    sandbox_key: String,
}

#[derive(Debug, Deserialize)]
struct HostConfig {
    #[serde(rename = "NetworkMode", default)]
    network_mode: String,
}

/// Parses `docker inspect` (tool = "docker") or `podman inspect` output for `container`.
pub fn parse_container(tool: &str, container: &str, json: &str) -> Result<Located, TargetError> {
    let spec = format!("{tool}:{container}");
    let items: Vec<ContainerJson> =
        serde_json::from_str(json).map_err(|e| TargetError::BadToolOutput {
            spec: spec.clone(),
            tool: format!("{tool} inspect"),
            why: e.to_string(),
        })?;
    let item = match items.as_slice() {
        [one] => one,
        [] => return Err(TargetError::NoSuchContainer { spec }),
        _ => {
            return Err(TargetError::Ambiguous {
                spec,
                n: items.len(),
            })
        }
    };
    if !item.state.running || item.state.pid <= 0 {
        let status = if item.state.status.is_empty() {
            "not running".to_string()
        } else {
            item.state.status.clone()
        };
        return Err(TargetError::NotRunning {
            spec,
            status,
            remedy: format!("start it (`{tool} start {container}`)"),
        });
    }
    let host_network = item
        .host_config
        .as_ref()
        .is_some_and(|h| h.network_mode == "host");
    let path = item
        .network
        .as_ref()
        .map(|n| n.sandbox_key.clone())
        .filter(|k| !k.is_empty());
    Ok(Located {
        pid: u32::try_from(item.state.pid).ok(),
        path,
        how: format!("{tool} inspect State.Pid {}", item.state.pid),
        host_network,
    })
}

/// `crictl inspectp -o json POD`.
#[derive(Debug, Deserialize)]
struct PodJson {
    status: PodStatus,
    #[serde(default)]
    info: Option<PodInfo>,
}

#[derive(Debug, Deserialize)]
struct PodStatus {
    #[serde(default)]
    state: String,
    #[serde(default)]
    linux: Option<PodLinux>,
}

#[derive(Debug, Deserialize)]
struct PodLinux {
    #[serde(default)]
    namespaces: Option<PodNamespaces>,
}

#[derive(Debug, Deserialize)]
struct PodNamespaces {
    #[serde(default)]
    options: Option<PodNamespaceOptions>,
}

#[derive(Debug, Deserialize)]
struct PodNamespaceOptions {
    /// "POD" (its own) or "NODE" (hostNetwork).
    #[serde(default)]
    network: String,
}

#[derive(Debug, Deserialize)]
struct PodInfo {
    #[serde(default)]
    pid: i64,
    #[serde(rename = "runtimeSpec", default)]
    runtime_spec: Option<RuntimeSpec>,
}

#[derive(Debug, Deserialize)]
struct RuntimeSpec {
    #[serde(default)]
    linux: Option<RuntimeLinux>,
}

#[derive(Debug, Deserialize)]
struct RuntimeLinux {
    #[serde(default)]
    namespaces: Vec<OciNamespace>,
}

#[derive(Debug, Deserialize)]
struct OciNamespace {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    path: Option<String>,
}

/// Parses `crictl inspectp -o json` output for `pod`.
pub fn parse_pod(pod: &str, json: &str) -> Result<Located, TargetError> {
    let spec = format!("cri:{pod}");
    let p: PodJson = serde_json::from_str(json).map_err(|e| TargetError::BadToolOutput {
        spec: spec.clone(),
        tool: "crictl inspectp".into(),
        why: e.to_string(),
    })?;
    if p.status.state != "SANDBOX_READY" {
        return Err(TargetError::NotRunning {
            spec,
            status: p.status.state.to_lowercase().replace('_', " "),
            remedy: "pick a ready pod (`crictl pods`)".into(),
        });
    }
    let host_network = p
        .status
        .linux
        .and_then(|l| l.namespaces)
        .and_then(|n| n.options)
        .is_some_and(|o| o.network == "NODE");
    let info = p.info.ok_or_else(|| TargetError::BadToolOutput {
        spec: spec.clone(),
        tool: "crictl inspectp".into(),
        why: "no info object (run crictl inspectp with -o json, as root)".into(),
    })?;
    let path = info
        .runtime_spec
        .and_then(|r| r.linux)
        .and_then(|l| l.namespaces.into_iter().find(|n| n.kind == "network"))
        .and_then(|n| n.path)
        .filter(|p| !p.is_empty());
    let pid = u32::try_from(info.pid).ok().filter(|p| *p > 0);
    let how = match (&path, pid) {
        (Some(_), _) => "crictl inspectp info.runtimeSpec.linux.namespaces network path".into(),
        (None, Some(p)) => format!("crictl inspectp info.pid {p}"),
        (None, None) => {
            return Err(TargetError::BadToolOutput {
                spec,
                tool: "crictl inspectp".into(),
                why: "neither a network namespace path nor a pid in info".into(),
            })
        }
    };
    Ok(Located {
        pid,
        path,
        how,
        host_network,
    })
}

#[derive(Debug, Deserialize)]
struct PodList {
    #[serde(default)]
    items: Vec<PodListItem>,
}

#[derive(Debug, Deserialize)]
struct PodListItem {
    id: String,
}

/// Parses `crictl pods --name POD -o json`: the ids of the pods so named.
pub fn parse_pod_ids(json: &str) -> Result<Vec<String>, serde_json::Error> {
    let l: PodList = serde_json::from_str(json)?;
    Ok(l.items.into_iter().map(|i| i.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> String {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn docker_running_container() {
        let l = parse_container("docker", "web", &fixture("docker_inspect_running.json")).unwrap();
        assert_eq!(l.pid, Some(20047));
        assert_eq!(
            l.path.as_deref(),
            Some("/var/run/docker/netns/d0ebba969dc8")
        );
        assert!(!l.host_network);
        assert!(l.how.contains("State.Pid 20047"), "{}", l.how);
    }

    #[test]
    fn docker_host_network() {
        let l = parse_container("docker", "h", &fixture("docker_inspect_host.json")).unwrap();
        assert!(l.host_network);
        assert_eq!(l.path.as_deref(), Some("/var/run/docker/netns/default"));
    }

    #[test]
    fn docker_stopped_and_created_are_not_running() {
        for f in ["docker_inspect_exited.json", "docker_inspect_created.json"] {
            let e = parse_container("docker", "web", &fixture(f)).unwrap_err();
            assert!(matches!(e, TargetError::NotRunning { .. }), "{f}: {e}");
            let text = e.to_string();
            assert!(text.contains("docker start web"), "{text}");
        }
        let e =
            parse_container("docker", "web", &fixture("docker_inspect_exited.json")).unwrap_err();
        assert!(e.to_string().contains("exited"), "{e}");
    }

    #[test]
    fn docker_empty_array_is_no_such_container() {
        let e = parse_container("docker", "nosuch", "[]").unwrap_err();
        assert!(matches!(e, TargetError::NoSuchContainer { .. }), "{e}");
        let e = parse_container("docker", "x", "not json").unwrap_err();
        assert!(matches!(e, TargetError::BadToolOutput { .. }), "{e}");
    }

    #[test]
    fn podman_follows_the_same_shape() {
        let l = parse_container("podman", "web", &fixture("podman_inspect_running.json")).unwrap();
        assert_eq!(l.pid, Some(31337));
        assert!(l.path.unwrap().starts_with("/run/netns/netns-"));
        let e =
            parse_container("podman", "web", &fixture("podman_inspect_exited.json")).unwrap_err();
        assert!(e.to_string().contains("podman start web"), "{e}");
    }

    #[test]
    fn cri_pod_namespace_path_and_pid() {
        let l = parse_pod("web", &fixture("crictl_inspectp_ready.json")).unwrap();
        assert_eq!(
            l.path.as_deref(),
            Some("/var/run/netns/cni-1a2b3c4d-5e6f-7081-92a3-b4c5d6e7f809")
        );
        assert_eq!(l.pid, Some(4242));
        assert!(!l.host_network);
        assert!(l.how.contains("runtimeSpec"), "{}", l.how);
    }

    #[test]
    fn cri_host_network_pod_falls_back_to_pid() {
        let l = parse_pod("kp", &fixture("crictl_inspectp_hostnetwork.json")).unwrap();
        assert!(l.host_network);
        assert_eq!(l.path, None);
        assert_eq!(l.pid, Some(977));
        assert!(l.how.contains("info.pid 977"));
    }

    #[test]
    fn cri_not_ready_pod_is_refused() {
        let e = parse_pod("web", &fixture("crictl_inspectp_notready.json")).unwrap_err();
        assert!(e.to_string().contains("sandbox notready"), "{e}");
    }

    #[test]
    fn cri_pod_list_gives_ids() {
        let ids = parse_pod_ids(&fixture("crictl_pods.json")).unwrap();
        assert_eq!(ids.len(), 1);
        assert!(ids[0].starts_with("9b3f1c2d"));
        assert!(parse_pod_ids(r#"{"items":[]}"#).unwrap().is_empty());
    }
}
