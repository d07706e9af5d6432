//! The feature-check matrix (`nslat check`, and beside `compare`'s latency table).

use comfy_table::{presets, CellAlignment, ContentArrangement, Table};

use crate::check::{CheckMatrix, ModeChecks};

/// Column headers, matching [`crate::check::CHECKS`].
const HEADERS: [&str; 9] = [
    "mode",
    "Service",
    "node→ctr",
    "ctr→node",
    "ctr→remote",
    "remote→ctr",
    "policy",
    "policy (Svc)",
    "MACs on wire",
];

fn yes_no(v: Option<bool>) -> String {
    match v {
        Some(true) => "yes".into(),
        Some(false) => "NO".into(),
        None => "—".into(),
    }
}

fn row(m: &ModeChecks) -> Vec<String> {
    if !m.available {
        let mut r = vec![m.mode.clone(), "not available".into()];
        r.extend(std::iter::repeat_n(String::new(), HEADERS.len() - 2));
        return r;
    }
    vec![
        m.mode.clone(),
        yes_no(m.service),
        yes_no(m.node_to_container),
        yes_no(m.container_to_node),
        yes_no(m.container_to_remote),
        yes_no(m.remote_to_container),
        yes_no(m.policy),
        yes_no(m.policy_service),
        m.macs.map(|n| n.to_string()).unwrap_or_else(|| "—".into()),
    ]
}

/// The matrix as a terminal table followed by one line per failed check saying why.
pub fn render(matrix: &CheckMatrix) -> String {
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(HEADERS.to_vec());
    for m in &matrix.modes {
        t.add_row(row(m));
    }
    for i in 1..HEADERS.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Center);
        }
    }
    let mut out = format!(
        "Feature checks (real connections; policy = a node drop rule blocks the container){}:\n{t}\n",
        if matrix.host_shim { ", with --host-shim" } else { "" }
    );
    for m in &matrix.modes {
        if let Some(reason) = &m.reason {
            out.push_str(&format!("  {}: not available: {reason}\n", m.mode));
        }
        for (check, why) in &m.why {
            out.push_str(&format!("  {} {check}: {why}\n", m.mode));
        }
    }
    out
}

/// Renders `compare`'s `checks` value: the matrix, or the reason it is missing.
pub fn render_value(v: &serde_json::Value) -> Option<String> {
    if v.is_null() {
        return None;
    }
    if let Some(e) = v.get("error").and_then(|e| e.as_str()) {
        return Some(format!("Feature checks not run: {e}\n"));
    }
    serde_json::from_value::<CheckMatrix>(v.clone())
        .ok()
        .map(|m| render(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_renders_yes_no_and_reasons() {
        let m = CheckMatrix {
            lab: "x".into(),
            host_shim: false,
            modes: vec![
                ModeChecks {
                    mode: "macvlan".into(),
                    available: true,
                    service: Some(false),
                    container_to_remote: Some(true),
                    macs: Some(2),
                    why: [("service".to_string(), "bypasses netfilter".to_string())].into(),
                    ..Default::default()
                },
                ModeChecks {
                    mode: "ipvlan-l2".into(),
                    reason: Some("kernel has no ipvlan support".into()),
                    ..Default::default()
                },
            ],
        };
        let text = render(&m);
        assert!(
            text.contains("NO") && text.contains("yes") && text.contains(" 2 "),
            "{text}"
        );
        assert!(
            text.contains("macvlan service: bypasses netfilter"),
            "{text}"
        );
        assert!(
            text.contains("ipvlan-l2: not available: kernel has no ipvlan support"),
            "{text}"
        );
        let v = serde_json::to_value(&m).unwrap();
        assert_eq!(render_value(&v).unwrap(), text);
        assert!(render_value(&serde_json::Value::Null).is_none());
        assert!(render_value(&serde_json::json!({"error": "not root"}))
            .unwrap()
            .contains("not root"));
    }
}
