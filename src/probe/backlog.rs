//! The backlog's length over time: a sampler thread reads `/proc/net/softnet_stat`'s backlog
//! length column (see [`super::softnet`]) for one watched CPU every interval, from another CPU,
//! until it is stopped. The counters of [`super::Snapshot`] say how many packets passed; this
//! says how many were waiting at once, i.e. queued ahead of a packet that arrives then.
//!
//! The sampler reads a small file once per interval on the CPU it is pinned to (a few µs per
//! read); it must not run on the watched CPU (it would take that CPU's time and see its own
//! backlog drained).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{softnet, ProbeError};

/// What the samples of one CPU's backlog length showed.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct BacklogSamples {
    /// Samples read.
    pub samples: u64,
    /// Samples that found at least one packet waiting.
    pub nonzero: u64,
    /// Packets waiting, summed over the samples.
    pub sum: u64,
    /// The most packets waiting in one sample.
    pub max: u32,
}

impl BacklogSamples {
    /// Counts one sample of `len` packets waiting.
    pub fn add(&mut self, len: u32) {
        self.samples += 1;
        self.sum += u64::from(len);
        self.max = self.max.max(len);
        if len > 0 {
            self.nonzero += 1;
        }
    }

    /// Mean packets waiting (`None` without samples).
    pub fn mean(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.sum as f64 / self.samples as f64)
    }

    /// Share of samples (0..1) with packets waiting (`None` without samples).
    pub fn busy_share(&self) -> Option<f64> {
        (self.samples > 0).then(|| self.nonzero as f64 / self.samples as f64)
    }
}

/// A running sampler; [`Sampler::stop`] ends it and returns the samples.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<Result<BacklogSamples, ProbeError>>,
}

impl Sampler {
    /// Starts sampling `watched`'s backlog every `interval` on a thread pinned to `on_cpu`.
    pub fn start(watched: usize, on_cpu: usize, interval: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            crate::bench::timing::pin_to(on_cpu).map_err(|e| {
                ProbeError::Unavailable(format!("backlog sampler: pinning to CPU {on_cpu}: {e}"))
            })?;
            let mut s = BacklogSamples::default();
            while !flag.load(Ordering::Relaxed) {
                let cpus = softnet::read()?;
                if let Some(c) = cpus.iter().find(|c| c.cpu == watched) {
                    s.add(c.backlog_len);
                }
                std::thread::sleep(interval);
            }
            Ok(s)
        });
        Sampler { stop, handle }
    }

    /// Stops the sampler and returns what it saw.
    pub fn stop(self) -> Result<BacklogSamples, ProbeError> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .join()
            .map_err(|_| ProbeError::Unavailable("backlog sampler panicked".into()))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_summarize_length_and_busy_share() {
        let mut s = BacklogSamples::default();
        assert_eq!((s.mean(), s.busy_share()), (None, None));
        for len in [0, 0, 3, 0, 1] {
            s.add(len);
        }
        assert_eq!((s.samples, s.nonzero, s.sum, s.max), (5, 2, 4, 3));
        assert_eq!(s.mean(), Some(0.8));
        assert_eq!(s.busy_share(), Some(0.4));
    }

    #[test]
    fn the_sampler_reads_this_machine() {
        let cpus = crate::probe::online_cpus().unwrap();
        let (watched, on) = (cpus[0], *cpus.last().unwrap());
        let s = Sampler::start(watched, on, Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(50));
        let got = s.stop().unwrap();
        assert!(got.samples >= 5, "{got:?}");
        assert!(
            got.nonzero <= got.samples && got.sum >= u64::from(got.max),
            "{got:?}"
        );
    }
}
