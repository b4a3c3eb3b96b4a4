//! RAII handles: one method per SDK call, closed on drop.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::adapter::{self, Api, ConnDesc, DirDesc, FileDesc, InstDesc, SuPath};

use super::error::{display_path, DdErr, Error, Result};
use super::library::Library;
use super::types::{OpenMode, Stat, StatFs, StreamCounts};

/// The largest read or write passed to the SDK in one call (1 MiB, the
/// documented maximum I/O size). Larger buffers are split.
pub const MAX_IO_SIZE: usize = 1 << 20;

thread_local! {
    /// Each thread's room for [`File::read_exact_size`]: up to
    /// [`MAX_IO_SIZE`], allocated once per thread and kept.
    static READ_ROOM: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Memory pool size passed to `ddp_instance_create` (GPDB's 64 MiB).
pub const DEFAULT_POOL_SIZE: u32 = 64 << 20;

/// Extent length for each `ddp_filecopy_status` poll (GPDB's 256 KiB).
pub const FILECOPY_EXTENT: u64 = 256 << 10;

/// How long [`filecopy`] waits between polls that report no progress, and how
/// many such polls in a row it accepts before giving up.
const FILECOPY_IDLE_WAIT: Duration = Duration::from_millis(10);
const FILECOPY_MAX_IDLE_POLLS: u32 = 6_000;

/// Makes a handle `!Sync` while keeping it `Send`.
type NotSync = PhantomData<Cell<()>>;

// ---------------------------------------------------------------------------
// Instance

pub(crate) struct InstanceInner {
    lib: Library,
    desc: InstDesc,
    /// Held for every SDK call on this instance or its connections, files and
    /// directories (SDK thread safety is unknown).
    lock: Mutex<()>,
}

impl InstanceInner {
    /// Runs one SDK call under the instance's call lock, observed as a
    /// storage call.
    fn call<R>(&self, f: impl FnOnce(&Api) -> R) -> R {
        super::observe::timed(|| self.call_local(f))
    }

    /// [`InstanceInner::call`] for a call that stays on this host: not
    /// observed.
    fn call_local<R>(&self, f: impl FnOnce(&Api) -> R) -> R {
        let _guard = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        f(&self.lib.inner.api)
    }
}

impl Drop for InstanceInner {
    fn drop(&mut self) {
        // Nothing can be done about a failure while dropping.
        let _ = self.call_local(|api| adapter::instance_destroy(api, self.desc));
    }
}

/// A DD Boost instance (`ddp_instance_create`), destroyed on drop after every
/// connection made from it is gone. Its SDK log messages go to the sink set
/// with [`crate::set_log_sink`].
pub struct Instance {
    inner: Arc<InstanceInner>,
    _not_sync: NotSync,
}

impl fmt::Debug for Instance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Instance")
            .field("library", &self.inner.lib)
            .finish()
    }
}

impl Instance {
    /// Initialises the SDK for this process if needed (`ddp_init(program_name)`,
    /// once per library), creates an instance with the default pool size and
    /// `client_info` as its application description, and routes its log.
    pub fn new(lib: &Library, program_name: &str, client_info: &str) -> Result<Instance> {
        Self::with_pool_size(lib, program_name, client_info, DEFAULT_POOL_SIZE)
    }

    /// [`Instance::new`] with an explicit memory pool size in bytes.
    pub fn with_pool_size(
        lib: &Library,
        program_name: &str,
        client_info: &str,
        pool_size: u32,
    ) -> Result<Instance> {
        lib.ensure_init(program_name)?;
        let info = adapter::c_string(client_info).ok_or_else(|| {
            Error::local("ddp_instance_create", "", "NUL byte in the client info")
        })?;
        let api = &lib.inner.api;
        let desc = adapter::instance_create(api, pool_size, &info)
            .map_err(|c| Error::from_code("ddp_instance_create", "", c))?;
        adapter::log_init(api, desc);
        Ok(Instance {
            inner: Arc::new(InstanceInner {
                lib: lib.clone(),
                desc,
                lock: Mutex::new(()),
            }),
            _not_sync: PhantomData,
        })
    }

    /// The library this instance belongs to.
    pub fn library(&self) -> &Library {
        &self.inner.lib
    }
}

// ---------------------------------------------------------------------------
// Connection

struct ConnInner {
    inst: Arc<InstanceInner>,
    desc: ConnDesc,
    host: String,
}

impl ConnInner {
    fn call<R>(&self, f: impl FnOnce(&Api, ConnDesc) -> R) -> R {
        self.inst.call(|api| f(api, self.desc))
    }
}

impl Drop for ConnInner {
    fn drop(&mut self) {
        let _ = self.call(adapter::disconnect);
    }
}

/// A connection to one Data Domain system (`ddp_connect_with_user_pwd`),
/// disconnected on drop after every file and directory opened on it is gone.
pub struct Connection {
    inner: Arc<ConnInner>,
    _not_sync: NotSync,
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Connection")
            .field("host", &self.inner.host)
            .finish()
    }
}

/// Builds a `SuPath`, or the local error for a NUL byte.
fn su_path(op: &'static str, su: &str, path: &str) -> Result<SuPath> {
    SuPath::new(su, path)
        .ok_or_else(|| Error::local(op, display_path(su, path), "NUL byte in a name"))
}

impl Connection {
    /// Connects to `host` as `user`. The password is passed to the SDK and not
    /// kept; errors name the host only.
    pub fn connect(
        instance: &Instance,
        host: &str,
        user: &str,
        password: &str,
    ) -> Result<Connection> {
        Self::connect_on(&instance.inner, host, user, password)
    }

    /// A new connection to the same host from the same instance, e.g. to
    /// finish a cleanup after this one was lost (see
    /// [`Error::is_connection_lost`]). Needs no [`Instance`] reference, so it
    /// works wherever the connection has been moved. The password is passed
    /// to the SDK and not kept.
    pub fn reconnect(&self, user: &str, password: &str) -> Result<Connection> {
        Self::connect_on(&self.inner.inst, &self.inner.host, user, password)
    }

    fn connect_on(
        inst: &Arc<InstanceInner>,
        host: &str,
        user: &str,
        password: &str,
    ) -> Result<Connection> {
        const OP: &str = "ddp_connect_with_user_pwd";
        let (Some(h), Some(u), Some(p)) = (
            adapter::c_string(host),
            adapter::c_string(user),
            adapter::c_string(password),
        ) else {
            return Err(Error::local(
                OP,
                host,
                "NUL byte in the host, user or password",
            ));
        };
        let desc = inst
            .call(|api| adapter::connect(api, inst.desc, &h, &u, &p))
            .map_err(|c| Error::from_code(OP, host, c))?;
        Ok(Connection {
            inner: Arc::new(ConnInner {
                inst: Arc::clone(inst),
                desc,
                host: host.to_owned(),
            }),
            _not_sync: PhantomData,
        })
    }

    /// The host this connection was made to.
    pub fn host(&self) -> &str {
        &self.inner.host
    }

    /// `ddp_create_storage_unit`.
    pub fn create_storage_unit(&self, su: &str) -> Result<()> {
        const OP: &str = "ddp_create_storage_unit";
        let name =
            adapter::c_string(su).ok_or_else(|| Error::local(OP, su, "NUL byte in a name"))?;
        let rc = self
            .inner
            .call(|api, c| adapter::create_storage_unit(api, c, &name));
        Error::check(OP, || su.to_owned(), rc)
    }

    /// `ddp_open_file`: opens `path` in storage unit `su`; `perm` is the POSIX
    /// permission mode for a created file (e.g. `0o600`).
    pub fn open_file(&self, su: &str, path: &str, mode: OpenMode, perm: u32) -> Result<File> {
        const OP: &str = "ddp_open_file";
        let p = su_path(OP, su, path)?;
        let desc = self
            .inner
            .call(|api, c| adapter::open_file(api, c, &p, mode, perm))
            .map_err(|c| Error::from_code(OP, display_path(su, path), c))?;
        Ok(File {
            conn: Arc::clone(&self.inner),
            desc,
            path: display_path(su, path),
            closed: false,
            _not_sync: PhantomData,
        })
    }

    /// `ddp_stat`.
    pub fn stat(&self, su: &str, path: &str) -> Result<Stat> {
        const OP: &str = "ddp_stat";
        let p = su_path(OP, su, path)?;
        self.inner
            .call(|api, c| adapter::stat(api, c, &p))
            .map_err(|c| Error::from_code(OP, display_path(su, path), c))
    }

    /// `ddp_statfs`: space figures of the system.
    pub fn statfs(&self) -> Result<StatFs> {
        self.inner
            .call(adapter::statfs)
            .map_err(|c| Error::from_code("ddp_statfs", self.host(), c))
    }

    /// `ddp_mkdir` (not recursive; see [`Error::is_exist`]).
    pub fn mkdir(&self, su: &str, path: &str, perm: u32) -> Result<()> {
        const OP: &str = "ddp_mkdir";
        let p = su_path(OP, su, path)?;
        let rc = self.inner.call(|api, c| adapter::mkdir(api, c, &p, perm));
        Error::check(OP, || display_path(su, path), rc)
    }

    /// `ddp_rmdir` (see [`Error::is_not_empty`]).
    pub fn rmdir(&self, su: &str, path: &str) -> Result<()> {
        const OP: &str = "ddp_rmdir";
        let p = su_path(OP, su, path)?;
        let rc = self.inner.call(|api, c| adapter::rmdir(api, c, &p));
        Error::check(OP, || display_path(su, path), rc)
    }

    /// `ddp_unlink` (see [`Error::is_file_is_dir`]).
    pub fn unlink(&self, su: &str, path: &str) -> Result<()> {
        const OP: &str = "ddp_unlink";
        let p = su_path(OP, su, path)?;
        let rc = self.inner.call(|api, c| adapter::unlink(api, c, &p));
        Error::check(OP, || display_path(su, path), rc)
    }

    /// `ddp_rename` within storage unit `su`; replaces an existing `to`.
    pub fn rename(&self, su: &str, from: &str, to: &str) -> Result<()> {
        const OP: &str = "ddp_rename";
        let f = su_path(OP, su, from)?;
        let t = su_path(OP, su, to)?;
        let rc = self.inner.call(|api, c| adapter::rename(api, c, &f, &t));
        Error::check(
            OP,
            || format!("{} -> {}", display_path(su, from), display_path(su, to)),
            rc,
        )
    }

    /// `ddp_open_dir`: an iterator over the entry names of `path`.
    pub fn open_dir(&self, su: &str, path: &str) -> Result<Dir> {
        const OP: &str = "ddp_open_dir";
        let p = su_path(OP, su, path)?;
        let desc = self
            .inner
            .call(|api, c| adapter::open_dir(api, c, &p))
            .map_err(|c| Error::from_code(OP, display_path(su, path), c))?;
        Ok(Dir {
            conn: Arc::clone(&self.inner),
            desc,
            path: display_path(su, path),
            done: false,
            _not_sync: PhantomData,
        })
    }

    /// `ddp_get_stream_counts`.
    pub fn stream_counts(&self) -> Result<StreamCounts> {
        self.inner
            .call(adapter::stream_counts)
            .map_err(|c| Error::from_code("ddp_get_stream_counts", self.host(), c))
    }
}

// ---------------------------------------------------------------------------
// File

/// An open file (`ddp_open_file`). Closed on drop; call [`File::close`] to see
/// the result of closing, which finalises a written file.
pub struct File {
    conn: Arc<ConnInner>,
    desc: FileDesc,
    path: String,
    closed: bool,
    _not_sync: NotSync,
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File").field("path", &self.path).finish()
    }
}

impl File {
    /// `/<su>/<path>` of this file.
    pub fn path(&self) -> &str {
        &self.path
    }

    fn call<R>(&self, f: impl FnOnce(&Api, FileDesc) -> R) -> R {
        self.conn.inst.call(|api| f(api, self.desc))
    }

    /// Reads into `buf` from `offset` with `ddp_read`, at most [`MAX_IO_SIZE`]
    /// per call. Returns the bytes read: fewer than `buf.len()` only at the end
    /// of the file (0 at or past it).
    pub fn read_at(&self, buf: &mut [u8], offset: u64) -> Result<usize> {
        let mut total = 0usize;
        while total < buf.len() {
            let end = buf.len().min(total + MAX_IO_SIZE);
            let chunk = &mut buf[total..end];
            let want = chunk.len();
            let pos = offset + total as u64;
            let n = self
                .call(|api, fd| adapter::read(api, fd, chunk, pos))
                .map_err(|c| Error::from_code("ddp_read", self.path.clone(), c))?;
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(want);
            total += n;
            if n < want {
                break;
            }
        }
        Ok(total)
    }

    /// Reads up to `want` bytes (at most [`MAX_IO_SIZE`]) from `offset` with
    /// one `ddp_read`, into a buffer of exactly the bytes read. The read
    /// lands in room the calling thread keeps for it ([`READ_ROOM`]) and
    /// only the bytes read are copied out: room the SDK does not fill is
    /// never touched, and no megabyte is allocated and freed per read, so a
    /// small object's read costs no more memory than the object. Fewer than
    /// `want` only at the end.
    pub fn read_exact_size(&self, want: usize, offset: u64) -> Result<Vec<u8>> {
        let want = want.min(MAX_IO_SIZE);
        READ_ROOM.with_borrow_mut(|room| {
            room.clear();
            self.call(|api, fd| adapter::read_append(api, fd, room, want, offset))
                .map_err(|c| Error::from_code("ddp_read", self.path.clone(), c))?;
            Ok(room.to_vec())
        })
    }

    /// Writes `buf` at `offset` with `ddp_write`, at most [`MAX_IO_SIZE`] per
    /// call. Returns the bytes written (all of `buf` unless the SDK stops
    /// accepting data).
    pub fn write_at(&self, buf: &[u8], offset: u64) -> Result<usize> {
        let mut total = 0usize;
        while total < buf.len() {
            let end = buf.len().min(total + MAX_IO_SIZE);
            let chunk = &buf[total..end];
            let pos = offset + total as u64;
            let n = self
                .call(|api, fd| adapter::write(api, fd, chunk, pos))
                .map_err(|c| Error::from_code("ddp_write", self.path.clone(), c))?;
            let n = usize::try_from(n).unwrap_or(usize::MAX).min(chunk.len());
            if n == 0 {
                break;
            }
            total += n;
        }
        Ok(total)
    }

    /// `ddp_fstat`.
    pub fn fstat(&self) -> Result<Stat> {
        self.call(adapter::fstat)
            .map_err(|c| Error::from_code("ddp_fstat", self.path.clone(), c))
    }

    /// `ddp_close_file`, reporting its result (closing finalises a written
    /// file).
    pub fn close(mut self) -> Result<()> {
        self.closed = true;
        let rc = self.call(adapter::close_file);
        Error::check("ddp_close_file", || self.path.clone(), rc)
    }
}

impl Drop for File {
    fn drop(&mut self) {
        if !self.closed {
            let _ = self.call(adapter::close_file);
        }
    }
}

// ---------------------------------------------------------------------------
// Dir

/// An open directory (`ddp_open_dir`): iterates over entry names, skipping
/// `.` and `..`. Ends at `DD_ERR_EMPTY`; any other error is yielded once and
/// ends the iteration. Closed on drop.
pub struct Dir {
    conn: Arc<ConnInner>,
    desc: DirDesc,
    path: String,
    done: bool,
    _not_sync: NotSync,
}

impl fmt::Debug for Dir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Dir").field("path", &self.path).finish()
    }
}

impl Iterator for Dir {
    type Item = Result<String>;

    fn next(&mut self) -> Option<Result<String>> {
        while !self.done {
            let desc = self.desc;
            match self.conn.inst.call(|api| adapter::readdir(api, desc)) {
                Ok(name) if name == "." || name == ".." => continue,
                Ok(name) => return Some(Ok(name)),
                Err(c) if c == DdErr::Empty.code() => self.done = true,
                Err(c) => {
                    self.done = true;
                    return Some(Err(Error::from_code("ddp_readdir", self.path.clone(), c)));
                }
            }
        }
        None
    }
}

impl std::iter::FusedIterator for Dir {}

impl Drop for Dir {
    fn drop(&mut self) {
        let desc = self.desc;
        self.conn.inst.call(|api| adapter::close_dir(api, desc));
    }
}

// ---------------------------------------------------------------------------
// filecopy

/// Copies `src` to `dst` inside the Data Domain (managed file replication when
/// they are on different systems): `ddp_filecopy_start`, then
/// `ddp_filecopy_status` polls of [`FILECOPY_EXTENT`] from offset 0, adding the
/// bytes each poll reports, until the source size is reached, then
/// `ddp_filecopy_stop(src_conn, dst)`, which also runs when a step fails.
/// `progress(copied, total)` is called after each poll. Returns the bytes
/// copied. Both files must come from connections of one [`Instance`] (as
/// GPDB does); `dst` still needs [`File::close`] afterwards.
pub fn filecopy(
    src_conn: &Connection,
    src: &File,
    dst: &File,
    mut progress: impl FnMut(u64, u64),
) -> Result<u64> {
    let inst = &src_conn.inner.inst;
    if !Arc::ptr_eq(inst, &src.conn.inst) || !Arc::ptr_eq(inst, &dst.conn.inst) {
        return Err(Error::local(
            "ddp_filecopy_start",
            format!("{} -> {}", src.path, dst.path),
            "source and destination must come from one Instance",
        ));
    }
    let total = src.fstat()?.size;
    let (s, d) = (src.desc, dst.desc);
    let copy_path = || format!("{} -> {}", src.path, dst.path);
    let copied = (|| {
        let rc = inst.call(|api| adapter::filecopy_start(api, s, d));
        Error::check("ddp_filecopy_start", copy_path, rc)?;
        let mut offset = 0u64;
        let mut idle = 0u32;
        while offset < total {
            let done = inst
                .call(|api| adapter::filecopy_status(api, s, d, offset, FILECOPY_EXTENT))
                .map_err(|c| Error::from_code("ddp_filecopy_status", copy_path(), c))?;
            if done == 0 {
                idle += 1;
                if idle > FILECOPY_MAX_IDLE_POLLS {
                    return Err(Error::local(
                        "ddp_filecopy_status",
                        copy_path(),
                        "no progress",
                    ));
                }
                std::thread::sleep(FILECOPY_IDLE_WAIT);
                continue;
            }
            idle = 0;
            offset = offset.saturating_add(done);
            progress(offset.min(total), total);
        }
        Ok(offset)
    })();
    let stop = inst.call(|api| adapter::filecopy_stop(api, src_conn.inner.desc, d));
    let copied = copied?;
    Error::check("ddp_filecopy_stop", copy_path, stop)?;
    Ok(copied)
}
