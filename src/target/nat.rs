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
}

impl std::fmt::Display for NatRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} in {} {} ({})",
            self.action, self.table, self.chain, self.matches
        )
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

/// The first rule that masquerades or SNATs traffic from `addr`: a NAT rule with an `ip saddr`
/// match covering `addr` (`==`) or excluding it (`!=` not covering it). Rules without a source
/// match are left out: they name an interface, not this target.
pub fn find_source_nat(ruleset: &Nftables, addr: Ipv4Addr) -> Option<NatRule> {
    for obj in ruleset.objects.iter() {
        let NfObject::ListObject(NfListObject::Rule(rule)) = obj else {
            continue;
        };
        let Some(action) = rule.expr.iter().find_map(nat_action) else {
            continue;
        };
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
        if saddr_ok == Some(true) {
            return Some(NatRule {
                table: format!("{} {}", family_name(&rule.family), rule.table),
                chain: rule.chain.to_string(),
                action: action.to_string(),
                matches: matches
                    .iter()
                    .map(|m| m.replace(" == ", " "))
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
    }
    None
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

    fn docker_ruleset() -> Nftables<'static> {
        let path = format!(
            "{}/tests/fixtures/nft_docker_ruleset.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(path).unwrap();
        serde_json::from_str(&text).unwrap()
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
