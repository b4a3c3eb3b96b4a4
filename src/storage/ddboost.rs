//! The DD Boost backend: objects on a Dell Data Domain through libDDBoost.
//!
//! The SDK is loaded at run time (option `ddboost_library`, then
//! `<bindir>/../lib/libDDBoost.so`, `<bindir>/libDDBoost.so`, then the loader's
//! search path), so one binary serves hosts with and without it. Objects live
//! at `<storage_unit>/<directory>/<path>`. Writes are exactly 1 MiB per
//! `ddp_write` except the last, go to a '.'-prefixed temporary, and are
//! renamed into place after `ddp_close_file` finalised them; every failure
//! path unlinks the temporary (logging in again if the connection was lost).
//! Only `DD_ERR_NOT_FOUND` means an object is absent: every other SDK error
//! fails the command. With a replica (option `replication: on`), committed
//! objects are copied to the remote system with managed file replication
//! (`ddp_filecopy_*`) before the command reports success.

use std::sync::{Arc, Mutex, MutexGuard};

use backon::{BlockingRetryable, ExponentialBuilder};
use ddboost_sys::{Connection, File as DdFile, Instance, Library, OpenMode, Stat};

use super::{
    join, split_path, temp_name, DeleteSummary, ObjectInfo, ObjectReader, ObjectWriter, Replica,
    Storage,
};
use crate::config::{DdBoostConfig, DdTarget, RetryPolicy, Secret};
use crate::error::{Error, Result};
use crate::signals::CleanupGuard;
use crate::PLUGIN_NAME;

/// Permissions of created files and folders: the owner only (backups hold
/// table data).
const FILE_MODE: u32 = 0o600;
const DIR_MODE: u32 = 0o700;

/// Message the plugin test bench expects when a replica already exists.
pub const EXCLUSIVE_FAILED: &str = "DDBoost open file in exclusive mode failed on remote";

/// What is needed to log in to a system again (a cleanup after a lost
/// connection). The password stays a [`Secret`]: Debug shows `***`.
#[derive(Debug)]
struct Login {
    user: String,
    password: Secret,
    retry: RetryPolicy,
}

/// Runs the connect `attempt`, retrying transient failures
/// ([`ddboost_sys::Error::is_transient`]: connect failure, lost connection,
/// stream limit) with exponential backoff as `retry` says; each retry is
/// logged. Anything else (a wrong password above all: retried logins can lock
/// the DD Boost user) is tried exactly once.
fn connect_retrying(
    attempt: impl FnMut() -> ddboost_sys::Result<Connection>,
    retry: &RetryPolicy,
    what: &str,
) -> ddboost_sys::Result<Connection> {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(retry.initial_delay)
        .with_max_delay(retry.max_delay)
        .with_max_times(retry.attempts.saturating_sub(1))
        .with_jitter();
    attempt
        .retry(backoff)
        .sleep(std::thread::sleep)
        .when(|e: &ddboost_sys::Error| e.is_transient())
        .notify(|e, delay| {
            log::warn!(
                "connecting to {what} failed ({e}); retrying in {:.1} s",
                delay.as_secs_f64()
            )
        })
        .call()
}

/// One system: a connection and the place on it.
#[derive(Clone)]
pub struct Side {
    conn: Arc<Mutex<Connection>>,
    login: Arc<Login>,
    su: String,
    base: String,
    host: String,
}

impl Side {
    /// Connects, retrying transient failures (a Data Domain busy with other
    /// streams or a network blip is common during a cluster-wide backup); see
    /// [`connect_retrying`].
    fn connect(instance: &Instance, t: &DdTarget, role: &str, retry: &RetryPolicy) -> Result<Side> {
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
        Ok(Side {
            conn: Arc::new(Mutex::new(conn)),
            login: Arc::new(Login {
                user: t.username.clone(),
                password: t.password.clone(),
                retry: *retry,
            }),
            su: t.storage_unit.clone(),
            base: t.directory.clone(),
            host: t.hostname.clone(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Path inside the storage unit of a relative path.
    fn full(&self, rel: &str) -> String {
        if rel.is_empty() {
            self.base.clone()
        } else {
            format!("{}/{rel}", self.base)
        }
    }

    fn describe(&self) -> String {
        format!("ddboost://{}/{}/{}", self.host, self.su, self.base)
    }

    fn err(&self, e: ddboost_sys::Error) -> Error {
        sdk_error(&self.host, e)
    }

    /// Stat; `Ok(None)` only when the SDK says there is no such object
    /// ([`ddboost_sys::Error::is_not_found`]); any other failure is an error.
    fn stat(&self, rel: &str) -> Result<Option<Stat>> {
        let r = self.lock().stat(&self.su, &self.full(rel));
        match r {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(self.err(e)),
        }
    }

    /// mkdir each level from the storage unit down, tolerating DD_ERR_EXIST
    /// (dozens of processes do this at once).
    fn mkdirs(&self, rel: &str) -> Result<()> {
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

    fn create_writer(&self, path: &str) -> Result<DdWriter> {
        let (dir, name) = split_path(path);
        match self.stat(dir)? {
            Some(s) if s.is_dir => {}
            Some(_) => {
                return Err(Error::storage(format!(
                    "cannot store {path} on {}: {} is a file, not a folder",
                    self.host,
                    self.full(dir)
                )))
            }
            None => self.mkdirs(dir)?,
        }
        let temp = self.full(&join(dir, &temp_name(name)));
        // Registered before the temporary exists, so that a signal arriving
        // right after ddp_open_file created it still removes it.
        let cleanup = {
            let (conn, login) = (Arc::clone(&self.conn), Arc::clone(&self.login));
            let (su, t, host) = (self.su.clone(), temp.clone(), self.host.clone());
            CleanupGuard::new(move || remove_temporary(&conn, &login, &su, &t, &host))
        };
        let file = self
            .lock()
            .open_file(&self.su, &temp, OpenMode::CreateReadWrite, FILE_MODE)
            .map_err(|e| self.err(e))?;
        Ok(DdWriter {
            file: Some(file),
            offset: 0,
            temp,
            target: self.full(path),
            conn: Arc::clone(&self.conn),
            su: self.su.clone(),
            host: self.host.clone(),
            cleanup: Some(cleanup),
        })
    }

    /// Files below `dir` (a file lists itself), sorted; '.' names only
    /// with `hidden`. A missing folder lists as empty; an entry removed while
    /// listing (the SDK says not found) is left out; any other error fails.
    fn walk(&self, dir: &str, hidden: bool) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        match self.stat(dir)? {
            None => return Ok(out),
            Some(s) if !s.is_dir => {
                if hidden || !split_path(dir).1.starts_with('.') {
                    out.push(ObjectInfo {
                        path: dir.to_string(),
                        size: s.size,
                    });
                }
                return Ok(out);
            }
            Some(_) => {}
        }
        let mut stack = vec![dir.to_string()];
        while let Some(rel) = stack.pop() {
            let Some(names) = self.read_dir(&rel)? else {
                continue; // removed meanwhile
            };
            for name in names {
                if !hidden && name.starts_with('.') {
                    continue;
                }
                let child = join(&rel, &name);
                match self.stat(&child)? {
                    Some(s) if s.is_dir => stack.push(child),
                    Some(s) => out.push(ObjectInfo {
                        path: child,
                        size: s.size,
                    }),
                    None => {} // removed meanwhile
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The entry names of folder `rel`; `Ok(None)` if it does not exist.
    fn read_dir(&self, rel: &str) -> Result<Option<Vec<String>>> {
        let conn = self.lock();
        let dir = match conn.open_dir(&self.su, &self.full(rel)) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(self.err(e)),
        };
        let mut names = Vec::new();
        for entry in dir {
            names.push(entry.map_err(|e| self.err(e))?);
        }
        Ok(Some(names))
    }

    fn delete_dir_all(&self, rel: &str) -> Result<DeleteSummary> {
        let mut summary = DeleteSummary::default();
        match self.stat(rel)? {
            None => return Ok(summary),
            Some(s) if !s.is_dir => {
                if self.delete(rel)? {
                    summary.files += 1;
                }
                return Ok(summary);
            }
            Some(_) => {}
        }
        self.delete_tree(rel, &mut summary)?;
        Ok(summary)
    }

    /// Removes folder `rel` and everything below it. Only "not found" (removed
    /// meanwhile) is skipped; any other failure stops and fails the delete.
    fn delete_tree(&self, rel: &str, summary: &mut DeleteSummary) -> Result<()> {
        let Some(names) = self.read_dir(rel)? else {
            return Ok(()); // removed meanwhile
        };
        for name in names {
            let child = join(rel, &name);
            let unlinked = self.lock().unlink(&self.su, &self.full(&child));
            match unlinked {
                Ok(()) => summary.files += 1,
                Err(e) if e.is_file_is_dir() => self.delete_tree(&child, summary)?,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(self.err(e)),
            }
        }
        let removed = self.lock().rmdir(&self.su, &self.full(rel));
        match removed {
            Ok(()) => summary.dirs += 1,
            Err(e) if e.is_not_found() => {}
            Err(e) => return Err(self.err(e)),
        }
        Ok(())
    }

    /// Unlinks file `rel`: `Ok(false)` if it does not exist.
    fn delete(&self, rel: &str) -> Result<bool> {
        let r = self.lock().unlink(&self.su, &self.full(rel));
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Removes folder `rel` if it is empty: `Ok(false)` if it is not empty or
    /// does not exist.
    fn remove_dir_if_empty(&self, rel: &str) -> Result<bool> {
        let r = self.lock().rmdir(&self.su, &self.full(rel));
        match r {
            Ok(()) => Ok(true),
            Err(e) if e.is_not_empty() || e.is_not_found() => Ok(false),
            Err(e) => Err(self.err(e)),
        }
    }
}

/// The cleanup of a writer's temporary `temp` (a path in storage unit `su`
/// on `host`), which may not exist yet or any more. When the connection was
/// lost (the usual reason a write failed), it logs in again, as the
/// connection did, and unlinks over the new connection. What it cannot
/// remove is named in a warning.
fn remove_temporary(conn: &Mutex<Connection>, login: &Login, su: &str, temp: &str, host: &str) {
    let c = conn.lock().unwrap_or_else(|p| p.into_inner());
    let result = match c.unlink(su, temp) {
        Err(e) if e.is_connection_lost() => {
            log::info!(
                "the connection to {host} was lost; connecting again to remove the temporary /{su}/{temp}"
            );
            let attempt = || c.reconnect(&login.user, login.password.expose());
            connect_retrying(attempt, &login.retry, &format!("Data Domain {host}"))
                .and_then(|fresh| fresh.unlink(su, temp))
        }
        r => r,
    };
    match result {
        Ok(()) => log::debug!("removed the temporary /{su}/{temp} on {host}"),
        Err(e) if e.is_not_found() => {}
        Err(e) => log::warn!(
            "cannot remove the temporary /{su}/{temp} on {host} ({e}); it is ignored by restores and listings, and delete_backup removes it"
        ),
    }
}

/// The `ddboost` backend, with an optional second system for replication.
pub struct DdBoostStorage {
    local: Side,
    /// The remote system, when the command needs it.
    replica: Option<DdReplica>,
    // Last, so connections close before the instance.
    _instance: Instance,
}

/// What a command needs of the remote system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Not at all: reads and listings work with the local system alone, so a
    /// restore does not depend on the replica being reachable.
    Never,
    /// Only when `replication: on` (writes, the backup hooks, delete_backup).
    IfReplicating,
    /// Always (replicate_backup, delete_replica): the `remote_*` options must be valid.
    Required,
}

fn sdk_log(severity: ddboost_sys::Severity, message: &str) {
    use ddboost_sys::Severity as S;
    match severity {
        S::Error => log::error!("libDDBoost: {message}"),
        S::Warn => log::warn!("libDDBoost: {message}"),
        S::Info => log::debug!("libDDBoost: {message}"),
        _ => log::trace!("libDDBoost: {message}"),
    }
}

impl DdBoostStorage {
    pub fn open(cfg: &DdBoostConfig, remote: Remote) -> Result<DdBoostStorage> {
        // Which remote system to connect, checked before anything is loaded.
        let remote_target = match remote {
            Remote::Never => None,
            Remote::IfReplicating => cfg.replica.as_ref(),
            Remote::Required => Some(cfg.remote.as_ref().ok_or_else(|| {
                let why = if cfg.remote_problems.is_empty() {
                    "no remote_* options are set".to_string()
                } else {
                    cfg.remote_problems.join("; ")
                };
                Error::config(format!(
                    "this command needs the remote Data Domain: {why}; set remote_hostname, remote_username, remote_password, remote_storage_unit and remote_directory"
                ))
            })?),
        };
        let lib = Library::find(cfg.library.as_deref())
            .map_err(|e| Error::config(format!("cannot load the DD Boost SDK: {e}")))?;
        let _ = ddboost_sys::set_log_sink(sdk_log);
        let info = format!("{PLUGIN_NAME} version {}", env!("CARGO_PKG_VERSION"));
        let instance = Instance::new(&lib, PLUGIN_NAME, &info).map_err(|e| {
            Error::storage(format!(
                "cannot start the DD Boost SDK ({}): {e}",
                lib.origin()
            ))
        })?;
        log::debug!("DD Boost SDK loaded from {}", lib.origin());
        let local = Side::connect(&instance, &cfg.target, "the", &cfg.retry)?;
        let remote_side = match remote_target {
            Some(t) => Some(Side::connect(&instance, t, "the remote", &cfg.retry)?),
            None => None,
        };
        // Mirror changes only with replication on (and a connected replica).
        let mirror = cfg.replica.is_some();
        let replica = remote_side.map(|remote| DdReplica {
            primary: local.clone(),
            remote,
            mirror,
        });
        Ok(DdBoostStorage {
            local,
            replica,
            _instance: instance,
        })
    }

    /// The replica, when changes are mirrored to it (replication: on).
    fn mirror(&self) -> Option<&Side> {
        self.replica
            .as_ref()
            .filter(|r| r.mirror)
            .map(|r| &r.remote)
    }
}

impl Storage for DdBoostStorage {
    fn describe(&self) -> String {
        self.local.describe()
    }

    fn create_dir_all(&self, dir: &str) -> Result<()> {
        self.local.create_dir_all(dir)?;
        if let Some(remote) = self.mirror() {
            remote.create_dir_all(dir)?;
        }
        Ok(())
    }

    fn create(&self, path: &str) -> Result<Box<dyn ObjectWriter>> {
        self.local.create(path)
    }

    fn open(&self, path: &str) -> Result<Box<dyn ObjectReader>> {
        self.local.open(path)
    }

    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.local.list(dir)
    }

    fn list_all(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.local.list_all(dir)
    }

    fn delete_dir_all(&self, dir: &str) -> Result<DeleteSummary> {
        let s = self.local.delete_dir_all(dir)?;
        if let Some(remote) = self.mirror() {
            let r = remote.delete_dir_all(dir)?;
            log::info!(
                "deleted {} files of {dir} from the replica {}",
                r.files,
                remote.describe()
            );
        }
        Ok(s)
    }

    fn delete(&self, path: &str) -> Result<bool> {
        self.local.delete(path)
    }

    fn remove_dir_if_empty(&self, dir: &str) -> Result<bool> {
        let local = self.local.remove_dir_if_empty(dir);
        // The replica's copy goes too, whatever happened locally.
        let remote = match self.mirror() {
            Some(r) => r.remove_dir_if_empty(dir),
            None => Ok(false),
        };
        let removed = local?;
        remote?;
        Ok(removed)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.local.rename(from, to)
    }

    fn replica(&self) -> Option<&dyn Replica> {
        self.replica.as_ref().map(|r| r as &dyn Replica)
    }
}

/// The remote system and the primary it copies from.
struct DdReplica {
    primary: Side,
    remote: Side,
    /// replication: on
    mirror: bool,
}

impl Replica for DdReplica {
    fn storage(&self) -> &dyn Storage {
        &self.remote
    }

    fn mirrors_writes(&self) -> bool {
        self.mirror
    }

    /// Temporary on the replica, file copy, close, rename.
    fn copy(&self, rel: &str, exclusive: bool) -> Result<u64> {
        let (primary, remote) = (&self.primary, &self.remote);
        if exclusive && remote.stat(rel)?.is_some() {
            return Err(Error::storage(format!(
                "{EXCLUSIVE_FAILED}: {rel} already exists on {}",
                remote.describe()
            )));
        }
        let src = primary
            .lock()
            .open_file(&primary.su, &primary.full(rel), OpenMode::Read, 0)
            .map_err(|e| primary.err(e))?;
        let mut dst = remote.create_writer(rel)?;
        let copied = {
            let src_conn = primary.lock();
            let dst_file = dst.file.as_ref().expect("open until commit");
            ddboost_sys::filecopy(&src_conn, &src, dst_file, |_, _| {}).map_err(|e| {
                Error::storage_from(
                    format!("replication of {rel} to {} failed: {e}", remote.describe()),
                    e,
                )
            })?
        };
        drop(src);
        dst.offset = copied;
        Box::new(dst).commit()?;
        Ok(copied)
    }
}

/// One system as storage (the primary, or the replica's own view).
impl Storage for Side {
    fn describe(&self) -> String {
        Side::describe(self)
    }

    fn create_dir_all(&self, dir: &str) -> Result<()> {
        self.mkdirs(dir)
    }

    fn create(&self, path: &str) -> Result<Box<dyn ObjectWriter>> {
        Ok(Box::new(self.create_writer(path)?))
    }

    fn open(&self, path: &str) -> Result<Box<dyn ObjectReader>> {
        let full = self.full(path);
        let not_found =
            || Error::not_found(format!("/{}/{full} not found on {}", self.su, self.host));
        let stat = self.stat(path)?.ok_or_else(not_found)?;
        if stat.is_dir {
            return Err(Error::storage(format!(
                "/{}/{full} on {} is a folder, not a file",
                self.su, self.host
            )));
        }
        let opened = self.lock().open_file(&self.su, &full, OpenMode::Read, 0);
        let file = opened.map_err(|e| {
            if e.is_not_found() {
                not_found().with_source(e) // removed since the stat
            } else {
                self.err(e)
            }
        })?;
        Ok(Box::new(DdReader {
            file,
            size: stat.size,
            host: self.host.clone(),
        }))
    }

    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.walk(dir, false)
    }

    fn list_all(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        self.walk(dir, true)
    }

    fn delete_dir_all(&self, dir: &str) -> Result<DeleteSummary> {
        Side::delete_dir_all(self, dir)
    }

    fn delete(&self, path: &str) -> Result<bool> {
        Side::delete(self, path)
    }

    fn remove_dir_if_empty(&self, dir: &str) -> Result<bool> {
        Side::remove_dir_if_empty(self, dir)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let r = self
            .lock()
            .rename(&self.su, &self.full(from), &self.full(to));
        r.map_err(|e| self.err(e))
    }
}

struct DdWriter {
    file: Option<DdFile>,
    offset: u64,
    temp: String,
    target: String,
    conn: Arc<Mutex<Connection>>,
    su: String,
    host: String,
    cleanup: Option<CleanupGuard>,
}

impl DdWriter {
    fn err(&self, e: ddboost_sys::Error) -> Error {
        sdk_error(&self.host, e)
    }
}

/// An SDK failure on `host`, as the plugin reports it: the call, the object
/// and the return code, which stays available as the error's source.
fn sdk_error(host: &str, e: ddboost_sys::Error) -> Error {
    Error::storage_from(format!("DD Boost call failed on {host}: {e}"), e)
}

/// DD Boost's largest (and most efficient) I/O.
const DD_BLOCK: usize = 1 << 20;

impl ObjectWriter for DdWriter {
    fn block_size(&self) -> usize {
        DD_BLOCK
    }

    fn write(&mut self, buf: &[u8]) -> Result<()> {
        let file = self.file.as_ref().expect("open until commit");
        let mut done = 0;
        while done < buf.len() {
            let n = file
                .write_at(&buf[done..], self.offset)
                .map_err(|e| sdk_error(&self.host, e))?;
            if n == 0 {
                return Err(Error::storage(format!(
                    "ddp_write {} wrote nothing on {}",
                    self.temp, self.host
                )));
            }
            done += n;
            self.offset += n as u64;
        }
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        let file = self.file.take().expect("commit runs once");
        // Closing finalises the file; its result matters.
        file.close().map_err(|e| self.err(e))?;
        let cleanup = self.cleanup.take().expect("commit runs once");
        let (conn, su, temp, target) = (
            Arc::clone(&self.conn),
            self.su.clone(),
            self.temp.clone(),
            self.target.clone(),
        );
        let host = self.host.clone();
        cleanup.disarm_with(move || {
            let c = conn.lock().unwrap_or_else(|p| p.into_inner());
            c.rename(&su, &temp, &target)
                .map_err(|e| sdk_error(&host, e))
        })
    }
}

impl Drop for DdWriter {
    fn drop(&mut self) {
        // Close before the guard unlinks the temporary.
        drop(self.file.take());
        drop(self.cleanup.take());
    }
}

struct DdReader {
    file: DdFile,
    size: u64,
    host: String,
}

impl ObjectReader for DdReader {
    fn block_size(&self) -> usize {
        DD_BLOCK
    }

    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize> {
        self.file
            .read_at(buf, offset)
            .map_err(|e| sdk_error(&self.host, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn sdk_errors_keep_the_sdk_error_and_its_code() {
        let code = ddboost_sys::code_by_name("DD_ERR_CONN_LOST").expect("a named code");
        let sdk = ddboost_sys::Error::from_code("ddp_unlink", "/SU/d/.f.tmp-1", code);
        let e = sdk_error("dd1", sdk.clone()).context("delete_backup failed");
        assert_eq!(e.kind(), ErrorKind::Storage);
        assert_eq!(
            e.to_string(),
            format!("delete_backup failed: DD Boost call failed on dd1: {sdk}")
        );
        let kept = e.source_as::<ddboost_sys::Error>().expect("source kept");
        assert_eq!(kept, &sdk);
        assert!(kept.is_connection_lost());
    }

    #[test]
    fn login_debug_hides_the_password() {
        let login = Login {
            user: "boost".into(),
            password: Secret::new("Pa55-w0rd"),
            retry: RetryPolicy {
                attempts: 1,
                initial_delay: std::time::Duration::from_millis(1),
                max_delay: std::time::Duration::from_millis(1),
            },
        };
        let shown = format!("{login:?}");
        assert!(
            shown.contains("boost") && !shown.contains("Pa55-w0rd"),
            "{shown}"
        );
    }
}
