//! Paths in a system's namespace: a storage unit and a path inside it.

use crate::abi::PathArg;
use crate::error::{DdError, DdResult};
use crate::ffi::DDP_MAX_NAME_LEN;
use crate::store::System;
use std::path::PathBuf;

/// Resolves a `ddp_path_t` argument to (absolute path, `SU/path` name). The storage unit
/// must exist.
pub(crate) fn resolve(sys: &System, p: PathArg<'_>) -> DdResult<(PathBuf, String)> {
    let (su, name) = p.get()?;
    resolve_str(sys, su, name)
}

/// Resolves storage unit `su` and `name` inside it: `""` and `.` components are skipped,
/// `..` and over-long components are `DD_ERR_INVALID`.
pub(crate) fn resolve_str(sys: &System, su: &str, name: &str) -> DdResult<(PathBuf, String)> {
    if !crate::admin::valid_name(su) {
        return Err(DdError::INVALID);
    }
    let mut abs = sys.su_root().join(su);
    if !abs.is_dir() {
        return Err(DdError::NOT_FOUND);
    }
    let mut canon = su.to_string();
    for c in name.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(DdError::INVALID),
            c if c.len() >= DDP_MAX_NAME_LEN || c.contains('\0') => return Err(DdError::INVALID),
            c => {
                abs.push(c);
                canon.push('/');
                canon.push_str(c);
            }
        }
    }
    Ok((abs, canon))
}
