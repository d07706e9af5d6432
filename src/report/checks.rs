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

/// The column headers and one row per mode.
pub fn table_rows(matrix: &CheckMatrix) -> (Vec<String>, Vec<Vec<String>>) {
    (
        HEADERS.map(String::from).to_vec(),
        matrix.modes.iter().map(row).collect(),
    )
}

/// One line per unavailable mode and per explained check, e.g. "macvlan service: …".
pub fn notes(matrix: &CheckMatrix) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(why) = &matrix.rules_unavailable {
        out.push(format!(
            "Service, policy and policy (Svc) (they load nftables rules): not available: {why}"
        ));
    }
    for m in &matrix.modes {
        if let Some(reason) = &m.reason {
            out.push(format!("{}: not available: {reason}", m.mode));
        }
        for (check, why) in &m.why {
            out.push(format!("{} {check}: {why}", m.mode));
        }
    }
    out
}

/// The title line of the matrix.
pub fn title(matrix: &CheckMatrix) -> String {
    format!(
        "Feature checks (real connections; policy = a node drop rule blocks the container){}",
        if matrix.host_shim {
            ", with --host-shim"
        } else {
            ""
        }
    )
}

/// The matrix as a terminal table followed by one line per failed check saying why.
pub fn render(matrix: &CheckMatrix) -> String {
    let (headers, rows) = table_rows(matrix);
    let mut t = Table::new();
    t.load_preset(presets::UTF8_FULL_CONDENSED)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(headers);
    for r in rows {
        t.add_row(r);
    }
    for i in 1..HEADERS.len() {
        if let Some(c) = t.column_mut(i) {
            c.set_cell_alignment(CellAlignment::Center);
        }
    }
    let mut out = format!("{}:\n{t}\n", title(matrix));
    for n in notes(matrix) {
        out.push_str(&format!("  {n}\n"));
    }
    out
}

/// Renders `compare`'s check outcome: the matrix, or the reason it is missing.
pub fn render_outcome(o: &crate::check::ChecksOutcome) -> String {
    match o {
        crate::check::ChecksOutcome::Matrix(m) => render(m),
        crate::check::ChecksOutcome::Failed { error } => {
            format!("Feature checks not run: {error}\n")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_renders_yes_no_and_reasons() {
        let m = CheckMatrix {
            lab: "x".into(),
            host_shim: false,
            rules_unavailable: None,
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
        // The outcome keeps the JSON shape of earlier reports: the matrix itself, or
        // {"error": ...}; both round-trip.
        use crate::check::ChecksOutcome;
        let v = serde_json::to_value(ChecksOutcome::Matrix(m.clone())).unwrap();
        assert_eq!(v, serde_json::to_value(&m).unwrap());
        let back: ChecksOutcome = serde_json::from_value(v).unwrap();
        assert_eq!(back.matrix(), Some(&m));
        assert_eq!(render_outcome(&back), text);
        let failed: ChecksOutcome =
            serde_json::from_value(serde_json::json!({"error": "not root"})).unwrap();
        assert!(failed.matrix().is_none());
        assert_eq!(
            render_outcome(&failed),
            "Feature checks not run: not root\n"
        );
    }
}
