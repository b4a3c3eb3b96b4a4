//! Library init and shutdown, instances, connections, and what is asked of a whole system:
//! storage units, space (`ddp_statfs`) and stream counts.

use crate::abi::{CStrArg, Out};
use crate::conn::{Conn, Instance};
use crate::entry::{inject, Ctx};
use crate::error::{DdError, DdResult};
use crate::faults;
use crate::ffi::*;
use crate::handles::{drop_handles, T};
use crate::store::System;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

/// `ddp_init`: reads the `DDBOOST_MOCK_*` configuration. Again while initialised: nothing.
pub(crate) fn init() -> DdResult<()> {
    let mut t = T.lock();
    if t.inited {
        return Ok(());
    }
    let cfg = faults::Config::from_env().map_err(|e| {
        eprintln!("ddboost-mock: invalid configuration: {e}");
        DdError::INVALID
    })?;
    faults::install(cfg);
    t.inited = true;
    Ok(())
}

/// `ddp_shutdown`: frees every handle and system (unclosed writes are discarded).
pub(crate) fn shutdown() -> DdResult<()> {
    let mut t = T.lock();
    drop_handles(&mut t, None);
    let t2 = std::mem::take(&mut *t);
    drop(t2);
    Ok(())
}

pub(crate) fn instance_create(mut out_inst: Out<'_, ddp_inst_desc_t>) -> DdResult<()> {
    let mut t = T.lock();
    t.inited()?;
    if out_inst.is_null() {
        return Err(DdError::INVALID);
    }
    let d = t.alloc();
    t.insts.insert(d, Arc::new(Instance::default()));
    out_inst.put(d)
}

pub(crate) fn instance_destroy(inst: ddp_inst_desc_t) -> DdResult<()> {
    let mut t = T.lock();
    t.inited()?;
    t.insts.remove(&inst).map(|_| ()).ok_or(DdError::BADF)
}

/// `ddp_log_init`: stores the log callback of an instance (NULL `cb` turns logging off).
pub(crate) fn log_init(inst: ddp_inst_desc_t, session: usize, cb: ddp_log_cb_t) -> DdResult<()> {
    let t = T.lock();
    let i = t.insts.get(&inst).ok_or(DdError::BADF)?;
    i.log.set(session, cb);
    Ok(())
}

/// `ddp_connect_with_user_pwd`: unknown host → `DD_ERR_CONNECT`, wrong user or password →
/// `DD_ERR_AUTH`.
pub(crate) fn connect(
    ctx: &mut Ctx,
    inst: ddp_inst_desc_t,
    hostname: CStrArg<'_>,
    user: CStrArg<'_>,
    password: CStrArg<'_>,
    mut out_conn: Out<'_, ddp_conn_desc_t>,
) -> DdResult<()> {
    let instance = {
        let t = T.lock();
        t.inited()?;
        t.insts.get(&inst).cloned().ok_or(DdError::BADF)?
    };
    if out_conn.is_null() {
        return Err(DdError::INVALID);
    }
    let host = hostname.get()?;
    ctx.path = Some(host.to_string());
    inject("connect", ctx, None)?;
    if let Some(d) = faults::connect_cost() {
        std::thread::sleep(d);
    }
    let Some(root) = std::env::var_os("DDBOOST_MOCK_ROOT").filter(|r| !r.is_empty()) else {
        let msg = "ddboost-mock: DDBOOST_MOCK_ROOT is not set: it must name the directory holding the emulated systems";
        eprintln!("{msg}");
        instance.log(DDP_SEV_ERROR, msg);
        return Err(DdError::CONNECT);
    };
    let dir = crate::admin::system_dir(std::path::Path::new(&root), host)?;
    if !dir.join("system.json").is_file() {
        instance.log(DDP_SEV_ERROR, &format!("connect to {host}: no such system"));
        return Err(DdError::CONNECT);
    }
    let user = user.get().map_err(|_| DdError::AUTH)?;
    let pwd = password.get().map_err(|_| DdError::AUTH)?;
    if let Err(e) = crate::admin::authenticate(&dir, user, pwd) {
        instance.log(
            DDP_SEV_ERROR,
            &format!("connect to {host} as {user}: authentication failed"),
        );
        return Err(e);
    }
    let existing = T.lock().systems.get(&dir).cloned();
    let sys = match existing {
        Some(s) => s,
        None => {
            let s = System::open(&dir, host)?;
            T.lock().systems.entry(dir.clone()).or_insert(s).clone()
        }
    };
    let mut t = T.lock();
    t.inited()?;
    let d = t.alloc();
    t.conns.insert(
        d,
        Arc::new(Conn {
            inst: instance.clone(),
            sys,
            lost: AtomicBool::new(false),
        }),
    );
    drop(t);
    instance.log(
        DDP_SEV_INFO,
        &format!("connected to {host} as {user} (connection {d})"),
    );
    out_conn.put(d)
}

/// `ddp_disconnect`: its open files are discarded (unclosed writes are not published).
pub(crate) fn disconnect(ctx: &mut Ctx, conn: ddp_conn_desc_t) -> DdResult<()> {
    let mut t = T.lock();
    let c = t.conn(conn)?;
    inject("disconnect", ctx, None)?;
    drop_handles(&mut t, Some(conn));
    t.conns.remove(&conn);
    drop(t);
    c.inst.log(
        DDP_SEV_INFO,
        &format!("disconnected from {} (connection {conn})", c.sys.host),
    );
    Ok(())
}

/// `ddp_create_storage_unit`: succeeds when it already exists.
pub(crate) fn create_storage_unit(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    su_name: CStrArg<'_>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    let su = su_name.get()?;
    ctx.path = Some(su.to_string());
    inject("create_su", ctx, Some(&c))?;
    if !crate::admin::valid_name(su) {
        return Err(DdError::INVALID);
    }
    match std::fs::create_dir(c.sys.su_root().join(su)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// `ddp_statfs`: `f_blocks`/`f_bfree` of the filesystem holding the system directory, in
/// that filesystem's block units.
pub(crate) fn statfs(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    mut out: Out<'_, ddp_statvfs_t>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    inject("statfs", ctx, Some(&c))?;
    if out.is_null() {
        return Err(DdError::INVALID);
    }
    let v = rustix::fs::statvfs(&c.sys.dir).map_err(|e| DdError::from(std::io::Error::from(e)))?;
    out.put_struct(ddp_statvfs_t {
        f_blocks: v.f_blocks,
        f_bfree: v.f_bfree,
    })
}

/// `ddp_get_stream_counts`: the configured limits (`DDBOOST_MOCK_*_STREAMS`, which
/// `ddp_open_file` enforces) and fixed plausible values for the rest; in-use counts cover
/// every process using the system.
pub(crate) fn stream_counts(
    ctx: &mut Ctx,
    conn: ddp_conn_desc_t,
    mut out: Out<'_, ddp_stream_counts_t>,
) -> DdResult<()> {
    let c = T.lock().conn(conn)?;
    c.alive()?;
    inject("stream_counts", ctx, Some(&c))?;
    if out.is_null() {
        return Err(DdError::INVALID);
    }
    let n = c.sys.streams.all();
    let l = faults::limits();
    out.put_struct(ddp_stream_counts_t {
        limits: ddp_stream_limits_t {
            backup_write_streams: l.write,
            backup_read_streams: l.read,
            repl_source_streams: 60,
            repl_dest_streams: 90,
            nearline_read_streams: l.read,
            nearline_write_streams: l.write,
            total_write_streams_hard_limit: l.total,
            total_streams_hard_limit: l.total,
            mixed_write_streams: l.write,
            mixed_read_streams: l.read,
            mixed_repl_src_streams: 60,
            mixed_repl_dst_streams: 90,
            mixed_repl_dst_with_write_streams: l.write,
            mixed_total_streams: l.total,
        },
        inuse: ddp_stream_inuse_t {
            read_streams: n.read,
            read_write_streams: n.write,
            replication_streams: 0,
            filecopy_streams: n.filecopy,
        },
    })
}
