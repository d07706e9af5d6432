//! `--json PATH`: the whole [`CompareReport`](crate::compare::CompareReport), pretty-printed.

use std::io::Write;

use super::{Exporter, ReportError};
use crate::compare::CompareReport;

/// Pretty JSON with a trailing newline.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

impl Exporter for JsonExporter {
    fn export(&self, report: &CompareReport, out: &mut dyn Write) -> Result<(), ReportError> {
        serde_json::to_writer_pretty(&mut *out, report)?;
        out.write_all(b"\n")?;
        Ok(())
    }
}
