//! `--csv PATH`: one row per mode, flat columns, full precision; empty cells for missing values.
//! Tracepoint columns (`tp_<sys>_<event>_per_tx`) follow for every tracepoint any mode counted.

use std::io::Write;

use super::{tracepoint_names, Exporter, ReportError};
use crate::compare::CompareReport;

/// CSV with a header row.
#[derive(Debug, Clone, Copy, Default)]
pub struct CsvExporter;

const FIXED: [&str; 26] = [
    "mode",
    "available",
    "reason",
    "test",
    "request_size",
    "response_size",
    "cpu_placement",
    "reps",
    "duration_s",
    "kernel",
    "trans_per_s_mean",
    "trans_per_s_ci95",
    "latency_us_mean",
    "latency_us_ci95",
    "latency_us_p50",
    "latency_us_p99",
    "latency_us_p99_9",
    "vs_host_delta_us",
    "vs_host_delta_pct",
    "vs_host_ratio",
    "vs_host_p_value",
    "vs_host_significant",
    "backlog_pkts_per_tx",
    "net_rx_per_tx",
    "cpu_us_per_tx",
    "family",
];

fn num(v: Option<f64>) -> String {
    v.filter(|x| x.is_finite())
        .map(|x| x.to_string())
        .unwrap_or_default()
}

impl Exporter for CsvExporter {
    fn export(&self, r: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        let tps = tracepoint_names(r);
        let mut w = ::csv::Writer::from_writer(out);
        let mut header: Vec<String> = FIXED.iter().map(|s| s.to_string()).collect();
        header.extend(
            tps.iter()
                .map(|n| format!("tp_{}_per_tx", n.replace(':', "_"))),
        );
        w.write_record(&header)?;
        for m in &r.modes {
            let l = m.latency_us;
            let v = m.vs_host;
            let mut row = vec![
                m.mode.clone(),
                m.available.to_string(),
                m.reason.clone().unwrap_or_default(),
                r.test.clone(),
                r.request_size.to_string(),
                r.response_size.to_string(),
                r.cpu_placement.clone(),
                r.reps.to_string(),
                r.duration_s.to_string(),
                r.kernel.clone(),
                num(m.trans_per_s.map(|t| t.mean)),
                num(m.trans_per_s.and_then(|t| t.ci95)),
                num(l.map(|l| l.mean)),
                num(l.and_then(|l| l.ci95)),
                num(l.map(|l| l.p50)),
                num(l.map(|l| l.p99)),
                num(l.map(|l| l.p99_9)),
                num(v.map(|v| v.delta_us)),
                num(v.map(|v| v.delta_pct)),
                num(v.map(|v| v.ratio)),
                num(v.and_then(|v| v.p_value)),
                v.map(|v| v.significant.to_string()).unwrap_or_default(),
                num(m.probes.backlog_pkts_per_tx),
                num(m.probes.net_rx_per_tx),
                num(m.probes.cpu_us_per_tx),
                m.family.map(|f| f.to_string()).unwrap_or_default(),
            ];
            row.extend(
                tps.iter()
                    .map(|n| num(m.probes.tracepoints_per_tx.get(n).copied())),
            );
            w.write_record(&row)?;
        }
        w.flush()?;
        Ok(())
    }
}
