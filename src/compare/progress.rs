//! What a comparison tells while it runs: the [`Progress`] trait a progress bar (or plain lines,
//! or nothing) implements. Part of the floor: it imports no flow.

/// Progress of a comparison, for a progress bar or plain lines. Every method has a no-op default.
pub trait Progress {
    /// A placement begins: about `runs` runs of `seconds_per_run` each are planned.
    fn placement(&self, _placement: &str, _runs: usize, _seconds_per_run: f64) {}
    /// One run begins.
    fn run_started(&self, _placement: &str, _label: &str, _rep: usize, _reps: usize) {}
    /// One run ended with this mean latency (µs).
    fn run_finished(&self, _label: &str, _latency_us: f64) {}
    /// Something worth a line (lab built, mode unavailable, extra rounds).
    fn note(&self, _message: &str) {}
    /// The feature checks begin: `checks` are planned (at least 1).
    fn checks_planned(&self, _checks: usize) {}
    /// One feature check begins, e.g. ("bridge", "Service").
    fn check_started(&self, _mode: &str, _check: &str) {}
    /// The feature check that began last ended.
    fn check_finished(&self) {}
}

/// Progress that shows nothing.
pub struct SilentProgress;
impl Progress for SilentProgress {}

/// A comparison's progress as the checks' progress.
pub(super) struct ChecksProgress<'a>(pub &'a dyn Progress);

impl crate::check::CheckProgress for ChecksProgress<'_> {
    fn planned(&self, checks: usize) {
        self.0.checks_planned(checks);
    }
    fn started(&self, mode: &str, check: &str) {
        self.0.check_started(mode, check);
    }
    fn finished(&self) {
        self.0.check_finished();
    }
}
