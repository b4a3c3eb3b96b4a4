//! Process plumbing: the log, signals, and test-only pause points.

pub mod logging;
pub mod pause;
pub mod signals;
pub mod temp;
