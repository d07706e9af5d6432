//! `nslat deploy job`: prints the Kubernetes Job that measures one node pair.

use std::net::IpAddr;
use std::time::Duration;

use super::run::{parse_positive_secs, parse_rr_sizes};
use crate::bench::TestKind;
use crate::deploy::PairJob;

#[derive(Debug, clap::Subcommand)]
pub enum DeployCommand {
    /// Print the Job (YAML) that measures host→host, pod→host, host→pod and pod→pod from one
    /// node to another (apply it with `kubectl apply -f -`).
    Job(JobArgs),
    /// Print the Secret (YAML) with a fresh token for the servers and the Jobs (apply it with
    /// `kubectl apply -f -`; applying a new one changes the token).
    Secret(SecretArgs),
}

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Print the Secret `nslat-token` with a fresh token (32 random bytes as 64 hex \
    digits), which the DaemonSets of deploy/kubernetes and the pair Jobs mount as a file \
    (`--token-file /var/run/secrets/nslat/token`): the token is never on a command line. The \
    DaemonSets' pods wait for it. Applying a new one changes the token: restart the DaemonSets \
    afterwards (`kubectl -n nslat rollout restart daemonset`).\n\n\
    Example:\n  \
    nslat deploy secret | kubectl apply -f -"
)]
pub struct SecretArgs {
    /// The Kubernetes namespace of the DaemonSets.
    #[arg(long, value_name = "NAME", default_value = crate::deploy::job::NAMESPACE)]
    namespace: String,
}

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Print the Kubernetes Job that measures one node pair: on node --from, privileged \
    with the host's network and PID namespaces, `nslat compare` against node --to's hostNetwork \
    `nslat serve` (host→host, pod→host) and its pod-network one (host→pod, pod→pod); \"pod\" is \
    the pod-network DaemonSet's pod on --from, measured as `--target pod=pid:N`. The Job's log \
    is the two JSON reports (`kubectl logs job/NAME > NAME.json`, then `nslat report merge`).\n\n\
    Needs the namespace and DaemonSets of deploy/kubernetes (kubectl apply -k deploy/kubernetes) \
    and the token Secret (nslat deploy secret | kubectl apply -f -), which the Job mounts as a file.\n\n\
    Example:\n  \
    nslat deploy job --from node-a --to node-b --peer-host-ip 10.0.0.2 --peer-pod-ip 10.244.1.5 | kubectl apply -f -"
)]
pub struct JobArgs {
    /// The node the Job runs on (the client side), as `kubectl get nodes` names it.
    #[arg(long, value_name = "NODE")]
    from: String,
    /// The node measured against.
    #[arg(long, value_name = "NODE")]
    to: String,
    /// --to's node address (its hostNetwork nslat serve).
    #[arg(long, value_name = "IP")]
    peer_host_ip: IpAddr,
    /// The pod IP of the pod-network nslat serve on --to.
    #[arg(long, value_name = "IP")]
    peer_pod_ip: IpAddr,
    /// The servers' port.
    #[arg(long, value_name = "PORT", default_value_t = crate::bench::DEFAULT_PORT)]
    port: u16,
    /// The image (as the cluster can pull it) [default: nslat:<version>].
    #[arg(long, value_name = "IMAGE")]
    image: Option<String>,
    /// The Kubernetes namespace of the DaemonSets.
    #[arg(long, value_name = "NAME", default_value = crate::deploy::job::NAMESPACE)]
    namespace: String,
    /// Test: TCP_RR, UDP_RR, TCP_CRR, TCP_STREAM or TCP_MAERTS.
    #[arg(
        short = 't',
        long = "test",
        value_name = "TEST",
        default_value = "TCP_RR"
    )]
    test: TestKind,
    /// Request and response sizes in bytes.
    #[arg(short = 'r', value_name = "REQ,RESP", default_value = "1,1", value_parser = parse_rr_sizes)]
    sizes: (usize, usize),
    /// Measured seconds per run.
    #[arg(short = 'l', long = "length", value_name = "SECS", default_value = "2", value_parser = parse_positive_secs)]
    length: Duration,
    /// Repetitions per path.
    #[arg(long, value_name = "N", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    reps: u32,
}

pub fn run(cmd: DeployCommand) -> anyhow::Result<()> {
    match cmd {
        DeployCommand::Job(a) => {
            let mut job = PairJob::new(&a.from, &a.to, a.peer_host_ip, a.peer_pod_ip);
            job.port = a.port;
            if let Some(image) = a.image {
                job.image = image;
            }
            job.namespace = a.namespace;
            job.test = a.test;
            (job.request_size, job.response_size) = a.sizes;
            job.length_s = a.length.as_secs_f64();
            job.reps = a.reps as usize;
            print!("{}", job.render()?);
            Ok(())
        }
        DeployCommand::Secret(a) => {
            print!("{}", crate::deploy::secret::render(&a.namespace)?);
            Ok(())
        }
    }
}
