//! Feature checks per mode behind `nslat check` (being written).

use serde_json::Value;

use crate::lab::{Lab, Mode};

/// The check matrix of `modes` in `lab`, as JSON (placeholder until the check module lands).
pub fn matrix_json(_lab: &Lab, _modes: &[Mode]) -> Value {
    Value::Null
}
