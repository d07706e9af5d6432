//! Kernel counters read before and after a run (to be written).
