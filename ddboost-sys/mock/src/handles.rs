//! The descriptor tables: instances, connections, open files and open directories of this
//! process, and the systems they use.
//!
//! Descriptors are small positive integers from one counter shared by all handle kinds.
//! The tables are guarded by one short-held lock ([`T`]); each open file and directory has
//! its own lock, so threads using different handles run in parallel.

use crate::conn::{Conn, Instance};
use crate::error::{DdError, DdResult};
use crate::ffi::DDP_INVALID_DESCRIPTOR;
use crate::pacing::Pacer;
use crate::recipe::Entry;
use crate::store::System;
use crate::stream::{SegCache, WriteStream};
use crate::streams::Kind;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};

pub(crate) enum FileKind {
    Read {
        entries: Arc<Vec<Entry>>,
        size: u64,
        mode: u32,
    },
    /// `None` once the stream is finished or aborted.
    Write(Option<Box<WriteStream>>),
}

/// A copy running into a destination file (see `filecopy`).
pub(crate) struct CopyJob {
    pub(crate) src_fd: i32,
    pub(crate) src_sys: Arc<System>,
    pub(crate) entries: Arc<Vec<Entry>>,
    /// Index of the next source segment to copy.
    pub(crate) next: usize,
    pub(crate) copied: u64,
}

/// An open file.
pub(crate) struct FileObj {
    pub(crate) conn: Arc<Conn>,
    pub(crate) conn_id: i32,
    /// `SU/path`, for traces, logs and fault rules.
    pub(crate) path: String,
    pub(crate) abs: PathBuf,
    pub(crate) kind: FileKind,
    pub(crate) cache: SegCache,
    /// Bytes moved through this handle (read, written or copied).
    pub(crate) bytes: u64,
    pub(crate) pacer: Pacer,
    /// The file copy into this file, while one runs.
    pub(crate) copy: Option<CopyJob>,
}

impl FileObj {
    pub(crate) fn ws(&mut self) -> DdResult<&mut WriteStream> {
        match &mut self.kind {
            FileKind::Write(Some(w)) => Ok(w),
            FileKind::Write(None) => Err(DdError::BADF),
            FileKind::Read { .. } => Err(DdError::PERM),
        }
    }

    /// Sleeps as needed to keep this stream under the configured bandwidth caps.
    pub(crate) fn pace(&mut self, n: u64) {
        self.pacer.pace(&self.conn.sys, n);
    }
}

/// An open directory: its listing, taken at open.
pub(crate) struct DirObj {
    pub(crate) conn: Arc<Conn>,
    pub(crate) conn_id: i32,
    pub(crate) names: Vec<String>,
    pub(crate) pos: usize,
    /// `ddp_readdir` calls made on the handle (the first of each batch pays a round trip).
    pub(crate) calls: u64,
}

#[derive(Default)]
pub(crate) struct Tables {
    pub(crate) inited: bool,
    next: i32,
    pub(crate) insts: HashMap<i32, Arc<Instance>>,
    pub(crate) conns: HashMap<i32, Arc<Conn>>,
    pub(crate) files: HashMap<i32, Arc<Mutex<FileObj>>>,
    pub(crate) dirs: HashMap<i32, Arc<Mutex<DirObj>>>,
    pub(crate) systems: HashMap<PathBuf, Arc<System>>,
    /// Files open for writing in this process, by namespace path.
    pub(crate) writing: HashMap<PathBuf, i32>,
}

impl Tables {
    /// A descriptor no table uses.
    pub(crate) fn alloc(&mut self) -> i32 {
        loop {
            self.next = if self.next >= i32::MAX - 1 {
                1
            } else {
                self.next + 1
            };
            let d = self.next;
            if d != DDP_INVALID_DESCRIPTOR
                && !self.insts.contains_key(&d)
                && !self.conns.contains_key(&d)
                && !self.files.contains_key(&d)
                && !self.dirs.contains_key(&d)
            {
                return d;
            }
        }
    }

    pub(crate) fn inited(&self) -> DdResult<()> {
        if self.inited {
            Ok(())
        } else {
            Err(DdError::NOT_INIT)
        }
    }

    pub(crate) fn conn(&self, c: i32) -> DdResult<Arc<Conn>> {
        self.inited()?;
        self.conns.get(&c).cloned().ok_or(DdError::BADF)
    }

    pub(crate) fn file(&self, f: i32) -> DdResult<Arc<Mutex<FileObj>>> {
        self.inited()?;
        self.files.get(&f).cloned().ok_or(DdError::BADF)
    }
}

/// The tables of this process.
pub(crate) static T: LazyLock<Mutex<Tables>> = LazyLock::new(|| Mutex::new(Tables::default()));

/// Drops every handle of one connection (or of all when `conn` is None), aborting writes.
pub(crate) fn drop_handles(t: &mut Tables, conn: Option<i32>) {
    let fds: Vec<i32> = t
        .files
        .iter()
        .filter(|(_, f)| conn.is_none() || Some(f.lock().conn_id) == conn)
        .map(|(d, _)| *d)
        .collect();
    for d in fds {
        if let Some(f) = t.files.remove(&d) {
            let mut f = f.lock();
            release_file(t, &mut f);
        }
    }
    t.dirs
        .retain(|_, d| conn.is_some() && Some(d.lock().conn_id) != conn);
}

/// Ends a file's copy job and stream accounting; aborts an unfinished write stream.
pub(crate) fn release_file(t: &mut Tables, f: &mut FileObj) {
    if f.copy.take().is_some() {
        f.conn.sys.streams.add(Kind::FileCopy, -1);
    }
    match &mut f.kind {
        FileKind::Read { .. } => f.conn.sys.streams.add(Kind::Read, -1),
        FileKind::Write(ws) => {
            if let Some(ws) = ws.take() {
                t.writing.remove(&ws.path);
                ws.abort();
                f.conn.sys.streams.add(Kind::Write, -1);
            }
        }
    }
}
