//! Services the way kube-proxy writes them, as text for the bulk loaders: `iptables-restore`
//! input in the iptables proxier's shape (nat `KUBE-SERVICES` → `KUBE-SVC-…` → `KUBE-SEP-…`
//! DNAT, `KUBE-MARK-MASQ`, `KUBE-POSTROUTING`; filter `KUBE-FORWARD`), and an `nft -f` script in
//! the nftables proxier's layout (table `ip kube-proxy`, the `service-ips` verdict map keyed by
//! `ip daddr . meta l4proto . th dport`, one `service-…` chain per Service port and one
//! `endpoint-…` chain per endpoint, with `dnat`). Every Service here has one endpoint, so the
//! service chain jumps to it with a plain `goto` where kube-proxy writes
//! `numgen random mod 1 vmap { 0 : goto … }`: the same single jump, without an anonymous map
//! per Service (with them, loading 30,000 Services took 184 s here; without, 10 s).
//!
//! The builders are pure (unit-tested on their text); [`install`] and [`remove`] run the loaders
//! inside a namespace (never the caller's own) and time them.
//!
//! The measured Service is written LAST: kube-proxy's iptables mode walks `KUBE-SERVICES` rule
//! by rule for a connection's first packet, so the last Service pays the whole walk (the worst
//! case); the nftables mode looks it up in the map, so its position does not matter.

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::netns::{self, NetnsError};

/// How kube-proxy programs Services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Style {
    /// `--proxy-mode=iptables` (iptables-nft rules, one rule per Service port in KUBE-SERVICES).
    Iptables,
    /// `--proxy-mode=nftables` (KEP-3866: a verdict map lookup).
    Nftables,
}

impl Style {
    pub const ALL: [Style; 2] = [Style::Iptables, Style::Nftables];

    pub fn name(self) -> &'static str {
        match self {
            Style::Iptables => "iptables",
            Style::Nftables => "nftables",
        }
    }

    /// The loader it is installed with.
    pub fn loader(self) -> &'static str {
        match self {
            Style::Iptables => "iptables-restore",
            Style::Nftables => "nft",
        }
    }
}

impl std::fmt::Display for Style {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Style {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Style::ALL
            .into_iter()
            .find(|st| st.name() == s.trim())
            .ok_or_else(|| {
                format!("unknown Service style '{s}': use iptables or nftables (comma-separated)")
            })
    }
}

/// Errors of installing or removing Service rules.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{tool} is not installed: install it (scripts/install-deps) and retry")]
    Missing { tool: &'static str },
    #[error("running {tool}: {error}")]
    Spawn {
        tool: &'static str,
        error: std::io::Error,
    },
    #[error("{tool} refused the rules: {stderr}")]
    Refused { tool: &'static str, stderr: String },
    #[error(transparent)]
    Netns(#[from] NetnsError),
}

/// One port of a Service: the port the ClusterIP answers on and the endpoint's port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServicePort {
    pub port: u16,
    pub target: u16,
}

/// A ClusterIP Service with one endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `namespace/name`, as kube-proxy's comments and chain names carry it.
    pub name: String,
    pub cluster_ip: Ipv4Addr,
    pub ports: Vec<ServicePort>,
    pub endpoint: Ipv4Addr,
}

/// The Services of one sweep point: `fakes` generated Services, then the measured one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePlan {
    pub fakes: usize,
    pub measured: Service,
    /// The pod network (kube-proxy's `--cluster-cidr`): traffic from outside it is marked for
    /// masquerade.
    pub cluster_cidr: (Ipv4Addr, u8),
    /// The Service range (the nftables mode drops traffic to unallocated ClusterIPs in it).
    pub service_cidr: (Ipv4Addr, u8),
}

/// The most fake Services a plan can hold (their ClusterIPs are 198.19.1.0 upwards in
/// 198.19.0.0/16, the lab's Service range).
pub const MAX_SERVICES: usize = 60_000;

/// The generated Service `i` (`i < MAX_SERVICES`): ClusterIP 198.19.1.0 + i, port 80 → 8080 on
/// an endpoint in 198.18.128.0/17 that nothing answers on (the rules never see its traffic).
pub fn fake_service(i: usize) -> Service {
    let ip = u32::from(Ipv4Addr::new(198, 19, 1, 0)) + i as u32;
    let ep = u32::from(Ipv4Addr::new(198, 18, 128, 1)) + (i as u32 % 32_000);
    Service {
        name: format!("sweep/svc-{i}"),
        cluster_ip: Ipv4Addr::from(ip),
        ports: vec![ServicePort {
            port: 80,
            target: 8080,
        }],
        endpoint: Ipv4Addr::from(ep),
    }
}

impl ServicePlan {
    fn services(&self) -> impl Iterator<Item = Service> + '_ {
        (0..self.fakes)
            .map(fake_service)
            .chain(std::iter::once(self.measured.clone()))
    }
}

/// kube-proxy's chain-name hash: 16 base32 characters of a hash of the name (kube-proxy uses
/// SHA-256; any stable hash gives the same shape).
pub fn hash16(s: &str) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let mut h2 = h ^ 0x9e37_79b9_7f4a_7c15;
    h2 = h2.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (0..16)
        .map(|i| {
            let v = if i < 12 {
                h >> (i * 5)
            } else {
                h2.wrapping_shr(i * 5)
            };
            ALPHABET[(v & 31) as usize] as char
        })
        .collect()
}

fn port_name(svc: &Service, p: ServicePort) -> String {
    format!("{}:p{}", svc.name, p.port)
}

/// The `iptables-restore` input for the plan: tables `nat` and `filter` (both flushed and
/// rewritten by the restore, like kube-proxy's full syncs).
pub fn iptables_restore(plan: &ServicePlan) -> String {
    let (cc, cl) = plan.cluster_cidr;
    let mut chains = String::new();
    let mut services = String::new();
    let mut rules = String::new();
    for svc in plan.services() {
        for &p in &svc.ports {
            let pn = port_name(&svc, p);
            let svc_chain = format!("KUBE-SVC-{}", hash16(&format!("{pn}/tcp")));
            let sep_chain = format!(
                "KUBE-SEP-{}",
                hash16(&format!("{pn}/tcp/{}:{}", svc.endpoint, p.target))
            );
            let _ = writeln!(chains, ":{svc_chain} - [0:0]\n:{sep_chain} - [0:0]");
            let _ = writeln!(
                services,
                "-A KUBE-SERVICES -m comment --comment \"{pn} cluster IP\" -m tcp -p tcp -d {}/32 --dport {} -j {svc_chain}",
                svc.cluster_ip, p.port
            );
            let _ = writeln!(
                rules,
                "-A {svc_chain} -m comment --comment \"{pn} cluster IP\" -m tcp -p tcp -d {}/32 --dport {} ! -s {cc}/{cl} -j KUBE-MARK-MASQ\n\
                 -A {svc_chain} -m comment --comment \"{pn} -> {}:{}\" -j {sep_chain}\n\
                 -A {sep_chain} -m comment --comment {pn} -s {}/32 -j KUBE-MARK-MASQ\n\
                 -A {sep_chain} -m comment --comment {pn} -m tcp -p tcp -j DNAT --to-destination {}:{}",
                svc.cluster_ip, p.port, svc.endpoint, p.target, svc.endpoint, svc.endpoint, p.target
            );
        }
    }
    let mut out = String::with_capacity(chains.len() + services.len() + rules.len() + 4096);
    out.push_str(
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n\
         :KUBE-SERVICES - [0:0]\n:KUBE-EXTERNAL-SERVICES - [0:0]\n:KUBE-FORWARD - [0:0]\n\
         :KUBE-NODEPORTS - [0:0]\n:KUBE-PROXY-FIREWALL - [0:0]\n\
         -A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
         -A INPUT -m comment --comment \"kubernetes health check service ports\" -j KUBE-NODEPORTS\n\
         -A INPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n\
         -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
         -A FORWARD -m comment --comment \"kubernetes forwarding rules\" -j KUBE-FORWARD\n\
         -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A FORWARD -m conntrack --ctstate NEW -m comment --comment \"kubernetes externally-visible service portals\" -j KUBE-EXTERNAL-SERVICES\n\
         -A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes load balancer firewall\" -j KUBE-PROXY-FIREWALL\n\
         -A OUTPUT -m conntrack --ctstate NEW -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding rules\" -m mark --mark 0x4000/0x4000 -j ACCEPT\n\
         -A KUBE-FORWARD -m comment --comment \"kubernetes forwarding conntrack rule\" -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT\n\
         COMMIT\n",
    );
    out.push_str(
        "*nat\n:PREROUTING ACCEPT [0:0]\n:INPUT ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]\n\
         :KUBE-SERVICES - [0:0]\n:KUBE-NODEPORTS - [0:0]\n:KUBE-POSTROUTING - [0:0]\n:KUBE-MARK-MASQ - [0:0]\n",
    );
    out.push_str(&chains);
    out.push_str(
        "-A PREROUTING -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A OUTPUT -m comment --comment \"kubernetes service portals\" -j KUBE-SERVICES\n\
         -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n\
         -A KUBE-MARK-MASQ -j MARK --or-mark 0x4000\n\
         -A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN\n\
         -A KUBE-POSTROUTING -j MARK --xor-mark 0x4000\n\
         -A KUBE-POSTROUTING -m comment --comment \"kubernetes service traffic requiring SNAT\" -j MASQUERADE --random-fully\n",
    );
    out.push_str(&services);
    out.push_str(
        "-A KUBE-SERVICES -m comment --comment \"kubernetes service nodeports; NOTE: this must be the last rule in this chain\" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS\n",
    );
    out.push_str(&rules);
    out.push_str("COMMIT\n");
    out
}

/// Elements per `add element` command (keeps lines short; the whole script is one transaction).
const ELEMENTS_PER_LINE: usize = 1000;

/// The `nft -f` script for the plan: table `ip kube-proxy` replaced in one transaction.
pub fn nft_script(plan: &ServicePlan) -> String {
    let (cc, cl) = plan.cluster_cidr;
    let (sc, sl) = plan.service_cidr;
    let mut out = String::new();
    out.push_str(
        "add table ip kube-proxy\ndelete table ip kube-proxy\n\
         add table ip kube-proxy { comment \"rules for kube-proxy\" ; }\n\
         add chain ip kube-proxy mark-for-masquerade\n\
         add rule ip kube-proxy mark-for-masquerade meta mark set meta mark or 0x4000\n\
         add chain ip kube-proxy masquerading\n\
         add rule ip kube-proxy masquerading meta mark & 0x4000 == 0 return\n\
         add rule ip kube-proxy masquerading meta mark set meta mark xor 0x4000\n\
         add rule ip kube-proxy masquerading masquerade fully-random\n\
         add chain ip kube-proxy services\n\
         add chain ip kube-proxy nodeports\n\
         add chain ip kube-proxy service-endpoints-check\n\
         add chain ip kube-proxy cluster-ips-check\n\
         add chain ip kube-proxy nat-prerouting { type nat hook prerouting priority dstnat ; }\n\
         add rule ip kube-proxy nat-prerouting jump services\n\
         add chain ip kube-proxy nat-output { type nat hook output priority -100 ; }\n\
         add rule ip kube-proxy nat-output jump services\n\
         add chain ip kube-proxy nat-postrouting { type nat hook postrouting priority srcnat ; }\n\
         add rule ip kube-proxy nat-postrouting jump masquerading\n\
         add chain ip kube-proxy filter-forward { type filter hook forward priority -110 ; }\n\
         add rule ip kube-proxy filter-forward ct state new jump service-endpoints-check\n\
         add rule ip kube-proxy filter-forward ct state new jump cluster-ips-check\n\
         add map ip kube-proxy service-ips { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"ClusterIP, ExternalIP and LoadBalancer IP traffic\" ; }\n\
         add map ip kube-proxy service-nodeports { type inet_proto . inet_service : verdict ; comment \"NodePort traffic\" ; }\n\
         add map ip kube-proxy no-endpoint-services { type ipv4_addr . inet_proto . inet_service : verdict ; comment \"vmap to drop or reject packets to services with no endpoints\" ; }\n\
         add set ip kube-proxy cluster-ips { type ipv4_addr ; comment \"Active ClusterIPs\" ; }\n\
         add rule ip kube-proxy services ip daddr . meta l4proto . th dport vmap @service-ips\n\
         add rule ip kube-proxy services fib daddr type local ip daddr != 127.0.0.0/8 jump nodeports\n\
         add rule ip kube-proxy nodeports meta l4proto . th dport vmap @service-nodeports\n\
         add rule ip kube-proxy service-endpoints-check ip daddr . meta l4proto . th dport vmap @no-endpoint-services\n\
         add rule ip kube-proxy cluster-ips-check ip daddr @cluster-ips reject comment \"Reject traffic to invalid ports of ClusterIPs\"\n",
    );
    let _ = writeln!(
        out,
        "add rule ip kube-proxy cluster-ips-check ip daddr {sc}/{sl} drop comment \"Drop traffic to unallocated ClusterIPs\""
    );
    let mut map_elems: Vec<String> = Vec::new();
    let mut ips: Vec<String> = Vec::new();
    for svc in plan.services() {
        ips.push(svc.cluster_ip.to_string());
        for &p in &svc.ports {
            let base = format!("{}/tcp/p{}", svc.name, p.port);
            let svc_chain = format!("service-{}-{base}", &hash16(&base)[..8]);
            let ep_base = format!("{base}__{}/{}", svc.endpoint, p.target);
            let ep_chain = format!("endpoint-{}-{ep_base}", &hash16(&ep_base)[..8]);
            let _ = writeln!(
                out,
                "add chain ip kube-proxy {svc_chain}\n\
                 add chain ip kube-proxy {ep_chain}\n\
                 add rule ip kube-proxy {svc_chain} ip daddr {} tcp dport {} ip saddr != {cc}/{cl} jump mark-for-masquerade\n\
                 add rule ip kube-proxy {svc_chain} goto {ep_chain}\n\
                 add rule ip kube-proxy {ep_chain} ip saddr {} jump mark-for-masquerade\n\
                 add rule ip kube-proxy {ep_chain} meta l4proto tcp dnat to {}:{}",
                svc.cluster_ip, p.port, svc.endpoint, svc.endpoint, p.target
            );
            map_elems.push(format!(
                "{} . tcp . {} : goto {svc_chain}",
                svc.cluster_ip, p.port
            ));
        }
    }
    for chunk in ips.chunks(ELEMENTS_PER_LINE) {
        let _ = writeln!(
            out,
            "add element ip kube-proxy cluster-ips {{ {} }}",
            chunk.join(", ")
        );
    }
    for chunk in map_elems.chunks(ELEMENTS_PER_LINE) {
        let _ = writeln!(
            out,
            "add element ip kube-proxy service-ips {{ {} }}",
            chunk.join(", ")
        );
    }
    out
}

/// Removes every table either style writes (`ip nat`, `ip filter` of iptables-nft, and
/// `ip kube-proxy`); the lab's own tables (`ip nslat*`) stay.
pub const REMOVE_SCRIPT: &str = "add table ip nat\ndelete table ip nat\n\
add table ip filter\ndelete table ip filter\n\
add table ip kube-proxy\ndelete table ip kube-proxy\n";

/// Whether a program is on the PATH.
pub fn have(tool: &str) -> bool {
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(tool).is_file()))
        .unwrap_or(false)
}

/// The program that loads a style's text and its arguments (reading stdin).
fn loader(style: Style) -> (&'static str, &'static [&'static str]) {
    match style {
        // iptables-nft's restore: rules land in nf_tables tables `ip nat` / `ip filter`.
        Style::Iptables => ("iptables-nft-restore", &["-w", "5"]),
        Style::Nftables => ("nft", &["-f", "-"]),
    }
}

/// Runs `tool args` with `input` on stdin inside the namespace at `netns`.
fn feed(
    netns: &Path,
    tool: &'static str,
    args: &[&str],
    input: String,
) -> Result<(), ServiceError> {
    if !have(tool) {
        return Err(ServiceError::Missing { tool });
    }
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    let ns: PathBuf = netns.to_path_buf();
    netns::run_in(Some(&ns), move || {
        let spawn = |error| ServiceError::Spawn { tool, error };
        // A child forked by this thread starts in the namespace the thread entered.
        let mut child = Command::new(tool)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn)?;
        let mut stdin = child.stdin.take().expect("piped");
        let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
        let out = child.wait_with_output().map_err(spawn)?;
        let _ = writer.join();
        if out.status.success() {
            Ok(())
        } else {
            let stderr = String::from_utf8_lossy(&out.stderr);
            Err(ServiceError::Refused {
                tool,
                stderr: stderr.lines().take(3).collect::<Vec<_>>().join(" / "),
            })
        }
    })
}

/// Replaces the namespace's Service rules with `plan` in `style` (the other style's tables are
/// removed first) and returns the loader's wall time.
pub fn install(netns: &Path, style: Style, plan: &ServicePlan) -> Result<Duration, ServiceError> {
    remove(netns)?;
    let text = match style {
        Style::Iptables => iptables_restore(plan),
        Style::Nftables => nft_script(plan),
    };
    let (tool, args) = loader(style);
    let started = Instant::now();
    feed(netns, tool, args, text)?;
    Ok(started.elapsed())
}

/// Removes both styles' tables from the namespace.
pub fn remove(netns: &Path) -> Result<(), ServiceError> {
    feed(netns, "nft", &["-f", "-"], REMOVE_SCRIPT.to_string())
}

/// The loaders the styles need, missing ones named.
pub fn missing_tools(styles: &[Style]) -> Vec<&'static str> {
    let mut tools = vec!["nft"];
    if styles.contains(&Style::Iptables) {
        tools.push(loader(Style::Iptables).0);
    }
    tools.into_iter().filter(|t| !have(t)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(fakes: usize) -> ServicePlan {
        ServicePlan {
            fakes,
            measured: Service {
                name: "sweep/measured".into(),
                cluster_ip: Ipv4Addr::new(198, 19, 0, 10),
                ports: vec![
                    ServicePort {
                        port: 80,
                        target: 5201,
                    },
                    ServicePort {
                        port: 61000,
                        target: 61000,
                    },
                ],
                endpoint: Ipv4Addr::new(198, 18, 0, 2),
            },
            cluster_cidr: (Ipv4Addr::new(198, 18, 1, 0), 24),
            service_cidr: (Ipv4Addr::new(198, 19, 0, 0), 16),
        }
    }

    #[test]
    fn hashes_are_stable_distinct_chain_names() {
        let a = hash16("sweep/svc-1:p80/tcp");
        assert_eq!(a, hash16("sweep/svc-1:p80/tcp"));
        assert_ne!(a, hash16("sweep/svc-2:p80/tcp"));
        assert_eq!(a.len(), 16);
        assert!(a
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b)));
        // iptables chain names are at most 28 characters.
        assert!(format!("KUBE-SVC-{a}").len() <= 28);
        let names: std::collections::HashSet<String> = (0..20_000)
            .map(|i| hash16(&format!("sweep/svc-{i}:p80/tcp")))
            .collect();
        assert_eq!(
            names.len(),
            20_000,
            "no collisions among generated Services"
        );
    }

    #[test]
    fn iptables_walks_every_service_and_the_measured_one_last() {
        let text = iptables_restore(&plan(3));
        let jumps: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("-A KUBE-SERVICES"))
            .collect();
        // 3 fakes + 2 measured ports + the nodeports rule
        assert_eq!(jumps.len(), 6, "{text}");
        assert!(
            jumps[3].contains("-d 198.19.0.10/32 --dport 80 "),
            "{}",
            jumps[3]
        );
        assert!(jumps[4].contains("--dport 61000 "), "{}", jumps[4]);
        assert!(jumps[5].contains("KUBE-NODEPORTS"));
        assert!(text.contains("-j DNAT --to-destination 198.18.0.2:5201"));
        assert!(text.contains("-j DNAT --to-destination 198.18.0.2:61000"));
        assert!(text.contains("! -s 198.18.1.0/24 -j KUBE-MARK-MASQ"));
        assert_eq!(text.matches("COMMIT").count(), 2);
        // every chain jumped to is declared
        for l in text.lines().filter(|l| l.starts_with("-A ")) {
            if let Some(t) = l.split(" -j ").nth(1) {
                let t = t.split(' ').next().unwrap();
                if t.starts_with("KUBE-") {
                    assert!(text.contains(&format!(":{t} - [0:0]")), "{t} declared");
                }
            }
        }
        assert_eq!(text.matches(":KUBE-SEP-").count(), 5);
    }

    #[test]
    fn nftables_maps_every_port_and_dnats_per_endpoint() {
        let text = nft_script(&plan(2));
        assert!(text.starts_with("add table ip kube-proxy\ndelete table ip kube-proxy\n"));
        let elems: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("add element ip kube-proxy service-ips"))
            .collect();
        assert_eq!(elems.len(), 1);
        assert_eq!(elems[0].matches(" : goto service-").count(), 4);
        assert!(elems[0].contains("198.19.0.10 . tcp . 61000 : goto service-"));
        assert!(text.contains("meta l4proto tcp dnat to 198.18.0.2:5201"));
        assert!(text.contains("ip daddr . meta l4proto . th dport vmap @service-ips"));
        assert!(text.contains("type nat hook prerouting priority dstnat"));
        // chains are added before anything refers to them
        for l in text.lines().filter(|l| l.contains(": goto ")) {
            let target = l
                .split(": goto ")
                .nth(1)
                .unwrap()
                .split([' ', ','])
                .next()
                .unwrap();
            let decl = text
                .find(&format!("add chain ip kube-proxy {target}\n"))
                .unwrap();
            assert!(decl < text.find(l).unwrap(), "{target} declared first");
        }
        let first_elem = text.find("add element ip kube-proxy service-ips").unwrap();
        let last_chain = text.rfind("add chain ip kube-proxy service-").unwrap();
        assert!(last_chain < first_elem);
    }

    #[test]
    fn large_plans_chunk_their_elements() {
        let text = nft_script(&plan(2500));
        let lines = text
            .lines()
            .filter(|l| l.starts_with("add element ip kube-proxy service-ips"))
            .count();
        assert_eq!(lines, 3);
        assert_eq!(text.matches(" : goto service-").count(), 2502);
    }

    #[test]
    fn fake_services_stay_in_the_lab_ranges() {
        let last = fake_service(MAX_SERVICES - 1);
        assert_eq!(last.cluster_ip.octets()[..2], [198, 19]);
        assert_eq!(fake_service(0).cluster_ip, Ipv4Addr::new(198, 19, 1, 0));
        assert_eq!(fake_service(40_000).endpoint.octets()[..2], [198, 18]);
        assert!(fake_service(40_000).endpoint.octets()[2] >= 128);
    }

    #[test]
    fn styles_parse() {
        assert_eq!("nftables".parse::<Style>(), Ok(Style::Nftables));
        assert!("ipvs"
            .parse::<Style>()
            .unwrap_err()
            .contains("iptables or nftables"));
    }
}
