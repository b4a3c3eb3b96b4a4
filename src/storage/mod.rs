//! The storage trait: the only thing the commands know about where objects live.
//!
//! Guarantees every backend gives:
//! * A write is atomic: readers never see a partial object. An object becomes
//!   visible only when it is renamed into place ([`ObjectWriter::commit`],
//!   [`commit_closed`]); dropping a writer without committing (error,
//!   signal) leaves the old state. A writer killed
//!   with SIGKILL may leave a temporary behind, whose name starts with '.', so
//!   listings and reads never see it, and deleting the backup removes it.
//! * Paths are relative to the configured base directory and use '/'; they
//!   are [`StoragePath`]s, checked where they were built, so no backend sees
//!   `..` or an empty component.
//! * Names starting with '.' are the plugin's own (temporaries, checksums).

pub mod ddboost;
#[cfg(feature = "test-support")]
pub mod faulty;
mod forward;
pub mod local;
#[cfg(any(test, feature = "test-support"))]
pub mod memory;
mod report;

use crate::config::{BrokerSettings, KeySources};
use crate::error::{Error, Result};
pub use crate::path::StoragePath;
pub use crate::process::temp::{host_tag, is_stale_temp, temp_name, temp_owner};
pub use report::{timed, Finding, Outcome};

/// How [`Storage::open`] opens an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Where the first read will be, which the backend may make right away
    /// (DD Boost: it tells the size of a small object, saving a round trip).
    pub first_read: u64,
    /// Whether to wait for a stream when the system has none free; without,
    /// the open fails at once with `ErrorKind::StreamLimit`, so that a caller
    /// holding other streams can let them go before it waits. Backends
    /// without stream limits open as usual.
    pub wait: bool,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions {
            first_read: 0,
            wait: true,
        }
    }
}

impl OpenOptions {
    /// Opening for a first read at `first_read`.
    pub fn at(first_read: u64) -> OpenOptions {
        OpenOptions {
            first_read,
            ..OpenOptions::default()
        }
    }

    /// The same, not waiting for a stream.
    pub fn now(self) -> OpenOptions {
        OpenOptions {
            wait: false,
            ..self
        }
    }
}

/// How [`Storage::create`] starts an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// Whether to wait for a stream (see [`OpenOptions::wait`]).
    pub wait: bool,
}

impl Default for CreateOptions {
    fn default() -> CreateOptions {
        CreateOptions { wait: true }
    }
}

impl CreateOptions {
    /// Creating without waiting for a stream.
    pub fn now() -> CreateOptions {
        CreateOptions { wait: false }
    }
}

/// A stored object and its size, from a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the base directory.
    pub path: StoragePath,
    pub size: u64,
}

/// What a delete removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteSummary {
    pub files: u64,
    pub dirs: u64,
}

pub trait Storage: Send + Sync {
    /// A short description for logs, e.g. `local:/backup` (no secrets).
    fn describe(&self) -> String;

    /// Makes sure the folder `dir` (relative) exists, creating parents.
    /// Idempotent and safe when many processes call it at once.
    fn create_dir_all(&self, dir: &StoragePath) -> Result<()>;

    /// Starts a new object at `path`. It becomes visible on commit, replacing
    /// any object of that name.
    fn create(&self, path: &StoragePath, opts: &CreateOptions) -> Result<Box<dyn ObjectWriter>>;

    /// Opens an object for reading; only a definite "no such object" is
    /// `ErrorKind::NotFound`.
    fn open(&self, path: &StoragePath, opts: &OpenOptions) -> Result<Box<dyn ObjectReader>>;

    /// Every object below the folder `dir` (recursive), skipping the plugin's
    /// own '.' names. A missing folder lists as empty.
    fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>>;

    /// Every file below `dir`, the plugin's own '.' names included.
    fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>>;

    /// The names in the folder `dir` itself (files and folders, not
    /// recursive, no sizes), the plugin's own '.' names only with `hidden`;
    /// sorted. A missing folder lists as empty. Backends override it to
    /// read only that folder (one call per entry on DD Boost, no stat); this
    /// default walks everything below it.
    fn list_names(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<String>> {
        let listed = if hidden {
            self.list_all(dir)?
        } else {
            self.list(dir)?
        };
        let mut names: Vec<String> = listed
            .iter()
            .filter_map(|o| {
                o.path
                    .relative_to(dir)?
                    .split('/')
                    .next()
                    .map(str::to_string)
            })
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Removes the folder `dir` and everything in it. A missing folder is not
    /// an error (the summary is zero).
    fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary>;

    /// Removes one object if it exists; returns whether it did.
    fn delete(&self, path: &StoragePath) -> Result<bool>;

    /// Whether something (an object or a folder) is at `path`, in one call
    /// that holds no stream. Only a definite "no such object" is false.
    fn exists(&self, path: &StoragePath) -> Result<bool>;

    /// Removes the folder `dir` if it is empty; Ok(false) if it is not.
    fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool>;

    /// Renames the object `from` to `to` in one atomic step, replacing `to`.
    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()>;

    /// The second system backups are copied to, when the backend has one and
    /// the command connected it.
    fn replica(&self) -> Option<&dyn Replica> {
        None
    }

    /// What `check` reports about this storage beyond reading and writing:
    /// free space, stream counts, whether flushing works (only with `write`).
    /// A value that cannot be right is a failing finding.
    fn facts(&self, write: bool) -> Vec<Finding> {
        let _ = write;
        Vec::new()
    }
}

/// A replica system (DD Boost managed file replication).
pub trait Replica {
    /// The replica itself, for its folders and checksum records.
    fn storage(&self) -> &dyn Storage;

    /// Copies the primary's file `from` (an object, or the closed temporary
    /// of one being written) to a temporary for the object `to` on the
    /// replica, and closes it: renamed into place, it replaces `to` there.
    /// Returns it and the bytes copied.
    fn copy_closed(
        &self,
        from: &StoragePath,
        to: &StoragePath,
    ) -> Result<(Box<dyn ClosedObject>, u64)>;

    /// How many copies `replicate_backup` may run at once.
    fn streams(&self) -> usize;

    /// The error of a copy that finds everything already on the replica,
    /// `detail` saying what (DD Boost: led by the message the plugin test
    /// bench expects).
    fn already_there(&self, detail: &str) -> Error;
}

/// An object being written.
pub trait ObjectWriter {
    /// The size of every write but the last (DD Boost: exactly 1 MiB).
    fn block_size(&self) -> usize;
    /// Appends bytes.
    fn write(&mut self, buf: &[u8]) -> Result<()>;
    /// Finalises what was written (DD Boost: closes the file, so no stream
    /// is held after it); the object is not visible yet.
    fn close(self: Box<Self>) -> Result<Box<dyn ClosedObject>>;
    /// Closes and renames into place: the whole object becomes visible under
    /// its name (see [`commit_closed`]).
    fn commit(self: Box<Self>) -> Result<()> {
        commit_closed(self.close()?)
    }
}

/// A finished temporary waiting to be renamed over its object. Dropping it
/// unrenamed removes the temporary.
pub trait ClosedObject: Send {
    /// The temporary's path, relative like every path.
    fn temp(&self) -> &StoragePath;
    /// Renames the temporary over its object in one atomic step (refused
    /// once a signal arrived).
    fn rename(&mut self) -> Result<()>;
    /// After [`ClosedObject::rename`] failed: whether it took effect all the
    /// same (a rename done, then the connection lost before the answer), told
    /// by the temporary: gone (`Ok(true)`) or still there (`Ok(false)`).
    /// An error means it cannot be told.
    fn renamed(&mut self) -> Result<bool>;
}

/// Renames `closed` into place. A rename reporting an error is looked at
/// again: one that took effect all the same succeeds (with a warning), one
/// that did not fails and removes the temporary, and when that cannot be
/// told it fails saying so.
pub fn commit_closed(mut closed: Box<dyn ClosedObject>) -> Result<()> {
    let Err(e) = closed.rename() else {
        return Ok(());
    };
    match closed.renamed() {
        Ok(true) => {
            log::warn!(
                "renaming {} into place reported an error ({e}), but it took effect: the temporary is gone",
                closed.temp()
            );
            Ok(())
        }
        Ok(false) => Err(e),
        Err(check) => Err(e.context(format!(
            "cannot tell whether renaming {} into place took effect ({check}); the object may be the old or the new version",
            closed.temp()
        ))),
    }
}

/// An object being read, by explicit offset. Readers move between threads:
/// a restore with reads in flight (option `read_ahead`) reads on several.
pub trait ObjectReader: Send {
    /// The size of reads that suits this backend.
    fn block_size(&self) -> usize;
    fn size(&self) -> u64;
    /// The size as the storage states it. [`ObjectReader::size`] may have
    /// been taken from a short first read, saving a round trip; a caller
    /// about to trust a size no checksum record confirms asks this.
    fn exact_size(&mut self) -> Result<u64> {
        Ok(self.size())
    }
    /// Reads at `offset`; returns 0 only at the end of the object.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize>;

    /// A way to open more readers of this object, each used by its own
    /// thread, so that several reads are in flight at once; None when the
    /// backend has no use for them.
    fn more_readers(&self) -> Option<ReaderFactory> {
        None
    }

    /// The whole object, handed over without a copy when the reader holds
    /// all of it (the block read at its opening); None otherwise. The
    /// reader is not read from after it gave its bytes.
    fn take_whole(&mut self) -> Option<Vec<u8>> {
        None
    }

    /// The whole object, when the reader holds all of it in memory (an
    /// object read whole at its opening): a download writes its ranges from
    /// these bytes, with no read, buffer or copy of its own.
    fn whole(&self) -> Option<&[u8]> {
        None
    }
}

/// Removes the temporaries among `files` (a listing of `storage`) whose
/// writer ran on this host and is gone (killed with SIGKILL), one delete
/// each; writers on other hosts and live ones are left alone. `removed` is
/// told of each it removed; `failed` of each it could not, and returns the
/// error to stop with or `Ok` to go on. Returns how many it removed.
pub fn sweep_stale_temporaries(
    storage: &dyn Storage,
    files: &[ObjectInfo],
    mut removed: impl FnMut(&ObjectInfo),
    mut failed: impl FnMut(&ObjectInfo, Error) -> Result<()>,
) -> Result<usize> {
    let mut count = 0;
    for f in files.iter().filter(|f| is_stale_temp(f.path.file_name())) {
        match storage.delete(&f.path) {
            Ok(true) => {
                removed(f);
                count += 1;
            }
            Ok(false) => {}
            Err(e) => failed(f, e)?,
        }
    }
    Ok(count)
}

/// Reads a whole (small) object from `reader`: the size it gives, or less
/// when the object ends first.
pub fn read_to_end(reader: &mut dyn ObjectReader) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; reader.size() as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = reader.read_at(&mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Opens more readers of one object (see [`ObjectReader::more_readers`]).
pub struct ReaderFactory {
    /// Whether the readers read the very bytes of the reader they came from
    /// (the same open file), or open the object again by name, so that an
    /// overwrite committed meanwhile shows in them (only block verification
    /// can tell).
    pub same_file: bool,
    /// Opens up to `n` readers; fewer (down to none) when the storage's
    /// limits or failures say so, which it logs.
    pub open: Box<dyn FnOnce(usize) -> Vec<Box<dyn ObjectReader>> + Send>,
}

/// The path of `name`, an entry a backend listed in folder `dir` of
/// `place`; None, with a warning, for a name no storage path holds (a
/// backslash in it: not written by the plugin), which listings skip.
pub fn listed_child(dir: &StoragePath, name: &str, place: &str) -> Option<StoragePath> {
    match dir.child(name) {
        Ok(p) => Some(p),
        Err(e) => {
            log::warn!("skipping {:?} in folder {dir:?} of {place}: {e}", name);
            None
        }
    }
}

/// A backend's checked settings.
pub trait BackendConfig: std::fmt::Debug + Send + Sync {
    /// Resolves what needs I/O to know (encrypted passwords); every problem
    /// is returned, each naming its option.
    fn resolve_secrets(&mut self, keys: &KeySources) -> std::result::Result<(), Vec<String>> {
        let _ = keys;
        Ok(())
    }

    /// Opens the storage; `remote` says whether the command needs a replica.
    fn open(&self, remote: Remote) -> Result<Box<dyn Storage>>;

    /// The per-host connection broker's settings, when the backend has one
    /// (logins worth sharing between processes).
    fn broker(&self) -> Option<BrokerSettings> {
        None
    }

    /// How many connections a command that works through many files
    /// (`verify_backup`'s readers) uses at once.
    fn command_connections(&self) -> usize {
        4
    }

    /// Opens the storage step by step for `check`, reporting each step
    /// (library, connection, folders; the remote system when configured);
    /// None when a step failed.
    fn check_open(&self, out: &mut dyn FnMut(Finding)) -> Option<Box<dyn Storage>> {
        let opened = timed(|| self.open(Remote::Never));
        Finding::step(out, "storage", opened, |s| s.describe()).ok()
    }

    /// For tests that look at one backend's settings.
    #[cfg(any(test, feature = "test-support"))]
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What a command needs of a backend's replica system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Not at all: reads and listings work with the primary alone, so a
    /// restore does not depend on the replica being reachable.
    Never,
    /// Only when writes are mirrored (`replication: on`): writes, the backup
    /// hooks, delete_backup.
    IfReplicating,
    /// Always (replicate_backup, delete_replica).
    Required,
}
