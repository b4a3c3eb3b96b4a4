//! Reading and writing one object: exactly 1 MiB per `ddp_write` but the
//! last, into a temporary renamed into place on commit.

use std::sync::{Arc, Mutex};

use ddboost_sys::{Connection, File as DdFile};

use crate::error::{Error, Result};
use crate::process::signals::CleanupGuard;
use crate::storage::{ObjectReader, ObjectWriter};

pub(super) struct DdWriter {
    pub(super) file: Option<DdFile>,
    pub(super) offset: u64,
    pub(super) temp: String,
    pub(super) target: String,
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) su: String,
    pub(super) host: String,
    pub(super) cleanup: Option<CleanupGuard>,
}

impl DdWriter {
    fn err(&self, e: ddboost_sys::Error) -> Error {
        sdk_error(&self.host, e)
    }
}

/// An SDK failure on `host`, as the plugin reports it: the call, the object
/// and the return code, which stays available as the error's source.
pub(super) fn sdk_error(host: &str, e: ddboost_sys::Error) -> Error {
    Error::storage_from(format!("DD Boost call failed on {host}: {e}"), e)
}

/// DD Boost's largest (and most efficient) I/O.
const DD_BLOCK: usize = 1 << 20;

impl ObjectWriter for DdWriter {
    fn block_size(&self) -> usize {
        DD_BLOCK
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        let file = self.file.as_ref().expect("open until commit");
        let mut done = 0;
        while done < buf.len() {
            let n = file
                .write_at(&buf[done..], self.offset)
                .map_err(|e| sdk_error(&self.host, e))?;
            if n == 0 {
                return Err(Error::storage(format!(
                    "ddp_write {} wrote nothing on {}",
                    self.temp, self.host
                )));
            }
            done += n;
            self.offset += n as u64;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let file = self.file.take().expect("commit runs once");
        // Closing finalises the file; its result matters.
        file.close().map_err(|e| self.err(e))?;
        let cleanup = self.cleanup.take().expect("commit runs once");
        let (conn, su, temp, target) = (
            Arc::clone(&self.conn),
            self.su.clone(),
            self.temp.clone(),
            self.target.clone(),
        );
        let host = self.host.clone();
        cleanup.disarm_with(move || {
            let c = conn.lock().unwrap_or_else(|p| p.into_inner());
            c.rename(&su, &temp, &target)
                .map_err(|e| sdk_error(&host, e))
        })
    }
}

impl Drop for DdWriter {
    fn drop(&mut self) {
        // Close before the guard unlinks the temporary.
        drop(self.file.take());
        drop(self.cleanup.take());
    }
}

pub(super) struct DdReader {
    pub(super) file: DdFile,
    pub(super) size: u64,
    pub(super) host: String,
}

impl ObjectReader for DdReader {
    fn block_size(&self) -> usize {
        DD_BLOCK
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.file
            .read_at(buf, offset)
            .map_err(|e| sdk_error(&self.host, e))
    }
}
