//! The plugin's error type. Every message is one line that says what failed,
//! on which object, and what to do; `app::run` prints it once on stderr,
//! with its stable code ([`Failure`]).

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
    /// `verify_backup`'s verdict: the backup is incomplete, or objects of it
    /// are missing, failed their checksum or have none.
    Unverified,
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

/// What a failure was, as a stable code: the stderr line shows it
/// (`error[DDB-204]: ...`), the log too (`[DDB-204] ...`), and the README's
/// troubleshooting table gives each one's cause and remedy. Its
/// [`Failure::name`] is a lowercase label value for counting failures by
/// kind. Codes are never reused for another meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// Wrong command or argument count ([`ErrorKind::Usage`]).
    Usage,
    /// The plugin config file, or the SDK library it names.
    Config,
    /// A bad argument: key, timestamp, offsets, a file gpbackup passed.
    InvalidArgument,
    /// The object or backup does not exist.
    NotFound,
    /// The Data Domain refused the user name or password (`DD_ERR_AUTH`).
    LoginRefused,
    /// The Data Domain could not be reached (`DD_ERR_CONNECT`).
    Unreachable,
    /// The connection to the Data Domain dropped (`DD_ERR_CONN_LOST`).
    ConnectionLost,
    /// Every stream of the Data Domain stayed taken (`DD_ERR_STREAM_LIMIT`).
    StreamLimit,
    /// No space left: the storage unit's quota or the system
    /// (`DD_ERR_NOSPACE`; a full filesystem for the local backend).
    StorageFull,
    /// Not permitted (`DD_ERR_PERM`; for the local backend a file mode or a
    /// read-only filesystem).
    PermissionDenied,
    /// Any other failure of the storage; the line names the call and the
    /// SDK's code or the filesystem's error.
    StorageError,
    /// Stored bytes do not match their checksum.
    ChecksumMismatch,
    /// `verify_backup` found the backup incomplete, or objects missing,
    /// failed or unrecorded.
    VerifyFailed,
    /// Reading standard input, writing standard output or a local file.
    LocalIo,
    /// A signal (or the broker's cancel of its client's request) stopped it.
    Interrupted,
    /// The connection broker could not serve, or stopped during a request.
    BrokerGone,
    /// A bug: a thread of the command panicked or stopped unexpectedly.
    Internal,
}

impl Failure {
    /// Every code, in the README's order.
    pub const ALL: [Failure; 17] = [
        Failure::Usage,
        Failure::Config,
        Failure::InvalidArgument,
        Failure::NotFound,
        Failure::LoginRefused,
        Failure::Unreachable,
        Failure::ConnectionLost,
        Failure::StreamLimit,
        Failure::StorageFull,
        Failure::PermissionDenied,
        Failure::StorageError,
        Failure::ChecksumMismatch,
        Failure::VerifyFailed,
        Failure::LocalIo,
        Failure::Interrupted,
        Failure::BrokerGone,
        Failure::Internal,
    ];

    /// The code and its lowercase name.
    const fn parts(self) -> (&'static str, &'static str) {
        match self {
            Failure::Usage => ("DDB-101", "usage"),
            Failure::Config => ("DDB-102", "config"),
            Failure::InvalidArgument => ("DDB-103", "invalid_argument"),
            Failure::NotFound => ("DDB-104", "not_found"),
            Failure::LoginRefused => ("DDB-201", "login_refused"),
            Failure::Unreachable => ("DDB-202", "unreachable"),
            Failure::ConnectionLost => ("DDB-203", "connection_lost"),
            Failure::StreamLimit => ("DDB-204", "stream_limit"),
            Failure::StorageFull => ("DDB-205", "storage_full"),
            Failure::PermissionDenied => ("DDB-206", "permission_denied"),
            Failure::StorageError => ("DDB-207", "storage_error"),
            Failure::ChecksumMismatch => ("DDB-208", "checksum_mismatch"),
            Failure::VerifyFailed => ("DDB-209", "verify_failed"),
            Failure::LocalIo => ("DDB-301", "local_io"),
            Failure::Interrupted => ("DDB-302", "interrupted"),
            Failure::BrokerGone => ("DDB-303", "broker_gone"),
            Failure::Internal => ("DDB-399", "internal"),
        }
    }

    /// The code the stderr line shows, e.g. `DDB-204`.
    pub const fn code(self) -> &'static str {
        self.parts().0
    }

    /// The same as a lowercase label value, e.g. `stream_limit`.
    pub const fn name(self) -> &'static str {
        self.parts().1
    }

    /// A storage failure by its cause: the SDK's return code, or the
    /// filesystem's error number, found anywhere in the chain of sources.
    fn of_storage(e: &Error) -> Failure {
        let mut next = e
            .source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static));
        while let Some(s) = next {
            if let Some(sdk) = s.downcast_ref::<ddboost::Error>() {
                return Failure::of_sdk(sdk);
            }
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return Failure::of_os(io);
            }
            next = s.source();
        }
        Failure::StorageError
    }

    fn of_sdk(e: &ddboost::Error) -> Failure {
        use ddboost::DdErr;
        match e.dd_err() {
            Some(DdErr::Auth) => Failure::LoginRefused,
            Some(DdErr::Connect) => Failure::Unreachable,
            Some(DdErr::ConnLost) => Failure::ConnectionLost,
            Some(DdErr::StreamLimit) => Failure::StreamLimit,
            Some(DdErr::Nospace) => Failure::StorageFull,
            Some(DdErr::Perm) => Failure::PermissionDenied,
            _ => Failure::StorageError,
        }
    }

    fn of_os(e: &std::io::Error) -> Failure {
        use nix::libc;
        match e.raw_os_error() {
            Some(libc::ENOSPC | libc::EDQUOT) => Failure::StorageFull,
            Some(libc::EACCES | libc::EPERM | libc::EROFS) => Failure::PermissionDenied,
            _ => Failure::StorageError,
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
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
    pub fn unverified(m: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unverified, m)
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
    /// What failed, as a stable code ([`Failure`]): from the kind and, for
    /// the storage, the cause it was made from.
    pub fn failure(&self) -> Failure {
        match self.kind {
            ErrorKind::Usage => Failure::Usage,
            ErrorKind::Config => Failure::Config,
            ErrorKind::Invalid => Failure::InvalidArgument,
            ErrorKind::NotFound => Failure::NotFound,
            ErrorKind::Storage => Failure::of_storage(self),
            ErrorKind::StreamLimit => Failure::StreamLimit,
            ErrorKind::Integrity => Failure::ChecksumMismatch,
            ErrorKind::Unverified => Failure::VerifyFailed,
            // A reader that went away ends a command well; counted as I/O.
            ErrorKind::BrokenPipe | ErrorKind::Io => Failure::LocalIo,
            ErrorKind::Interrupted => Failure::Interrupted,
            ErrorKind::Internal => Failure::Internal,
            ErrorKind::Broker => Failure::BrokerGone,
        }
    }
    /// The stable code of [`Error::failure`], e.g. `DDB-204`.
    pub fn code(&self) -> &'static str {
        self.failure().code()
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

    #[test]
    fn codes_are_distinct_and_label_safe() {
        let mut seen = std::collections::HashSet::new();
        for f in Failure::ALL {
            let (code, name) = (f.code(), f.name());
            assert!(seen.insert(code) && seen.insert(name), "{f:?}");
            assert!(code.len() == 7 && code.starts_with("DDB-"), "{code}");
            assert!(code[4..].bytes().all(|b| b.is_ascii_digit()), "{code}");
            assert!(name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'));
            assert_eq!(f.to_string(), code);
        }
    }

    #[test]
    fn storage_failures_by_their_cause() {
        use ddboost::DdErr;
        let sdk = |c: DdErr| {
            Error::storage_from(
                "call failed",
                ddboost::Error::from_code("op", "/su/f", c.code()),
            )
            .context("while X")
        };
        for (c, want) in [
            (DdErr::Auth, Failure::LoginRefused),
            (DdErr::Connect, Failure::Unreachable),
            (DdErr::ConnLost, Failure::ConnectionLost),
            (DdErr::StreamLimit, Failure::StreamLimit),
            (DdErr::Nospace, Failure::StorageFull),
            (DdErr::Perm, Failure::PermissionDenied),
            (DdErr::Io, Failure::StorageError),
        ] {
            assert_eq!(sdk(c).failure(), want, "{c:?}");
        }
        let os = |n: i32| Error::storage("x").with_source(std::io::Error::from_raw_os_error(n));
        assert_eq!(os(nix::libc::ENOSPC).failure(), Failure::StorageFull);
        assert_eq!(os(nix::libc::EACCES).failure(), Failure::PermissionDenied);
        assert_eq!(os(nix::libc::EIO).failure(), Failure::StorageError);
        assert_eq!(Error::storage("x").code(), "DDB-207");
        // The kind decides first: a missing object stays "not found".
        let gone = Error::not_found("x").with_source(ddboost::Error::from_code(
            "ddp_open_file",
            "/su/f",
            DdErr::NotFound.code(),
        ));
        assert_eq!(gone.failure(), Failure::NotFound);
        assert_eq!(Error::broken_pipe().failure(), Failure::LocalIo);
        assert_eq!(Error::new(ErrorKind::StreamLimit, "x").code(), "DDB-204");
    }
}
