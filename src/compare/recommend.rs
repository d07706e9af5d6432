//! The answer on the first screen: which mode to use for the user's priorities (the fastest that
//! keeps Services, node access and host policy), the fastest overall and what it loses, the fix
//! that gets the loss back with its measured cost, the `nslat attach` command that applies it,
//! and one line per mode saying why it costs what it costs (from the counters).
//!
//! Pure: reads a [`CompareReport`] (its latencies and check matrix), returns lines; no I/O.

use super::model::{is_host_row, CompareReport, ModeResult};
use crate::check::{CheckMatrix, ModeChecks};

/// The features a mode must keep to be recommended without a fix, as the check matrix names
/// them.
type Check = fn(&ModeChecks) -> Option<bool>;

const KEPT: [(&str, Check); 4] = [
    ("Services", |c| c.service),
    ("node → container", |c| c.node_to_container),
    ("container → node", |c| c.container_to_node),
    ("host policy", |c| c.policy),
];

/// What a mode loses of [`KEPT`] (`None`: the checks did not run for it).
fn losses(checks: &CheckMatrix, mode: &str) -> Option<Vec<&'static str>> {
    let c = checks
        .modes
        .iter()
        .find(|c| c.mode == super::model::base_mode(mode) && c.available)?;
    Some(
        KEPT.iter()
            .filter(|(_, f)| f(c) != Some(true))
            .map(|(name, _)| *name)
            .collect(),
    )
}

fn latency(m: &ModeResult) -> Option<f64> {
    m.latency_us.map(|l| l.mean)
}

/// "4.61 µs (+0.63 µs, +15.8% over the host)".
fn cost(m: &ModeResult) -> String {
    let l = latency(m).unwrap_or(0.0);
    match m.vs_host {
        Some(v) => format!(
            "{l:.2} µs ({:+.2} µs, {:+.1}% vs host)",
            v.delta_us, v.delta_pct
        ),
        None => format!("{l:.2} µs"),
    }
}

/// The hybrid that gets a macvlan/ipvlan mode's losses back, and how to apply it.
fn hybrid_of(mode: &str) -> Option<(&'static str, &'static str)> {
    match mode {
        "macvlan" => Some(("macvlan+veth", "macvlan")),
        "ipvlan-l2" => Some(("ipvlan+veth", "ipvlan-l2")),
        "ipvlan-l3" | "ipvlan-l3s" => Some(("ipvlan+veth", "ipvlan-l3")),
        _ => None,
    }
}

/// The recommendation lines (empty when nothing was measured against the host).
pub fn lines(r: &CompareReport) -> Vec<String> {
    // With --family both, the first family's rows (each family is against its own host).
    let family = r.modes.first().and_then(|m| m.family);
    let containers: Vec<&ModeResult> = r
        .modes
        .iter()
        .filter(|m| m.available && !is_host_row(&m.mode) && latency(m).is_some())
        .filter(|m| m.family.is_none() || m.family == family)
        .collect();
    let Some(fastest) = containers
        .iter()
        .copied()
        .min_by(|a, b| latency(a).partial_cmp(&latency(b)).unwrap())
    else {
        return Vec::new();
    };
    // One container mode measured (`--modes host,bridge`): it is not "the fastest" of anything.
    const ONLY: &str = "the one container mode measured";
    let (fastest_is, overall) = if containers.len() == 1 {
        (ONLY, ONLY)
    } else {
        ("fastest", "fastest overall")
    };
    let checks = r.checks.as_ref().and_then(|c| c.matrix());
    let Some(checks) = checks else {
        return vec![
            format!("{fastest_is}: {} at {}", fastest.mode, cost(fastest)),
            "which modes keep Services, node access and host policy is unknown: run without \
             --no-checks"
                .into(),
        ];
    };
    let mut out = Vec::new();
    let keeping = containers
        .iter()
        .copied()
        .filter(|m| losses(checks, &m.mode).is_some_and(|l| l.is_empty()))
        .min_by(|a, b| latency(a).partial_cmp(&latency(b)).unwrap());
    match keeping {
        Some(k) => out.push(format!(
            "use {}: the fastest that keeps Services, node access and host policy, {}",
            k.mode,
            cost(k)
        )),
        None => out.push(
            "no measured mode keeps Services, node access and host policy all at once".into(),
        ),
    }
    let lost = losses(checks, &fastest.mode).unwrap_or_default();
    if keeping.is_some_and(|k| k.mode == fastest.mode) || lost.is_empty() {
        return out;
    }
    out.push(format!(
        "{overall}: {} at {}, but it loses {}",
        fastest.mode,
        cost(fastest),
        lost.join(", ")
    ));
    if let Some((hybrid, attach_mode)) = hybrid_of(&fastest.mode) {
        let measured = r
            .modes
            .iter()
            .find(|m| m.mode == hybrid && m.available && latency(m).is_some());
        let hybrid_keeps = losses(checks, hybrid);
        match measured {
            Some(h) => {
                let extra = latency(h).unwrap_or(0.0) - latency(fastest).unwrap_or(0.0);
                let still = match &hybrid_keeps {
                    Some(l) if l.is_empty() => "and keeps them all".to_string(),
                    Some(l) => format!("and still loses {}", l.join(", ")),
                    None => "(not checked)".into(),
                };
                out.push(format!(
                    "fix: {hybrid} (the +veth hybrid: Services and node traffic over a veth, \
                     data over {attach_mode}) costs {extra:+.2} µs over {} at {}, {still}",
                    fastest.mode,
                    cost(h)
                ));
            }
            None => out.push(format!(
                "fix: {hybrid} (the +veth hybrid: Services and node traffic over a veth, data \
                 over {attach_mode}); not measured in this run: add it with --modes …,{hybrid}"
            )),
        }
        out.push(format!(
            "apply it to a running container: nslat attach --pid PID --mode {attach_mode} \
             --parent IFACE --addr ADDR/PREFIX --gateway GW --service-veth"
        ));
        if lost
            .iter()
            .all(|l| l.starts_with("node") || l.starts_with("container"))
        {
            out.push(format!(
                "(node access alone: nslat attach --pid PID --mode {attach_mode} --parent IFACE \
                 --addr ADDR/PREFIX --host-shim NODE-IP)"
            ));
        }
    }
    out
}

/// Why each mode costs what it costs, one line each, from the backlog packet counts against
/// the host's (the host's own round trip is received twice: request and response).
pub fn why_lines(r: &CompareReport) -> Vec<String> {
    let host = r
        .modes
        .iter()
        .find(|m| m.mode == r.baseline.mode && m.available)
        .and_then(|m| m.probes.backlog_pkts_per_tx);
    let Some(host) = host else {
        return Vec::new();
    };
    // --family both: IPv6 rows against the host's IPv6 row.
    let host6_label = super::model::family_label(super::model::BASELINE, 6);
    let host6 = r
        .modes
        .iter()
        .find(|m| m.mode == host6_label && m.available)
        .and_then(|m| m.probes.backlog_pkts_per_tx);
    r.modes
        .iter()
        .filter(|m| m.available && m.mode != r.baseline.mode && m.mode != host6_label)
        .filter_map(|m| {
            let n = m.probes.backlog_pkts_per_tx?;
            let host = match host6 {
                Some(h6) if m.family == Some(6) => h6,
                _ => host,
            };
            let extra = (n - host).round() as i64;
            let path = match super::model::base_mode(&m.mode) {
                "bridge" => {
                    "the veth pair hands each packet over once more each way, the bridge \
                             once more; conntrack and NAT cost CPU, not queueing"
                }
                "ptp" => {
                    "the veth pair hands each packet over once more each way (routed, no \
                          bridge, no NAT)"
                }
                "macvlan" | "ipvlan-l2" => {
                    "the incoming packet is handed to the container's interface once more; \
                     outgoing packets go straight to the NIC"
                }
                "ipvlan-l3" | "ipvlan-l3s" => {
                    "routed inside the ipvlan driver: one more hand-over on the way in"
                }
                m if m.contains("+veth") => {
                    "the data path of its macvlan/ipvlan; only Services and node traffic take \
                     the veth"
                }
                // Other lab modes: what their driver says to expect.
                other => other
                    .parse::<crate::lab::Mode>()
                    .map(|mode| mode.traits().backlog.why)
                    .unwrap_or(""),
            };
            let sep = if path.is_empty() { "" } else { ": " };
            Some(format!(
                "{}: {n:.0} packet receptions per round trip vs the host's {host:.0} \
                 ({extra:+}){sep}{path}",
                m.mode
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks(rows: &[(&str, bool)]) -> crate::check::ChecksOutcome {
        let modes: Vec<serde_json::Value> = rows
            .iter()
            .map(|(m, keeps)| {
                serde_json::json!({
                    "mode": m, "available": true, "service": keeps, "node_to_container": keeps,
                    "container_to_node": keeps, "container_to_remote": true,
                    "remote_to_container": true, "policy": keeps, "policy_service": keeps,
                    "macs": 1,
                })
            })
            .collect();
        serde_json::from_value(serde_json::json!({"lab": "t", "host_shim": false, "modes": modes}))
            .unwrap()
    }

    #[test]
    fn recommends_the_fastest_that_keeps_everything_and_the_fix_for_the_fastest() {
        let mut r = crate::report::sample_report();
        r.checks = Some(checks(&[
            ("host", true),
            ("bridge", true),
            ("ptp", true),
            ("macvlan", false),
        ]));
        let l = lines(&r);
        assert!(l[0].starts_with("use ptp:"), "{l:?}");
        assert!(l[1].starts_with("fastest overall: macvlan"), "{l:?}");
        assert!(l[1].contains("loses Services"), "{l:?}");
        assert!(
            l[2].contains("macvlan+veth") && l[2].contains("not measured"),
            "{l:?}"
        );
        assert!(
            l[3].contains("nslat attach --pid PID --mode macvlan")
                && l[3].contains("--service-veth"),
            "{l:?}"
        );

        // Measured, the hybrid's cost over macvlan is stated.
        let mut hybrid = r.modes[3].clone();
        hybrid.mode = "macvlan+veth".into();
        hybrid.latency_us.as_mut().unwrap().mean = 5.2;
        r.modes.push(hybrid);
        r.checks = Some(checks(&[
            ("bridge", true),
            ("ptp", true),
            ("macvlan", false),
            ("macvlan+veth", true),
        ]));
        let l = lines(&r);
        assert!(l[0].starts_with("use macvlan+veth:"), "{l:?}");
        assert!(
            l[2].contains("+0.20 µs over macvlan") && l[2].contains("keeps them all"),
            "{l:?}"
        );

        // Without checks: the fastest, and what is unknown.
        r.checks = None;
        let l = lines(&r);
        assert!(l[0].starts_with("fastest: macvlan"), "{l:?}");
        assert!(l[1].contains("--no-checks"), "{l:?}");
    }

    #[test]
    fn one_container_mode_is_not_called_the_fastest() {
        // `compare --modes host,bridge --no-checks` said "fastest: bridge ... +39% vs host".
        let mut r = crate::report::sample_report();
        r.modes.retain(|m| m.mode == "host" || m.mode == "bridge");
        let l = lines(&r);
        assert!(
            l[0].starts_with("the one container mode measured: bridge at"),
            "{l:?}"
        );
        r.checks = Some(checks(&[("host", true), ("bridge", false)]));
        let l = lines(&r);
        assert!(l.iter().all(|x| !x.contains("fastest")), "{l:?}");
        assert!(
            l[1].starts_with("the one container mode measured: bridge"),
            "{l:?}"
        );
    }

    #[test]
    fn why_counts_packet_receptions_against_the_host() {
        let w = why_lines(&crate::report::sample_report());
        assert!(
            w[0].starts_with("bridge: 5 packet receptions per round trip vs the host's 2 (+3)"),
            "{w:?}"
        );
        assert!(w.iter().any(|l| l.starts_with("macvlan: 3")), "{w:?}");
    }
}
