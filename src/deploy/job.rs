//! The pair Job: one Kubernetes Job per chosen node pair, on the first node, privileged with the
//! host's network and PID namespaces, measuring against the second node's two `nslat serve`
//! DaemonSets (deploy/kubernetes/): host→host and pod→host against the hostNetwork one, host→pod
//! and pod→pod against the pod-network one. "pod" is the pod-network DaemonSet's pod on the first
//! node, found by its process (`nslat serve` in another network namespace) and measured as
//! `--target pod=pid:N`. The Job prints both compare JSON reports to its log (nothing else on
//! stdout), ready for `nslat report merge`, and keeps them in /var/lib/nslat/results on the node.

use std::net::{IpAddr, SocketAddr};

use super::kube::{
    Affinity, Container, HostPath, Job, JobSpec, ObjectMeta, PodSpec, PodTemplate, SecretVolume,
    SecurityContext, Toleration, Volume, VolumeMount,
};
use super::DeployError;
use crate::bench::TestKind;
use crate::compare::PeerNetwork;

/// The Kubernetes namespace deploy/kubernetes/namespace.yaml creates.
pub const NAMESPACE: &str = "nslat";
/// Where the Job keeps its reports, on the node and in the container.
pub const RESULTS_HOST_DIR: &str = "/var/lib/nslat/results";
pub const RESULTS_DIR: &str = "/results";
/// The Secret holding the servers' token (`nslat deploy secret`), its key, and where the
/// DaemonSets and the Job mount it: the token reaches `nslat` as a file, never as an argument.
pub const TOKEN_SECRET: &str = "nslat-token";
pub const TOKEN_KEY: &str = "token";
pub const TOKEN_DIR: &str = "/var/run/secrets/nslat";
pub const TOKEN_FILE: &str = "/var/run/secrets/nslat/token";
/// The DaemonSets' `nslat serve --max-duration` (deploy/kubernetes/serve-*.yaml): the longest
/// session a Job may ask for.
pub const SERVE_MAX_DURATION_S: u64 = 300;

/// What to measure across one node pair.
#[derive(Debug, Clone, PartialEq)]
pub struct PairJob {
    /// The node the Job runs on (the client side), by its Kubernetes node name.
    pub from: String,
    /// The node whose servers it measures against.
    pub to: String,
    /// `to`'s address on the node network (its hostNetwork `nslat serve`).
    pub peer_host_ip: IpAddr,
    /// The pod IP of the pod-network `nslat serve` on `to`.
    pub peer_pod_ip: IpAddr,
    pub port: u16,
    pub image: String,
    pub namespace: String,
    pub test: TestKind,
    pub request_size: usize,
    pub response_size: usize,
    /// Measured seconds per run.
    pub length_s: f64,
    pub reps: usize,
}

impl PairJob {
    /// The defaults for a pair: TCP_RR 1,1, 2 s × 5 reps, port 12866, image nslat:<version>.
    pub fn new(from: &str, to: &str, peer_host_ip: IpAddr, peer_pod_ip: IpAddr) -> PairJob {
        PairJob {
            from: from.to_string(),
            to: to.to_string(),
            peer_host_ip,
            peer_pod_ip,
            port: crate::bench::DEFAULT_PORT,
            image: format!("nslat:{}", env!("CARGO_PKG_VERSION")),
            namespace: NAMESPACE.to_string(),
            test: TestKind::TcpRr,
            request_size: 1,
            response_size: 1,
            length_s: 2.0,
            reps: 5,
        }
    }

    /// Node names must be DNS subdomains (what Kubernetes allows for node names).
    pub fn validate(&self) -> Result<(), DeployError> {
        for (flag, name) in [("--from", &self.from), ("--to", &self.to)] {
            if !is_dns_subdomain(name) {
                return Err(DeployError::BadNodeName {
                    flag,
                    name: name.clone(),
                });
            }
        }
        if !(self.length_s > 0.0 && self.length_s.is_finite()) || self.reps == 0 {
            return Err(DeployError::BadMeasure);
        }
        let session = self.session_s();
        if session > SERVE_MAX_DURATION_S as f64 {
            return Err(DeployError::TooLong {
                session,
                max: SERVE_MAX_DURATION_S,
            });
        }
        Ok(())
    }

    /// How long each compare's sessions last, as the servers are asked (the host path and the
    /// pod target, interleaved on one schedule): it must fit the DaemonSets' --max-duration.
    pub fn session_s(&self) -> f64 {
        let opts = crate::compare::CompareOptions {
            test: self.test,
            duration: std::time::Duration::from_secs_f64(self.length_s.min(1e7)),
            reps: crate::compare::RepsChoice::Fixed(self.reps),
            ..crate::compare::CompareOptions::default()
        };
        crate::measure::sockets::session_length(&opts.schedule_config(2, 1)).as_secs_f64()
    }

    /// The Job's name: `nslat-<from>-to-<to>`, made a DNS label (at most 63 characters).
    pub fn name(&self) -> String {
        let raw = format!("nslat-{}-to-{}", self.from, self.to);
        let mut name: String = raw
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_lowercase()
                } else {
                    '-'
                }
            })
            .collect();
        name.truncate(63);
        name.trim_end_matches('-').to_string()
    }

    /// The file a report goes to in the container.
    pub fn result_file(&self, network: PeerNetwork) -> String {
        format!("{RESULTS_DIR}/{}.{network}.json", self.name())
    }

    /// The server the Job measures against for one of the peer's networks.
    pub fn remote(&self, network: PeerNetwork) -> SocketAddr {
        let ip = match network {
            PeerNetwork::Host => self.peer_host_ip,
            PeerNetwork::Pod => self.peer_pod_ip,
        };
        SocketAddr::new(ip, self.port)
    }

    /// The `nslat compare` arguments for one peer network; `pod_target` is the `--target` value
    /// (in the script, the shell expands the pod's PID into it).
    pub fn compare_args(&self, network: PeerNetwork, pod_target: &str) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "compare".into(),
            "--remote".into(),
            self.remote(network).to_string(),
            "--modes".into(),
            "host".into(),
            "--target".into(),
            pod_target.into(),
            "-t".into(),
            self.test.name().into(),
            "-r".into(),
            format!("{},{}", self.request_size, self.response_size),
            "-l".into(),
            self.length_s.to_string(),
            "--reps".into(),
            self.reps.to_string(),
            "--no-checks".into(),
            // On a cluster's node: measure what is there, build no lab beside it.
            "--no-lab".into(),
            // The servers' token, from the mounted Secret (never on a command line).
            "--token-file".into(),
            TOKEN_FILE.into(),
        ];
        a.extend([
            "--node".into(),
            self.from.clone(),
            "--peer".into(),
            self.to.clone(),
            "--peer-network".into(),
            network.to_string(),
            "--json".into(),
            self.result_file(network),
        ]);
        a
    }

    /// The container's shell script (busybox sh in the image).
    pub fn script(&self) -> String {
        let mut s = String::from(
            "set -eu\n\
             # The pod-network DaemonSet's `nslat serve` on this node: in another network namespace.\n\
             self=$(readlink /proc/self/ns/net)\n\
             pod_pid=\n\
             for d in /proc/[0-9]*; do\n\
             \x20 case \"$(tr '\\0' ' ' < \"$d/cmdline\" 2>/dev/null)\" in\n\
             \x20   \"nslat serve \"*) if [ \"$(readlink \"$d/ns/net\" 2>/dev/null)\" != \"$self\" ]; then pod_pid=${d#/proc/}; break; fi ;;\n\
             \x20 esac\n\
             done\n\
             if [ -z \"$pod_pid\" ]; then echo \"nslat job: no pod-network nslat serve runs on this node (kubectl apply -k deploy/kubernetes)\"; exit 1; fi\n\
             mkdir -p /results\n",
        );
        for network in [PeerNetwork::Host, PeerNetwork::Pod] {
            let args: Vec<String> = self
                .compare_args(network, "@POD@")
                .iter()
                .map(|a| {
                    if a == "@POD@" {
                        "\"pod=pid:$pod_pid\"".to_string()
                    } else {
                        shell_quote(a)
                    }
                })
                .collect();
            let log = format!("{RESULTS_DIR}/{}.{network}.log", self.name());
            s.push_str(&format!(
                "# {from} → {to}, {network} network\n\
                 if ! nslat {args} >{log} 2>&1; then cat {log}; exit 1; fi\n",
                from = self.from,
                to = self.to,
                args = args.join(" "),
                log = shell_quote(&log),
            ));
        }
        s.push_str(&format!(
            "# stdout: the two reports only (kubectl logs job/{name} > {name}.json)\n\
             cat {} {}\n",
            shell_quote(&self.result_file(PeerNetwork::Host)),
            shell_quote(&self.result_file(PeerNetwork::Pod)),
            name = self.name(),
        ));
        s
    }

    /// The Job object.
    pub fn manifest(&self) -> Result<Job, DeployError> {
        self.validate()?;
        let labels: std::collections::BTreeMap<String, String> = [
            ("app.kubernetes.io/name", "nslat"),
            ("app.kubernetes.io/component", "pair"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let annotations = [("nslat.dev/from", &self.from), ("nslat.dev/to", &self.to)]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let runs = 2.0 * 2.0 * self.reps as f64 * (self.length_s + 1.0);
        Ok(Job {
            api_version: "batch/v1".into(),
            kind: "Job".into(),
            metadata: ObjectMeta {
                name: Some(self.name()),
                namespace: Some(self.namespace.clone()),
                labels: labels.clone(),
                annotations,
            },
            spec: JobSpec {
                backoff_limit: 0,
                // Generous: the runs plus setup, so a hung peer cannot keep the Job forever.
                active_deadline_seconds: (runs * 3.0) as u64 + 300,
                ttl_seconds_after_finished: 86_400,
                template: PodTemplate {
                    metadata: ObjectMeta {
                        labels,
                        ..ObjectMeta::default()
                    },
                    spec: PodSpec {
                        host_network: true,
                        host_pid: true,
                        dns_policy: "ClusterFirstWithHostNet".into(),
                        restart_policy: "Never".into(),
                        affinity: Affinity::node_named(&self.from),
                        tolerations: vec![Toleration {
                            operator: "Exists".into(),
                        }],
                        containers: vec![Container {
                            name: "compare".into(),
                            image: self.image.clone(),
                            image_pull_policy: "IfNotPresent".into(),
                            command: vec!["sh".into(), "-c".into(), self.script()],
                            security_context: SecurityContext { privileged: true },
                            volume_mounts: vec![
                                VolumeMount {
                                    name: "results".into(),
                                    mount_path: RESULTS_DIR.into(),
                                    read_only: false,
                                },
                                VolumeMount {
                                    name: "token".into(),
                                    mount_path: TOKEN_DIR.into(),
                                    read_only: true,
                                },
                            ],
                        }],
                        volumes: vec![
                            Volume {
                                name: "results".into(),
                                host_path: Some(HostPath {
                                    path: RESULTS_HOST_DIR.into(),
                                    kind: "DirectoryOrCreate".into(),
                                }),
                                secret: None,
                            },
                            Volume {
                                name: "token".into(),
                                host_path: None,
                                secret: Some(SecretVolume {
                                    secret_name: TOKEN_SECRET.into(),
                                    default_mode: 0o400,
                                }),
                            },
                        ],
                    },
                },
            },
        })
    }

    /// The Job as YAML.
    pub fn render(&self) -> Result<String, DeployError> {
        let job = self.manifest()?;
        let yaml = super::yaml::to_yaml(&job).map_err(DeployError::Encode)?;
        Ok(format!(
            "# nslat pair Job {} → {} (rendered by `nslat deploy job`)\n{yaml}",
            self.from, self.to
        ))
    }
}

fn is_dns_subdomain(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
}

/// Single-quotes a word for sh unless it is plainly safe.
fn shell_quote(s: &str) -> String {
    let safe = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-,:=@".contains(&b));
    if safe {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> PairJob {
        PairJob::new(
            "node-a",
            "node-b",
            "10.0.0.2".parse().unwrap(),
            "10.244.1.5".parse().unwrap(),
        )
    }

    #[test]
    fn compare_arguments_per_peer_network() {
        let j = job();
        let host = j.compare_args(PeerNetwork::Host, "pod=pid:7");
        let s = host.join(" ");
        assert!(
            s.starts_with("compare --remote 10.0.0.2:12866 --modes host --target pod=pid:7"),
            "{s}"
        );
        assert!(
            s.contains(
                "-t TCP_RR -r 1,1 -l 2 --reps 5 --no-checks --no-lab --token-file /var/run/secrets/nslat/token"
            ),
            "{s}"
        );
        assert!(s.ends_with(
            "--node node-a --peer node-b --peer-network host --json /results/nslat-node-a-to-node-b.host.json"
        ), "{s}");
        let pod = j.compare_args(PeerNetwork::Pod, "pod=pid:7").join(" ");
        assert!(pod.contains("--remote 10.244.1.5:12866"), "{pod}");
        assert!(pod.contains("--peer-network pod"), "{pod}");
    }

    #[test]
    fn the_manifest_pins_the_first_node_with_host_namespaces() {
        let m = job().manifest().unwrap();
        assert_eq!(m.metadata.name.as_deref(), Some("nslat-node-a-to-node-b"));
        let spec = &m.spec.template.spec;
        assert!(spec.host_network && spec.host_pid);
        assert_eq!(
            spec.affinity.node_affinity.required.node_selector_terms[0].match_fields[0].values,
            ["node-a"]
        );
        let c = &spec.containers[0];
        assert!(c.security_context.privileged);
        assert_eq!(c.command[..2], ["sh".to_string(), "-c".into()]);
        let script = &c.command[2];
        assert!(script.contains("\"pod=pid:$pod_pid\""), "{script}");
        assert!(
            script.contains("nslat compare --remote 10.0.0.2:12866"),
            "{script}"
        );
        assert!(
            script.contains("nslat compare --remote 10.244.1.5:12866"),
            "{script}"
        );
        assert!(script.trim_end().ends_with(
            "cat /results/nslat-node-a-to-node-b.host.json /results/nslat-node-a-to-node-b.pod.json"
        ), "{script}");
    }

    #[test]
    fn names_are_checked_and_job_names_made_dns_labels() {
        let mut j = job();
        j.from = "Node_A".into();
        assert!(j.manifest().unwrap_err().to_string().contains("--from"));
        j.from = "ip-10-0-0-1.ec2.internal".into();
        j.to = "x".repeat(60);
        let name = j.name();
        assert!(name.len() <= 63 && !name.ends_with('-'), "{name}");
        assert!(
            name.starts_with("nslat-ip-10-0-0-1-ec2-internal-to-x"),
            "{name}"
        );
        j.reps = 0;
        assert!(j.manifest().is_err());
    }

    #[test]
    fn sessions_must_fit_the_servers_max_duration() {
        let mut j = job();
        // 2 paths × 5 reps × 2 s, warm-up 0.3 s, doubled for switching, + 5 s.
        assert!((j.session_s() - 45.6).abs() < 0.01, "{}", j.session_s());
        assert!(j.manifest().is_ok());
        j.length_s = 10.0;
        j.reps = 8;
        let e = j.manifest().unwrap_err().to_string();
        assert!(e.contains("--max-duration 300") && !e.contains('\n'), "{e}");
    }

    #[test]
    fn shell_quoting() {
        assert_eq!(shell_quote("10.0.0.2:12866"), "10.0.0.2:12866");
        assert_eq!(shell_quote("a b"), "'a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote("$x"), "'$x'");
    }
}
