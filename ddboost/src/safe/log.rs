//! Forwarding the SDK's log messages to a sink chosen by the application.

use std::sync::OnceLock;

use super::types::Severity;

/// Receives every SDK log message (already lossy-converted to UTF-8). It may
/// be called from any thread and while an SDK call is in progress: it must
/// not call back into the SDK.
pub type LogSink = fn(Severity, &str);

static SINK: OnceLock<LogSink> = OnceLock::new();

/// Registers the process-wide log sink. Only the first registration takes
/// effect; a later one gets its sink back as `Err`. Messages that arrive
/// before a sink is registered are dropped.
pub fn set_log_sink(sink: LogSink) -> Result<(), LogSink> {
    SINK.set(sink)
}

/// Called by the adapter's `extern "C"` callback.
pub(crate) fn dispatch(severity: Severity, message: &str) {
    if let Some(sink) = SINK.get() {
        sink(severity, message);
    }
}
