//! The replica: a second Data Domain that committed objects are copied to
//! with managed file replication (`ddp_filecopy_*`).

use std::time::{Duration, Instant};

use backon::BackoffBuilder;

use super::streams::{is_stream_limit, stream_backoff};
use super::system::System;
use super::write::DdWriter;
use crate::error::{Error, Result};
use crate::storage::{ClosedObject, ObjectWriter, Replica, Storage, StoragePath};

/// Message the plugin test bench expects when a replica already exists.
const EXCLUSIVE_FAILED: &str = "DDBoost open file in exclusive mode failed on remote";

/// The remote system and the primary it copies from.
#[derive(Clone)]
pub(super) struct DdReplica {
    pub(super) primary: System,
    pub(super) remote: System,
    /// replication: on
    pub(super) mirror: bool,
    /// Option replication_streams.
    pub(super) streams: usize,
}

impl Replica for DdReplica {
    fn storage(&self) -> &dyn Storage {
        &self.remote
    }

    fn streams(&self) -> usize {
        self.streams
    }

    fn already_there(&self, detail: &str) -> Error {
        Error::storage(format!("{EXCLUSIVE_FAILED}: {detail}"))
    }

    /// Source opened, temporary on the replica, file copy, close.
    fn copy_closed(
        &self,
        from: &StoragePath,
        to: &StoragePath,
    ) -> Result<(Box<dyn ClosedObject>, u64)> {
        let (primary, remote) = (&self.primary, &self.remote);
        let (src, mut dst) = self.open_both(from, to)?;
        let copied = {
            let src_conn = primary.lock();
            ddboost::filecopy(&src_conn, &src, dst.file(), |_, _| {}).map_err(|e| {
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

impl DdReplica {
    /// Opens the copy's source on the primary (waiting for a read stream
    /// while holding none) and its temporary on the replica, which it takes
    /// only when a write stream is free right then: otherwise it lets go of
    /// the source and tries both again after a pause, for up to option
    /// `stream_wait_seconds`. So a copy never holds a stream while waiting
    /// for another.
    fn open_both(&self, from: &StoragePath, to: &StoragePath) -> Result<(ddboost::File, DdWriter)> {
        let (primary, remote) = (&self.primary, &self.remote);
        let wait = remote.login.retry.stream_wait;
        let started = Instant::now();
        let mut pauses = stream_backoff(wait).build();
        let mut logged = false;
        loop {
            let src = primary.open_file_waiting(from)?;
            match remote.create_writer_waiting(to, Duration::ZERO) {
                Ok(dst) => return Ok((src, dst)),
                Err(e) if is_stream_limit(&e) => {
                    drop(src);
                    let Some(pause) = pauses.next() else {
                        return Err(Error::storage(format!(
                            "copying {to} to {}: its write stream limit stayed reached for {:.0} s (option stream_wait_seconds, now {}); raise stream_wait_seconds, or copy fewer at once",
                            remote.describe(),
                            started.elapsed().as_secs_f64(),
                            wait.as_secs()
                        )));
                    };
                    if !std::mem::replace(&mut logged, true) {
                        log::info!(
                            "copying {to} to {}: every write stream there is taken; waiting for one, up to {} s (option stream_wait_seconds)",
                            remote.describe(),
                            wait.as_secs()
                        );
                    }
                    crate::process::metrics::stream_wait(pause);
                    std::thread::sleep(pause);
                }
                Err(e) => return Err(e),
            }
        }
    }
}
