//! The plugin's error type. Every message is one line that says what failed,
//! on which object, and what to do; `app::run` prints it once on stderr.

use std::fmt;

/// What went wrong, for callers that branch on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong command or argument count.
    Usage,
    /// A problem in the plugin config file.
    Config,
    /// A bad argument: path, timestamp, offsets.
    Invalid,
    /// The object or backup does not exist.
    NotFound,
    /// The storage failed (I/O, connection, space).
    Storage,
    /// The storage refused to open a file because every stream it allows
    /// is taken (DD Boost's `DD_ERR_STREAM_LIMIT`), after waiting as long as
    /// the open was allowed to.
    StreamLimit,
    /// Stored bytes do not match their checksum.
    Integrity,
    /// The reader of standard output went away.
    BrokenPipe,
    /// Failure reading standard input or writing a local file.
    Io,
    /// A signal (in the connection broker, its client's cancel) stopped
    /// the command.
    Interrupted,
    /// A bug: a thread of the command panicked or stopped unexpectedly.
    Internal,
    /// The connection broker failed: it cannot serve, or stopped during a
    /// request.
    Broker,
}

/// The underlying error an [`Error`] was made from, kept for callers that
/// inspect it (e.g. the SDK's return code).
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[source]
    source: Option<Source>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let message: String = message.into();
        // One line, always: callers show stderr inside their own messages.
        let message = message.replace(['\n', '\r'], " ");
        Error {
            kind,
            message,
            source: None,
        }
    }
    /// A storage error caused by `source` (e.g. a failed DD Boost call, whose
    /// return code stays available through [`std::error::Error::source`]).
    pub fn storage_from(
        m: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::storage(m).with_source(source)
    }
    /// Keeps `source` as the cause; the message is unchanged.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }
    /// The cause as a `T`, if it is one.
    pub fn source_as<T: std::error::Error + 'static>(&self) -> Option<&T> {
        self.source.as_deref().and_then(|s| s.downcast_ref::<T>())
    }
    pub fn usage(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Usage, m)
    }
    pub fn config(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, m)
    }
    pub fn invalid(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Invalid, m)
    }
    pub fn not_found(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, m)
    }
    pub fn storage(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Storage, m)
    }
    pub fn integrity(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Integrity, m)
    }
    pub fn io(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Io, m)
    }
    pub fn interrupted(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Interrupted, m)
    }
    pub fn internal(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, m)
    }
    pub fn broker(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Broker, m)
    }
    pub fn broken_pipe() -> Self {
        Self::new(
            ErrorKind::BrokenPipe,
            "the reader of standard output went away",
        )
    }
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    pub fn message(&self) -> &str {
        &self.message
    }
    /// Prefixes context: "while X: <message>".
    pub fn context(self, what: impl fmt::Display) -> Self {
        Error {
            kind: self.kind,
            message: format!("{what}: {}", self.message),
            source: self.source,
        }
    }
}

/// Whether an I/O error means the other end of a pipe went away.
pub fn is_broken_pipe(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::BrokenPipe
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[derive(Debug, PartialEq)]
    struct Cause(i32);
    impl fmt::Display for Cause {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "cause {}", self.0)
        }
    }
    impl std::error::Error for Cause {}

    #[test]
    fn keeps_its_source_through_context() {
        let e = Error::storage_from("call failed:\nline two", Cause(5014)).context("while X");
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert_eq!(e.to_string(), "while X: call failed: line two");
        assert_eq!(e.source_as::<Cause>(), Some(&Cause(5014)));
        assert_eq!(e.source().unwrap().to_string(), "cause 5014");
        let plain = Error::storage("no cause");
        assert!(plain.source().is_none());
        assert!(plain.source_as::<Cause>().is_none());
    }
}
