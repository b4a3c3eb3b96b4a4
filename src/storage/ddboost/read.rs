//! Reading one object: the block read at open served from memory, and
//! more read handles on their own connections for reading ahead.

use std::sync::{Arc, Mutex};

use ddboost::{Connection, File as DdFile, Instance, Library, OpenMode};

use super::connect::{sdk_error, Login};
use super::DD_BLOCK;
use crate::about::PLUGIN_NAME;
use crate::error::{Error, Result};
use crate::storage::{ObjectReader, ReaderFactory};

/// An object opened for reading. The block read at open (see
/// [`super::system::System::open_reader_within`]) is served from memory once.
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

    fn take_whole(&mut self) -> Option<Vec<u8>> {
        match &self.first {
            Some((0, block)) if block.len() as u64 == self.size => {
                self.first.take().map(|(_, block)| block)
            }
            _ => None,
        }
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
                        .unwrap_or_else(|_| Err(Error::internal("opening a read handle failed")))
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
