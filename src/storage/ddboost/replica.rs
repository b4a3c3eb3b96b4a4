//! The replica: a second Data Domain that committed objects are copied to
//! with managed file replication (`ddp_filecopy_*`).

use super::side::Side;
use crate::error::{Error, Result};
use crate::storage::{ClosedObject, ObjectWriter, Replica, Storage};

/// The remote system and the primary it copies from.
pub(super) struct DdReplica {
    pub(super) primary: Side,
    pub(super) remote: Side,
    /// replication: on
    pub(super) mirror: bool,
    /// Option replication_streams.
    pub(super) streams: usize,
}

impl Replica for DdReplica {
    fn storage(&self) -> &dyn Storage {
        &self.remote
    }

    fn mirrors_writes(&self) -> bool {
        self.mirror
    }

    fn streams(&self) -> usize {
        self.streams
    }

    /// Source opened, temporary on the replica, file copy, close.
    fn copy_closed(&self, from: &str, to: &str) -> Result<(Box<dyn ClosedObject>, u64)> {
        let (primary, remote) = (&self.primary, &self.remote);
        let src = primary.open_file_waiting(from)?;
        let mut dst = remote.create_writer(to)?;
        let copied = {
            let src_conn = primary.lock();
            ddboost_sys::filecopy(&src_conn, &src, dst.file(), |_, _| {}).map_err(|e| {
                Error::storage_from(
                    format!("replication of {to} to {} failed: {e}", remote.describe()),
                    e,
                )
            })?
        };
        drop(src);
        dst.offset = copied;
        Ok((Box::new(dst).close()?, copied))
    }
}
