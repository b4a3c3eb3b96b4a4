//! The only code that calls the raw bindings.
//!
//! Everything that may differ between the project's `ddp_api.h` and the vendor
//! header lives here, so a header difference touches this module only:
//!
//! * descriptor types (integers here; pointers would also fit [`Desc`]);
//! * `char *` versus `void *` I/O buffers (`.cast()` / `as _`);
//! * the type of the NULL-passed arguments (`ptr::null_mut()`);
//! * `ddp_client_info_t`: the name of its first member and whether `cl_info`
//!   is an array or a pointer;
//! * `ddp_dirent_t.d_name` (an embedded array here);
//! * the integer types of return codes, flags, modes and struct members
//!   (converted with `as`, which works whatever the header's widths are).
//!
//! Return codes leave this module as `i32`; callers compare them only with the
//! named constants below. Every structure crosses the boundary in an
//! oversized buffer (see `wide`).

// Integer conversions are written with `as` on purpose: the widths are the
// header's business, and a cast that is a no-op for one header is needed for
// another. Structs are zero-initialised and then given their named fields
// one by one, so a vendor struct with more members still builds.
#![allow(
    clippy::unnecessary_cast,
    clippy::useless_conversion,
    clippy::field_reassign_with_default
)]

use std::ffi::{c_void, CStr, CString};
use std::ptr;

use crate::safe::types::{
    OpenMode, Severity, Stat, StatFs, StreamCounts, StreamLimits, StreamsInUse,
};
use ddboost_sys::raw;

mod wide;
use wide::Wide;
pub use wide::{struct_buffer_len, STRUCT_BUFFER_FACTOR, STRUCT_BUFFER_MIN_BYTES};

/// The loaded library: its handle and one function pointer per symbol.
pub(crate) type Api = raw::DdBoost;

/// Declares a descriptor newtype: an opaque token handed out by the SDK and
/// only ever passed back to it.
macro_rules! descriptor {
    ($(#[$doc:meta])* $name:ident($raw:ty)) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub(crate) struct $name($raw);
    };
}

descriptor!(
    /// An instance (`ddp_inst_desc_t`).
    InstDesc(raw::ddp_inst_desc_t)
);
descriptor!(
    /// A connection (`ddp_conn_desc_t`).
    ConnDesc(raw::ddp_conn_desc_t)
);
descriptor!(
    /// An open file (`ddp_file_desc_t`).
    FileDesc(raw::ddp_file_desc_t)
);
descriptor!(
    /// An open directory (`ddp_dir_desc_t`).
    DirDesc(raw::ddp_dir_desc_t)
);

// The project header's descriptors are integers, `Send` and `Sync` anyway; a
// vendor header may make them pointers, which are neither. These impls keep the
// safe layer's handles `Send` whatever the header says, and are sound because
// a descriptor is an opaque token: Rust code copies it and never dereferences
// it, and the crate passes it to the SDK only while holding its instance's call
// lock (`safe::handles::InstanceInner::call`), so moving or sharing the token
// never lets two threads call the SDK on one instance's handles at once.
//
// Which impls are needed: `Connection`, `File` and `Dir` share their instance
// (and files and directories their connection) through an `Arc`, which is
// `Send` only if the shared value is `Send + Sync`; so instance and connection
// descriptors are `Send + Sync`. File and directory descriptors are held by one
// handle each, which is `Send` but not `Sync`; so they are `Send` only.

// SAFETY: see above: an opaque token, used only under the instance's call lock.
unsafe impl Send for InstDesc {}
// SAFETY: see above; shared through `Arc<InstanceInner>`.
unsafe impl Sync for InstDesc {}
// SAFETY: see above: an opaque token, used only under the instance's call lock.
unsafe impl Send for ConnDesc {}
// SAFETY: see above; shared through `Arc<ConnInner>`.
unsafe impl Sync for ConnDesc {}
// SAFETY: see above: an opaque token, used only under the instance's call lock.
unsafe impl Send for FileDesc {}
// SAFETY: see above: an opaque token, used only under the instance's call lock.
unsafe impl Send for DirDesc {}

/// `DD_OK`, which the adapter branches on (error codes are `safe::DdErr`).
pub(crate) mod code {
    use ddboost_sys::raw;
    pub(crate) const DD_OK: i32 = raw::DD_OK as i32;
}

/// GPDB's client type for `ddp_client_info_t` (GPDB defines `DDP_CL_DDP` as 1
/// itself; the header need not declare it).
const CLIENT_TYPE_DDP: i32 = 1;

/// POSIX file-type bits of `st_mode` (the header documents `st_mode` as POSIX
/// mode bits; these are POSIX's values, not the SDK's).
const S_IFMT: u32 = 0o170_000;
const S_IFDIR: u32 = 0o040_000;

fn rc(code: raw::dd_errno_t) -> i32 {
    code as i32
}

fn ok_or<T>(code: raw::dd_errno_t, value: T) -> Result<T, i32> {
    match rc(code) {
        code::DD_OK => Ok(value),
        c => Err(c),
    }
}

/// A storage-unit name and a path inside it, as C strings.
pub(crate) struct SuPath {
    su: CString,
    path: CString,
}

impl SuPath {
    /// `None` if either part contains a NUL byte.
    pub(crate) fn new(su: &str, path: &str) -> Option<SuPath> {
        Some(SuPath {
            su: CString::new(su).ok()?,
            path: CString::new(path).ok()?,
        })
    }

    /// A zero-initialised `ddp_path_t` in a [`Wide`] buffer, with the two
    /// named fields pointing into `self`; valid while `self` lives.
    fn to_raw(&self) -> Wide<raw::ddp_path_t> {
        let mut p = raw::ddp_path_t::default();
        // The SDK reads these strings and never writes them (GPDB passes string
        // literals); the cast only matches the header's non-const fields.
        p.su_name = self.su.as_ptr() as _;
        p.path_name = self.path.as_ptr() as _;
        Wide::holding(p)
    }
}

/// The first function the header in use declares that the library lacks
/// (the list is generated from the bindings). Checked at load time, so the
/// generated wrappers (which panic on a missing symbol) never do.
pub(crate) fn first_missing_symbol(api: &Api) -> Option<&'static str> {
    api.first_missing_function()
}

/// Opens `path` with libloading and resolves the symbols.
pub(crate) fn open_library(path: &std::ffi::OsStr) -> Result<Api, libloading::Error> {
    // SAFETY: loading a shared library runs its initialisers. The caller asked
    // for this library by name or path (configuration or the documented lookup
    // order), which is the trust decision any dlopen-based plugin makes; the
    // public API states it (`Library`'s "Trust" section).
    unsafe { raw::DdBoost::new(path) }
}

/// An address identifying the loaded library's `ddp_init` (the same for every
/// `dlopen` of one file), or 0 if the symbol is missing.
pub(crate) fn init_identity(api: &Api) -> usize {
    api.ddp_init.as_ref().map_or(0, |f| *f as usize)
}

pub(crate) fn init(api: &Api, program: &CStr) -> i32 {
    // SAFETY: `program` is a valid NUL-terminated string for the call; the
    // symbol was checked at load time.
    rc(unsafe { api.ddp_init(program.as_ptr()) })
}

pub(crate) fn shutdown(api: &Api) {
    // SAFETY: no arguments; called once, after every handle is gone.
    unsafe { api.ddp_shutdown() }
}

pub(crate) fn instance_create(
    api: &Api,
    pool_size: u32,
    client_info: &CStr,
) -> Result<InstDesc, i32> {
    let mut info = raw::ddp_client_info_t::default();
    info.cl_type = CLIENT_TYPE_DDP as _;
    // `cl_info` is an embedded array in the project header: copy, truncate,
    // keep the final NUL that zero-initialisation put there.
    let room = info.cl_info.len().saturating_sub(1);
    for (dst, src) in info
        .cl_info
        .iter_mut()
        .zip(client_info.to_bytes().iter().take(room))
    {
        *dst = *src as _;
    }
    let mut info = Wide::holding(info);
    let mut out = raw::ddp_inst_desc_t::default();
    // SAFETY: `info` is a zeroed buffer of `struct_buffer_len` bytes holding the
    // client info, `out` is valid for writes; the SDK copies what it needs from
    // `info` during the call (GPDB passes a stack struct).
    let code = unsafe { api.ddp_instance_create(pool_size as _, info.as_mut_ptr(), &mut out) };
    ok_or(code, InstDesc(out))
}

pub(crate) fn instance_destroy(api: &Api, inst: InstDesc) -> i32 {
    // SAFETY: `inst` came from `ddp_instance_create` and is destroyed once.
    rc(unsafe { api.ddp_instance_destroy(inst.0) })
}

/// Routes the instance's log messages to [`crate::safe::log::dispatch`].
pub(crate) fn log_init(api: &Api, inst: InstDesc) {
    // SAFETY: `log_trampoline` matches the callback type, never unwinds, and
    // lives for the whole program; the session pointer is unused (NULL, as GPDB).
    unsafe { api.ddp_log_init(inst.0, ptr::null_mut(), Some(log_trampoline)) }
}

/// The `extern "C"` log callback: never lets a panic cross into C.
extern "C" fn log_trampoline(
    _session: *const c_void,
    msg: *const raw::ddp_char_t,
    severity: raw::ddp_severity_t,
) {
    let _ = std::panic::catch_unwind(|| {
        if msg.is_null() {
            return;
        }
        // SAFETY: the SDK passes a NUL-terminated message valid for the call.
        let text = unsafe { CStr::from_ptr(msg.cast()) }.to_string_lossy();
        crate::safe::log::dispatch(severity_from_raw(severity), &text);
    });
}

pub(crate) fn severity_from_raw(s: raw::ddp_severity_t) -> Severity {
    let s = s as i64;
    if s == raw::DDP_SEV_ERROR as i64 {
        Severity::Error
    } else if s == raw::DDP_SEV_WARN as i64 {
        Severity::Warn
    } else if s == raw::DDP_SEV_INFO as i64 {
        Severity::Info
    } else if s == raw::DDP_SEV_DEBUG as i64 {
        Severity::Debug
    } else if s == raw::DDP_SEV_NONE as i64 {
        Severity::None
    } else {
        Severity::Other(s)
    }
}

pub(crate) fn connect(
    api: &Api,
    inst: InstDesc,
    host: &CStr,
    user: &CStr,
    password: &CStr,
) -> Result<ConnDesc, i32> {
    let mut out = raw::ddp_conn_desc_t::default();
    // SAFETY: the strings are valid NUL-terminated C strings for the call, the
    // reserved argument is NULL (as GPDB passes), `out` is valid for writes.
    let code = unsafe {
        api.ddp_connect_with_user_pwd(
            inst.0,
            host.as_ptr(),
            ptr::null_mut(),
            user.as_ptr(),
            password.as_ptr(),
            &mut out,
        )
    };
    ok_or(code, ConnDesc(out))
}

pub(crate) fn disconnect(api: &Api, conn: ConnDesc) -> i32 {
    // SAFETY: `conn` came from a successful connect and is disconnected once.
    rc(unsafe { api.ddp_disconnect(conn.0) })
}

pub(crate) fn create_storage_unit(api: &Api, conn: ConnDesc, su: &CStr) -> i32 {
    // SAFETY: `conn` is open; `su` is a valid C string for the call.
    rc(unsafe { api.ddp_create_storage_unit(conn.0, su.as_ptr()) })
}

pub(crate) fn open_file(
    api: &Api,
    conn: ConnDesc,
    path: &SuPath,
    mode: OpenMode,
    perm: u32,
) -> Result<FileDesc, i32> {
    let flags = match mode {
        OpenMode::Read => raw::DDP_O_READ as i64,
        OpenMode::CreateReadWrite => (raw::DDP_O_RDWR | raw::DDP_O_CREAT) as i64,
    };
    let mut p = path.to_raw();
    let mut out = raw::ddp_file_desc_t::default();
    // SAFETY: `p` is a wide buffer whose strings point into `path`, alive for
    // the call; `out` is valid.
    let code =
        unsafe { api.ddp_open_file(conn.0, p.as_mut_ptr(), flags as _, perm as _, &mut out) };
    ok_or(code, FileDesc(out))
}

pub(crate) fn close_file(api: &Api, fd: FileDesc) -> i32 {
    // SAFETY: `fd` came from a successful open and is closed once.
    rc(unsafe { api.ddp_close_file(fd.0) })
}

/// One `ddp_read` of `len` bytes at most into `to`, which must be valid for
/// writes of `len` bytes (uninitialised ones may be written through a raw
/// pointer); the caller keeps it ≤ 1 MiB.
unsafe fn read_to(
    api: &Api,
    fd: FileDesc,
    to: *mut u8,
    len: usize,
    offset: u64,
) -> Result<u64, i32> {
    let mut done: raw::ddp_uint64_t = 0;
    // SAFETY: `to` is valid for writes of `len` bytes (the caller's
    // contract); `done` is valid for writes.
    let code = unsafe { api.ddp_read(fd.0, to.cast(), len as _, offset as _, &mut done) };
    ok_or(code, done as u64)
}

/// One `ddp_read` of at most `buf.len()` bytes; the caller keeps it ≤ 1 MiB.
pub(crate) fn read(api: &Api, fd: FileDesc, buf: &mut [u8], offset: u64) -> Result<u64, i32> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes.
    unsafe { read_to(api, fd, buf.as_mut_ptr(), buf.len(), offset) }
}

/// One `ddp_read` of up to `want` bytes (the caller keeps it ≤ 1 MiB) into
/// the spare capacity of `buf`, so that room the SDK does not fill is never
/// written (nor zeroed first); the bytes read are appended.
pub(crate) fn read_append(
    api: &Api,
    fd: FileDesc,
    buf: &mut Vec<u8>,
    want: usize,
    offset: u64,
) -> Result<u64, i32> {
    buf.reserve(want);
    let spare = buf.spare_capacity_mut();
    let len = want.min(spare.len());
    // SAFETY: `spare` is valid for writes of `len` bytes.
    let read = unsafe { read_to(api, fd, spare.as_mut_ptr().cast(), len, offset) };
    let n = usize::try_from(read?).unwrap_or(usize::MAX).min(len);
    // SAFETY: `ddp_read` wrote the `n` bytes it reports read (at most `len`,
    // the room it was given) at the start of the spare capacity.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n as u64)
}

/// One `ddp_write` of `buf`; the caller keeps it ≤ 1 MiB.
pub(crate) fn write(api: &Api, fd: FileDesc, buf: &[u8], offset: u64) -> Result<u64, i32> {
    let mut done: raw::ddp_uint64_t = 0;
    // SAFETY: `buf` is valid for reads of `buf.len()` bytes and the SDK only
    // reads it; `done` is valid for writes.
    let code = unsafe {
        api.ddp_write(
            fd.0,
            buf.as_ptr().cast(),
            buf.len() as _,
            offset as _,
            &mut done,
        )
    };
    ok_or(code, done as u64)
}

fn stat_from_raw(st: &Wide<raw::ddp_stat_t>) -> Stat {
    // SAFETY: `ddp_stat_t` is a C structure of integers.
    let st = unsafe { st.get() };
    let mode = st.st_mode as u32;
    Stat {
        size: st.st_size as u64,
        is_dir: mode & S_IFMT == S_IFDIR,
        mode,
    }
}

pub(crate) fn stat(api: &Api, conn: ConnDesc, path: &SuPath) -> Result<Stat, i32> {
    let mut p = path.to_raw();
    let mut st = Wide::<raw::ddp_stat_t>::zeroed();
    // SAFETY: `p` is a wide buffer whose strings point into `path`, alive for
    // the call; `st` is a zeroed buffer of `struct_buffer_len` bytes, so the
    // SDK may write a structure larger than the header's.
    let code = unsafe { api.ddp_stat(conn.0, p.as_mut_ptr(), st.as_mut_ptr()) };
    ok_or(code, ()).map(|()| stat_from_raw(&st))
}

pub(crate) fn fstat(api: &Api, fd: FileDesc) -> Result<Stat, i32> {
    let mut st = Wide::<raw::ddp_stat_t>::zeroed();
    // SAFETY: `fd` is open; `st` is a zeroed buffer of `struct_buffer_len` bytes.
    let code = unsafe { api.ddp_fstat(fd.0, st.as_mut_ptr()) };
    ok_or(code, ()).map(|()| stat_from_raw(&st))
}

pub(crate) fn statfs(api: &Api, conn: ConnDesc) -> Result<StatFs, i32> {
    let mut st = Wide::<raw::ddp_statvfs_t>::zeroed();
    // SAFETY: `conn` is open; `st` is a zeroed buffer of `struct_buffer_len` bytes.
    let code = unsafe { api.ddp_statfs(conn.0, st.as_mut_ptr()) };
    ok_or(code, ())?;
    // SAFETY: `ddp_statvfs_t` is a C structure of integers.
    let st = unsafe { st.get() };
    Ok(StatFs {
        blocks: st.f_blocks as u64,
        free_blocks: st.f_bfree as u64,
    })
}

pub(crate) fn mkdir(api: &Api, conn: ConnDesc, path: &SuPath, perm: u32) -> i32 {
    let mut p = path.to_raw();
    // SAFETY: `p` is a wide buffer whose strings point into `path`, alive for the call.
    rc(unsafe { api.ddp_mkdir(conn.0, p.as_mut_ptr(), perm as _) })
}

pub(crate) fn rmdir(api: &Api, conn: ConnDesc, path: &SuPath) -> i32 {
    let mut p = path.to_raw();
    // SAFETY: `p` is a wide buffer whose strings point into `path`, alive for the call.
    rc(unsafe { api.ddp_rmdir(conn.0, p.as_mut_ptr()) })
}

pub(crate) fn unlink(api: &Api, conn: ConnDesc, path: &SuPath) -> i32 {
    let mut p = path.to_raw();
    // SAFETY: `p` is a wide buffer whose strings point into `path`, alive for the call.
    rc(unsafe { api.ddp_unlink(conn.0, p.as_mut_ptr()) })
}

pub(crate) fn rename(api: &Api, conn: ConnDesc, from: &SuPath, to: &SuPath) -> i32 {
    let mut f = from.to_raw();
    let mut t = to.to_raw();
    // SAFETY: `f` and `t` are wide buffers whose strings point into `from`/`to`,
    // alive for the call.
    rc(unsafe { api.ddp_rename(conn.0, f.as_mut_ptr(), t.as_mut_ptr()) })
}

pub(crate) fn open_dir(api: &Api, conn: ConnDesc, path: &SuPath) -> Result<DirDesc, i32> {
    let mut p = path.to_raw();
    let mut out = raw::ddp_dir_desc_t::default();
    // SAFETY: `p` is a wide buffer whose strings point into `path`, alive for
    // the call; `out` is valid.
    let code = unsafe { api.ddp_open_dir(conn.0, p.as_mut_ptr(), &mut out) };
    ok_or(code, DirDesc(out))
}

/// The next entry's name (lossy UTF-8), or the return code (`DD_ERR_EMPTY` at
/// the end).
pub(crate) fn readdir(api: &Api, dir: DirDesc) -> Result<String, i32> {
    let mut ent = Wide::<raw::ddp_dirent_t>::zeroed();
    // SAFETY: `dir` is open; `ent` is a zeroed buffer of `struct_buffer_len` bytes.
    let code = unsafe { api.ddp_readdir(dir.0, ent.as_mut_ptr()) };
    ok_or(code, ())?;
    // SAFETY: `ddp_dirent_t` is a C structure of integers and character arrays.
    let ent = unsafe { ent.get() };
    // `d_name` is an embedded array: take the bytes up to the first NUL, or all
    // of them if the SDK filled it completely.
    let bytes: Vec<u8> = ent
        .d_name
        .iter()
        .map(|&c| c as u8)
        .take_while(|&b| b != 0)
        .collect();
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

pub(crate) fn close_dir(api: &Api, dir: DirDesc) {
    // SAFETY: `dir` came from a successful open and is closed once.
    unsafe { api.ddp_close_dir(dir.0) }
}

pub(crate) fn filecopy_start(api: &Api, src: FileDesc, dst: FileDesc) -> i32 {
    // SAFETY: both files are open; the reserved argument is NULL (as GPDB).
    rc(unsafe { api.ddp_filecopy_start(src.0, dst.0, ptr::null_mut()) })
}

pub(crate) fn filecopy_status(
    api: &Api,
    src: FileDesc,
    dst: FileDesc,
    offset: u64,
    extent: u64,
) -> Result<u64, i32> {
    let mut done: raw::ddp_uint64_t = 0;
    // SAFETY: both files are open; `done` is valid for writes.
    let code =
        unsafe { api.ddp_filecopy_status(src.0, dst.0, offset as _, extent as _, &mut done) };
    ok_or(code, done as u64)
}

pub(crate) fn filecopy_stop(api: &Api, src_conn: ConnDesc, dst: FileDesc) -> i32 {
    // SAFETY: the connection and file are open; stop is harmless before start.
    rc(unsafe { api.ddp_filecopy_stop(src_conn.0, dst.0) })
}

pub(crate) fn stream_counts(api: &Api, conn: ConnDesc) -> Result<StreamCounts, i32> {
    let mut c = Wide::<raw::ddp_stream_counts_t>::zeroed();
    // SAFETY: `conn` is open; `c` is a zeroed buffer of `struct_buffer_len` bytes.
    let code = unsafe { api.ddp_get_stream_counts(conn.0, c.as_mut_ptr()) };
    ok_or(code, ())?;
    // SAFETY: `ddp_stream_counts_t` is a C structure of integers.
    let c = unsafe { c.get() };
    let l = &c.limits;
    let u = &c.inuse;
    Ok(StreamCounts {
        limits: StreamLimits {
            backup_write_streams: l.backup_write_streams as i64,
            backup_read_streams: l.backup_read_streams as i64,
            repl_source_streams: l.repl_source_streams as i64,
            repl_dest_streams: l.repl_dest_streams as i64,
            nearline_read_streams: l.nearline_read_streams as i64,
            nearline_write_streams: l.nearline_write_streams as i64,
            total_write_streams_hard_limit: l.total_write_streams_hard_limit as i64,
            total_streams_hard_limit: l.total_streams_hard_limit as i64,
            mixed_write_streams: l.mixed_write_streams as i64,
            mixed_read_streams: l.mixed_read_streams as i64,
            mixed_repl_src_streams: l.mixed_repl_src_streams as i64,
            mixed_repl_dst_streams: l.mixed_repl_dst_streams as i64,
            mixed_repl_dst_with_write_streams: l.mixed_repl_dst_with_write_streams as i64,
            mixed_total_streams: l.mixed_total_streams as i64,
        },
        inuse: StreamsInUse {
            read_streams: u.read_streams as i64,
            read_write_streams: u.read_write_streams as i64,
            replication_streams: u.replication_streams as i64,
            filecopy_streams: u.filecopy_streams as i64,
        },
    })
}

/// Makes a C string for a name passed to the SDK (`None` on a NUL byte).
pub(crate) fn c_string(s: &str) -> Option<CString> {
    CString::new(s).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severities_map_by_name() {
        assert_eq!(severity_from_raw(raw::DDP_SEV_ERROR), Severity::Error);
        assert_eq!(severity_from_raw(raw::DDP_SEV_WARN), Severity::Warn);
        assert_eq!(severity_from_raw(raw::DDP_SEV_INFO), Severity::Info);
        assert_eq!(severity_from_raw(raw::DDP_SEV_DEBUG), Severity::Debug);
        assert_eq!(severity_from_raw(raw::DDP_SEV_NONE), Severity::None);
    }

    static SEEN: std::sync::Mutex<Vec<(Severity, String)>> = std::sync::Mutex::new(Vec::new());

    fn sink(severity: Severity, message: &str) {
        if message.starts_with("panic") {
            panic!("sink panics");
        }
        SEEN.lock().unwrap().push((severity, message.to_owned()));
    }

    #[test]
    fn log_callback_converts_and_never_unwinds() {
        crate::safe::set_log_sink(sink).expect("first sink");
        log_trampoline(ptr::null(), c"hello \xff world".as_ptr(), raw::DDP_SEV_WARN);
        // A NULL message is ignored and a panicking sink does not unwind into C.
        log_trampoline(ptr::null(), ptr::null(), raw::DDP_SEV_INFO);
        log_trampoline(ptr::null(), c"panic now".as_ptr(), raw::DDP_SEV_INFO);
        let seen = SEEN.lock().unwrap();
        assert_eq!(*seen, [(Severity::Warn, "hello \u{fffd} world".to_owned())]);
    }

    #[test]
    fn su_path_rejects_nul_bytes() {
        assert!(SuPath::new("su", "a/b").is_some());
        assert!(SuPath::new("s\0u", "a").is_none());
        assert!(SuPath::new("su", "a\0b").is_none());
    }
}
