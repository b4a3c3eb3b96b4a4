//! A system's stream limits: which limit an open counts against, the
//! pauses while waiting for a stream, and whether this process waited.

use backon::ExponentialBuilder;

use crate::error::Error;

/// Which of a system's stream limits an open counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StreamKind {
    Read,
    Write,
}

impl StreamKind {
    pub(super) fn name(self) -> &'static str {
        match self {
            StreamKind::Read => "read",
            StreamKind::Write => "write",
        }
    }
}

/// The pauses between attempts to get a stream, for up to `wait` in all:
/// growing from 50 ms to 2 s, each with jitter, so that the processes that
/// wait do not all try again at once.
pub(super) fn stream_backoff(wait: std::time::Duration) -> ExponentialBuilder {
    ExponentialBuilder::default()
        .with_min_delay(std::time::Duration::from_millis(50))
        .with_max_delay(std::time::Duration::from_secs(2))
        .without_max_times()
        .with_total_delay(Some(wait))
        .with_jitter()
}

/// Set once this process waited for a stream: it then takes no read-ahead
/// readers (the system's streams are scarce).
pub(super) static WAITED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether `e` is an open the system refused for its stream limit.
pub(super) fn is_stream_limit(e: &Error) -> bool {
    e.source_as::<ddboost::Error>()
        .is_some_and(|s| s.is(ddboost::DdErr::StreamLimit))
}

/// The stream counts of a system in one line, for the logs.
pub(super) fn describe_counts(c: &ddboost::StreamCounts) -> String {
    let (l, u) = (&c.limits, &c.inuse);
    format!(
        "in use: {} read, {} read-write, {} replication of {} read, {} write, {} in all",
        u.read_streams,
        u.read_write_streams,
        u.replication_streams,
        l.backup_read_streams,
        l.backup_write_streams,
        l.total_streams_hard_limit
    )
}
