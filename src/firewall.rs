//! nftables rules inside lab namespaces, via the nftables crate (which drives `nft -j`).
//!
//! `nft` is spawned from a thread that entered the namespace, so the child inherits that
//! namespace and the rules land there, never in the root namespace. Each kind of rule owns one
//! table, so it can be replaced or removed as a unit:
//! - `ip nslat`: Docker-like NAT (postrouting MASQUERADE of a subnet out of an interface), with
//!   [`NatLevel`]s for the ablation;
//! - `ip nslat-svc`: Service-like DNAT (a ClusterIP:port to a backend), as kube-proxy installs it;
//! - `ip nslat-policy`: a drop rule for a source address in forward and input (a NetworkPolicy);
//! - `ip nslat-docker`: Docker's FORWARD chains for a bridge (DOCKER-USER, the two isolation
//!   stages, the conntrack accept), as Docker's iptables-nft rules load them on a real host.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nftables::schema::Nftables;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::netns;

/// The NAT table's name.
pub const NAT_TABLE: &str = "nslat";
/// The Service DNAT table's name.
pub const SERVICE_TABLE: &str = "nslat-svc";
/// The policy (filter) table's name.
pub const POLICY_TABLE: &str = "nslat-policy";
/// The Docker-shaped FORWARD chains' table.
pub const DOCKER_TABLE: &str = "nslat-docker";
/// An interface name no lab has: the conntrack-only MASQUERADE rule matches it, so never.
const NO_SUCH_IFACE: &str = "nslat-none";

/// Errors from applying rules.
#[derive(Debug, thiserror::Error)]
pub enum FirewallError {
    #[error("nft in {netns}")]
    Nft {
        netns: PathBuf,
        #[source]
        source: nftables::helper::NftablesError,
    },
    #[error("building the nftables request: {0}")]
    Schema(#[from] serde_json::Error),
    #[error(transparent)]
    Netns(#[from] netns::NetnsError),
}

type Result<T, E = FirewallError> = std::result::Result<T, E>;

/// How much of Docker's NAT is active, for the ablation in `compare --explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NatLevel {
    /// No nat table: no conntrack hooks for this traffic.
    None,
    /// Docker's NAT table with a MASQUERADE rule that matches none of this traffic: the kernel
    /// tracks every connection (conntrack) and runs the NAT hooks, but rewrites no address. (A
    /// nat chain without rules would not: in nftables the expressions register conntrack.)
    ConntrackOnly,
    /// Docker's MASQUERADE rule (the default).
    #[default]
    Masquerade,
}

impl NatLevel {
    /// The words users read: "none", "conntrack only", "MASQUERADE".
    pub fn name(self) -> &'static str {
        match self {
            NatLevel::None => "none",
            NatLevel::ConntrackOnly => "conntrack only",
            NatLevel::Masquerade => "MASQUERADE",
        }
    }
}

impl std::fmt::Display for NatLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// An IPv4 subnet `addr/len`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subnet4 {
    pub addr: Ipv4Addr,
    pub len: u8,
}

/// The nftables rules of one namespace.
#[derive(Debug, Clone)]
pub struct Firewall {
    netns: PathBuf,
}

fn table(name: &str) -> Value {
    json!({"table": {"family": "ip", "name": name}})
}

/// Commands that (re)create an empty table: add (so delete cannot fail), delete, add.
fn fresh_table(name: &str) -> Vec<Value> {
    vec![
        json!({"add": table(name)}),
        json!({"delete": table(name)}),
        json!({"add": table(name)}),
    ]
}

fn base_chain(table: &str, name: &str, kind: &str, hook: &str, prio: i32) -> Value {
    json!({"add": {"chain": {
        "family": "ip", "table": table, "name": name,
        "type": kind, "hook": hook, "prio": prio, "policy": "accept"
    }}})
}

fn rule(table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": "ip", "table": table, "chain": chain, "expr": expr}}})
}

fn match_eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}

fn ip_field(field: &str) -> Value {
    json!({"payload": {"protocol": "ip", "field": field}})
}

fn prefix(s: Subnet4) -> Value {
    json!({"prefix": {"addr": s.addr.to_string(), "len": s.len}})
}

/// `Some(reason)` when the `nft` program, which the nftables crate runs for every rule nslat
/// loads, cannot run here (not installed, not executable): the modes and checks that load rules
/// are then "not available" with this reason, and the rest goes on. Asked once per process.
pub fn nft_missing() -> Option<String> {
    static MISSING: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    MISSING
        .get_or_init(|| {
            let nft = "nft";
            match std::process::Command::new(nft)
                .arg("--version")
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
            {
                Ok(s) if s.success() => None,
                Ok(s) => Some(format!(
                    "`{nft} --version` failed ({s}): nslat loads its rules with nft; \
                     install nftables (apt install nftables)"
                )),
                Err(e) => Some(format!(
                    "the `{nft}` program cannot run ({e}): nslat loads its rules with nft; \
                     install nftables (apt install nftables)"
                )),
            }
        })
        .clone()
}

impl Firewall {
    /// The firewall of the namespace at `netns`.
    pub fn new(netns: &Path) -> Self {
        Firewall {
            netns: netns.to_path_buf(),
        }
    }

    /// Applies a list of nft JSON commands in one transaction, inside the namespace.
    fn apply(&self, commands: Vec<Value>) -> Result<()> {
        let doc: Nftables<'static> = serde_json::from_value(json!({ "nftables": commands }))?;
        let path = self.netns.clone();
        netns::run_in(Some(&self.netns), move || {
            nftables::helper::apply_ruleset(&doc).map_err(|source| FirewallError::Nft {
                netns: path,
                source,
            })
        })
    }

    /// Sets Docker-like NAT for `subnet` leaving through `out_if` to `level` (replaces table `ip nslat`).
    pub fn set_nat(&self, level: NatLevel, subnet: Subnet4, out_if: &str) -> Result<()> {
        self.nat(fresh_table(NAT_TABLE), level, subnet, out_if)
    }

    /// Like [`Firewall::set_nat`] for a namespace that has no `ip nslat` table yet (a new lab):
    /// no delete in the transaction, so it commits faster.
    pub fn init_nat(&self, level: NatLevel, subnet: Subnet4, out_if: &str) -> Result<()> {
        if level == NatLevel::None {
            return Ok(());
        }
        self.nat(
            vec![json!({"add": table(NAT_TABLE)})],
            level,
            subnet,
            out_if,
        )
    }

    fn nat(
        &self,
        mut cmds: Vec<Value>,
        level: NatLevel,
        subnet: Subnet4,
        out_if: &str,
    ) -> Result<()> {
        match level {
            NatLevel::None => cmds.push(json!({"delete": table(NAT_TABLE)})),
            NatLevel::ConntrackOnly | NatLevel::Masquerade => {
                let oifname =
                    |name: &str| match_eq(json!({"meta": {"key": "oifname"}}), json!(name));
                // Conntrack only: the same MASQUERADE rule, restricted to an interface no lab has.
                let mut expr = if level == NatLevel::Masquerade {
                    vec![match_eq(ip_field("saddr"), prefix(subnet)), oifname(out_if)]
                } else {
                    vec![oifname(NO_SUCH_IFACE)]
                };
                expr.push(json!({"masquerade": null}));
                cmds.push(base_chain(
                    NAT_TABLE,
                    "postrouting",
                    "nat",
                    "postrouting",
                    100,
                ));
                cmds.push(rule(NAT_TABLE, "postrouting", expr));
            }
        }
        self.apply(cmds)
    }

    /// The IPv6 twin of [`Firewall::init_nat`] for a namespace with no `ip6 nslat` table yet:
    /// table `ip6 nslat` with a postrouting nat chain that MASQUERADEs `subnet` (an IPv6 prefix)
    /// leaving through `out_if` (NAT66, as Docker's `ip6tables` option does), or for
    /// [`NatLevel::ConntrackOnly`] a rule that matches no interface (conntrack runs for IPv6).
    pub fn init_nat6(
        &self,
        level: NatLevel,
        subnet: (std::net::Ipv6Addr, u8),
        out_if: &str,
    ) -> Result<()> {
        if level == NatLevel::None {
            return Ok(());
        }
        let t = json!({"table": {"family": "ip6", "name": NAT_TABLE}});
        let oifname = |name: &str| match_eq(json!({"meta": {"key": "oifname"}}), json!(name));
        let mut expr = if level == NatLevel::Masquerade {
            vec![
                match_eq(
                    json!({"payload": {"protocol": "ip6", "field": "saddr"}}),
                    json!({"prefix": {"addr": subnet.0.to_string(), "len": subnet.1}}),
                ),
                oifname(out_if),
            ]
        } else {
            vec![oifname(NO_SUCH_IFACE)]
        };
        expr.push(json!({"masquerade": null}));
        self.apply(vec![
            json!({"add": t}),
            json!({"add": {"chain": {
                "family": "ip6", "table": NAT_TABLE, "name": "postrouting",
                "type": "nat", "hook": "postrouting", "prio": 100, "policy": "accept"
            }}}),
            json!({"add": {"rule": {
                "family": "ip6", "table": NAT_TABLE, "chain": "postrouting", "expr": expr
            }}}),
        ])
    }

    /// Installs a Service-like DNAT `cluster_ip:port/tcp -> backend:backend_port` for traffic
    /// routed through (prerouting) or made in (output) this namespace. Replaces table `ip nslat-svc`.
    pub fn set_service_dnat(
        &self,
        cluster_ip: Ipv4Addr,
        port: u16,
        backend: Ipv4Addr,
        backend_port: u16,
    ) -> Result<()> {
        let mut cmds = fresh_table(SERVICE_TABLE);
        for (chain, hook) in [("prerouting", "prerouting"), ("output", "output")] {
            cmds.push(base_chain(SERVICE_TABLE, chain, "nat", hook, -100));
            cmds.push(rule(
                SERVICE_TABLE,
                chain,
                vec![
                    match_eq(ip_field("daddr"), json!(cluster_ip.to_string())),
                    match_eq(
                        json!({"payload": {"protocol": "tcp", "field": "dport"}}),
                        json!(port),
                    ),
                    json!({"dnat": {"addr": backend.to_string(), "port": backend_port}}),
                ],
            ));
        }
        self.apply(cmds)
    }

    /// Installs a drop rule for packets from `source` in forward and input (a host-enforced
    /// NetworkPolicy). Replaces table `ip nslat-policy`.
    pub fn set_policy_drop(&self, source: Subnet4) -> Result<()> {
        let mut cmds = fresh_table(POLICY_TABLE);
        for hook in ["forward", "input"] {
            cmds.push(base_chain(POLICY_TABLE, hook, "filter", hook, 0));
            cmds.push(rule(
                POLICY_TABLE,
                hook,
                vec![
                    match_eq(ip_field("saddr"), prefix(source)),
                    json!({"drop": null}),
                ],
            ));
        }
        self.apply(cmds)
    }

    /// Installs Docker's FORWARD chains for `bridge` (what Docker 20.10 loads through
    /// iptables-nft, one counter per rule as iptables-nft adds): the forward hook jumps to
    /// DOCKER-USER and DOCKER-ISOLATION-STAGE-1/2, accepts replies to the bridge by conntrack
    /// state and the bridge's own traffic out. The hook's policy stays accept (Docker's is drop;
    /// here the lab's other modes forward through the same node). Replaces table `ip nslat-docker`.
    pub fn set_docker_forward(&self, bridge: &str) -> Result<()> {
        self.apply(docker_forward(bridge))
    }

    /// Removes table `ip NAME` if present.
    pub fn remove_table(&self, name: &str) -> Result<()> {
        self.apply(vec![
            json!({"add": table(name)}),
            json!({"delete": table(name)}),
        ])
    }

    /// The namespace's ruleset as `nft -j list ruleset` JSON.
    pub fn ruleset_json(&self) -> Result<String> {
        let path = self.netns.clone();
        netns::run_in(Some(&self.netns), move || {
            nftables::helper::get_current_ruleset_raw(
                nftables::helper::DEFAULT_NFT,
                ["list", "ruleset"],
            )
            .map_err(|source| FirewallError::Nft {
                netns: path,
                source,
            })
        })
    }
}

/// The commands of [`Firewall::set_docker_forward`].
fn docker_forward(bridge: &str) -> Vec<Value> {
    let t = DOCKER_TABLE;
    let iif = |op: &str| json!({"match": {"op": op, "left": {"meta": {"key": "iifname"}}, "right": bridge}});
    let oif = |op: &str| json!({"match": {"op": op, "left": {"meta": {"key": "oifname"}}, "right": bridge}});
    let counter = || json!({"counter": null});
    let jump = |to: &str| json!({"jump": {"target": to}});
    let mut cmds = fresh_table(t);
    cmds.push(base_chain(t, "forward", "filter", "forward", 0));
    for chain in [
        "docker-user",
        "docker-isolation-stage-1",
        "docker-isolation-stage-2",
        "docker",
    ] {
        cmds.push(json!({"add": {"chain": {"family": "ip", "table": t, "name": chain}}}));
    }
    let established = json!({"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": ["established", "related"]}});
    for (chain, expr) in [
        ("forward", vec![counter(), jump("docker-user")]),
        ("forward", vec![counter(), jump("docker-isolation-stage-1")]),
        (
            "forward",
            vec![oif("=="), established, counter(), json!({"accept": null})],
        ),
        ("forward", vec![oif("=="), counter(), jump("docker")]),
        (
            "forward",
            vec![iif("=="), oif("!="), counter(), json!({"accept": null})],
        ),
        (
            "forward",
            vec![iif("=="), oif("=="), counter(), json!({"accept": null})],
        ),
        ("docker-user", vec![counter(), json!({"return": null})]),
        (
            "docker-isolation-stage-1",
            vec![
                iif("=="),
                oif("!="),
                counter(),
                jump("docker-isolation-stage-2"),
            ],
        ),
        (
            "docker-isolation-stage-1",
            vec![counter(), json!({"return": null})],
        ),
        (
            "docker-isolation-stage-2",
            vec![oif("=="), counter(), json!({"drop": null})],
        ),
        (
            "docker-isolation-stage-2",
            vec![counter(), json!({"return": null})],
        ),
    ] {
        cmds.push(rule(t, chain, expr));
    }
    cmds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rule_documents_match_the_schema() {
        // Every command list we build must deserialize into the crate's typed schema.
        let s = Subnet4 {
            addr: Ipv4Addr::new(198, 18, 1, 0),
            len: 24,
        };
        let mut all = fresh_table(NAT_TABLE);
        all.push(base_chain(
            NAT_TABLE,
            "postrouting",
            "nat",
            "postrouting",
            100,
        ));
        all.push(rule(
            NAT_TABLE,
            "postrouting",
            vec![
                match_eq(ip_field("saddr"), prefix(s)),
                json!({"masquerade": null}),
            ],
        ));
        all.push(rule(
            NAT_TABLE,
            "postrouting",
            vec![
                json!({"dnat": {"addr": "198.18.0.2", "port": 80}}),
                json!({"drop": null}),
            ],
        ));
        let doc: Nftables = serde_json::from_value(json!({ "nftables": all })).unwrap();
        assert_eq!(doc.objects.len(), 6);
        // Docker's chains: 3 table commands, the base chain, 4 chains, 11 rules.
        let docker: Nftables =
            serde_json::from_value(json!({ "nftables": docker_forward("docker0") })).unwrap();
        assert_eq!(docker.objects.len(), 19);
    }
}
