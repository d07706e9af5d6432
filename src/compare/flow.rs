//! What a flow is: one way of putting the paths in place and measuring them (the lab, a real
//! remote, the user's containers), each in a file of its own that implements [`Flow`]. The front
//! door ([`super::run`]) checks, runs and finishes every flow the same way. Part of the floor: it
//! imports no flow.

use super::error::CompareError;
use super::model::CompareReport;
use super::options::CompareOptions;
use super::progress::Progress;
use super::runs::Runner;

/// One way of measuring a comparison.
pub trait Flow {
    /// What this flow cannot do with these options: one line, checked before anything is
    /// built or locked.
    fn check(&self, _opts: &CompareOptions) -> Result<(), String> {
        Ok(())
    }

    /// Whether it builds a lab (the labs of compares that crashed are removed first).
    fn builds_lab(&self) -> bool;

    /// Puts the paths in place, measures them, removes what it built, and returns one report per
    /// CPU placement (the front door stamps and finishes them).
    fn measure(&self, runner: &Runner, progress: &dyn Progress) -> Result<Finished, CompareError>;
}

/// What a comparison returns: one finished report per CPU placement, and the paths that failed
/// during the run while the rest was measured (a partial success when not empty).
#[derive(Debug)]
pub struct Finished {
    pub reports: Vec<CompareReport>,
    /// One line per path that failed mid-run.
    pub failed: Vec<String>,
}

impl From<Vec<CompareReport>> for Finished {
    fn from(reports: Vec<CompareReport>) -> Self {
        Finished {
            reports,
            failed: Vec::new(),
        }
    }
}
