//! Files: open, close, read, write and stat.

use crate::abi::{Buf, BufMut, Out, PathArg};
use crate::conn::Conn;
use crate::entry::{inject, Ctx};
use crate::error::{DdError, DdResult};
use crate::faults;
use crate::ffi::*;
use crate::handles::{release_file, FileKind, FileObj, T};
use crate::pacing::Pacer;
use crate::paths::resolve;
use crate::recipe;
use crate::stream::{self, SegCache, WriteStream};
use crate::streams::Kind;
use parking_lot::Mutex;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// Largest byte count of one `ddp_read` / `ddp_write`.
pub const MAX_IO: u64 = 1 << 20;

fn mode_bits(mode: u32) -> u32 {
    mode & 0o7777
}

/// `ddp_open_file`. `DDP_O_READ`: an existing file, read-only. `DDP_O_CREAT|DDP_O_RDWR`:
/// creates the file (its parent must exist) or, when it exists, opens it for appending:
/// writes must continue at its current size. Readers see the file's previous content
/// until the writer's `ddp_close_file` publishes the new one.
pub(crate) fn open(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    path: PathArg<'_>,
    flags: i32,
    mode: u32,
    mut out_fd: Out<'_, ddp_file_desc_t>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    if out_fd.is_null() || flags & !(DDP_O_READ | DDP_O_RDWR | DDP_O_CREAT) != 0 || flags == 0 {
        return Err(DdError::INVALID);
    }
    let (abs, canon) = resolve(&c.sys, path)?;
    ctx.path = Some(canon.clone());
    inject("open", ctx, Some(&c))?;
    let write = flags & (DDP_O_RDWR | DDP_O_CREAT) != 0;
    if abs.is_dir() {
        return Err(DdError::FILE_IS_DIR);
    }
    within_stream_limits(&c.sys, write)?;
    let kind = if write {
        open_write(&c, &abs, flags & DDP_O_CREAT != 0, mode)?
    } else {
        let (h, entries) = recipe::load_shared(&abs)?;
        FileKind::Read {
            entries,
            size: h.size,
            mode: h.mode,
        }
    };
    let d = register(&c, conn, canon.clone(), abs, kind)?;
    c.sys
        .streams
        .add(if write { Kind::Write } else { Kind::Read }, 1);
    let what = if write { "write" } else { "read" };
    c.inst
        .log(DDP_SEV_DEBUG, &format!("open {canon} ({what}) fd {d}"));
    out_fd.put(d)
}

/// A write stream on `abs`: appending to the file, or to a new empty one when `create`
/// (its parent must exist; it is visible at once with size 0).
fn open_write(c: &Arc<Conn>, abs: &Path, create: bool, mode: u32) -> DdResult<FileKind> {
    if T.lock().writing.contains_key(abs) {
        return Err(DdError::PERM);
    }
    let mut created = None;
    let (m, entries) = match recipe::load(abs) {
        Ok((h, e)) => (h.mode, e),
        Err(DdError::NOT_FOUND) if create => {
            let parent = abs.parent().ok_or(DdError::INVALID)?;
            if !parent.is_dir() {
                return Err(if parent.exists() {
                    DdError::NOTDIR
                } else {
                    DdError::NOT_FOUND
                });
            }
            match recipe::create(abs, mode_bits(mode), &[]) {
                Ok(f) => created = Some(f),
                Err(DdError::EXIST) => {}
                Err(e) => return Err(e),
            }
            (mode_bits(mode), Vec::new())
        }
        Err(e) => return Err(e),
    };
    let mut ws = WriteStream::new(c.sys.clone(), abs.to_path_buf(), m, entries)?;
    if let Some(f) = created {
        ws = ws.created(f);
    }
    Ok(FileKind::Write(Some(Box::new(ws))))
}

/// Enters an open file in the tables; a second writer of one path loses (`DD_ERR_PERM`).
fn register(
    c: &Arc<Conn>,
    conn: ddp_conn_desc_t,
    canon: String,
    abs: PathBuf,
    kind: FileKind,
) -> DdResult<ddp_file_desc_t> {
    let is_write = matches!(kind, FileKind::Write(_));
    let mut t = T.lock();
    let taken = t.inited().is_err() || (is_write && t.writing.contains_key(&abs));
    if taken {
        if let FileKind::Write(Some(ws)) = kind {
            ws.abort();
        }
        t.inited()?;
        return Err(DdError::PERM);
    }
    let d = t.alloc();
    if is_write {
        t.writing.insert(abs.clone(), d);
    }
    t.files.insert(
        d,
        Arc::new(Mutex::new(FileObj {
            conn: c.clone(),
            conn_id: conn,
            path: canon,
            abs,
            kind,
            cache: SegCache::default(),
            bytes: 0,
            pacer: Pacer::default(),
            copy: None,
        })),
    );
    Ok(d)
}

/// Whether one more read (or write) stream fits the system's limits
/// ([`faults::limits`]), counting the streams of every process; else `DD_ERR_STREAM_LIMIT`.
/// Processes opening at the same moment may overshoot by a few, as on a real system.
fn within_stream_limits(sys: &crate::store::System, write: bool) -> DdResult<()> {
    let l = faults::limits();
    let n = sys.streams.all();
    let (used, limit) = if write {
        (n.write, l.write)
    } else {
        (n.read, l.read)
    };
    if used >= limit || n.total() >= l.total {
        return Err(DdError::STREAM_LIMIT);
    }
    Ok(())
}

/// `ddp_close_file`. For a write handle this finalises the file: its content becomes
/// visible to every reader at once. The handle is released even when the close fails.
pub(crate) fn close(ctx: &mut Ctx, fd: ddp_file_desc_t) -> DdResult<()> {
    let f = {
        let mut t = T.lock();
        t.inited()?;
        t.files.remove(&fd).ok_or(DdError::BADF)?
    };
    let mut f = f.lock();
    ctx.path = Some(f.path.clone());
    let failed = f
        .conn
        .alive()
        .and_then(|_| inject("close", ctx, Some(&f.conn)));
    let conn = f.conn.clone();
    if let Err(e) = failed {
        release_file(&mut T.lock(), &mut f);
        return Err(e);
    }
    if f.copy.take().is_some() {
        conn.sys.streams.add(Kind::FileCopy, -1);
    }
    let bytes = f.bytes;
    match &mut f.kind {
        FileKind::Read { .. } => {
            conn.sys.streams.add(Kind::Read, -1);
            conn.inst.log(
                DDP_SEV_INFO,
                &format!(
                    "close {} fd {fd}: {bytes} bytes read",
                    ctx.path.as_deref().unwrap_or("")
                ),
            );
            Ok(())
        }
        FileKind::Write(ws) => {
            let ws = ws.take().ok_or(DdError::BADF)?;
            let abs = ws.path.clone();
            let r = ws.finish();
            T.lock().writing.remove(&abs);
            conn.sys.streams.add(Kind::Write, -1);
            let size = r?;
            ctx.count = size;
            conn.inst.log(
                DDP_SEV_INFO,
                &format!(
                    "close {} fd {fd}: {bytes} bytes written, file size {size}",
                    ctx.path.as_deref().unwrap_or("")
                ),
            );
            Ok(())
        }
    }
}

/// `ddp_read`: at most [`MAX_IO`] bytes from `offset`; 0 bytes at or past the end.
pub(crate) fn read(
    ctx: &mut Ctx,
    fd: ddp_file_desc_t,
    mut buf: BufMut<'_>,
    count: ddp_uint64_t,
    offset: ddp_uint64_t,
    mut out_bytes_read: Out<'_, ddp_uint64_t>,
) -> DdResult<()> {
    ctx.count = count;
    ctx.offset = offset;
    if !out_bytes_read.is_null() {
        out_bytes_read.put(0)?;
    }
    let f = T.lock().file(fd)?;
    let mut f = f.lock();
    ctx.path = Some(f.path.clone());
    f.conn.alive()?;
    if out_bytes_read.is_null() || count > MAX_IO || (buf.is_null() && count > 0) {
        return Err(DdError::INVALID);
    }
    inject("read", ctx, Some(&f.conn))?;
    let out = buf.as_mut_slice();
    let f = &mut *f;
    let n = match &mut f.kind {
        FileKind::Read { entries, .. } => {
            let entries = entries.clone();
            stream::read_at(&f.conn.sys, &entries, &[], offset, out, &mut f.cache)?
        }
        FileKind::Write(Some(ws)) => {
            ws.drain()?;
            stream::read_at(
                &f.conn.sys,
                &ws.entries,
                ws.tail(),
                offset,
                out,
                &mut f.cache,
            )?
        }
        FileKind::Write(None) => return Err(DdError::BADF),
    };
    f.bytes += n as u64;
    faults::BYTES_READ.fetch_add(n as u64, Ordering::Relaxed);
    f.pace(n as u64);
    out_bytes_read.put(n as u64)
}

/// `ddp_write`: at most [`MAX_IO`] bytes, at the file's current size only.
pub(crate) fn write(
    ctx: &mut Ctx,
    fd: ddp_file_desc_t,
    buf: Buf<'_>,
    count: ddp_uint64_t,
    offset: ddp_uint64_t,
    mut out_bytes_written: Out<'_, ddp_uint64_t>,
) -> DdResult<()> {
    ctx.count = count;
    ctx.offset = offset;
    if !out_bytes_written.is_null() {
        out_bytes_written.put(0)?;
    }
    let f = T.lock().file(fd)?;
    let mut f = f.lock();
    ctx.path = Some(f.path.clone());
    f.conn.alive()?;
    if out_bytes_written.is_null() || count > MAX_IO || (buf.is_null() && count > 0) {
        return Err(DdError::INVALID);
    }
    let size = f.ws()?.size;
    if offset != size {
        return Err(DdError::INVALID);
    }
    inject("write", ctx, Some(&f.conn))?;
    let data = buf.as_slice();
    f.ws()?.write(data)?;
    f.bytes += count;
    faults::BYTES_WRITTEN.fetch_add(count, Ordering::Relaxed);
    f.pace(count);
    out_bytes_written.put(count)
}

fn file_stat(f: &FileObj) -> DdResult<ddp_stat_t> {
    match &f.kind {
        FileKind::Read { size, mode, .. } => Ok(ddp_stat_t {
            st_size: *size,
            st_mode: S_IFREG | mode,
        }),
        FileKind::Write(Some(ws)) => Ok(ddp_stat_t {
            st_size: ws.size,
            st_mode: S_IFREG | ws.mode,
        }),
        FileKind::Write(None) => Err(DdError::BADF),
    }
}

/// `ddp_stat`. A file being written by this process reports its current size; other
/// processes see the last published size. (`DDBOOST_MOCK_STAT_SIZE_DELTA` shifts the sizes of
/// regular files, here and in `ddp_fstat`.)
pub(crate) fn stat(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    path: PathArg<'_>,
    mut out: Out<'_, ddp_stat_t>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let (abs, canon) = resolve(&c.sys, path)?;
    ctx.path = Some(canon);
    inject("stat", ctx, Some(&c))?;
    if out.is_null() {
        return Err(DdError::INVALID);
    }
    let md = std::fs::metadata(&abs)?;
    let st = if md.is_dir() {
        ddp_stat_t {
            st_size: 0,
            st_mode: S_IFDIR | 0o755,
        }
    } else {
        let open = {
            let t = T.lock();
            t.writing.get(&abs).and_then(|d| t.files.get(d).cloned())
        };
        match open {
            Some(f) => file_stat(&f.lock())?,
            None => {
                let h = recipe::read_header(&abs)?;
                ddp_stat_t {
                    st_size: h.size,
                    st_mode: S_IFREG | h.mode,
                }
            }
        }
    };
    out.put_struct(with_size_delta(st))
}

/// `st` as reported: a regular file's size off by `DDBOOST_MOCK_STAT_SIZE_DELTA`.
fn with_size_delta(mut st: ddp_stat_t) -> ddp_stat_t {
    if st.st_mode & S_IFREG == S_IFREG {
        st.st_size = st.st_size.saturating_add_signed(faults::stat_size_delta());
    }
    st
}

/// `ddp_fstat`.
pub(crate) fn fstat(
    ctx: &mut Ctx,
    fd: ddp_file_desc_t,
    mut out: Out<'_, ddp_stat_t>,
) -> DdResult<()> {
    let f = T.lock().file(fd)?;
    let f = f.lock();
    ctx.path = Some(f.path.clone());
    f.conn.alive()?;
    inject("fstat", ctx, Some(&f.conn))?;
    if out.is_null() {
        return Err(DdError::INVALID);
    }
    let st = file_stat(&f)?;
    out.put_struct(with_size_delta(st))
}
