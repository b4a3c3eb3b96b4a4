//! One Data Domain system: a connection, the place on it, and what the
//! plugin does there (folders, objects, listings, deletes; the listings and
//! deletes of a whole folder tree in `walk.rs`).

mod walk;

use std::sync::{Arc, Mutex, MutexGuard};

use backon::BlockingRetryable;
use ddboost::{Connection, Instance, Library, OpenMode, Stat};

use super::config::{DdBoostConfig, DdTarget};
use super::connect::{connect_retrying, sdk_error, Login};
use super::read::{DdReader, Reopen};
use super::streams::{describe_counts, stream_backoff, StreamKind, WAITED};
use super::write::{remove_temporary, DdWriter};
use super::{DD_BLOCK, DIR_MODE, FILE_MODE};
use crate::about::PLUGIN_NAME;
use crate::error::{Error, ErrorKind, Result};
use crate::process::signals::CleanupGuard;
use crate::storage::{
    temp_name, timed, CreateOptions, DeleteSummary, Finding, ObjectInfo, ObjectReader,
    ObjectWriter, OpenOptions, Storage, StoragePath,
};

/// One system: a connection and the place on it.
#[derive(Clone)]
pub struct System {
    /// The SDK, for the instances of read-ahead handles.
    pub(super) lib: Library,
    pub(super) conn: Arc<Mutex<Connection>>,
    pub(super) login: Arc<Login>,
    pub(super) su: String,
    pub(super) base: String,
    pub(super) host: String,
    /// Connections a listing or delete uses at once (option
    /// `command_connections`): this one, then siblings.
    pub(super) fanout: usize,
    /// Siblings logged in by earlier listings and deletes, kept for the
    /// next (a command listing many backups logs in once per connection).
    spare: Arc<Mutex<Vec<System>>>,
}

impl System {
    /// Connects, retrying transient failures (a Data Domain busy with other
    /// streams or a network blip is common during a cluster-wide backup); see
    /// [`connect_retrying`].
    pub(super) fn connect(
        instance: &Instance,
        t: &DdTarget,
        role: &str,
        cfg: &DdBoostConfig,
    ) -> Result<System> {
        let retry = &cfg.retry;
        let attempt =
            || Connection::connect(instance, &t.hostname, &t.username, t.password.expose());
        let what = format!("{role} Data Domain {}", t.hostname);
        let conn = connect_retrying(attempt, retry, &what).map_err(|e| {
            let advice = if e.is_auth() {
                "check username and password in the plugin config (a refused login is not retried)"
            } else {
                "check hostname, username and password in the plugin config and that the system is reachable"
            };
            Error::storage_from(
                format!(
                    "cannot connect to {role} Data Domain {} as {}: {e}; {advice}",
                    t.hostname, t.username
                ),
                e,
            )
        })?;
        Ok(System {
            lib: instance.library().clone(),
            conn: Arc::new(Mutex::new(conn)),
            login: Arc::new(Login {
                user: t.username.clone(),
                password: t.password.clone(),
                retry: *retry,
            }),
            su: t.storage_unit.clone(),
            base: t.directory.clone(),
            host: t.hostname.clone(),
            fanout: cfg.command_connections,
            spare: Arc::default(),
        })
    }

    /// The same system on a connection (and instance) of its own, for calls
    /// made at once with this one's.
    pub(super) fn sibling(&self) -> Result<System> {
        let info = format!("{PLUGIN_NAME} version {}", env!("CARGO_PKG_VERSION"));
        let instance =
            Instance::new(&self.lib, PLUGIN_NAME, &info).map_err(|e| sdk_error(&self.host, e))?;
        let attempt = || {
            Connection::connect(
                &instance,
                &self.host,
                &self.login.user,
                self.login.password.expose(),
            )
        };
        let what = format!("Data Domain {}", self.host);
        let conn = connect_retrying(attempt, &self.login.retry, &what)
            .map_err(|e| sdk_error(&self.host, e))?;
        Ok(System {
            conn: Arc::new(Mutex::new(conn)),
            // Its own (unused): a sibling in this one's spares must not
            // keep them alive.
            spare: Arc::default(),
            ..self.clone()
        })
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs the open `attempt`; while the system refuses it for its stream
    /// limit (`DD_ERR_STREAM_LIMIT`: other restores and backups hold every
    /// stream), waits for one to come free and tries again, with growing
    /// pauses and jitter so that waiting processes do not all retry at once,
    /// for up to `wait` (option `stream_wait_seconds`, or zero: fails at
    /// once). The first wait is logged with
    /// the stream counts, and the process then takes no read-ahead readers.
    fn wait_for_stream_up_to<T>(
        &self,
        wait: std::time::Duration,
        kind: StreamKind,
        what: &str,
        attempt: impl FnMut() -> ddboost::Result<T>,
    ) -> Result<T> {
        let started = std::time::Instant::now();
        let waited = std::cell::Cell::new(false);
        let result = attempt
            .retry(stream_backoff(wait))
            .sleep(|d| {
                crate::process::metrics::stream_wait(d);
                std::thread::sleep(d)
            })
            .when(|e: &ddboost::Error| e.is(ddboost::DdErr::StreamLimit))
            .notify(|_, _| {
                if !waited.replace(true) {
                    let counts = match self.lock().stream_counts() {
                        Ok(c) => describe_counts(&c),
                        Err(e) => format!("stream counts unknown: {e}"),
                    };
                    log::info!(
                        "{what}: every {} stream of {} is taken ({counts}); waiting for one, up to {} s (option stream_wait_seconds)",
                        kind.name(),
                        self.host,
                        wait.as_secs()
                    );
                }
            })
            .call();
        match result {
            Ok(v) => {
                if waited.get() {
                    WAITED.store(true, std::sync::atomic::Ordering::Relaxed);
                    log::info!(
                        "{what}: got a {} stream after waiting {:.1} s",
                        kind.name(),
                        started.elapsed().as_secs_f64()
                    );
                }
                Ok(v)
            }
            Err(e) if e.is(ddboost::DdErr::StreamLimit) => Err(Error::new(
                ErrorKind::StreamLimit,
                format!(
                    "{what}: the {} stream limit of Data Domain {} stayed reached for {:.0} s (option stream_wait_seconds, now {}): other backups or restores held every stream; raise stream_wait_seconds, or run fewer at once",
                    kind.name(),
                    self.host,
                    started.elapsed().as_secs_f64(),
                    wait.as_secs()
                ),
            )
            .with_source(e)),
            Err(e) => Err(self.not_found_or(e, what)),
        }
    }

    /// An SDK error of an open: "not found" as [`Error::not_found`], a
    /// folder in place of the file said so, anything else as it is.
    fn not_found_or(&self, e: ddboost::Error, what: &str) -> Error {
        if e.is_not_found() {
            Error::not_found(format!("{what}: not found on {}", self.host)).with_source(e)
        } else if e.is_file_is_dir() {
            Error::storage_from(format!("{what}: a folder, not a file, on {}", self.host), e)
        } else {
            self.err(e)
        }
    }

    /// Opens `path` for reading, waiting for a read stream
    /// ([`System::wait_for_stream_up_to`]).
    pub(super) fn open_file_waiting(&self, path: &str) -> Result<ddboost::File> {
        self.open_file_within(path, self.login.retry.stream_wait)
    }

    /// [`System::open_file_waiting`] for up to `wait` (zero: fails at once
    /// when no read stream is free).
    fn open_file_within(&self, path: &str, wait: std::time::Duration) -> Result<ddboost::File> {
        let full = self.full(path);
        let attempt = || self.lock().open_file(&self.su, &full, OpenMode::Read, 0);
        self.wait_for_stream_up_to(
            wait,
            StreamKind::Read,
            &format!("opening /{}/{full}", self.su),
            attempt,
        )
    }

    /// Path inside the storage unit of a relative path.
    pub(super) fn full(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{rel}", self.base)
        }
    }

    pub(super) fn describe(&self) -> String {
        format!("ddboost://{}/{}/{}", self.host, self.su, self.base)
    }

    pub(super) fn err(&self, e: ddboost::Error) -> Error {
        sdk_error(&self.host, e)
    }

    /// Stat; `Ok(None)` only when the SDK says there is no such object
    /// ([`ddboost::Error::is_not_found`]); any other failure is an error.
    pub(super) fn stat(&self, rel: &str) -> Result<Option<Stat>> {
        let r = self.lock().stat(&self.su, &self.full(rel));
        match r {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// mkdir each level from the storage unit down, tolerating DD_ERR_EXIST
    /// (dozens of processes do this at once).
    pub(super) fn mkdirs(&self, rel: &str) -> Result<()> {
        let full = self.full(rel);
        let conn = self.lock();
        let mut path = String::new();
        for part in full.split('/').filter(|p| !p.is_empty()) {
            if !path.is_empty() {
                path.push('/');
            }
            path.push_str(part);
            match conn.mkdir(&self.su, &path, DIR_MODE) {
                Ok(()) => {}
                Err(e) if e.is_exist() => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        Ok(())
    }

    /// How long an open waits for a stream: up to `stream_wait_seconds`, or
    /// not at all.
    fn stream_wait(&self, wait: bool) -> std::time::Duration {
        if wait {
            self.login.retry.stream_wait
        } else {
            std::time::Duration::ZERO
        }
    }

    /// Opens `path` for reading with no stat first: the open itself tells
    /// "not found", and the block at `first_read` (where the caller reads
    /// first) is read at once, its length giving the object's size when the
    /// object ends inside it. So a small object costs an open and one read,
    /// a larger one an open, its first read and a `ddp_fstat`. An open
    /// refused for the stream limit waits for a stream
    /// ([`System::wait_for_stream_up_to`]); a process that waited takes no
    /// read-ahead readers. It waits up to `wait` for a read stream (zero:
    /// fails at once when none is free).
    pub(super) fn open_reader_within(
        &self,
        path: &str,
        first_read: u64,
        wait: std::time::Duration,
    ) -> Result<DdReader> {
        let full = self.full(path);
        let file = self.open_file_within(path, wait)?;
        let waited = WAITED.load(std::sync::atomic::Ordering::Relaxed);
        let at = first_read / DD_BLOCK as u64 * DD_BLOCK as u64;
        let block = file
            .read_exact_size(DD_BLOCK, at)
            .map_err(|e| self.err(e))?;
        let n = block.len();
        // Reads are short only at the end of a file.
        let (size, size_inferred) = if (n > 0 && n < DD_BLOCK) || (at == 0 && n == 0) {
            (at + n as u64, true)
        } else {
            (file.fstat().map_err(|e| self.err(e))?.size, false)
        };
        Ok(DdReader {
            file,
            size,
            size_inferred,
            host: self.host.clone(),
            first: Some((at, block)),
            // A restore that had to wait for a stream (its records' or its
            // own) takes no more.
            reopen: (!waited).then(|| {
                Arc::new(Reopen {
                    lib: self.lib.clone(),
                    login: Arc::clone(&self.login),
                    conn: Arc::clone(&self.conn),
                    su: self.su.clone(),
                    full,
                    host: self.host.clone(),
                })
            }),
        })
    }

    /// A writer of `path` (through a temporary). The temporary is opened
    /// right away, without asking whether its folder exists: the backup hook
    /// made it, so one round trip usually does; only "not found" makes the
    /// folders and opens again. It waits up to `wait` for a write stream
    /// (zero: fails at once when none is free).
    pub(super) fn create_writer_waiting(
        &self,
        path: &StoragePath,
        wait: std::time::Duration,
    ) -> Result<DdWriter> {
        let rel_temp = path.sibling(&temp_name(path.file_name()))?;
        let dir = path.folder_and_name().0;
        let temp = self.full(&rel_temp);
        // Registered before the temporary exists, so that a signal arriving
        // right after ddp_open_file created it still removes it.
        let cleanup = {
            let (conn, login) = (Arc::clone(&self.conn), Arc::clone(&self.login));
            let (su, t, host) = (self.su.clone(), temp.clone(), self.host.clone());
            CleanupGuard::new(move || remove_temporary(&conn, &login, &su, &t, &host))
        };
        let open = || {
            self.lock()
                .open_file(&self.su, &temp, OpenMode::CreateReadWrite, FILE_MODE)
        };
        let what = format!("creating /{}/{temp}", self.su);
        let file = match self.wait_for_stream_up_to(wait, StreamKind::Write, &what, open) {
            Ok(f) => f,
            Err(e) if e.kind() == ErrorKind::NotFound => {
                self.mkdirs(dir)?;
                self.wait_for_stream_up_to(wait, StreamKind::Write, &what, open)?
            }
            Err(e)
                if e.source_as::<ddboost::Error>()
                    .is_some_and(|s| s.is(ddboost::DdErr::Notdir)) =>
            {
                return Err(e.context(format!(
                    "cannot store {path} on {}: a part of {} is a file, not a folder",
                    self.host,
                    self.full(dir)
                )))
            }
            Err(e) => return Err(e),
        };
        Ok(DdWriter {
            file: Some(file),
            offset: 0,
            rel_temp,
            temp,
            target: self.full(path),
            conn: Arc::clone(&self.conn),
            login: Arc::clone(&self.login),
            su: self.su.clone(),
            host: self.host.clone(),
            cleanup: Some(cleanup),
        })
    }

    /// Unlinks file `rel`: `Ok(false)` if it does not exist.
    pub(super) fn delete(&self, rel: &str) -> Result<bool> {
        let r = self.lock().unlink(&self.su, &self.full(rel));
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Removes folder `rel` if it is empty: `Ok(false)` if it is not empty or
    /// does not exist.
    pub(super) fn remove_dir_if_empty(&self, rel: &str) -> Result<bool> {
        let r = self.lock().rmdir(&self.su, &self.full(rel));
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_empty() || e.is_not_found() => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One system as storage (the primary, or the replica's own view).
impl Storage for System {
    fn describe(&self) -> String {
        System::describe(self)
    }

    fn create_dir_all(&self, dir: &StoragePath) -> Result<()> {
        self.mkdirs(dir)
    }

    fn create(&self, path: &StoragePath, opts: &CreateOptions) -> Result<Box<dyn ObjectWriter>> {
        let wait = self.stream_wait(opts.wait);
        Ok(Box::new(self.create_writer_waiting(path, wait)?))
    }

    fn open(&self, path: &StoragePath, opts: &OpenOptions) -> Result<Box<dyn ObjectReader>> {
        let wait = self.stream_wait(opts.wait);
        Ok(Box::new(self.open_reader_within(
            path,
            opts.first_read,
            wait,
        )?))
    }

    fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.walk(dir, false)
    }

    fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.walk(dir, true)
    }

    fn list_names(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<String>> {
        let mut names: Vec<String> = self
            .read_dir(dir)?
            .unwrap_or_default()
            .into_iter()
            .filter(|n| hidden || !n.starts_with('.'))
            .collect();
        names.sort();
        Ok(names)
    }

    fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary> {
        System::delete_dir_all(self, dir)
    }

    fn delete(&self, path: &StoragePath) -> Result<bool> {
        System::delete(self, path)
    }

    fn exists(&self, path: &StoragePath) -> Result<bool> {
        Ok(self.stat(path)?.is_some())
    }

    fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool> {
        System::remove_dir_if_empty(self, dir)
    }

    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        let r = self
            .lock()
            .rename(&self.su, &self.full(from), &self.full(to));
        r.map_err(|e| self.err(e))
    }

    /// The folder, stream counts and free space, with sanity checks on what
    /// the SDK's structures hold: values no Data Domain reports mean this
    /// build's declaration of them differs from the SDK's.
    fn facts(&self, _write: bool) -> Vec<Finding> {
        let mut out = Vec::new();
        let host = &self.host;
        let layout = "; the SDK's structures may differ from this build's header: build with DDBOOST_SDK_DIR (see README)";
        let (folder, secs) = timed(|| self.stat(""));
        out.push(match folder {
            Ok(Some(s)) if s.is_dir => {
                Finding::pass("folder", format!("{} exists", self.describe()), secs)
            }
            Ok(Some(_)) => Finding::fail(
                "folder",
                format!(
                    "/{}/{} on {host} is a file, not a folder",
                    self.su, self.base
                ),
                secs,
            ),
            Ok(None) => Finding::warn(
                "folder",
                format!(
                    "/{}/{} does not exist yet on {host}; the first backup creates it",
                    self.su, self.base
                ),
                secs,
            ),
            Err(e) => Finding::fail("folder", e.to_string(), secs),
        });
        let (counts, secs) = timed(|| self.lock().stream_counts());
        out.push(match counts {
            Ok(c) => {
                let l = &c.limits;
                let u = &c.inuse;
                let used = [u.read_streams, u.read_write_streams, u.replication_streams, u.filecopy_streams];
                let limits = [l.backup_write_streams, l.backup_read_streams, l.total_streams_hard_limit];
                let sane = used.iter().chain(limits.iter()).all(|v| (0..1_000_000).contains(v));
                let detail = format!(
                    "{} write and {} read streams allowed ({} in all); in use: {} read, {} read-write, {} replication",
                    l.backup_write_streams, l.backup_read_streams, l.total_streams_hard_limit,
                    u.read_streams, u.read_write_streams, u.replication_streams
                );
                if sane {
                    Finding::pass("stream counts", detail, secs)
                } else {
                    Finding::fail("stream counts", format!("implausible: {detail}{layout}"), secs)
                }
            }
            Err(e) => Finding::fail("stream counts", sdk_error(host, e).to_string(), secs),
        });
        let (space, secs) = timed(|| self.lock().statfs());
        out.push(match space {
            Ok(s) if s.blocks > 0 && s.free_blocks <= s.blocks => Finding::pass(
                "free space",
                format!(
                    "{:.1}% of {} blocks free",
                    s.free_blocks as f64 * 100.0 / s.blocks as f64,
                    s.blocks
                ),
                secs,
            ),
            Ok(s) => Finding::fail(
                "free space",
                format!(
                    "implausible: {} blocks, {} free{layout}",
                    s.blocks, s.free_blocks
                ),
                secs,
            ),
            Err(e) => Finding::fail("free space", sdk_error(host, e).to_string(), secs),
        });
        out
    }
}
