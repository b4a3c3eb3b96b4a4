//! An object of the local backend: written to its temporary (flushed as it
//! goes), committed by rename, read.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use crate::error::Result;
use crate::process::signals::CleanupGuard;
use crate::storage::{ClosedObject, ObjectReader, ObjectWriter, ReaderFactory, StoragePath};

use super::fsops::{io_err, is_enoent, sync_dir};

/// Flush what was written every this many bytes, so the final fsync has
/// little left to do.
const WRITEBACK_EVERY: u64 = 16 << 20;

pub(super) struct LocalWriter {
    pub(super) file: File,
    /// The temporary, relative.
    pub(super) temp: StoragePath,
    pub(super) temp_path: PathBuf,
    pub(super) final_path: PathBuf,
    pub(super) written: u64,
    pub(super) synced_to: u64,
    pub(super) fsync: bool,
    /// Wakes a thread that flushes written data while more arrives.
    pub(super) flusher: Option<crossbeam_channel::Sender<()>>,
    pub(super) cleanup: Option<CleanupGuard>,
}

/// A thread that runs `fdatasync` on a second handle of `file` when woken.
pub(super) fn start_flusher(file: &File) -> Option<crossbeam_channel::Sender<()>> {
    let clone = file.try_clone().ok()?;
    let (tx, rx) = crossbeam_channel::bounded::<()>(1);
    std::thread::Builder::new()
        .name("flusher".into())
        .spawn(move || {
            for () in rx.iter() {
                let _ = clone.sync_data();
            }
        })
        .ok()?;
    Some(tx)
}

/// Blocks for local files: small enough that a block stays in the CPU's L2
/// cache between the pipe read and the page-cache write (1 MiB blocks measured
/// about half as fast here as 128 KiB ones, for `dd` as for the plugin).
pub(super) const LOCAL_BLOCK: usize = 128 << 10;

impl ObjectWriter for LocalWriter {
    fn block_size(&self) -> usize {
        LOCAL_BLOCK
    }
    fn write(&mut self, buf: &[u8]) -> Result<()> {
        self.file
            .write_all(buf)
            .map_err(|e| io_err("cannot write", &self.temp_path, e))?;
        self.written += buf.len() as u64;
        if self.fsync && self.written - self.synced_to >= WRITEBACK_EVERY {
            // Flush in the background so the final fsync waits for little.
            if let Some(tx) = &self.flusher {
                let _ = tx.try_send(());
            }
            self.synced_to = self.written;
        }
        Ok(())
    }

    fn close(mut self: Box<Self>) -> Result<Box<dyn ClosedObject>> {
        self.flusher = None;
        if self.fsync {
            self.file
                .sync_all()
                .map_err(|e| io_err("cannot flush", &self.temp_path, e))?;
        }
        Ok(Box::new(LocalClosed {
            temp: std::mem::take(&mut self.temp),
            temp_path: self.temp_path.clone(),
            final_path: self.final_path.clone(),
            fsync: self.fsync,
            cleanup: self.cleanup.take(),
        }))
    }
}

impl Drop for LocalWriter {
    fn drop(&mut self) {
        // Not committed: remove the temporary (the guard does it).
        drop(self.cleanup.take());
    }
}

/// A written temporary; dropped unrenamed, it is removed (by its guard).
pub(super) struct LocalClosed {
    pub(super) temp: StoragePath,
    pub(super) temp_path: PathBuf,
    pub(super) final_path: PathBuf,
    pub(super) fsync: bool,
    pub(super) cleanup: Option<CleanupGuard>,
}

impl ClosedObject for LocalClosed {
    fn temp(&self) -> &StoragePath {
        &self.temp
    }

    fn rename(&mut self) -> Result<()> {
        let cleanup = self.cleanup.as_ref().expect("renamed once");
        // Rename while holding off signal cleanup, so an interrupt sees either
        // the temporary (and removes it) or the finished object.
        cleanup.hold(|| {
            fs::rename(&self.temp_path, &self.final_path)
                .map_err(|e| io_err("cannot rename into place", &self.final_path, e))
        })?;
        self.cleanup.take().expect("renamed once").disarm();
        if self.fsync {
            if let Some(parent) = self.final_path.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(())
    }

    fn renamed(&mut self) -> Result<bool> {
        match fs::symlink_metadata(&self.temp_path) {
            Ok(_) => Ok(false),
            Err(e) if is_enoent(&e) => {
                if let Some(c) = self.cleanup.take() {
                    c.disarm();
                }
                Ok(true)
            }
            Err(e) => Err(io_err("cannot stat", &self.temp_path, e)),
        }
    }
}

/// Reads with `pread`, so the readers of one restore with reads in flight
/// share one open file (the same bytes, whatever is renamed over the path
/// meanwhile) and each reads at its own offsets.
pub(super) struct LocalReader {
    pub(super) file: Arc<File>,
    pub(super) size: u64,
    pub(super) path: PathBuf,
}

impl ObjectReader for LocalReader {
    fn block_size(&self) -> usize {
        LOCAL_BLOCK
    }
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        loop {
            match self.file.read_at(buf, offset) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_err("cannot read", &self.path, e)),
            }
        }
    }

    fn more_readers(&self) -> Option<ReaderFactory> {
        let (file, size, path) = (Arc::clone(&self.file), self.size, self.path.clone());
        Some(ReaderFactory {
            same_file: true,
            open: Box::new(move |n| {
                (0..n)
                    .map(|_| {
                        Box::new(LocalReader {
                            file: Arc::clone(&file),
                            size,
                            path: path.clone(),
                        }) as Box<dyn ObjectReader>
                    })
                    .collect()
            }),
        })
    }
}
