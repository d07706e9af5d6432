//! `veth-bpf`: a routed veth (as `ptp`) plus eBPF host routing (as Cilium's): on the node's NIC
//! ingress `bpf_redirect_peer` hands packets for the container straight to its end of the veth,
//! on the host-side veth's ingress `bpf_redirect_neigh` sends what the node would route out of
//! the NIC out of it directly. Both skip the node's IP forwarding and netfilter; the first also
//! skips the veth's backlog hop. Programs: `bpf/veth_redirect.bpf.c`. IPv4 (v6 passes as ptp).

use std::net::Ipv4Addr;

use super::super::build::Builder;
use super::super::plan::{self, ModePlan};
use super::super::{LabError, ModeInfo};
use super::{remote_route_via_node, routed_veth, Backlog, CheckName, ModeDriver, Traits};
use crate::bpf::{self, Attach, Hook};

pub struct VethBpf;
pub const VETH_BPF: VethBpf = VethBpf;

/// The mode's /24 (node side .1, container .2).
const NET: u8 = 9;
const NODE_IP: Ipv4Addr = plan::in_subnet(NET, 1);
const CTR_IP: Ipv4Addr = plan::in_subnet(NET, 2);
/// The host end of the container's veth.
pub const HOST_VETH: &str = "veth-bpf";
/// The program on the node's NIC ingress (bpf_redirect_peer) and on the host veth's ingress
/// (bpf_redirect_neigh).
pub const NIC_PROGRAM: &str = "nic_ingress";
pub const VETH_PROGRAM: &str = "veth_ingress";
/// Env var: `1` loads both programs with `PASS_ONLY` set (they parse but never redirect):
/// the tests' proof that the redirects, not the attachment, make the difference.
pub const PASS_ENV: &str = "NSLAT_BPF_PASS_ONLY";

impl ModeDriver for VethBpf {
    fn ipv6_unavailable(&self) -> Option<&'static str> {
        Some("its BPF programs redirect IPv4 only (IPv6 would pass as ptp)")
    }
    fn name(&self) -> &'static str {
        "veth-bpf"
    }
    fn describe(&self) -> &'static str {
        "routed veth + tc BPF: redirect_peer on the NIC, redirect_neigh on the veth (Cilium host routing)"
    }
    fn traits(&self) -> Traits {
        Traits::container(Backlog {
            per_transaction: 3,
            why: "bpf_redirect_peer delivers the response into the container in the NIC's softirq; the request still waits once in the veth's backlog",
        })
    }
    fn plan(&self) -> ModePlan {
        ModePlan::at(CTR_IP)
    }
    fn unavailable(&self, _b: &mut Builder) -> Result<Option<String>, LabError> {
        Ok(bpf::VETH_REDIRECT
            .bytes
            .is_empty()
            .then(|| bpf::BpfError::NotBuilt.to_string()))
    }
    fn build(&self, b: &mut Builder, ns: &str) -> Result<ModeInfo, LabError> {
        let (hi, _) = routed_veth(b, ns, HOST_VETH, NODE_IP, CTR_IP)?;
        remote_route_via_node(b, plan::subnet(NET), 24)?;
        let pass = std::env::var(PASS_ENV).is_ok_and(|v| v == "1");
        let globals = [
            ("CTR_ADDR", u32::from_ne_bytes(CTR_IP.octets())),
            ("HOST_VETH_IFINDEX", hi),
            ("NIC_IFINDEX", b.node_eth0),
            ("PASS_ONLY", u32::from(pass)),
        ];
        let node = b.netns_path("node");
        for (program, ifname) in [(NIC_PROGRAM, "eth0"), (VETH_PROGRAM, HOST_VETH)] {
            bpf::attach(
                &node,
                &Attach {
                    object: bpf::VETH_REDIRECT,
                    program,
                    globals: &globals,
                    ifname,
                    hook: Hook::Ingress,
                },
            )?;
            b.step()?;
        }
        Ok(b.info(ns, CTR_IP, true))
    }
    fn why(&self, check: CheckName, _host_shim: bool) -> Option<&'static str> {
        match check {
            "service" => Some("the host veth's tc program sends the container's packets out of the NIC (bpf_redirect_neigh) before the node's netfilter hooks, so the node's Service DNAT never sees them (Cilium translates Services in BPF instead)"),
            "policy" | "policy_service" => Some("the container's packets are redirected at tc ingress, before the node's forward hook, so a host-enforced (netfilter) policy does not apply (Cilium enforces policy in BPF instead)"),
            _ => None,
        }
    }
}
