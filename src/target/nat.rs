//! Whether the host NATs a target's traffic: MASQUERADE/SNAT rules in the host's nftables ruleset
//! (`nft -j list ruleset`, read-only; iptables-nft rules such as Docker's appear there too, as
//! `xt` targets) whose `ip saddr` match covers the target's address. Pure over the parsed
//! ruleset; reading it is [`read_ruleset`].

use std::net::Ipv4Addr;

use nftables::expr::{Expression, NamedExpression, Payload};
use nftables::schema::{NfListObject, NfObject, Nftables};
use nftables::stmt::{Operator, Statement};
use serde::{Deserialize, Serialize};

/// A rule that rewrites the target's source address.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NatRule {
    /// e.g. `ip nat`.
    pub table: String,
    pub chain: String,
    /// `MASQUERADE` or `SNAT`.
    pub action: String,
    /// The rule's matches in nft's words, e.g. `ip saddr 172.17.0.0/16, oifname != docker0`.
    pub matches: String,
    /// The chains jumped through to reach `chain`, from the postrouting base chain (empty: the
    /// rule is in the base chain itself), e.g. `["POSTROUTING"]` for netavark's per-network chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
}

impl std::fmt::Display for NatRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} in {} {}", self.action, self.table, self.chain)?;
        if !self.via.is_empty() {
            write!(f, " (jumped to from {})", self.via.join(" → "))?;
        }
        write!(f, " ({})", self.matches)
    }
}

/// Reads the ruleset of the calling thread's namespace with `nft -j list ruleset`.
pub fn read_ruleset() -> Result<Nftables<'static>, String> {
    nftables::helper::get_current_ruleset_with_args(
        nftables::helper::DEFAULT_NFT,
        ["-j", "list", "ruleset"],
    )
    .map_err(|e| e.to_string())
}

fn family_name(f: &nftables::types::NfFamily) -> &'static str {
    use nftables::types::NfFamily::*;
    match f {
        IP => "ip",
        IP6 => "ip6",
        INet => "inet",
        ARP => "arp",
        Bridge => "bridge",
        NetDev => "netdev",
    }
}

/// An IPv4 network from a match's right-hand side: a prefix or a single address.
fn v4_net(e: &Expression) -> Option<(Ipv4Addr, u8)> {
    match e {
        Expression::Named(NamedExpression::Prefix(p)) => match p.addr.as_ref() {
            Expression::String(s) => Some((s.parse().ok()?, u8::try_from(p.len).ok()?)),
            _ => None,
        },
        Expression::String(s) => Some((s.parse().ok()?, 32)),
        _ => None,
    }
}

fn contains(net: (Ipv4Addr, u8), addr: Ipv4Addr) -> bool {
    let (base, len) = net;
    ipnet::Ipv4Net::new(base, len.min(32)).is_ok_and(|n| n.contains(&addr))
}

fn op_text(op: &Operator) -> &'static str {
    match op {
        Operator::NEQ => "!=",
        _ => "==",
    }
}

fn expr_text(e: &Expression) -> String {
    match e {
        Expression::String(s) => s.to_string(),
        Expression::Number(n) => n.to_string(),
        Expression::Named(NamedExpression::Prefix(p)) => match p.addr.as_ref() {
            Expression::String(s) => format!("{s}/{}", p.len),
            _ => "prefix".into(),
        },
        Expression::Named(NamedExpression::Meta(m)) => serde_json::to_value(m.key)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_else(|| "meta".into()),
        Expression::Named(NamedExpression::Payload(Payload::PayloadField(f))) => {
            format!("{} {}", f.protocol, f.field)
        }
        _ => "…".into(),
    }
}

fn is_ip_saddr(e: &Expression) -> bool {
    matches!(e, Expression::Named(NamedExpression::Payload(Payload::PayloadField(f)))
        if f.protocol == "ip" && f.field == "saddr")
}

/// The NAT action of a statement, if it is one (nft's own or an iptables-nft `xt` target).
fn nat_action(s: &Statement) -> Option<&'static str> {
    match s {
        Statement::Masquerade(_) => Some("MASQUERADE"),
        Statement::SNAT(_) => Some("SNAT"),
        Statement::XT(Some(v)) => match v.get("name").and_then(|n| n.as_str()) {
            Some("MASQUERADE") => Some("MASQUERADE"),
            Some("SNAT") => Some("SNAT"),
            _ => None,
        },
        _ => None,
    }
}

/// How a rule's `ip saddr` matches treat `addr`: `Some(true)` all cover it, `Some(false)` one
/// excludes it, `None` the rule has no source match. Also the rule's matches in nft's words.
fn source_match(rule: &nftables::schema::Rule, addr: Ipv4Addr) -> (Option<bool>, Vec<String>) {
    let mut saddr_ok = None;
    let mut matches = Vec::new();
    for s in rule.expr.iter() {
        let Statement::Match(m) = s else { continue };
        matches.push(format!(
            "{} {} {}",
            expr_text(&m.left),
            op_text(&m.op),
            expr_text(&m.right)
        ));
        if is_ip_saddr(&m.left) {
            if let Some(net) = v4_net(&m.right) {
                let inside = contains(net, addr);
                let ok = match m.op {
                    Operator::NEQ => !inside,
                    _ => inside,
                };
                saddr_ok = Some(saddr_ok.unwrap_or(true) && ok);
            }
        }
    }
    (saddr_ok, matches)
}

/// The chain a rule jumps or goes to, if it does.
fn jump_target<'r>(rule: &'r nftables::schema::Rule) -> Option<&'r str> {
    rule.expr.iter().find_map(|s| match s {
        Statement::Jump(j) | Statement::Goto(j) => Some(j.target.as_ref()),
        _ => None,
    })
}

/// Whether a rule ends its chain for every packet: `accept`/`return`/`drop` with no match.
fn ends_chain(rule: &nftables::schema::Rule) -> bool {
    let unconditional = !rule.expr.iter().any(|s| matches!(s, Statement::Match(_)));
    unconditional
        && rule.expr.iter().any(|s| {
            matches!(
                s,
                Statement::Accept(_) | Statement::Return(_) | Statement::Drop(_)
            )
        })
}

/// The deepest chain a jump is followed into (a loop or a very deep ruleset stops there).
const MAX_JUMPS: usize = 8;

/// The rules of one table, chain by chain, in ruleset order.
type Chains<'r, 'a> =
    std::collections::HashMap<(String, String), Vec<&'r nftables::schema::Rule<'a>>>;

/// The first rule that masquerades or SNATs traffic from `addr`, as the kernel walks the NAT
/// chains of the postrouting hook: from each such base chain, rule by rule, into the chains it
/// jumps to (`jump`/`goto`: netavark's `NETAVARK-…`, the CNI bridge plugin's `CNI-…`,
/// Calico's and kube-proxy's chains), up to [`MAX_JUMPS`] deep. A NAT rule counts when its
/// `ip saddr` match covers `addr` (`==`) or excludes it (`!=` not covering it), or when it has
/// no source match but was reached through a jump whose source match covered `addr` (the
/// per-network chains, whose rules match only on the destination). Rules reached with no source
/// match at all are left out: they name an interface or a mark, not this target. A ruleset
/// without postrouting NAT base chains (a recorded rule list) is read rule by rule.
pub fn find_source_nat(ruleset: &Nftables, addr: Ipv4Addr) -> Option<NatRule> {
    let mut chains: Chains<'_, '_> = std::collections::HashMap::new();
    let mut bases = Vec::new();
    for obj in ruleset.objects.iter() {
        match obj {
            NfObject::ListObject(NfListObject::Rule(rule)) => chains
                .entry((rule.table.to_string(), rule.chain.to_string()))
                .or_default()
                .push(rule),
            NfObject::ListObject(NfListObject::Chain(c))
                if c._type == Some(nftables::types::NfChainType::NAT)
                    && c.hook == Some(nftables::types::NfHook::Postrouting) =>
            {
                bases.push((c.table.to_string(), c.name.to_string()));
            }
            _ => {}
        }
    }
    if bases.is_empty() {
        // No chain objects: every rule on its own, no jumps followed.
        return ruleset.objects.iter().find_map(|obj| match obj {
            NfObject::ListObject(NfListObject::Rule(rule)) => {
                let (ok, matches) = source_match(rule, addr);
                let action = rule.expr.iter().find_map(nat_action)?;
                (ok == Some(true)).then(|| nat_rule(rule, action, &matches, Vec::new()))
            }
            _ => None,
        });
    }
    bases.iter().find_map(|(table, chain)| {
        walk(&chains, table, chain, addr, false, &mut vec![chain.clone()])
    })
}

/// Walks `chain` of `table` for a NAT rule of `addr` (see [`find_source_nat`]); `selected`: a
/// jump on the way matched `addr`'s source; `path`: the chains walked so far, this one last.
fn walk(
    chains: &Chains<'_, '_>,
    table: &str,
    chain: &str,
    addr: Ipv4Addr,
    selected: bool,
    path: &mut Vec<String>,
) -> Option<NatRule> {
    for rule in chains.get(&(table.to_string(), chain.to_string()))? {
        let (saddr_ok, matches) = source_match(rule, addr);
        if saddr_ok == Some(false) {
            continue;
        }
        let selects = saddr_ok == Some(true) || selected;
        if let Some(action) = rule.expr.iter().find_map(nat_action) {
            if selects {
                let via = path[..path.len() - 1].to_vec();
                return Some(nat_rule(rule, action, &matches, via));
            }
            continue;
        }
        if let Some(target) = jump_target(rule) {
            if path.len() <= MAX_JUMPS && !path.iter().any(|c| c == target) {
                path.push(target.to_string());
                let found = walk(chains, table, target, addr, selects, path);
                path.pop();
                if found.is_some() {
                    return found;
                }
            }
            continue;
        }
        if ends_chain(rule) {
            return None;
        }
    }
    None
}

fn nat_rule(
    rule: &nftables::schema::Rule,
    action: &str,
    matches: &[String],
    via: Vec<String>,
) -> NatRule {
    NatRule {
        table: format!("{} {}", family_name(&rule.family), rule.table),
        chain: rule.chain.to_string(),
        action: action.to_string(),
        matches: matches
            .iter()
            .map(|m| m.replace(" == ", " "))
            .collect::<Vec<_>>()
            .join(", "),
        via,
    }
}

/// A namespace's netfilter state as its ruleset shows it: whether a NAT table (a chain of type
/// `nat`) is loaded, and whether conntrack runs (a NAT chain, or a rule that matches on
/// connection tracking: nft's `ct`, iptables' `conntrack`/`state` matches).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetfilterState {
    pub nat_table: bool,
    pub conntrack: bool,
}

/// [`NetfilterState`] of a parsed ruleset.
pub fn netfilter_state(ruleset: &Nftables) -> NetfilterState {
    let mut nat_table = false;
    let mut ct = false;
    for obj in ruleset.objects.iter() {
        match obj {
            NfObject::ListObject(NfListObject::Chain(c))
                if c._type == Some(nftables::types::NfChainType::NAT) =>
            {
                nat_table = true;
            }
            NfObject::ListObject(NfListObject::Rule(r)) => {
                let text = serde_json::to_string(&r.expr).unwrap_or_default();
                if text.contains("\"ct\"")
                    || text.contains("\"conntrack\"")
                    || text.contains("\"state\"")
                {
                    ct = true;
                }
            }
            _ => {}
        }
    }
    NetfilterState {
        nat_table,
        conntrack: nat_table || ct,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ruleset(name: &str) -> Nftables<'static> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn docker_ruleset() -> Nftables<'static> {
        ruleset("nft_docker_ruleset.json")
    }

    #[test]
    fn netavarks_per_network_chain_is_followed() {
        // Recorded from a real `podman run` (podman 4.3, netavark 1.4, iptables-nft) on a host
        // that also runs Docker: POSTROUTING jumps to NETAVARK-<id> for 10.88.0.0/16, which
        // masquerades everything not multicast.
        let r = ruleset("nft_podman_netavark_nat.json");
        let nat = find_source_nat(&r, "10.88.0.2".parse().unwrap()).unwrap();
        assert_eq!(nat.action, "MASQUERADE");
        assert_eq!(nat.chain, "NETAVARK-1D8721804F16F", "{nat}");
        assert_eq!(nat.via, vec!["POSTROUTING".to_string()]);
        assert!(nat.matches.contains("ip daddr != 224.0.0.0/4"), "{nat}");
        assert!(
            nat.to_string().contains("jumped to from POSTROUTING"),
            "{nat}"
        );
        // Docker's own rule in the same table is still found directly ...
        let docker = find_source_nat(&r, "172.17.0.2".parse().unwrap()).unwrap();
        assert_eq!(
            (docker.chain.as_str(), docker.via.len()),
            ("POSTROUTING", 0)
        );
        // ... and the mark-based NETAVARK-HOSTPORT-MASQ (an unconditional jump, no source
        // match) does not NAT an address no network covers.
        assert_eq!(find_source_nat(&r, "198.18.0.5".parse().unwrap()), None);
    }

    #[test]
    fn the_cni_bridge_plugins_per_container_chain_is_followed() {
        // Recorded from the real CNI bridge plugin (containernetworking-plugins, ipMasq: true)
        // run in a private namespace: POSTROUTING jumps for the container's /32 to CNI-<id>,
        // which accepts its own subnet and masquerades the rest.
        let r = ruleset("nft_cni_bridge_ipmasq.json");
        let nat = find_source_nat(&r, "198.19.77.2".parse().unwrap()).unwrap();
        assert!(nat.chain.starts_with("CNI-"), "{nat}");
        assert_eq!(nat.via, vec!["POSTROUTING".to_string()]);
        assert_eq!(find_source_nat(&r, "198.19.77.3".parse().unwrap()), None);
    }

    #[test]
    fn jump_loops_and_unconditional_returns_end_the_walk() {
        let doc = serde_json::json!({"nftables": [
            {"chain": {"family": "ip", "table": "nat", "name": "POSTROUTING", "type": "nat",
                       "hook": "postrouting", "prio": 100, "policy": "accept"}},
            {"chain": {"family": "ip", "table": "nat", "name": "A"}},
            {"chain": {"family": "ip", "table": "nat", "name": "B"}},
            {"rule": {"family": "ip", "table": "nat", "chain": "POSTROUTING", "expr": [
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                           "right": {"prefix": {"addr": "10.1.0.0", "len": 16}}}},
                {"jump": {"target": "A"}}]}},
            {"rule": {"family": "ip", "table": "nat", "chain": "A", "expr": [{"jump": {"target": "B"}}]}},
            {"rule": {"family": "ip", "table": "nat", "chain": "B", "expr": [{"jump": {"target": "A"}}]}},
            {"rule": {"family": "ip", "table": "nat", "chain": "B", "expr": [{"return": null}]}},
            {"rule": {"family": "ip", "table": "nat", "chain": "B", "expr": [{"masquerade": null}]}},
            {"rule": {"family": "ip", "table": "nat", "chain": "A", "expr": [{"masquerade": null}]}}
        ]});
        let r: Nftables = serde_json::from_value(doc).unwrap();
        // A → B → (A again: not followed) → return: back in A, whose masquerade applies.
        let nat = find_source_nat(&r, "10.1.2.3".parse().unwrap()).unwrap();
        assert_eq!(
            (nat.chain.as_str(), nat.via.clone()),
            ("A", vec!["POSTROUTING".to_string()])
        );
        assert_eq!(find_source_nat(&r, "10.2.0.1".parse().unwrap()), None);
    }

    #[test]
    fn dockers_masquerade_rules_are_found() {
        let r = docker_ruleset();
        let nat = find_source_nat(&r, "172.17.0.2".parse().unwrap()).unwrap();
        assert_eq!(nat.action, "MASQUERADE");
        assert_eq!(nat.table, "ip nat");
        assert_eq!(nat.chain, "POSTROUTING");
        assert!(nat.matches.contains("ip saddr 172.17.0.0/16"), "{nat}");
        assert!(nat.matches.contains("oifname != docker0"), "{nat}");
        let user = find_source_nat(&r, "172.18.0.2".parse().unwrap()).unwrap();
        assert!(user.matches.contains("172.18.0.0/16"), "{user}");
        assert!(user.matches.contains("br-"), "{user}");
    }

    #[test]
    fn other_addresses_are_not_nated() {
        let r = docker_ruleset();
        assert_eq!(find_source_nat(&r, "198.18.7.10".parse().unwrap()), None);
        assert_eq!(find_source_nat(&r, "10.0.0.1".parse().unwrap()), None);
    }

    #[test]
    fn nfts_own_masquerade_and_negated_sources() {
        let json = r#"{"nftables":[
          {"rule":{"family":"inet","table":"t","chain":"post","handle":2,"expr":[
            {"match":{"op":"!=","left":{"payload":{"protocol":"ip","field":"saddr"}},"right":{"prefix":{"addr":"10.0.0.0","len":8}}}},
            {"masquerade":null}]}}]}"#;
        let r: Nftables = serde_json::from_str(json).unwrap();
        assert!(find_source_nat(&r, "10.1.2.3".parse().unwrap()).is_none());
        let nat = find_source_nat(&r, "192.168.1.5".parse().unwrap()).unwrap();
        assert_eq!(nat.table, "inet t");
        assert!(nat.matches.contains("ip saddr != 10.0.0.0/8"), "{nat}");
    }

    #[test]
    fn prefixes_contain() {
        assert!(contains(
            ("172.17.0.0".parse().unwrap(), 16),
            "172.17.9.9".parse().unwrap()
        ));
        assert!(!contains(
            ("172.17.0.0".parse().unwrap(), 16),
            "172.18.0.1".parse().unwrap()
        ));
        assert!(contains(
            ("1.2.3.4".parse().unwrap(), 32),
            "1.2.3.4".parse().unwrap()
        ));
        assert!(contains(
            ("0.0.0.0".parse().unwrap(), 0),
            "8.8.8.8".parse().unwrap()
        ));
    }

    #[test]
    fn netfilter_state_of_a_docker_host_and_an_empty_ruleset() {
        let docker = netfilter_state(&docker_ruleset());
        assert!(docker.nat_table && docker.conntrack, "{docker:?}");
        let empty: Nftables = serde_json::from_str(r#"{"nftables": []}"#).unwrap();
        let st = netfilter_state(&empty);
        assert!(!st.nat_table && !st.conntrack);
        let filter_ct: Nftables = serde_json::from_str(
            r#"{"nftables": [
              {"chain": {"family": "inet", "table": "f", "name": "in", "handle": 1,
                         "type": "filter", "hook": "input", "prio": 0, "policy": "accept"}},
              {"rule": {"family": "inet", "table": "f", "chain": "in", "handle": 2,
                        "expr": [{"match": {"op": "in", "left": {"ct": {"key": "state"}},
                                  "right": ["established"]}}, {"accept": null}]}}
            ]}"#,
        )
        .unwrap();
        let st = netfilter_state(&filter_ct);
        assert!(!st.nat_table && st.conntrack, "{st:?}");
    }
}
