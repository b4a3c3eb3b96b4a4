//! Reading and writing one object: exactly 1 MiB per `ddp_write` but the
//! last, into a temporary renamed into place on commit.

use std::sync::{Arc, Mutex};

use ddboost_sys::{Connection, File as DdFile, Instance, Library, OpenMode};

use super::side::{connect_retrying, Login};
use crate::about::PLUGIN_NAME;
use crate::error::{Error, Result};
use crate::process::signals::CleanupGuard;
use crate::storage::{ClosedObject, ObjectReader, ObjectWriter, ReaderFactory};

pub(super) struct DdWriter {
    pub(super) file: Option<DdFile>,
    pub(super) offset: u64,
    /// The temporary: relative, and its path in the storage unit.
    pub(super) rel_temp: String,
    pub(super) temp: String,
    pub(super) target: String,
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) login: Arc<Login>,
    pub(super) su: String,
    pub(super) host: String,
    pub(super) cleanup: Option<CleanupGuard>,
}

impl DdWriter {
    /// The open temporary (until closed).
    pub(super) fn file(&self) -> &DdFile {
        self.file.as_ref().expect("open until closed")
    }

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
pub(super) const DD_BLOCK: usize = 1 << 20;

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

    fn close(mut self: Box<Self>) -> Result<Box<dyn ClosedObject>> {
        let file = self.file.take().expect("closed once");
        // Closing finalises the file; its result matters.
        file.close().map_err(|e| self.err(e))?;
        Ok(Box::new(DdClosed {
            temp: std::mem::take(&mut self.rel_temp),
            full_temp: self.temp.clone(),
            target: self.target.clone(),
            conn: Arc::clone(&self.conn),
            login: Arc::clone(&self.login),
            su: self.su.clone(),
            host: self.host.clone(),
            cleanup: self.cleanup.take(),
        }))
    }
}

/// A finalised temporary; dropped unrenamed, it is removed (by its guard).
pub(super) struct DdClosed {
    /// The temporary, relative, and its path in the storage unit.
    temp: String,
    full_temp: String,
    target: String,
    conn: Arc<Mutex<Connection>>,
    login: Arc<Login>,
    su: String,
    host: String,
    cleanup: Option<CleanupGuard>,
}

impl ClosedObject for DdClosed {
    fn temp(&self) -> &str {
        &self.temp
    }

    fn rename(&mut self) -> Result<()> {
        let cleanup = self.cleanup.as_ref().expect("renamed once");
        cleanup.hold(|| {
            let c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
            c.rename(&self.su, &self.full_temp, &self.target)
                .map_err(|e| sdk_error(&self.host, e))
        })?;
        self.cleanup.take().expect("renamed once").disarm();
        Ok(())
    }

    /// Stats the temporary, logging in again first when the connection was
    /// lost (the new connection replaces it, for the steps that follow).
    fn renamed(&mut self) -> Result<bool> {
        let mut c = self.conn.lock().unwrap_or_else(|p| p.into_inner());
        let mut r = c.stat(&self.su, &self.full_temp);
        if matches!(&r, Err(e) if e.is_connection_lost()) {
            log::info!(
                "the connection to {} was lost; connecting again to see whether /{}/{} was renamed",
                self.host,
                self.su,
                self.full_temp
            );
            let attempt = || c.reconnect(&self.login.user, self.login.password.expose());
            let fresh = connect_retrying(
                attempt,
                &self.login.retry,
                &format!("Data Domain {}", self.host),
            )
            .map_err(|e| sdk_error(&self.host, e))?;
            *c = fresh;
            r = c.stat(&self.su, &self.full_temp);
        }
        match r {
            Ok(_) => Ok(false),
            Err(e) if e.is_not_found() => {
                if let Some(g) = self.cleanup.take() {
                    g.disarm();
                }
                Ok(true)
            }
            Err(e) => Err(sdk_error(&self.host, e)),
        }
    }
}

impl Drop for DdWriter {
    fn drop(&mut self) {
        // Close before the guard unlinks the temporary.
        drop(self.file.take());
        drop(self.cleanup.take());
    }
}

/// An object opened for reading. The block read at open (see
/// [`super::side::Side::open_reader`]) is served from memory once.
pub(super) struct DdReader {
    pub(super) file: DdFile,
    pub(super) size: u64,
    /// Whether `size` was taken from a short first read rather than asked of
    /// the system (see [`ObjectReader::exact_size`]).
    pub(super) size_inferred: bool,
    pub(super) host: String,
    /// The block read at open: its offset and bytes.
    pub(super) first: Option<(u64, Vec<u8>)>,
    /// What opening the object again needs (None for those opened again).
    pub(super) reopen: Option<Arc<Reopen>>,
}

/// What opening an object again on new connections needs: read-ahead
/// handles get their own instance and connection, since every SDK call of
/// one instance holds its lock (the SDK's thread safety is not documented).
pub(super) struct Reopen {
    pub(super) lib: Library,
    pub(super) login: Arc<Login>,
    /// The first reader's connection, for the stream counts.
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) su: String,
    /// The object's path in the storage unit.
    pub(super) full: String,
    pub(super) host: String,
}

impl ObjectReader for DdReader {
    fn block_size(&self) -> usize {
        DD_BLOCK
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn exact_size(&mut self) -> Result<u64> {
        if self.size_inferred {
            self.size = self
                .file
                .fstat()
                .map_err(|e| sdk_error(&self.host, e))?
                .size;
            self.size_inferred = false;
        }
        Ok(self.size)
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        if let Some((at, block)) = &self.first {
            if offset == *at {
                let n = buf.len().min(block.len());
                buf[..n].copy_from_slice(&block[..n]);
                let whole = n == block.len();
                self.first = None;
                if whole && n < buf.len() && n == DD_BLOCK {
                    // The rest of a larger read.
                    let more = self.read_at(&mut buf[n..], offset + n as u64)?;
                    return Ok(n + more);
                }
                return Ok(n);
            }
        }
        self.file
            .read_at(buf, offset)
            .map_err(|e| sdk_error(&self.host, e))
    }

    fn more_readers(&self) -> Option<ReaderFactory> {
        let reopen = Arc::clone(self.reopen.as_ref()?);
        let size = self.size;
        Some(ReaderFactory {
            same_file: false,
            open: Box::new(move |n| reopen.open(n, size)),
        })
    }
}

impl Reopen {
    /// Opens up to `n` more read handles, each on its own connection, as
    /// many as the system's free read streams allow: at most half of those
    /// free, so that other restores starting now still find streams. Each
    /// shortfall is logged; none fails the restore.
    fn open(&self, n: usize, size: u64) -> Vec<Box<dyn ObjectReader>> {
        let counts = self
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .stream_counts();
        let wanted = n;
        let n = match counts {
            Ok(c) => {
                let (l, u) = (&c.limits, &c.inuse);
                let used = u.read_streams
                    + u.read_write_streams
                    + u.replication_streams
                    + u.filecopy_streams;
                let free = (l.backup_read_streams - u.read_streams)
                    .min(l.total_streams_hard_limit - used)
                    .max(0) as usize;
                let n = n.min(free / 2);
                if n < wanted {
                    log::info!(
                        "read-ahead of /{}/{}: {} of {} reads in flight, as {free} of {} read streams are free on {} (read-ahead takes at most half of those free)",
                        self.su,
                        self.full,
                        n + 1,
                        wanted + 1,
                        l.backup_read_streams,
                        self.host
                    );
                }
                n
            }
            Err(e) => {
                log::warn!(
                    "read-ahead of /{}/{}: 1 of {} reads in flight: cannot tell how many read streams are free on {} ({e})",
                    self.su,
                    self.full,
                    wanted + 1,
                    self.host
                );
                0
            }
        };
        let opened: Vec<Result<DdFile>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..n).map(|_| s.spawn(|| self.open_one())).collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(Error::io("opening a read handle failed")))
                })
                .collect()
        });
        let mut readers: Vec<Box<dyn ObjectReader>> = Vec::new();
        let mut failed = Vec::new();
        for r in opened {
            match r {
                Ok(file) => readers.push(Box::new(DdReader {
                    file,
                    size,
                    size_inferred: false,
                    host: self.host.clone(),
                    first: None,
                    reopen: None,
                })),
                Err(e) => failed.push(e.to_string()),
            }
        }
        if let Some(why) = failed.first() {
            log::info!(
                "read-ahead of /{}/{}: {} of {} reads in flight, as {} read handles could not be opened ({why})",
                self.su,
                self.full,
                readers.len() + 1,
                wanted + 1,
                failed.len()
            );
        }
        readers
    }

    /// One more read handle of the object, on a new instance and connection.
    fn open_one(&self) -> Result<DdFile> {
        let info = format!("{PLUGIN_NAME} version {}", env!("CARGO_PKG_VERSION"));
        let instance =
            Instance::new(&self.lib, PLUGIN_NAME, &info).map_err(|e| sdk_error(&self.host, e))?;
        let conn = Connection::connect(
            &instance,
            &self.host,
            &self.login.user,
            self.login.password.expose(),
        )
        .map_err(|e| sdk_error(&self.host, e))?;
        // The file keeps its connection and instance alive.
        conn.open_file(&self.su, &self.full, OpenMode::Read, 0)
            .map_err(|e| sdk_error(&self.host, e))
    }
}
