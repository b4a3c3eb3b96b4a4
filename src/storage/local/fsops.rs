//! The filesystem calls the local backend shares: path components checked,
//! errors named, folders synced and given their mode.

use std::fs::{File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use nix::libc;

use crate::error::{Error, ErrorKind, Result};

pub(super) fn symlink_refused(path: &Path) -> Error {
    Error::storage(format!(
        "refusing to follow symbolic link {} inside the backup directory (only option \"directory\" itself may be a link)",
        path.display()
    ))
}

/// Only a definite ENOENT means absent.
pub(super) fn is_enoent(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::ENOENT)
}

pub(super) fn io_err(op: &str, path: &Path, e: io::Error) -> Error {
    let kind = if is_enoent(&e) {
        ErrorKind::NotFound
    } else {
        ErrorKind::Storage
    };
    Error::new(kind, format!("{op} {}: {e}", path.display())).with_source(e)
}

pub(super) fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_err("cannot flush folder", dir, e))
}

/// Sets `mode` on a folder just created, through a handle that does not
/// follow a link put in its place.
pub(super) fn chmod_dir(path: &Path, mode: u32) -> io::Result<()> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)?
        .set_permissions(Permissions::from_mode(mode))
}

pub(super) fn not_a_file(path: &Path) -> Error {
    Error::storage(format!(
        "{} is not a regular file; remove it or move it out of the backup directory",
        path.display()
    ))
}
