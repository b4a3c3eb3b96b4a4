//! Process plumbing: the log, signals, progress on a terminal, and test-only
//! pause points.

pub mod logging;
pub mod pause;
pub mod progress;
pub mod signals;
