//! The replica: a second Data Domain that committed objects are copied to
//! with managed file replication (`ddp_filecopy_*`).

use ddboost_sys::OpenMode;

use super::side::Side;
use super::EXCLUSIVE_FAILED;
use crate::error::{Error, Result};
use crate::storage::{ObjectWriter, Replica, Storage};

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

    /// Temporary on the replica, file copy, close, rename.
    fn copy(&self, rel: &str, exclusive: bool) -> Result<u64> {
        let (primary, remote) = (&self.primary, &self.remote);
        if exclusive && remote.stat(rel)?.is_some() {
            return Err(Error::storage(format!(
                "{EXCLUSIVE_FAILED}: {rel} already exists on {}",
                remote.describe()
            )));
        }
        let src = primary
            .lock()
            .open_file(&primary.su, &primary.full(rel), OpenMode::Read, 0)
            .map_err(|e| primary.err(e))?;
        let mut dst = remote.create_writer(rel)?;
        let copied = {
            let src_conn = primary.lock();
            let dst_file = dst.file.as_ref().expect("open until commit");
            ddboost_sys::filecopy(&src_conn, &src, dst_file, |_, _| {}).map_err(|e| {
                Error::storage_from(
                    format!("replication of {rel} to {} failed: {e}", remote.describe()),
                    e,
                )
            })?
        };
        drop(src);
        dst.offset = copied;
        Box::new(dst).commit()?;
        Ok(copied)
    }
}
