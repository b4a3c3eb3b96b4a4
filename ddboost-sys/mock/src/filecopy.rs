//! File copy (`ddp_filecopy_*`), within a system or between two (managed file
//! replication): the destination receives the source's segments, and segments the
//! destination system already holds are not transferred.

use crate::abi::Out;
use crate::entry::{inject, Ctx};
use crate::error::{DdError, DdResult};
use crate::ffi::*;
use crate::handles::{CopyJob, FileKind, T};
use crate::streams::Kind;

/// `ddp_filecopy_start`: `src_fd` open for reading into `dst_fd` (open with CREAT|RDWR,
/// empty or with everything written so far finished), possibly on another system. The copy
/// proceeds as `ddp_filecopy_status` is polled.
pub(crate) fn start(
    ctx: &mut Ctx,
    src_fd: ddp_file_desc_t,
    dst_fd: ddp_file_desc_t,
) -> DdResult<()> {
    let (src, dst) = {
        let t = T.lock();
        (t.file(src_fd)?, t.file(dst_fd)?)
    };
    if src_fd == dst_fd {
        return Err(DdError::INVALID);
    }
    let (entries, src_sys, src_path) = {
        let s = src.lock();
        s.conn.alive()?;
        match &s.kind {
            FileKind::Read { entries, .. } => (entries.clone(), s.conn.sys.clone(), s.path.clone()),
            _ => return Err(DdError::INVALID),
        }
    };
    let mut d = dst.lock();
    d.conn.alive()?;
    ctx.path = Some(format!("{src_path} -> {}", d.path));
    inject("filecopy_start", ctx, Some(&d.conn))?;
    if d.copy.is_some() {
        return Err(DdError::INVALID);
    }
    let ws = d.ws().map_err(|_| DdError::INVALID)?;
    ws.drain()?;
    if !ws.tail().is_empty() {
        return Err(DdError::INVALID);
    }
    d.copy = Some(CopyJob {
        src_fd,
        src_sys,
        entries,
        next: 0,
        copied: 0,
    });
    d.conn.sys.streams.add(Kind::FileCopy, 1);
    Ok(())
}

/// `ddp_filecopy_status`: copies up to `offset + extent_len` and reports how many bytes
/// from `offset` (at most `extent_len`) are copied; 0 at the end of the source.
pub(crate) fn status(
    ctx: &mut Ctx,
    src_fd: ddp_file_desc_t,
    dst_fd: ddp_file_desc_t,
    offset: ddp_uint64_t,
    extent_len: ddp_uint64_t,
    mut out_bytes_copied: Out<'_, ddp_uint64_t>,
) -> DdResult<()> {
    ctx.offset = offset;
    ctx.count = extent_len;
    let dst = T.lock().file(dst_fd)?;
    let mut d = dst.lock();
    ctx.path = Some(d.path.clone());
    d.conn.alive()?;
    inject("filecopy_status", ctx, Some(&d.conn))?;
    if out_bytes_copied.is_null() {
        return Err(DdError::INVALID);
    }
    let d = &mut *d;
    let job = d.copy.as_mut().ok_or(DdError::INVALID)?;
    if job.src_fd != src_fd {
        return Err(DdError::INVALID);
    }
    let FileKind::Write(Some(ws)) = &mut d.kind else {
        return Err(DdError::BADF);
    };
    let target = offset.saturating_add(extent_len);
    let start = job.copied;
    while job.copied < target && job.next < job.entries.len() {
        let e = job.entries[job.next];
        ws.append_segment(&job.src_sys, &e)?;
        job.copied += e.loc.raw as u64;
        job.next += 1;
    }
    let n = job.copied - start;
    d.bytes += n;
    let done = job.copied.saturating_sub(offset).min(extent_len);
    out_bytes_copied.put(done)
}

/// `ddp_filecopy_stop`: ends the copy into `dst_fd` (harmless when none was started). The
/// destination file is finalised by its `ddp_close_file`.
pub(crate) fn stop(
    ctx: &mut Ctx,
    src_conn: ddp_conn_desc_t,
    dst_fd: ddp_file_desc_t,
) -> DdResult<()> {
    let (c, dst) = {
        let t = T.lock();
        (t.conn(src_conn)?, t.file(dst_fd)?)
    };
    let mut d = dst.lock();
    ctx.path = Some(d.path.clone());
    inject("filecopy_stop", ctx, Some(&c))?;
    if d.copy.take().is_some() {
        d.conn.sys.streams.add(Kind::FileCopy, -1);
    }
    Ok(())
}
