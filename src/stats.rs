//! Histogram summaries, confidence intervals and Welch's t-test (to be written).
