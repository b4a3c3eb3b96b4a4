//! The exported C ABI: every function of `ddp_api.h`.
//!
//! All `unsafe` code of the crate is in this module, at the boundary: reading C strings and
//! structs from caller pointers and writing results through them. Every entry point runs
//! its body under `catch_unwind`, so no panic crosses into C (a panic becomes `DD_ERR_IO`).
//!
//! Descriptors are small positive integers from one counter shared by all handle kinds.
//! The handle tables are guarded by one short-held lock; each open file has its own lock,
//! so threads using different handles run in parallel.
//!
//! # Safety
//!
//! Every exported function has the contract of its C declaration: pointer arguments are
//! NULL (rejected with `DD_ERR_INVALID` where a value is needed) or valid for the access the
//! header implies (NUL-terminated strings, `ddp_path_t` with such strings, out-pointers to
//! caller storage, read/write buffers of at least `count` bytes), for the duration of the call.
#![allow(clippy::missing_safety_doc)]

use crate::error::{DdError, DdResult};
use crate::faults;
use crate::ffi::*;
use crate::recipe::{self, Entry};
use crate::store::System;
use crate::stream::{self, SegCache, WriteStream};
use crate::streams::Kind;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

/// Largest byte count of one `ddp_read` / `ddp_write`.
pub const MAX_IO: u64 = 1 << 20;

type LogCb = unsafe extern "C" fn(*const c_void, *const ddp_char_t, ddp_severity_t);

struct Instance {
    log: Mutex<Option<(usize, LogCb)>>,
}

impl Instance {
    fn log(&self, sev: ddp_severity_t, msg: &str) {
        let Some((session, cb)) = *self.log.lock() else {
            return;
        };
        let Ok(c) = CString::new(msg.replace('\0', " ")) else {
            return;
        };
        // SAFETY: `cb` was registered by the caller through ddp_log_init as a function of this
        // exact C signature; `session` is the pointer it gave us, passed back unchanged; the
        // message is a valid NUL-terminated string that outlives the call.
        unsafe { cb(session as *const c_void, c.as_ptr(), sev) };
    }
}

struct Conn {
    inst: Arc<Instance>,
    sys: Arc<System>,
    lost: AtomicBool,
}

impl Conn {
    fn alive(&self) -> DdResult<()> {
        if self.lost.load(Ordering::Relaxed) {
            Err(DdError::CONN_LOST)
        } else {
            Ok(())
        }
    }
}

struct CopyJob {
    src_fd: i32,
    src_sys: Arc<System>,
    entries: Arc<Vec<Entry>>,
    next: usize,
    copied: u64,
}

enum FileKind {
    Read {
        entries: Arc<Vec<Entry>>,
        size: u64,
        mode: u32,
    },
    Write(Option<Box<WriteStream>>),
}

struct FileObj {
    conn: Arc<Conn>,
    conn_id: i32,
    path: String,
    abs: PathBuf,
    kind: FileKind,
    cache: SegCache,
    bytes: u64,
    next_free: Option<Instant>,
    copy: Option<CopyJob>,
}

impl FileObj {
    fn ws(&mut self) -> DdResult<&mut WriteStream> {
        match &mut self.kind {
            FileKind::Write(Some(w)) => Ok(w),
            FileKind::Write(None) => Err(DdError::BADF),
            FileKind::Read { .. } => Err(DdError::PERM),
        }
    }

    /// Sleeps as needed to keep this stream under the configured bandwidth caps.
    fn pace(&mut self, n: u64) {
        let (stream_bps, system_bps) = faults::caps();
        let mut rate = f64::INFINITY;
        if let Some(r) = stream_bps {
            rate = rate.min(r);
        }
        if let Some(r) = system_bps {
            let n = self.conn.sys.streams.all_cached().total().max(1);
            rate = rate.min(r / n as f64);
        }
        if !rate.is_finite() || n == 0 {
            return;
        }
        // A token bucket: time already spent on the work counts towards the
        // budget (up to a short burst), so a capped stream reaches its cap
        // instead of cap and work time added up.
        let now = Instant::now();
        let burst = Duration::from_millis(100);
        let start = match self.next_free {
            Some(t) => t.max(now.checked_sub(burst).unwrap_or(now)),
            None => now,
        };
        let next = start + Duration::from_secs_f64(n as f64 / rate);
        self.next_free = Some(next);
        if next > now {
            std::thread::sleep(next - now);
        }
    }
}

struct DirObj {
    conn: Arc<Conn>,
    conn_id: i32,
    names: Vec<String>,
    pos: usize,
}

#[derive(Default)]
struct Tables {
    inited: bool,
    next: i32,
    insts: HashMap<i32, Arc<Instance>>,
    conns: HashMap<i32, Arc<Conn>>,
    files: HashMap<i32, Arc<Mutex<FileObj>>>,
    dirs: HashMap<i32, Arc<Mutex<DirObj>>>,
    systems: HashMap<PathBuf, Arc<System>>,
    /// Files open for writing in this process, by namespace path.
    writing: HashMap<PathBuf, i32>,
}

impl Tables {
    fn alloc(&mut self) -> i32 {
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
    fn inited(&self) -> DdResult<()> {
        if self.inited {
            Ok(())
        } else {
            Err(DdError::NOT_INIT)
        }
    }
    fn conn(&self, c: i32) -> DdResult<Arc<Conn>> {
        self.inited()?;
        self.conns.get(&c).cloned().ok_or(DdError::BADF)
    }
    fn file(&self, f: i32) -> DdResult<Arc<Mutex<FileObj>>> {
        self.inited()?;
        self.files.get(&f).cloned().ok_or(DdError::BADF)
    }
}

static T: LazyLock<Mutex<Tables>> = LazyLock::new(|| Mutex::new(Tables::default()));

#[derive(Default)]
struct Ctx {
    path: Option<String>,
    count: u64,
    offset: u64,
}

fn call(op: &'static str, f: impl FnOnce(&mut Ctx) -> DdResult<()>) -> dd_errno_t {
    if let Some(d) = faults::latency() {
        std::thread::sleep(d);
    }
    let mut ctx = Ctx::default();
    let r = match catch_unwind(AssertUnwindSafe(|| f(&mut ctx))) {
        Ok(Ok(())) => DD_ERR_NONE,
        Ok(Err(e)) => e.0,
        Err(_) => DD_ERR_IO,
    };
    faults::trace(op, ctx.path.as_deref(), ctx.count, ctx.offset, r);
    r
}

/// Applies the fault rules for `op`; a lost-connection fault marks `conn` lost.
fn inject(op: &str, ctx: &Ctx, conn: Option<&Conn>) -> DdResult<()> {
    if let Some(err) = faults::check(op, ctx.path.as_deref()) {
        if err == DD_ERR_CONN_LOST {
            if let Some(c) = conn {
                c.lost.store(true, Ordering::Relaxed);
            }
        }
        return Err(DdError(err));
    }
    Ok(())
}

/// Reads a C string argument (NULL or non-UTF-8 → `DD_ERR_INVALID`).
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated string valid for the call.
unsafe fn cstr<'a>(p: *const c_char) -> DdResult<&'a str> {
    if p.is_null() {
        return Err(DdError::INVALID);
    }
    // SAFETY: non-NULL and, per the C contract, NUL-terminated and live for the call.
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| DdError::INVALID)
}

/// Resolves a `ddp_path_t` to (absolute path, `su/path` name). The storage unit must exist.
///
/// # Safety
/// `p` must be NULL or point to a valid `ddp_path_t` whose strings are NUL-terminated.
unsafe fn resolve(sys: &System, p: *const ddp_path_t) -> DdResult<(PathBuf, String)> {
    if p.is_null() {
        return Err(DdError::INVALID);
    }
    // SAFETY: non-NULL; the caller passes a valid ddp_path_t for the duration of the call.
    let path = unsafe { *p };
    // SAFETY: the struct's fields are NULL or NUL-terminated strings per the API contract.
    let su = unsafe { cstr(path.su_name) }?;
    let name = if path.path_name.is_null() {
        ""
    } else {
        // SAFETY: as above.
        unsafe { cstr(path.path_name) }?
    };
    resolve_str(sys, su, name)
}

fn resolve_str(sys: &System, su: &str, name: &str) -> DdResult<(PathBuf, String)> {
    if !crate::admin::valid_name(su) {
        return Err(DdError::INVALID);
    }
    let mut abs = sys.su_root().join(su);
    if !abs.is_dir() {
        return Err(DdError::NOT_FOUND);
    }
    let mut canon = su.to_string();
    for c in name.split('/') {
        match c {
            "" | "." => continue,
            ".." => return Err(DdError::INVALID),
            c if c.len() >= DDP_MAX_NAME_LEN || c.contains('\0') => return Err(DdError::INVALID),
            c => {
                abs.push(c);
                canon.push('/');
                canon.push_str(c);
            }
        }
    }
    Ok((abs, canon))
}

/// Writes `v` through an out-pointer (NULL → `DD_ERR_INVALID`).
///
/// # Safety
/// `p` must be NULL or valid for writing a `T`.
unsafe fn put<T>(p: *mut T, v: T) -> DdResult<()> {
    if p.is_null() {
        return Err(DdError::INVALID);
    }
    // SAFETY: non-NULL and, per the C contract, valid for a write of T.
    unsafe { p.write(v) };
    Ok(())
}

fn mode_bits(mode: u32) -> u32 {
    mode & 0o7777
}

/// Drops every handle of one connection (or of all when `conn` is None), aborting writes.
fn drop_handles(t: &mut Tables, conn: Option<i32>) {
    let fds: Vec<i32> = t
        .files
        .iter()
        .filter(|(_, f)| conn.is_none() || Some(f.lock().conn_id) == conn)
        .map(|(d, _)| *d)
        .collect();
    for d in fds {
        if let Some(f) = t.files.remove(&d) {
            let mut f = f.lock();
            release_file(t, &mut f, false);
        }
    }
    t.dirs
        .retain(|_, d| conn.is_some() && Some(d.lock().conn_id) != conn);
}

/// Ends a file's copy job and stream accounting; aborts an unfinished write stream.
fn release_file(t: &mut Tables, f: &mut FileObj, _publish: bool) {
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

// ---- init / instance / log -------------------------------------------------------------

/// Initialises the library. Reads the `DDBOOST_MOCK_*` configuration. Calling it again
/// while initialised succeeds and changes nothing.
#[no_mangle]
pub unsafe extern "C" fn ddp_init(program_name: *const c_char) -> dd_errno_t {
    let _ = program_name;
    call("init", |_| {
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
    })
}

/// Frees every handle and system of this process (unclosed writes are discarded).
#[no_mangle]
pub unsafe extern "C" fn ddp_shutdown() {
    let _ = call("shutdown", |_| {
        let mut t = T.lock();
        drop_handles(&mut t, None);
        let t2 = std::mem::take(&mut *t);
        drop(t2);
        Ok(())
    });
}

#[no_mangle]
pub unsafe extern "C" fn ddp_instance_create(
    pool_size: u32,
    cl_info: *mut ddp_client_info_t,
    out_inst: *mut ddp_inst_desc_t,
) -> dd_errno_t {
    let _ = (pool_size, cl_info);
    call("instance_create", |_| {
        let mut t = T.lock();
        t.inited()?;
        if out_inst.is_null() {
            return Err(DdError::INVALID);
        }
        let d = t.alloc();
        t.insts.insert(
            d,
            Arc::new(Instance {
                log: Mutex::new(None),
            }),
        );
        // SAFETY: out_inst is non-NULL and points to caller-owned storage for a descriptor.
        unsafe { put(out_inst, d) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_instance_destroy(inst: ddp_inst_desc_t) -> dd_errno_t {
    call("instance_destroy", |_| {
        let mut t = T.lock();
        t.inited()?;
        t.insts.remove(&inst).map(|_| ()).ok_or(DdError::BADF)
    })
}

/// Stores the log callback of an instance (NULL `cb` turns logging off).
#[no_mangle]
pub unsafe extern "C" fn ddp_log_init(
    inst: ddp_inst_desc_t,
    session_ptr: *mut c_void,
    cb: ddp_log_cb_t,
) {
    let _ = call("log_init", |_| {
        let t = T.lock();
        let i = t.insts.get(&inst).ok_or(DdError::BADF)?;
        *i.log.lock() = cb.map(|cb| (session_ptr as usize, cb as LogCb));
        Ok(())
    });
}

// ---- connections ----------------------------------------------------------------------

#[no_mangle]
pub unsafe extern "C" fn ddp_connect_with_user_pwd(
    inst: ddp_inst_desc_t,
    hostname: *const c_char,
    reserved: *mut c_void,
    user: *const c_char,
    password: *const c_char,
    out_conn: *mut ddp_conn_desc_t,
) -> dd_errno_t {
    let _ = reserved;
    call("connect", |ctx| {
        let instance = {
            let t = T.lock();
            t.inited()?;
            t.insts.get(&inst).cloned().ok_or(DdError::BADF)?
        };
        if out_conn.is_null() {
            return Err(DdError::INVALID);
        }
        // SAFETY: C strings from the caller, NULL or NUL-terminated.
        let host = unsafe { cstr(hostname) }?;
        ctx.path = Some(host.to_string());
        inject("connect", ctx, None)?;
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
        // SAFETY: as above.
        let user = unsafe { cstr(user) }.map_err(|_| DdError::AUTH)?;
        // SAFETY: as above.
        let pwd = unsafe { cstr(password) }.map_err(|_| DdError::AUTH)?;
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
        // SAFETY: out_conn is non-NULL caller storage for a descriptor.
        unsafe { put(out_conn, d) }
    })
}

/// Closes a connection; its open files are discarded (unclosed writes are not published).
#[no_mangle]
pub unsafe extern "C" fn ddp_disconnect(conn: ddp_conn_desc_t) -> dd_errno_t {
    call("disconnect", |ctx| {
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
    })
}

/// Creates a storage unit; succeeds when it already exists.
#[no_mangle]
pub unsafe extern "C" fn ddp_create_storage_unit(
    conn: ddp_conn_desc_t,
    su_name: *const c_char,
) -> dd_errno_t {
    call("create_su", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: C string from the caller.
        let su = unsafe { cstr(su_name) }?;
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
    })
}

// ---- files ----------------------------------------------------------------------------

/// Opens a file. `DDP_O_READ`: an existing file, read-only. `DDP_O_CREAT|DDP_O_RDWR`:
/// creates the file (its parent must exist) or, when it exists, opens it for appending:
/// writes must continue at its current size. Readers see the file's previous content
/// until the writer's `ddp_close_file` publishes the new one.
#[no_mangle]
pub unsafe extern "C" fn ddp_open_file(
    conn: ddp_conn_desc_t,
    path: *mut ddp_path_t,
    flags: i32,
    mode: u32,
    out_fd: *mut ddp_file_desc_t,
) -> dd_errno_t {
    call("open", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        if out_fd.is_null() || flags & !(DDP_O_READ | DDP_O_RDWR | DDP_O_CREAT) != 0 || flags == 0 {
            return Err(DdError::INVALID);
        }
        // SAFETY: path is NULL or a valid ddp_path_t from the caller.
        let (abs, canon) = unsafe { resolve(&c.sys, path) }?;
        ctx.path = Some(canon.clone());
        inject("open", ctx, Some(&c))?;
        let write = flags & (DDP_O_RDWR | DDP_O_CREAT) != 0;
        if abs.is_dir() {
            return Err(DdError::FILE_IS_DIR);
        }
        let kind = if !write {
            let (h, entries) = recipe::load(&abs)?;
            FileKind::Read {
                entries: Arc::new(entries),
                size: h.size,
                mode: h.mode,
            }
        } else {
            if T.lock().writing.contains_key(&abs) {
                return Err(DdError::PERM);
            }
            let (m, entries) = match recipe::load(&abs) {
                Ok((h, e)) => (h.mode, e),
                Err(DdError::NOT_FOUND) if flags & DDP_O_CREAT != 0 => {
                    let parent = abs.parent().ok_or(DdError::INVALID)?;
                    if !parent.is_dir() {
                        return Err(if parent.exists() {
                            DdError::NOTDIR
                        } else {
                            DdError::NOT_FOUND
                        });
                    }
                    match recipe::write(&abs, mode_bits(mode), &[]) {
                        Ok(()) => {}
                        Err(DdError::EXIST) => {}
                        Err(e) => return Err(e),
                    }
                    (mode_bits(mode), Vec::new())
                }
                Err(e) => return Err(e),
            };
            FileKind::Write(Some(Box::new(WriteStream::new(
                c.sys.clone(),
                abs.clone(),
                m,
                entries,
            )?)))
        };
        let is_write = matches!(kind, FileKind::Write(_));
        let mut t = T.lock();
        t.inited()?;
        if is_write && t.writing.contains_key(&abs) {
            if let FileKind::Write(Some(ws)) = kind {
                ws.abort();
            }
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
                path: canon.clone(),
                abs,
                kind,
                cache: SegCache::default(),
                bytes: 0,
                next_free: None,
                copy: None,
            })),
        );
        drop(t);
        c.sys
            .streams
            .add(if is_write { Kind::Write } else { Kind::Read }, 1);
        c.inst.log(
            DDP_SEV_DEBUG,
            &format!(
                "open {canon} ({}) fd {d}",
                if is_write { "write" } else { "read" }
            ),
        );
        // SAFETY: out_fd is non-NULL caller storage for a descriptor.
        unsafe { put(out_fd, d) }
    })
}

/// Closes a file. For a write handle this finalises the file: its content becomes visible
/// to every reader at once. The handle is released even when the close fails.
#[no_mangle]
pub unsafe extern "C" fn ddp_close_file(fd: ddp_file_desc_t) -> dd_errno_t {
    call("close", |ctx| {
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
            release_file(&mut T.lock(), &mut f, false);
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
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_read(
    fd: ddp_file_desc_t,
    buf: *mut c_char,
    count: ddp_uint64_t,
    offset: ddp_uint64_t,
    out_bytes_read: *mut ddp_uint64_t,
) -> dd_errno_t {
    call("read", |ctx| {
        ctx.count = count;
        ctx.offset = offset;
        if !out_bytes_read.is_null() {
            // SAFETY: non-NULL caller storage for a u64.
            unsafe { put(out_bytes_read, 0) }?;
        }
        let f = T.lock().file(fd)?;
        let mut f = f.lock();
        ctx.path = Some(f.path.clone());
        f.conn.alive()?;
        if out_bytes_read.is_null() || count > MAX_IO || (buf.is_null() && count > 0) {
            return Err(DdError::INVALID);
        }
        inject("read", ctx, Some(&f.conn))?;
        let out: &mut [u8] = if count == 0 {
            &mut []
        } else {
            // SAFETY: buf is non-NULL and the caller guarantees `count` writable bytes.
            unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), count as usize) }
        };
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
        // SAFETY: checked non-NULL above.
        unsafe { put(out_bytes_read, n as u64) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_write(
    fd: ddp_file_desc_t,
    buf: *const c_char,
    count: ddp_uint64_t,
    offset: ddp_uint64_t,
    out_bytes_written: *mut ddp_uint64_t,
) -> dd_errno_t {
    call("write", |ctx| {
        ctx.count = count;
        ctx.offset = offset;
        if !out_bytes_written.is_null() {
            // SAFETY: non-NULL caller storage for a u64.
            unsafe { put(out_bytes_written, 0) }?;
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
        let data: &[u8] = if count == 0 {
            &[]
        } else {
            // SAFETY: buf is non-NULL and the caller guarantees `count` readable bytes.
            unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), count as usize) }
        };
        f.ws()?.write(data)?;
        f.bytes += count;
        faults::BYTES_WRITTEN.fetch_add(count, Ordering::Relaxed);
        f.pace(count);
        // SAFETY: checked non-NULL above.
        unsafe { put(out_bytes_written, count) }
    })
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

/// Stats a path. A file being written by this process reports its current size; other
/// processes see the last published size.
#[no_mangle]
pub unsafe extern "C" fn ddp_stat(
    conn: ddp_conn_desc_t,
    path: *mut ddp_path_t,
    out: *mut ddp_stat_t,
) -> dd_errno_t {
    call("stat", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: path is NULL or a valid ddp_path_t from the caller.
        let (abs, canon) = unsafe { resolve(&c.sys, path) }?;
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
        // SAFETY: out is non-NULL caller storage for a ddp_stat_t.
        unsafe { put(out, st) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_fstat(fd: ddp_file_desc_t, out: *mut ddp_stat_t) -> dd_errno_t {
    call("fstat", |ctx| {
        let f = T.lock().file(fd)?;
        let f = f.lock();
        ctx.path = Some(f.path.clone());
        f.conn.alive()?;
        inject("fstat", ctx, Some(&f.conn))?;
        if out.is_null() {
            return Err(DdError::INVALID);
        }
        let st = file_stat(&f)?;
        // SAFETY: out is non-NULL caller storage for a ddp_stat_t.
        unsafe { put(out, st) }
    })
}

/// Fills `f_blocks`/`f_bfree` from the filesystem holding the system directory, in that
/// filesystem's block units.
#[no_mangle]
pub unsafe extern "C" fn ddp_statfs(conn: ddp_conn_desc_t, out: *mut ddp_statvfs_t) -> dd_errno_t {
    call("statfs", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        inject("statfs", ctx, Some(&c))?;
        if out.is_null() {
            return Err(DdError::INVALID);
        }
        let v =
            rustix::fs::statvfs(&c.sys.dir).map_err(|e| DdError::from(std::io::Error::from(e)))?;
        // SAFETY: out is non-NULL caller storage for a ddp_statvfs_t.
        unsafe {
            put(
                out,
                ddp_statvfs_t {
                    f_blocks: v.f_blocks,
                    f_bfree: v.f_bfree,
                },
            )
        }
    })
}

// ---- directories ----------------------------------------------------------------------

/// Creates one directory level (the parent must exist); `DD_ERR_EXIST` when present.
#[no_mangle]
pub unsafe extern "C" fn ddp_mkdir(
    conn: ddp_conn_desc_t,
    path: *mut ddp_path_t,
    mode: u32,
) -> dd_errno_t {
    let _ = mode;
    call("mkdir", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: path is NULL or a valid ddp_path_t from the caller.
        let (abs, canon) = unsafe { resolve(&c.sys, path) }?;
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
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_rmdir(conn: ddp_conn_desc_t, path: *mut ddp_path_t) -> dd_errno_t {
    call("rmdir", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: path is NULL or a valid ddp_path_t from the caller.
        let (abs, canon) = unsafe { resolve(&c.sys, path) }?;
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
    })
}

/// Removes a file (`DD_ERR_FILE_IS_DIR` for a directory). Its segments stay in the store.
#[no_mangle]
pub unsafe extern "C" fn ddp_unlink(conn: ddp_conn_desc_t, path: *mut ddp_path_t) -> dd_errno_t {
    call("unlink", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: path is NULL or a valid ddp_path_t from the caller.
        let (abs, canon) = unsafe { resolve(&c.sys, path) }?;
        ctx.path = Some(canon);
        inject("unlink", ctx, Some(&c))?;
        let md = std::fs::symlink_metadata(&abs)?;
        if md.is_dir() {
            return Err(DdError::FILE_IS_DIR);
        }
        std::fs::remove_file(&abs).map_err(Into::into)
    })
}

/// Renames atomically, replacing an existing destination file.
#[no_mangle]
pub unsafe extern "C" fn ddp_rename(
    conn: ddp_conn_desc_t,
    from: *mut ddp_path_t,
    to: *mut ddp_path_t,
) -> dd_errno_t {
    call("rename", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: from/to are NULL or valid ddp_path_t from the caller.
        let (a, ca) = unsafe { resolve(&c.sys, from) }?;
        // SAFETY: as above.
        let (b, cb) = unsafe { resolve(&c.sys, to) }?;
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
    })
}

/// Opens a directory; the listing is taken at open: ".", "..", then entries by name.
#[no_mangle]
pub unsafe extern "C" fn ddp_open_dir(
    conn: ddp_conn_desc_t,
    dir: *mut ddp_path_t,
    out_dird: *mut ddp_dir_desc_t,
) -> dd_errno_t {
    call("opendir", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        // SAFETY: dir is NULL or a valid ddp_path_t from the caller.
        let (abs, canon) = unsafe { resolve(&c.sys, dir) }?;
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
            })),
        );
        // SAFETY: out_dird is non-NULL caller storage for a descriptor.
        unsafe { put(out_dird, d) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_readdir(dird: ddp_dir_desc_t, out: *mut ddp_dirent_t) -> dd_errno_t {
    call("readdir", |ctx| {
        let d = {
            let t = T.lock();
            t.inited()?;
            t.dirs.get(&dird).cloned().ok_or(DdError::BADF)?
        };
        let mut d = d.lock();
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
        // SAFETY: out is non-NULL caller storage for a ddp_dirent_t.
        unsafe { put(out, ent) }
    })
}

#[no_mangle]
pub unsafe extern "C" fn ddp_close_dir(dird: ddp_dir_desc_t) {
    let _ = call("closedir", |_| {
        let mut t = T.lock();
        t.dirs.remove(&dird).map(|_| ()).ok_or(DdError::BADF)
    });
}

// ---- file copy ------------------------------------------------------------------------

/// Starts copying `src_fd` (open for reading) into `dst_fd` (open with CREAT|RDWR, empty
/// or with everything written so far finished), possibly on another system. The copy
/// proceeds as `ddp_filecopy_status` is polled; segments the destination system already
/// holds are not transferred.
#[no_mangle]
pub unsafe extern "C" fn ddp_filecopy_start(
    src_fd: ddp_file_desc_t,
    dst_fd: ddp_file_desc_t,
    reserved: *mut c_void,
) -> dd_errno_t {
    let _ = reserved;
    call("filecopy_start", |ctx| {
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
                FileKind::Read { entries, .. } => {
                    (entries.clone(), s.conn.sys.clone(), s.path.clone())
                }
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
    })
}

/// Copies up to `offset + extent_len` and reports, in `out_bytes_copied`, how many bytes
/// from `offset` (at most `extent_len`) are copied. 0 at the end of the source.
#[no_mangle]
pub unsafe extern "C" fn ddp_filecopy_status(
    src_fd: ddp_file_desc_t,
    dst_fd: ddp_file_desc_t,
    offset: ddp_uint64_t,
    extent_len: ddp_uint64_t,
    out_bytes_copied: *mut ddp_uint64_t,
) -> dd_errno_t {
    call("filecopy_status", |ctx| {
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
        // SAFETY: out_bytes_copied is non-NULL caller storage for a u64.
        unsafe { put(out_bytes_copied, done) }
    })
}

/// Ends the copy into `dst_fd` (harmless when none was started). The destination file is
/// finalised by its `ddp_close_file`.
#[no_mangle]
pub unsafe extern "C" fn ddp_filecopy_stop(
    src_conn: ddp_conn_desc_t,
    dst_fd: ddp_file_desc_t,
) -> dd_errno_t {
    call("filecopy_stop", |ctx| {
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
    })
}

/// Limits are fixed plausible values; in-use counts cover every process using the system.
#[no_mangle]
pub unsafe extern "C" fn ddp_get_stream_counts(
    conn: ddp_conn_desc_t,
    out: *mut ddp_stream_counts_t,
) -> dd_errno_t {
    call("stream_counts", |ctx| {
        let c = T.lock().conn(conn)?;
        c.alive()?;
        inject("stream_counts", ctx, Some(&c))?;
        if out.is_null() {
            return Err(DdError::INVALID);
        }
        let n = c.sys.streams.all();
        let v = ddp_stream_counts_t {
            limits: ddp_stream_limits_t {
                backup_write_streams: 90,
                backup_read_streams: 50,
                repl_source_streams: 60,
                repl_dest_streams: 90,
                nearline_read_streams: 50,
                nearline_write_streams: 90,
                total_write_streams_hard_limit: 140,
                total_streams_hard_limit: 140,
                mixed_write_streams: 90,
                mixed_read_streams: 50,
                mixed_repl_src_streams: 60,
                mixed_repl_dst_streams: 90,
                mixed_repl_dst_with_write_streams: 90,
                mixed_total_streams: 140,
            },
            inuse: ddp_stream_inuse_t {
                read_streams: n.read,
                read_write_streams: n.write,
                replication_streams: 0,
                filecopy_streams: n.filecopy,
            },
        };
        // SAFETY: out is non-NULL caller storage for a ddp_stream_counts_t.
        unsafe { put(out, v) }
    })
}
