//! `nslat attach` and `nslat detach`.

use crate::attach::{self, AttachSpec, Target};
use crate::target::{Source, TargetSpec};

#[derive(Debug, clap::Args)]
#[group(id = "target", required = true, multiple = false, args = ["pid", "netns", "docker", "podman"])]
pub struct TargetArgs {
    /// The container's process id (e.g. `docker inspect -f '{{.State.Pid}}' NAME`).
    #[arg(long)]
    pid: Option<u32>,
    /// The container's network namespace: a name from `ip netns list` or a path like /proc/PID/ns/net.
    #[arg(long)]
    netns: Option<String>,
    /// The Docker container (name or id): its namespace from `docker inspect` State.Pid.
    #[arg(long, value_name = "CONTAINER")]
    docker: Option<String>,
    /// The Podman container (name or id): its namespace from `podman inspect` State.Pid.
    #[arg(long, value_name = "CONTAINER")]
    podman: Option<String>,
}

impl TargetArgs {
    /// The container's namespace; `--docker`/`--podman` are resolved the way `compare --target`
    /// resolves them (the tool's JSON, a running container only).
    fn target(&self) -> anyhow::Result<Target> {
        let container = |source: Source| -> anyhow::Result<Target> {
            let spec = TargetSpec {
                name: "attach".into(),
                source,
            };
            let t = crate::target::resolve(&spec)?;
            Ok(Target::Netns(t.opened_from.display().to_string()))
        };
        match (&self.pid, &self.netns, &self.docker, &self.podman) {
            (Some(pid), ..) => Ok(Target::Pid(*pid)),
            (_, Some(n), ..) => Ok(Target::Netns(n.clone())),
            (_, _, Some(c), _) => container(format!("docker:{c}").parse()?),
            (_, _, _, Some(c)) => container(format!("podman:{c}").parse()?),
            _ => unreachable!("clap requires one"),
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct AttachArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// macvlan, ipvlan-l2, ipvlan-l3 or bridge.
    #[arg(long)]
    mode: String,
    /// The parent interface: the NIC (macvlan, ipvlan) or the bridge (bridge).
    #[arg(long)]
    parent: String,
    /// The namespace the parent lives in (default: this process's).
    #[arg(long)]
    parent_netns: Option<String>,
    /// The container's address with prefix length, e.g. 198.18.0.50/24.
    #[arg(long)]
    addr: String,
    /// A default route via this gateway inside the container.
    #[arg(long)]
    gateway: Option<String>,
    /// The interface name inside the container.
    #[arg(long, default_value = "nslat0")]
    ifname: String,
    /// Also give the host (the parent's namespace) a macvlan/ipvlan of its own on the same parent
    /// with this address and a route to the container, so host <-> container works.
    #[arg(long, value_name = "IP")]
    host_shim: Option<String>,
    /// The hybrid (macvlan/ipvlan modes, IPv4): also a veth pair to the parent's namespace that
    /// carries the Service CIDR and traffic to the node, so the node's DNAT (kube-proxy) and
    /// firewall see it; the data path stays on macvlan/ipvlan.
    #[arg(long)]
    service_veth: bool,
    /// The Service network routed through the --service-veth veth (your cluster's Service CIDR,
    /// e.g. 10.96.0.0/12).
    #[arg(long, value_name = "CIDR", requires = "service_veth", default_value = crate::lab::plan::CLUSTER_CIDR)]
    service_cidr: String,
}

#[derive(Debug, clap::Args)]
pub struct DetachArgs {
    #[command(flatten)]
    target: TargetArgs,
    /// Only this interface (default: everything nslat attached there).
    #[arg(long)]
    ifname: Option<String>,
}

pub fn run_attach(args: AttachArgs) -> anyhow::Result<()> {
    let mode = args.mode.parse()?;
    let (addr, prefix) = crate::cidr::parse_cidr(&args.addr)?;
    let gateway = match &args.gateway {
        Some(g) => Some(
            g.parse()
                .map_err(|_| attach::AttachError::BadGateway(g.clone()))?,
        ),
        None => None,
    };
    let host_shim = match &args.host_shim {
        Some(a) => Some(
            a.parse()
                .map_err(|_| attach::AttachError::BadShim(a.clone()))?,
        ),
        None => None,
    };
    let service_cidr = match args.service_veth {
        true => Some(crate::cidr::parse_service_cidr(&args.service_cidr)?),
        false => None,
    };
    let spec = AttachSpec {
        host_shim,
        service_cidr,
        target: args.target.target()?,
        mode,
        parent: args.parent,
        parent_netns: args.parent_netns,
        addr,
        prefix,
        gateway,
        ifname: args.ifname,
    };
    let rec = attach::attach(&spec)?;
    for w in &rec.warnings {
        eprintln!("warning: {w}");
    }
    println!(
        "attached {} {} ({}/{}) to {} (parent {}); undo with `nslat detach --netns {}`",
        rec.mode,
        rec.ifname,
        rec.addr,
        rec.prefix,
        rec.netns.display(),
        rec.parent,
        rec.netns.display()
    );
    if let Some(sv) = &rec.service_veth {
        println!(
            "service veth {} (container) <-> {} (node): {}/{} and {}/32 via the node {}",
            sv.container_link, sv.node_link, sv.cidr, sv.prefix, sv.node_ip, sv.node_ip
        );
        println!(
            "note: backends on {}'s network answer {} directly, past the node's conntrack: the node must SNAT the container's Service traffic (kube-proxy does for sources outside --cluster-cidr, or with --masquerade-all)",
            rec.parent, rec.addr
        );
    }
    Ok(())
}

pub fn run_detach(args: DetachArgs) -> anyhow::Result<()> {
    let done = attach::detach(&args.target.target()?, args.ifname.as_deref())?;
    for r in done {
        println!("detached {} from {}", r.ifname, r.netns.display());
    }
    Ok(())
}
