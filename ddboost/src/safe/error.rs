//! The one place SDK return codes become Rust errors.

use std::fmt;

use crate::adapter::code;

pub use ddboost_sys::{code_by_name, code_name, DdErr};

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// The codes that definitely mean "there is no such file or folder":
/// `DD_ERR_NOT_FOUND` only.
///
/// `DD_ERR_NOTDIR` is left out on purpose. From `ddp_stat`, `ddp_open_file`
/// or `ddp_mkdir` it means a component of the path is a file, so the object
/// cannot exist; but `ddp_rmdir`, `ddp_open_dir` and `ddp_rename` return the
/// same code when the target itself exists and is a file. One code cannot
/// tell "absent" from "present but of the wrong kind", and treating a
/// present object as absent is the failure that loses data (a delete that
/// reports success, a restore that says "not found"), so it is an error.
pub const NOT_FOUND_CODES: &[DdErr] = &[DdErr::NotFound];

/// The codes worth trying again after a pause: the system could not be
/// reached (`DD_ERR_CONNECT`: network, DNS or a busy appliance; the SDK
/// reports an unknown host the same way), the connection dropped
/// (`DD_ERR_CONN_LOST`), or every stream of the system is in use
/// (`DD_ERR_STREAM_LIMIT`).
///
/// Not transient: `DD_ERR_AUTH` (a retried wrong password can lock the
/// account), `DD_ERR_PERM`, `DD_ERR_INVALID`, `DD_ERR_NOT_FOUND` and the other
/// namespace answers, `DD_ERR_NOSPACE` (space is not freed in seconds),
/// `DD_ERR_BADF` and `DD_ERR_NOT_INIT` (program errors), and `DD_ERR_IO`,
/// which names no cause and so gives no reason to expect a retry to succeed.
pub const TRANSIENT_CODES: &[DdErr] = &[DdErr::Connect, DdErr::ConnLost, DdErr::StreamLimit];

/// A failed SDK call: which call, on what, and the return code.
///
/// Displays as `ddp_open_file /su/dir/file: DD_ERR_NOT_FOUND (5010)`. Never
/// contains a password.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error {
    /// The SDK function, e.g. `"ddp_open_file"`.
    pub op: &'static str,
    /// What it was called on: `/<storage unit>/<path>`, or the host for
    /// connection calls; empty for instance-wide calls.
    pub path: String,
    /// The SDK's return code. `DD_OK` (0) marks an error found before calling
    /// the SDK (see [`Error::is_local`]); its reason is in `name`.
    pub code: i32,
    /// The code's name in the header in use (or, for a local error, the reason).
    pub name: Option<&'static str>,
}

impl Error {
    /// The error for return code `code` of `op` on `path`.
    pub fn from_code(op: &'static str, path: impl Into<String>, code: i32) -> Error {
        Error {
            op,
            path: path.into(),
            code,
            name: code_name(code),
        }
    }

    /// An error detected before calling the SDK (e.g. a NUL byte in a name).
    pub(crate) fn local(op: &'static str, path: impl Into<String>, reason: &'static str) -> Error {
        Error {
            op,
            path: path.into(),
            code: code::DD_OK,
            name: Some(reason),
        }
    }

    /// `Ok(())` for `DD_OK`, else the error.
    pub(crate) fn check(op: &'static str, path: impl FnOnce() -> String, code: i32) -> Result<()> {
        if code == code::DD_OK {
            Ok(())
        } else {
            Err(Error::from_code(op, path(), code))
        }
    }

    /// The error was found by this crate, not returned by the SDK.
    pub fn is_local(&self) -> bool {
        self.code == code::DD_OK
    }

    /// The SDK's code as a [`DdErr`]; None for a local error and for a
    /// value the header in use does not name.
    pub fn dd_err(&self) -> Option<DdErr> {
        if self.is_local() {
            None
        } else {
            DdErr::from_code(self.code)
        }
    }

    /// Whether the SDK said `code`, e.g. [`DdErr::Nospace`] (false for a
    /// local error).
    pub fn is(&self, code: DdErr) -> bool {
        !self.is_local() && self.code == code.code()
    }

    /// `DD_ERR_EXIST`: already exists (mkdir).
    pub fn is_exist(&self) -> bool {
        self.is(DdErr::Exist)
    }

    /// `DD_ERR_NOTEMPTY`: directory not empty (rmdir).
    pub fn is_not_empty(&self) -> bool {
        self.is(DdErr::Notempty)
    }

    /// `DD_ERR_FILE_IS_DIR`: the target is a directory (unlink).
    pub fn is_file_is_dir(&self) -> bool {
        self.is(DdErr::FileIsDir)
    }

    /// `DD_ERR_EMPTY`: no more directory entries (readdir).
    pub fn is_empty(&self) -> bool {
        self.is(DdErr::Empty)
    }

    /// The object definitely does not exist: one of [`NOT_FOUND_CODES`]
    /// (`DD_ERR_NOT_FOUND`; see there why not `DD_ERR_NOTDIR`). Every other
    /// error, local ones included, says nothing about existence.
    pub fn is_not_found(&self) -> bool {
        NOT_FOUND_CODES.iter().any(|c| self.is(*c))
    }

    /// A failure that may go away if the call is made again later: one of
    /// [`TRANSIENT_CODES`] (connect failure, lost connection, stream limit).
    /// Never a wrong password, a permission or argument error, or not-found.
    pub fn is_transient(&self) -> bool {
        TRANSIENT_CODES.iter().any(|c| self.is(*c))
    }

    /// `DD_ERR_CONN_LOST`: the connection is gone; every later call on it and
    /// its files fails, so recovering needs a new connection.
    pub fn is_connection_lost(&self) -> bool {
        self.is(DdErr::ConnLost)
    }

    /// `DD_ERR_AUTH`: the user name or password was refused.
    pub fn is_auth(&self) -> bool {
        self.is(DdErr::Auth)
    }

    /// `DD_ERR_PERM`: not permitted.
    pub fn is_permission(&self) -> bool {
        self.is(DdErr::Perm)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.op)?;
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        match (self.is_local(), self.name) {
            (true, reason) => write!(f, ": {}", reason.unwrap_or("invalid argument")),
            (false, Some(name)) => write!(f, ": {name} ({})", self.code),
            (false, None) => write!(f, ": DD Boost error {}", self.code),
        }
    }
}

impl std::error::Error for Error {}

/// `/<su>/<path>` for error messages, whether or not `path` starts with `/`.
pub(crate) fn display_path(su: &str, path: &str) -> String {
    format!("/{}/{}", su.trim_matches('/'), path.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    // The constants' types are the header's business: cast them to the crate's
    // `i32` codes whatever they are.
    #![allow(clippy::unnecessary_cast)]

    use super::*;
    use ddboost_sys::{raw, CODE_NAMES};

    /// The enum has one variant per error code the header declares, each with
    /// the header's name and value.
    #[test]
    fn dd_err_covers_every_error_code_of_the_header() {
        for e in DdErr::ALL {
            assert_eq!(code_by_name(e.name()), Some(e.code()), "{e:?}");
            assert_eq!(DdErr::from_code(e.code()).map(DdErr::code), Some(e.code()));
        }
        let named = CODE_NAMES
            .iter()
            .filter(|(_, n)| *n != "DD_OK" && *n != "DD_ERR_NONE")
            .count();
        assert_eq!(DdErr::ALL.len(), named);
        assert_eq!(DdErr::from_code(raw::DD_OK as i32), None);
        assert_eq!(DdErr::StreamLimit.name(), "DD_ERR_STREAM_LIMIT");
        let limit = Error::from_code("ddp_open_file", "/su/f", DdErr::StreamLimit.code());
        assert!(limit.is(DdErr::StreamLimit) && !limit.is(DdErr::Io));
        assert_eq!(limit.dd_err(), Some(DdErr::StreamLimit));
        let local = Error::local("ddp_open_file", "/su/f", "NUL in name");
        assert!(!local.is(DdErr::StreamLimit));
        assert_eq!(local.dd_err(), None);
    }

    #[test]
    fn names_known_codes() {
        assert_eq!(code_name(raw::DD_ERR_EXIST as i32), Some("DD_ERR_EXIST"));
        assert_eq!(code_name(raw::DD_ERR_EMPTY as i32), Some("DD_ERR_EMPTY"));
        assert_eq!(
            code_name(raw::DD_ERR_NOT_FOUND as i32),
            Some("DD_ERR_NOT_FOUND")
        );
    }

    #[test]
    fn ok_and_none_share_a_value_and_ok_wins() {
        assert_eq!(raw::DD_OK as i32, raw::DD_ERR_NONE as i32);
        assert_eq!(code_name(raw::DD_OK as i32), Some("DD_OK"));
    }

    #[test]
    fn codes_are_found_by_name() {
        assert_eq!(
            code_by_name("DD_ERR_NOSPACE"),
            Some(raw::DD_ERR_NOSPACE as i32)
        );
        assert_eq!(code_by_name("DD_OK"), Some(raw::DD_OK as i32));
        assert_eq!(code_by_name("DD_ERR_NONE"), Some(raw::DD_ERR_NONE as i32));
        assert_eq!(code_by_name("DD_ERR_NO_SUCH_NAME"), None);
        assert_eq!(code_by_name("dd_err_nospace"), None, "names are exact");
    }

    #[test]
    fn unknown_code_has_no_name() {
        let unknown = (i32::MIN..0)
            .rev()
            .find(|c| code_name(*c).is_none())
            .unwrap();
        let e = Error::from_code("ddp_read", "/su/f", unknown);
        assert_eq!(e.name, None);
        assert_eq!(
            e.to_string(),
            format!("ddp_read /su/f: DD Boost error {unknown}")
        );
    }

    #[test]
    fn display_names_code_and_path() {
        let code = raw::DD_ERR_NOT_FOUND as i32;
        let e = Error::from_code("ddp_open_file", display_path("su", "dir/file"), code);
        assert_eq!(
            e.to_string(),
            format!("ddp_open_file /su/dir/file: DD_ERR_NOT_FOUND ({code})")
        );
        let e = Error::from_code("ddp_instance_create", "", code);
        assert!(e
            .to_string()
            .starts_with("ddp_instance_create: DD_ERR_NOT_FOUND"));
    }

    #[test]
    fn helpers_compare_symbolic_codes() {
        let e = |c: raw::dd_errno_t| Error::from_code("op", "p", c as i32);
        assert!(e(raw::DD_ERR_EXIST).is_exist());
        assert!(e(raw::DD_ERR_NOTEMPTY).is_not_empty());
        assert!(e(raw::DD_ERR_FILE_IS_DIR).is_file_is_dir());
        assert!(e(raw::DD_ERR_EMPTY).is_empty());
        assert!(!e(raw::DD_ERR_EXIST).is_not_empty());
        assert!(!e(raw::DD_ERR_EXIST).is_local());
    }

    fn every_code() -> impl Iterator<Item = Error> {
        CODE_NAMES
            .iter()
            .map(|(value, _)| Error::from_code("op", "p", *value as i32))
    }

    #[test]
    fn not_found_is_only_dd_err_not_found() {
        let e = |c: raw::dd_errno_t| Error::from_code("ddp_stat", "/su/f", c as i32);
        assert!(e(raw::DD_ERR_NOT_FOUND).is_not_found());
        for c in [
            raw::DD_ERR_NOTDIR,
            raw::DD_ERR_IO,
            raw::DD_ERR_CONN_LOST,
            raw::DD_ERR_PERM,
            raw::DD_ERR_EMPTY,
            raw::DD_ERR_INVALID,
        ] {
            assert!(!e(c).is_not_found(), "{}", e(c));
        }
        let found: Vec<_> = every_code().filter(Error::is_not_found).collect();
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(!Error::local("ddp_stat", "/su/f", "NUL byte in a name").is_not_found());
    }

    #[test]
    fn transient_codes() {
        let e = |c: raw::dd_errno_t| Error::from_code("ddp_connect_with_user_pwd", "dd", c as i32);
        for c in [
            raw::DD_ERR_CONNECT,
            raw::DD_ERR_CONN_LOST,
            raw::DD_ERR_STREAM_LIMIT,
        ] {
            assert!(e(c).is_transient(), "{}", e(c));
        }
        for c in [
            raw::DD_ERR_AUTH,
            raw::DD_ERR_PERM,
            raw::DD_ERR_INVALID,
            raw::DD_ERR_NOT_FOUND,
            raw::DD_ERR_NOTDIR,
            raw::DD_ERR_NOSPACE,
            raw::DD_ERR_IO,
            raw::DD_ERR_BADF,
            raw::DD_ERR_EXIST,
        ] {
            assert!(!e(c).is_transient(), "{}", e(c));
        }
        assert_eq!(every_code().filter(Error::is_transient).count(), 3);
        assert!(!Error::local("op", "dd", "NUL byte").is_transient());
    }

    #[test]
    fn connection_lost_auth_and_permission() {
        let e = |c: raw::dd_errno_t| Error::from_code("op", "p", c as i32);
        assert!(e(raw::DD_ERR_CONN_LOST).is_connection_lost());
        assert!(!e(raw::DD_ERR_CONNECT).is_connection_lost());
        assert!(!e(raw::DD_ERR_IO).is_connection_lost());
        assert!(e(raw::DD_ERR_AUTH).is_auth());
        assert!(!e(raw::DD_ERR_AUTH).is_transient());
        assert!(!e(raw::DD_ERR_PERM).is_auth());
        assert!(e(raw::DD_ERR_PERM).is_permission());
        assert!(!e(raw::DD_ERR_AUTH).is_permission());
        assert!(e(raw::DD_ERR_NOSPACE).is(DdErr::Nospace));
        assert!(!e(raw::DD_ERR_NOSPACE).is(DdErr::Io));
        for c in every_code() {
            assert_eq!(c.is_connection_lost(), c.name == Some("DD_ERR_CONN_LOST"));
            assert_eq!(c.is_auth(), c.name == Some("DD_ERR_AUTH"));
            assert_eq!(c.is_permission(), c.name == Some("DD_ERR_PERM"));
        }
    }

    #[test]
    fn check_maps_ok_and_errors() {
        assert!(Error::check("ddp_mkdir", || unreachable!(), raw::DD_OK as i32).is_ok());
        let err =
            Error::check("ddp_mkdir", || "/su/d".into(), raw::DD_ERR_EXIST as i32).unwrap_err();
        assert!(err.is_exist());
        assert_eq!(err.path, "/su/d");
    }

    #[test]
    fn local_errors_display_reason() {
        let e = Error::local("ddp_open_file", "/su/a", "NUL byte in a name");
        assert!(e.is_local());
        assert_eq!(e.to_string(), "ddp_open_file /su/a: NUL byte in a name");
    }

    #[test]
    fn path_building() {
        assert_eq!(display_path("su", "a/b"), "/su/a/b");
        assert_eq!(display_path("su", "/a/b"), "/su/a/b");
        assert_eq!(display_path("/su/", "a"), "/su/a");
        assert_eq!(display_path("su", ""), "/su/");
    }
}
