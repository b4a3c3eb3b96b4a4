//! The storage trait: the only thing the commands know about where objects live.
//!
//! Guarantees every backend gives:
//! * A write is atomic: readers never see a partial object. An object becomes
//!   visible only when [`ObjectWriter::commit`] returns Ok; dropping a writer
//!   without committing (error, signal) leaves the old state. A writer killed
//!   with SIGKILL may leave a temporary behind, whose name starts with '.', so
//!   listings and reads never see it, and deleting the backup removes it.
//! * Paths are relative to the configured base directory and use '/'.
//! * Names starting with '.' are the plugin's own (temporaries, checksums).

pub mod ddboost;
pub mod faulty;
pub mod local;
pub mod memory;

use crate::config::options::Options;
use crate::config::{KeySources, PluginConfig};
use crate::error::Result;

/// A stored object and its size, from a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    /// Path relative to the base directory.
    pub path: String,
    pub size: u64,
}

/// What a delete removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeleteSummary {
    pub files: u64,
    pub dirs: u64,
}

pub trait Storage {
    /// A short description for logs, e.g. `local:/backup` (no secrets).
    fn describe(&self) -> String;

    /// Makes sure the folder `dir` (relative) exists, creating parents.
    /// Idempotent and safe when many processes call it at once.
    fn create_dir_all(&self, dir: &str) -> Result<()>;

    /// Starts a new object at `path`. It becomes visible on commit, replacing
    /// any object of that name.
    fn create(&self, path: &str) -> Result<Box<dyn ObjectWriter>>;

    /// Opens an object for reading; only a definite "no such object" is
    /// `ErrorKind::NotFound`.
    fn open(&self, path: &str) -> Result<Box<dyn ObjectReader>>;

    /// [`Storage::open`] for a reader whose first read is at `first_read`,
    /// which the backend may make right away (DD Boost: it tells the size of
    /// a small object, saving a round trip).
    fn open_at(&self, path: &str, first_read: u64) -> Result<Box<dyn ObjectReader>> {
        let _ = first_read;
        self.open(path)
    }

    /// Every object below the folder `dir` (recursive), skipping the plugin's
    /// own '.' names. A missing folder lists as empty.
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>>;

    /// Every file below `dir`, the plugin's own '.' names included.
    fn list_all(&self, dir: &str) -> Result<Vec<ObjectInfo>>;

    /// The names in the folder `dir` itself (files and folders, not
    /// recursive, no sizes), skipping the plugin's own '.' names; sorted. A
    /// missing folder lists as empty. Backends override it to read only that
    /// folder (one call per entry on DD Boost, no stat); this default walks
    /// everything below it.
    fn list_names(&self, dir: &str) -> Result<Vec<String>> {
        let skip = if dir.is_empty() { 0 } else { dir.len() + 1 };
        let mut names: Vec<String> = self
            .list(dir)?
            .into_iter()
            .filter_map(|o| o.path.get(skip..)?.split('/').next().map(str::to_string))
            .filter(|n| !n.is_empty())
            .collect();
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Removes the folder `dir` and everything in it. A missing folder is not
    /// an error (the summary is zero).
    fn delete_dir_all(&self, dir: &str) -> Result<DeleteSummary>;

    /// Removes one object if it exists; returns whether it did.
    fn delete(&self, path: &str) -> Result<bool>;

    /// Removes the folder `dir` if it is empty; Ok(false) if it is not.
    fn remove_dir_if_empty(&self, dir: &str) -> Result<bool>;

    /// Renames the object `from` to `to` in one atomic step, replacing `to`.
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// The second system backups are copied to, when the backend has one and
    /// the command connected it.
    fn replica(&self) -> Option<&dyn Replica> {
        None
    }

    /// What `check` reports about this storage beyond reading and writing:
    /// free space, stream counts, whether flushing works (only with `write`).
    /// A value that cannot be right is a failing finding.
    fn facts(&self, write: bool) -> Vec<Finding> {
        let _ = write;
        Vec::new()
    }
}

/// One line of `check`.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub step: String,
    pub outcome: Outcome,
    pub detail: String,
    pub secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Pass,
    Warn,
    Fail,
}

impl Finding {
    pub fn pass(step: impl Into<String>, detail: impl Into<String>, secs: f64) -> Finding {
        Self::new(step, Outcome::Pass, detail, secs)
    }
    pub fn warn(step: impl Into<String>, detail: impl Into<String>, secs: f64) -> Finding {
        Self::new(step, Outcome::Warn, detail, secs)
    }
    pub fn fail(step: impl Into<String>, detail: impl Into<String>, secs: f64) -> Finding {
        Self::new(step, Outcome::Fail, detail, secs)
    }
    fn new(
        step: impl Into<String>,
        outcome: Outcome,
        detail: impl Into<String>,
        secs: f64,
    ) -> Finding {
        Finding {
            step: step.into(),
            outcome,
            detail: detail.into(),
            secs,
        }
    }
}

impl Finding {
    /// Reports one timed step (its detail on success, else its error) and
    /// passes its result on.
    pub fn step<T>(
        report: &mut dyn FnMut(Finding),
        name: &str,
        (result, secs): (Result<T>, f64),
        detail: impl FnOnce(&T) -> String,
    ) -> Result<T> {
        match &result {
            Ok(v) => report(Finding::pass(name, detail(v), secs)),
            Err(e) => report(Finding::fail(name, e.to_string(), secs)),
        }
        result
    }
}

/// Runs `f` and returns its result and the seconds it took.
pub fn timed<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let started = std::time::Instant::now();
    let r = f();
    (r, started.elapsed().as_secs_f64())
}

/// A replica system (DD Boost managed file replication).
pub trait Replica {
    /// The replica itself, for its folders and checksum records.
    fn storage(&self) -> &dyn Storage;

    /// Whether every committed object must reach the replica before a
    /// command reports success (`replication: on`).
    fn mirrors_writes(&self) -> bool;

    /// Copies the committed object `path` from the primary to the same path
    /// on the replica, atomically replacing it there; with `exclusive`, an
    /// object already on the replica is an error. Returns the bytes copied.
    fn copy(&self, path: &str, exclusive: bool) -> Result<u64>;

    /// How many copies `replicate_backup` may run at once.
    fn streams(&self) -> usize;
}

/// An object being written.
pub trait ObjectWriter {
    /// The size of every write but the last (DD Boost: exactly 1 MiB).
    fn block_size(&self) -> usize;
    /// Appends bytes.
    fn write(&mut self, buf: &[u8]) -> Result<()>;
    /// Makes the whole object visible under its name.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// An object being read, by explicit offset. Readers move between threads:
/// a restore with reads in flight (option `read_ahead`) reads on several.
pub trait ObjectReader: Send {
    /// The size of reads that suits this backend.
    fn block_size(&self) -> usize;
    fn size(&self) -> u64;
    /// The size as the storage states it. [`ObjectReader::size`] may have
    /// been taken from a short first read, saving a round trip; a caller
    /// about to trust a size no checksum record confirms asks this.
    fn exact_size(&mut self) -> Result<u64> {
        Ok(self.size())
    }
    /// Reads at `offset`; returns 0 only at the end of the object.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize>;

    /// A way to open more readers of this object, each used by its own
    /// thread, so that several reads are in flight at once; None when the
    /// backend has no use for them.
    fn more_readers(&self) -> Option<ReaderFactory> {
        None
    }
}

/// Reads a whole (small) object from `reader`: the size it gives, or less
/// when the object ends first.
pub fn read_to_end(reader: &mut dyn ObjectReader) -> Result<Vec<u8>> {
    let mut buf = vec![0u8; reader.size() as usize];
    let mut got = 0;
    while got < buf.len() {
        let n = reader.read_at(&mut buf[got..], got as u64)?;
        if n == 0 {
            break;
        }
        got += n;
    }
    buf.truncate(got);
    Ok(buf)
}

/// Opens more readers of one object (see [`ObjectReader::more_readers`]).
pub struct ReaderFactory {
    /// Whether the readers read the very bytes of the reader they came from
    /// (the same open file), or open the object again by name, so that an
    /// overwrite committed meanwhile shows in them (only block verification
    /// can tell).
    pub same_file: bool,
    /// Opens up to `n` readers; fewer (down to none) when the storage's
    /// limits or failures say so, which it logs.
    pub open: Box<dyn FnOnce(usize) -> Vec<Box<dyn ObjectReader>> + Send>,
}

/// Splits `path` into its folder and file name.
pub fn split_path(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("", path),
    }
}

/// `dir/name`, or `name` at the top.
pub fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

/// A unique temporary name for `name` in the same folder:
/// `.<name>.tmp-<host>-<pid>-<nonce>`. The host and process id let a later
/// run tell whether the writer is gone (see [`stale_temp_owner`]).
pub fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        ".{name}.tmp-{}-{}-{nanos:x}x{n}",
        host_tag(),
        std::process::id()
    )
}

/// This host's name as it appears in temporary names: only `[A-Za-z0-9._]`.
pub fn host_tag() -> &'static str {
    static TAG: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    TAG.get_or_init(|| {
        let host = nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "localhost".into());
        host.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    })
}

/// For a file name made by [`temp_name`]: the object's name, and the host and
/// process id of its writer.
pub fn temp_owner(file_name: &str) -> Option<(&str, &str, u32)> {
    let rest = file_name.strip_prefix('.')?;
    let (object, tail) = rest.rsplit_once(".tmp-")?;
    let mut it = tail.rsplitn(3, '-');
    let _nonce = it.next()?;
    let pid = it.next()?.parse().ok()?;
    let host = it.next()?;
    Some((object, host, pid))
}

/// Whether the temporary `file_name` was left by a writer on this host that
/// is no longer running (killed with SIGKILL, or the host restarted).
pub fn is_stale_temp(file_name: &str) -> bool {
    match temp_owner(file_name) {
        Some((_, host, pid)) if host == host_tag() => !process_alive(pid),
        _ => false,
    }
}

fn process_alive(pid: u32) -> bool {
    let Ok(pid) = i32::try_from(pid) else {
        return false;
    };
    // Signal 0 checks existence; EPERM means it exists under another user.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) => true,
        Err(e) => e != nix::errno::Errno::ESRCH,
    }
}

/// A backend: its name (option `backend`), the options only it reads, and
/// its schema, which checks them. Both config validation and [`open`] go
/// through this table; a new backend is its own folder plus one line here.
pub struct Backend {
    pub name: &'static str,
    pub options: &'static [&'static str],
    /// Checks the backend's options (no I/O), recording every problem.
    pub parse: fn(&mut Options) -> Option<Box<dyn BackendConfig>>,
}

/// Every backend.
pub const BACKENDS: &[Backend] = &[
    Backend {
        name: "ddboost",
        options: ddboost::config::OPTIONS,
        parse: ddboost::config::parse,
    },
    Backend {
        name: "local",
        options: local::config::OPTIONS,
        parse: local::config::parse,
    },
];

/// The backend when option `backend` is not given.
pub const DEFAULT_BACKEND: &str = "ddboost";

/// A backend's checked settings.
pub trait BackendConfig: std::fmt::Debug + Send + Sync {
    /// Resolves what needs I/O to know (encrypted passwords); every problem
    /// is returned, each naming its option.
    fn resolve_secrets(&mut self, keys: &KeySources) -> std::result::Result<(), Vec<String>> {
        let _ = keys;
        Ok(())
    }

    /// Opens the storage; `remote` says whether the command needs a replica.
    fn open(&self, remote: Remote) -> Result<Box<dyn Storage>>;

    /// Opens the storage step by step for `check`, reporting each step
    /// (library, connection, folders; the remote system when configured);
    /// None when a step failed.
    fn check_open(&self, out: &mut dyn FnMut(Finding)) -> Option<Box<dyn Storage>> {
        let opened = timed(|| self.open(Remote::Never));
        Finding::step(out, "storage", opened, |s| s.describe()).ok()
    }

    /// For tests that look at one backend's settings.
    fn as_any(&self) -> &dyn std::any::Any;
}

/// What a command needs of a backend's replica system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Remote {
    /// Not at all: reads and listings work with the primary alone, so a
    /// restore does not depend on the replica being reachable.
    Never,
    /// Only when writes are mirrored (`replication: on`): writes, the backup
    /// hooks, delete_backup.
    IfReplicating,
    /// Always (replicate_backup, delete_replica).
    Required,
}

/// Opens the backend the config selects; `remote` says whether the command
/// needs the replica system.
pub fn open(config: &PluginConfig, remote: Remote) -> Result<Box<dyn Storage>> {
    let storage = config.backend.open(remote)?;
    // Injected failures for the test suite (debug builds only).
    Ok(match faulty::Faults::from_env()? {
        Some(f) => Box::new(faulty::FaultyStorage::new(storage, f)),
        None => storage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_host_and_pid() {
        let t = temp_name("gpbackup_0_20250101120000");
        let (object, host, pid) = temp_owner(&t).unwrap();
        assert_eq!(object, "gpbackup_0_20250101120000");
        assert_eq!(host, host_tag());
        assert_eq!(pid, std::process::id());
        assert!(!is_stale_temp(&t), "this process is alive");
        let dead = format!(".obj.tmp-{}-{}-abcx1", host_tag(), i32::MAX);
        assert!(is_stale_temp(&dead));
        let elsewhere = format!(".obj.tmp-otherhost-{}-abcx1", i32::MAX);
        assert!(
            !is_stale_temp(&elsewhere),
            "another host's writer may be alive"
        );
        assert!(temp_owner(".obj.checksum").is_none());
        assert!(!is_stale_temp("obj"));
    }
}
