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
pub mod local;

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

    /// Opens an object for reading; a missing object is `ErrorKind::NotFound`.
    fn open(&self, path: &str) -> Result<Box<dyn ObjectReader>>;

    /// Whether an object exists.
    fn exists(&self, path: &str) -> Result<bool>;

    /// Every object below the folder `dir` (recursive), skipping the plugin's
    /// own '.' names. A missing folder lists as empty.
    fn list(&self, dir: &str) -> Result<Vec<ObjectInfo>>;

    /// Removes the folder `dir` and everything in it. A missing folder is not
    /// an error (the summary is zero).
    fn delete_dir_all(&self, dir: &str) -> Result<DeleteSummary>;

    /// Removes one object if it exists; returns whether it did.
    fn delete(&self, path: &str) -> Result<bool>;

    /// Removes the folder `dir` if it is empty; Ok(false) if it is not.
    fn remove_dir_if_empty(&self, dir: &str) -> Result<bool>;

    /// Every file below `dir`, the plugin's own '.' names included.
    fn list_all(&self, dir: &str) -> Result<Vec<ObjectInfo>> {
        let _ = dir;
        Err(no_replica())
    }

    // ---- replication (backends with a second system) ----

    /// Whether committed objects must be copied to a replica before a
    /// command reports success.
    fn replicates(&self) -> bool {
        false
    }

    /// Copies the committed object `path` to the replica, replacing it there.
    fn replicate(&self, path: &str) -> Result<u64> {
        let _ = path;
        Err(no_replica())
    }

    /// Copies `path` to the replica; an existing replica object is an error.
    fn replicate_exclusive(&self, path: &str) -> Result<u64> {
        let _ = path;
        Err(no_replica())
    }

    /// Deletes the folder `dir` on the replica only.
    fn delete_replica_dir(&self, dir: &str) -> Result<DeleteSummary> {
        let _ = dir;
        Err(no_replica())
    }

    /// The replica's description, when one is connected.
    fn replica_describe(&self) -> Option<String> {
        None
    }
}

fn no_replica() -> crate::error::Error {
    crate::error::Error::config(
        "replication needs backend ddboost with the remote_* options set in the plugin config",
    )
}

/// An object being written.
pub trait ObjectWriter {
    /// The size of every write but the last (DD Boost: exactly 1 MiB).
    fn block_size(&self) -> usize {
        1 << 20
    }
    /// Appends bytes.
    fn write(&mut self, buf: &[u8]) -> Result<()>;
    /// Makes the whole object visible under its name.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// An object being read, by explicit offset.
pub trait ObjectReader {
    /// The size of reads that suits this backend.
    fn block_size(&self) -> usize {
        1 << 20
    }
    fn size(&self) -> u64;
    /// Reads at `offset`; returns 0 only at the end of the object.
    fn read_at(&mut self, buf: &mut [u8], offset: u64) -> Result<usize>;
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

/// A unique temporary name for `name` in the same folder.
pub fn temp_name(name: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(".{name}.tmp-{}-{nanos:x}-{n}", std::process::id())
}

use crate::config::{BackendConfig, PluginConfig};

pub use ddboost::Remote;

/// Opens the backend the config selects; `remote` says whether the command
/// needs the replica system.
pub fn open(config: &PluginConfig, remote: Remote) -> Result<Box<dyn Storage>> {
    match &config.backend {
        BackendConfig::Local(l) => Ok(Box::new(local::LocalStorage::new(l)?)),
        BackendConfig::DdBoost(d) => Ok(Box::new(ddboost::DdBoostStorage::open(d, remote)?)),
    }
}
