//! Error codes of the mock and their mapping from I/O errors.

use crate::ffi::*;
use ddboost_sys::DdErr;
use std::io;

/// A DD Boost error: one of the `DD_ERR_*` codes of `ddp_api.h` (never `DD_ERR_NONE`);
/// the constants below are the codes of [`DdErr`], which the plugin compares with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DdError(pub dd_errno_t);

pub type DdResult<T> = Result<T, DdError>;

impl DdError {
    pub const EMPTY: DdError = DdError(DdErr::Empty.code());
    pub const EXIST: DdError = DdError(DdErr::Exist.code());
    pub const NOTEMPTY: DdError = DdError(DdErr::Notempty.code());
    pub const FILE_IS_DIR: DdError = DdError(DdErr::FileIsDir.code());
    pub const NOT_FOUND: DdError = DdError(DdErr::NotFound.code());
    pub const PERM: DdError = DdError(DdErr::Perm.code());
    pub const AUTH: DdError = DdError(DdErr::Auth.code());
    pub const CONNECT: DdError = DdError(DdErr::Connect.code());
    pub const CONN_LOST: DdError = DdError(DdErr::ConnLost.code());
    pub const NOSPACE: DdError = DdError(DdErr::Nospace.code());
    pub const INVALID: DdError = DdError(DdErr::Invalid.code());
    pub const BADF: DdError = DdError(DdErr::Badf.code());
    pub const NOTDIR: DdError = DdError(DdErr::Notdir.code());
    pub const STREAM_LIMIT: DdError = DdError(DdErr::StreamLimit.code());
    pub const IO: DdError = DdError(DdErr::Io.code());
    pub const NOT_INIT: DdError = DdError(DdErr::NotInit.code());

    /// The symbolic name of a code in the header, e.g. `"DD_ERR_NOT_FOUND"`.
    pub fn name(code: dd_errno_t) -> &'static str {
        ddboost_sys::code_name(code).unwrap_or("DD_ERR_UNKNOWN")
    }

    /// Parses a symbolic name of the header (`DD_ERR_NOSPACE`, or `NOSPACE`, in any case)
    /// or a number.
    pub fn parse(s: &str) -> Option<dd_errno_t> {
        if let Ok(n) = s.parse::<i32>() {
            return Some(n);
        }
        let up = s.to_ascii_uppercase();
        ddboost_sys::code_by_name(&up)
            .or_else(|| ddboost_sys::code_by_name(&format!("DD_ERR_{up}")))
    }
}

impl From<io::Error> for DdError {
    fn from(e: io::Error) -> Self {
        use io::ErrorKind as K;
        match e.kind() {
            K::NotFound => DdError::NOT_FOUND,
            K::AlreadyExists => DdError::EXIST,
            K::PermissionDenied => DdError::PERM,
            K::DirectoryNotEmpty => DdError::NOTEMPTY,
            K::NotADirectory => DdError::NOTDIR,
            K::IsADirectory => DdError::FILE_IS_DIR,
            K::StorageFull | K::QuotaExceeded => DdError::NOSPACE,
            K::InvalidInput | K::InvalidFilename => DdError::INVALID,
            _ => match e.raw_os_error() {
                Some(39) => DdError::NOTEMPTY,
                Some(20) => DdError::NOTDIR,
                Some(21) => DdError::FILE_IS_DIR,
                Some(28) => DdError::NOSPACE,
                _ => DdError::IO,
            },
        }
    }
}
