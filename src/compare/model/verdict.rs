//! The verdict: one sentence per mode against the baseline, from the figures already in the
//! report.

use super::schema::CompareReport;
use crate::bench::TestKind;

/// One sentence per non-baseline mode, e.g. "bridge adds 1.5 µs (+29%) per round trip,
/// significant" or "macvlan: no significant cost (-0.2 µs, -4%, p=0.31)".
pub fn verdict(report: &CompareReport) -> Vec<String> {
    let unit = if report.test == TestKind::TcpCrr.name() {
        "per transaction"
    } else {
        "per round trip"
    };
    let has_baseline = report
        .modes
        .iter()
        .any(|m| m.mode == report.baseline.mode && m.available);
    let mut out = Vec::new();
    if !has_baseline {
        out.push(format!(
            "no {} baseline was measured: nothing to compare with",
            report.baseline.mode
        ));
    }
    for m in report
        .modes
        .iter()
        .filter(|m| m.mode != report.baseline.mode)
    {
        if !m.available {
            out.push(format!(
                "{}: not measured ({})",
                m.mode,
                m.reason.as_deref().unwrap_or("unavailable")
            ));
            continue;
        }
        let Some(v) = m.vs_host else { continue };
        if let Some([lo, hi]) = v.ratio_ci95 {
            let ci = format!(
                "95% CI {:+.1}..{:+.1}%",
                (lo - 1.0) * 100.0,
                (hi - 1.0) * 100.0
            );
            out.push(if v.significant && v.delta_us > 0.0 {
                format!(
                    "{} adds {:.2} µs ({:+.1}%, {ci}) {unit}, significant",
                    m.mode, v.delta_us, v.delta_pct
                )
            } else if v.significant {
                format!(
                    "{} saves {:.2} µs ({:+.1}%, {ci}) {unit}, significant",
                    m.mode, -v.delta_us, v.delta_pct
                )
            } else {
                format!(
                    "{}: no significant cost ({:+.2} µs, {:+.1}%, {ci})",
                    m.mode, v.delta_us, v.delta_pct
                )
            });
            continue;
        }
        let sentence = match v.p_value {
            None => format!(
                "{}: {:+.1} µs ({:+.0}%) {unit}, significance unknown (one repetition)",
                m.mode, v.delta_us, v.delta_pct
            ),
            Some(_) if v.significant && v.delta_us > 0.0 => format!(
                "{} adds {:.1} µs ({:+.0}%) {unit}, significant",
                m.mode, v.delta_us, v.delta_pct
            ),
            Some(_) if v.significant => format!(
                "{} saves {:.1} µs ({:+.0}%) {unit}, significant",
                m.mode, -v.delta_us, v.delta_pct
            ),
            Some(p) => format!(
                "{}: no significant cost ({:+.1} µs, {:+.0}%, p={:.2})",
                m.mode, v.delta_us, v.delta_pct, p
            ),
        };
        out.push(sentence);
    }
    out
}
