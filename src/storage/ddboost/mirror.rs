//! Mirroring to the replica (`replication: on`): every change the storage
//! makes is applied to the replica first, in the same order, then to the
//! primary, so that a failed replica step fails the call and leaves the
//! primary's old state.
//!
//! An object's write: its closed temporary on the primary is copied to a
//! temporary on the replica when it is closed ([`MirroredWriter`]); its
//! rename into place renames the replica's copy, then the primary's
//! ([`MirroredClosed`]). A checksum record, written and renamed through the
//! same calls, follows the same way.

use std::time::Instant;

use super::replica::DdReplica;
use super::system::System;
use crate::error::{Error, Result};
use crate::process::logging::log_summary;
use crate::storage::{commit_closed, ClosedObject, ObjectWriter, Replica, StoragePath};

/// Applies `change` to the replica (when there is one to mirror to), then,
/// if that succeeded, to the primary; the primary's result is returned.
pub(super) fn replica_first<T>(
    replica: Option<&DdReplica>,
    primary: &System,
    what: &StoragePath,
    change: impl Fn(&System) -> Result<T>,
) -> Result<T> {
    if let Some(r) = replica {
        change(&r.remote).map_err(|e| replica_failed(e, what, &r.remote.describe()))?;
    }
    change(primary)
}

/// A replica step's error, saying that the primary was left as it was.
fn replica_failed(e: Error, what: &StoragePath, remote: &str) -> Error {
    e.context(format!(
        "replication of {what} to {remote} failed; it is left as it was on the primary"
    ))
}

/// A writer on the primary whose close copies the finished temporary to the
/// replica.
pub(super) struct MirroredWriter {
    pub(super) inner: Box<dyn ObjectWriter>,
    /// The object being written.
    pub(super) target: StoragePath,
    pub(super) replica: DdReplica,
}

impl ObjectWriter for MirroredWriter {
    fn block_size(&self) -> usize {
        self.inner.block_size()
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.inner.write(buf)
    }

    /// Closes the primary's temporary, then copies it to a temporary on the
    /// replica (closed too). A failed copy removes both temporaries.
    fn close(self: Box<Self>) -> Result<Box<dyn ClosedObject>> {
        let closed = self.inner.close()?;
        let started = Instant::now();
        let (copy, n) = self
            .replica
            .copy_closed(closed.temp(), &self.target)
            .map_err(|e| replica_failed(e, &self.target, &self.replica.remote.describe()))?;
        log_summary("replication", &self.target, n, started);
        Ok(Box::new(MirroredClosed {
            primary: closed,
            copy: Copy::Closed(copy),
            target: self.target,
            remote: self.replica.remote.describe(),
        }))
    }
}

/// Where the replica's copy of a closed object is.
enum Copy {
    /// Closed, waiting for its rename.
    Closed(Box<dyn ClosedObject>),
    /// Renamed into place on the replica.
    Renamed,
    /// Its rename failed: the primary is not renamed.
    Failed,
}

/// A closed temporary on the primary and its copy on the replica; the
/// rename renames the copy first. Dropped unrenamed, both temporaries go.
pub(super) struct MirroredClosed {
    primary: Box<dyn ClosedObject>,
    copy: Copy,
    target: StoragePath,
    /// The replica, for messages.
    remote: String,
}

impl ClosedObject for MirroredClosed {
    fn temp(&self) -> &StoragePath {
        self.primary.temp()
    }

    fn rename(&mut self) -> Result<()> {
        match std::mem::replace(&mut self.copy, Copy::Failed) {
            Copy::Closed(copy) => {
                commit_closed(copy).map_err(|e| replica_failed(e, &self.target, &self.remote))?;
            }
            Copy::Renamed => {}
            Copy::Failed => {
                return Err(Error::storage(format!(
                    "{} was not renamed into place: its copy on the replica {} failed",
                    self.target, self.remote
                )))
            }
        }
        self.copy = Copy::Renamed;
        self.primary.rename()
    }

    /// After a failed replica step, the primary was not renamed.
    fn renamed(&mut self) -> Result<bool> {
        match self.copy {
            Copy::Failed => Ok(false),
            _ => self.primary.renamed(),
        }
    }
}
