//! Folders and names: mkdir, rmdir, unlink, rename and directory listings.

use crate::abi::{Out, PathArg};
use crate::entry::{inject, Ctx};
use crate::error::{DdError, DdResult};
use crate::faults;
use crate::ffi::*;
use crate::handles::{DirObj, FileKind, T};
use crate::paths::resolve;
use parking_lot::Mutex;
use std::os::raw::c_char;
use std::sync::Arc;

/// `ddp_mkdir`: one level (the parent must exist); `DD_ERR_EXIST` when present.
pub(crate) fn mkdir(ctx: &mut Ctx, conn: ddp_conn_desc_t, path: PathArg<'_>) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let (abs, canon) = resolve(&c.sys, path)?;
    ctx.path = Some(canon);
    inject("mkdir", ctx, Some(&c))?;
    if abs.exists() {
        return Err(DdError::EXIST);
    }
    match abs.parent() {
        Some(p) if p.is_dir() => {}
        Some(p) if p.exists() => return Err(DdError::NOTDIR),
        _ => return Err(DdError::NOT_FOUND),
    }
    std::fs::create_dir(&abs).map_err(Into::into)
}

/// `ddp_rmdir`: an empty directory (not a storage unit).
pub(crate) fn rmdir(ctx: &mut Ctx, conn: ddp_conn_desc_t, path: PathArg<'_>) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let (abs, canon) = resolve(&c.sys, path)?;
    ctx.path = Some(canon.clone());
    inject("rmdir", ctx, Some(&c))?;
    if !canon.contains('/') {
        return Err(DdError::PERM);
    }
    let md = std::fs::symlink_metadata(&abs)?;
    if !md.is_dir() {
        return Err(DdError::NOTDIR);
    }
    std::fs::remove_dir(&abs).map_err(Into::into)
}

/// `ddp_unlink`: removes a file (`DD_ERR_FILE_IS_DIR` for a directory). Its segments stay
/// in the store.
pub(crate) fn unlink(ctx: &mut Ctx, conn: ddp_conn_desc_t, path: PathArg<'_>) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let (abs, canon) = resolve(&c.sys, path)?;
    ctx.path = Some(canon);
    inject("unlink", ctx, Some(&c))?;
    let md = std::fs::symlink_metadata(&abs)?;
    if md.is_dir() {
        return Err(DdError::FILE_IS_DIR);
    }
    std::fs::remove_file(&abs).map_err(Into::into)
}

/// `ddp_rename`: atomic, replacing an existing destination file.
pub(crate) fn rename(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    from: PathArg<'_>,
    to: PathArg<'_>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let (a, ca) = resolve(&c.sys, from)?;
    let (b, cb) = resolve(&c.sys, to)?;
    ctx.path = Some(format!("{ca} -> {cb}"));
    inject("rename", ctx, Some(&c))?;
    let md = std::fs::symlink_metadata(&a)?;
    if let Ok(mb) = std::fs::symlink_metadata(&b) {
        if mb.is_dir() && !md.is_dir() {
            return Err(DdError::FILE_IS_DIR);
        }
        if !mb.is_dir() && md.is_dir() {
            return Err(DdError::NOTDIR);
        }
    }
    let mut t = T.lock();
    std::fs::rename(&a, &b)?;
    // A file still being written here follows its new name.
    if let Some(d) = t.writing.remove(&a) {
        if let Some(f) = t.files.get(&d).cloned() {
            let mut f = f.lock();
            f.path = cb.clone();
            f.abs = b.clone();
            if let FileKind::Write(Some(ws)) = &mut f.kind {
                ws.path = b.clone();
            }
        }
        t.writing.insert(b, d);
    }
    Ok(())
}

/// `ddp_open_dir`: the listing is taken at open: ".", "..", then entries by name.
pub(crate) fn open_dir(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    dir: PathArg<'_>,
    mut out_dird: Out<'_, ddp_dir_desc_t>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let (abs, canon) = resolve(&c.sys, dir)?;
    ctx.path = Some(canon);
    inject("opendir", ctx, Some(&c))?;
    if out_dird.is_null() {
        return Err(DdError::INVALID);
    }
    let md = std::fs::metadata(&abs)?;
    if !md.is_dir() {
        return Err(DdError::NOTDIR);
    }
    let mut names: Vec<String> = std::fs::read_dir(&abs)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    let mut all = vec![".".to_string(), "..".to_string()];
    all.extend(names);
    let mut t = T.lock();
    t.inited()?;
    let d = t.alloc();
    t.dirs.insert(
        d,
        Arc::new(Mutex::new(DirObj {
            conn: c.clone(),
            conn_id: conn,
            names: all,
            pos: 0,
            calls: 0,
        })),
    );
    out_dird.put(d)
}

/// `ddp_readdir`: the next name, `DD_ERR_EMPTY` after the last. The calls at positions 0,
/// N, 2N, ... of the handle pay a round trip (N = `DDBOOST_MOCK_READDIR_BATCH`), the others
/// are answered from the batch already fetched; a call on no open handle pays one.
pub(crate) fn readdir(
    ctx: &mut Ctx,
    dird: ddp_dir_desc_t,
    mut out: Out<'_, ddp_dirent_t>,
) -> DdResult<()> {
    let d = {
        let t = T.lock();
        t.inited()
            .and_then(|()| t.dirs.get(&dird).cloned().ok_or(DdError::BADF))
    };
    let d = d.inspect_err(|_| faults::round_trip())?;
    let mut d = d.lock();
    if d.calls.is_multiple_of(faults::readdir_batch()) {
        faults::round_trip();
    }
    d.calls += 1;
    d.conn.alive()?;
    inject("readdir", ctx, Some(&d.conn))?;
    if out.is_null() {
        return Err(DdError::INVALID);
    }
    let Some(name) = d.names.get(d.pos).cloned() else {
        return Err(DdError::EMPTY);
    };
    d.pos += 1;
    ctx.path = Some(name.clone());
    let mut ent = ddp_dirent_t {
        d_name: [0; DDP_MAX_NAME_LEN],
    };
    for (i, b) in name.bytes().take(DDP_MAX_NAME_LEN - 1).enumerate() {
        ent.d_name[i] = b as c_char;
    }
    out.put_struct(ent)
}

/// `ddp_close_dir`.
pub(crate) fn close_dir(dird: ddp_dir_desc_t) -> DdResult<()> {
    let mut t = T.lock();
    t.dirs.remove(&dird).map(|_| ()).ok_or(DdError::BADF)
}
