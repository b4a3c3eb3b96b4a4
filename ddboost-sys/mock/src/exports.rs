//! The exported C ABI: every function of `ddp_api.h`, and nothing but marshalling.
//!
//! Each function wraps its pointer arguments (see [`crate::abi`]) and runs the behaviour
//! of the call (in [`crate::session`], [`crate::files`], [`crate::folders`] and
//! [`crate::filecopy`]) through [`crate::entry::call`], which keeps panics from crossing
//! into C (a panic becomes `DD_ERR_IO`), sleeps the configured latency and traces the call.
//!
//! # Safety
//!
//! Every exported function has the contract of its C declaration: pointer arguments are
//! NULL (rejected with `DD_ERR_INVALID` where a value is needed) or valid for the access the
//! header implies (NUL-terminated strings, `ddp_path_t` with such strings, out-pointers to
//! caller storage, read/write buffers of at least `count` bytes), for the duration of the call.
//! With `DDBOOST_MOCK_WIDE_STRUCTS=1`, out-pointers to the structures `ddp_stat`,
//! `ddp_fstat`, `ddp_statfs`, `ddp_readdir` and `ddp_get_stream_counts` fill must be valid for
//! `ddboost::struct_buffer_len` of the structure's size (see [`crate::faults`]).
#![allow(clippy::missing_safety_doc)]

use crate::abi::{Buf, BufMut, CStrArg, Out, PathArg};
use crate::entry::call;
use crate::ffi::*;
use crate::{filecopy, files, folders, session};
use std::os::raw::{c_char, c_void};

// ---- init / instance / log -------------------------------------------------------------

/// Initialises the library. Reads the `DDBOOST_MOCK_*` configuration. Calling it again
/// while initialised succeeds and changes nothing.
#[no_mangle]
pub unsafe extern "C" fn ddp_init(program_name: *const c_char) -> dd_errno_t {
    let _ = program_name;
    call("init", |_| session::init())
}

/// Frees every handle and system of this process (unclosed writes are discarded).
#[no_mangle]
pub unsafe extern "C" fn ddp_shutdown() {
    let _ = call("shutdown", |_| session::shutdown());
}

#[no_mangle]
pub unsafe extern "C" fn ddp_instance_create(
    pool_size: u32,
    cl_info: *mut ddp_client_info_t,
    out_inst: *mut ddp_inst_desc_t,
) -> dd_errno_t {
    let _ = (pool_size, cl_info);
    // SAFETY: the C contract (module docs) covers the out-pointer.
    let out_inst = unsafe { Out::new(out_inst) };
    call("instance_create", |_| session::instance_create(out_inst))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_instance_destroy(inst: ddp_inst_desc_t) -> dd_errno_t {
    call("instance_destroy", |_| session::instance_destroy(inst))
}

/// Stores the log callback of an instance (NULL `cb` turns logging off).
#[no_mangle]
pub unsafe extern "C" fn ddp_log_init(
    inst: ddp_inst_desc_t,
    session_ptr: *mut c_void,
    cb: ddp_log_cb_t,
) {
    let _ = call("log_init", |_| {
        session::log_init(inst, session_ptr as usize, cb)
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
    // SAFETY: the C contract (module docs) covers the strings and the out-pointer.
    let (hostname, user, password, out_conn) = unsafe {
        (
            CStrArg::new(hostname),
            CStrArg::new(user),
            CStrArg::new(password),
            Out::new(out_conn),
        )
    };
    call("connect", |ctx| {
        session::connect(ctx, inst, hostname, user, password, out_conn)
    })
}

/// Closes a connection; its open files are discarded (unclosed writes are not published).
#[no_mangle]
pub unsafe extern "C" fn ddp_disconnect(conn: ddp_conn_desc_t) -> dd_errno_t {
    call("disconnect", |ctx| session::disconnect(ctx, conn))
}

/// Creates a storage unit; succeeds when it already exists.
#[no_mangle]
pub unsafe extern "C" fn ddp_create_storage_unit(
    conn: ddp_conn_desc_t,
    su_name: *const c_char,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the string.
    let su_name = unsafe { CStrArg::new(su_name) };
    call("create_su", |ctx| {
        session::create_storage_unit(ctx, conn, su_name)
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
    // SAFETY: the C contract (module docs) covers the path and the out-pointer.
    let (path, out_fd) = unsafe { (PathArg::new(path), Out::new(out_fd)) };
    call("open", |ctx| {
        files::open(ctx, conn, path, flags, mode, out_fd)
    })
}

/// Closes a file. For a write handle this finalises the file: its content becomes visible
/// to every reader at once. The handle is released even when the close fails.
#[no_mangle]
pub unsafe extern "C" fn ddp_close_file(fd: ddp_file_desc_t) -> dd_errno_t {
    call("close", |ctx| files::close(ctx, fd))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_read(
    fd: ddp_file_desc_t,
    buf: *mut c_char,
    count: ddp_uint64_t,
    offset: ddp_uint64_t,
    out_bytes_read: *mut ddp_uint64_t,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the buffer and the out-pointer.
    let (buf, out) = unsafe { (BufMut::new(buf, count), Out::new(out_bytes_read)) };
    call("read", |ctx| files::read(ctx, fd, buf, count, offset, out))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_write(
    fd: ddp_file_desc_t,
    buf: *const c_char,
    count: ddp_uint64_t,
    offset: ddp_uint64_t,
    out_bytes_written: *mut ddp_uint64_t,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the buffer and the out-pointer.
    let (buf, out) = unsafe { (Buf::new(buf, count), Out::new(out_bytes_written)) };
    call("write", |ctx| {
        files::write(ctx, fd, buf, count, offset, out)
    })
}

/// Stats a path. A file being written by this process reports its current size; other
/// processes see the last published size.
#[no_mangle]
pub unsafe extern "C" fn ddp_stat(
    conn: ddp_conn_desc_t,
    path: *mut ddp_path_t,
    out: *mut ddp_stat_t,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the path and the out-pointer.
    let (path, out) = unsafe { (PathArg::new(path), Out::new(out)) };
    call("stat", |ctx| files::stat(ctx, conn, path, out))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_fstat(fd: ddp_file_desc_t, out: *mut ddp_stat_t) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the out-pointer.
    let out = unsafe { Out::new(out) };
    call("fstat", |ctx| files::fstat(ctx, fd, out))
}

/// Fills `f_blocks`/`f_bfree` from the filesystem holding the system directory, in that
/// filesystem's block units.
#[no_mangle]
pub unsafe extern "C" fn ddp_statfs(conn: ddp_conn_desc_t, out: *mut ddp_statvfs_t) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the out-pointer.
    let out = unsafe { Out::new(out) };
    call("statfs", |ctx| session::statfs(ctx, conn, out))
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
    // SAFETY: the C contract (module docs) covers the path.
    let path = unsafe { PathArg::new(path) };
    call("mkdir", |ctx| folders::mkdir(ctx, conn, path))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_rmdir(conn: ddp_conn_desc_t, path: *mut ddp_path_t) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the path.
    let path = unsafe { PathArg::new(path) };
    call("rmdir", |ctx| folders::rmdir(ctx, conn, path))
}

/// Removes a file (`DD_ERR_FILE_IS_DIR` for a directory). Its segments stay in the store.
#[no_mangle]
pub unsafe extern "C" fn ddp_unlink(conn: ddp_conn_desc_t, path: *mut ddp_path_t) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the path.
    let path = unsafe { PathArg::new(path) };
    call("unlink", |ctx| folders::unlink(ctx, conn, path))
}

/// Renames atomically, replacing an existing destination file.
#[no_mangle]
pub unsafe extern "C" fn ddp_rename(
    conn: ddp_conn_desc_t,
    from: *mut ddp_path_t,
    to: *mut ddp_path_t,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers both paths.
    let (from, to) = unsafe { (PathArg::new(from), PathArg::new(to)) };
    call("rename", |ctx| folders::rename(ctx, conn, from, to))
}

/// Opens a directory; the listing is taken at open: ".", "..", then entries by name.
#[no_mangle]
pub unsafe extern "C" fn ddp_open_dir(
    conn: ddp_conn_desc_t,
    dir: *mut ddp_path_t,
    out_dird: *mut ddp_dir_desc_t,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the path and the out-pointer.
    let (dir, out) = unsafe { (PathArg::new(dir), Out::new(out_dird)) };
    call("opendir", |ctx| folders::open_dir(ctx, conn, dir, out))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_readdir(dird: ddp_dir_desc_t, out: *mut ddp_dirent_t) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the out-pointer.
    let out = unsafe { Out::new(out) };
    call("readdir", |ctx| folders::readdir(ctx, dird, out))
}

#[no_mangle]
pub unsafe extern "C" fn ddp_close_dir(dird: ddp_dir_desc_t) {
    let _ = call("closedir", |_| folders::close_dir(dird));
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
    call("filecopy_start", |ctx| filecopy::start(ctx, src_fd, dst_fd))
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
    // SAFETY: the C contract (module docs) covers the out-pointer.
    let out = unsafe { Out::new(out_bytes_copied) };
    call("filecopy_status", |ctx| {
        filecopy::status(ctx, src_fd, dst_fd, offset, extent_len, out)
    })
}

/// Ends the copy into `dst_fd` (harmless when none was started). The destination file is
/// finalised by its `ddp_close_file`.
#[no_mangle]
pub unsafe extern "C" fn ddp_filecopy_stop(
    src_conn: ddp_conn_desc_t,
    dst_fd: ddp_file_desc_t,
) -> dd_errno_t {
    call("filecopy_stop", |ctx| filecopy::stop(ctx, src_conn, dst_fd))
}

/// Limits are fixed plausible values; in-use counts cover every process using the system.
#[no_mangle]
pub unsafe extern "C" fn ddp_get_stream_counts(
    conn: ddp_conn_desc_t,
    out: *mut ddp_stream_counts_t,
) -> dd_errno_t {
    // SAFETY: the C contract (module docs) covers the out-pointer.
    let out = unsafe { Out::new(out) };
    call("stream_counts", |ctx| {
        session::stream_counts(ctx, conn, out)
    })
}

/// Fails to compile unless every function the header declares (the list and the
/// signatures come from ddboost-sys's generated bindings) is exported above with exactly
/// the header's signature. Never called.
#[allow(dead_code)]
fn exports_match_the_header(api: &DdBoost) {
    fn same_type<T, E>(_declared: &Result<T, E>, _exported: T) {}
    macro_rules! check {
        ($($name:ident),* $(,)?) => {
            $( same_type(&api.$name, $name); )*
        };
    }
    ddboost_sys::for_each_ddp_function!(check);
}
