//! The user's private folder on local disk, and files in it.
//!
//! `gpbackup_ddboost_plugin-<uid>` below a shared temp dir holds what the
//! plugin keeps on a host between processes: the fallback log (below
//! `$TMPDIR`) and the journal of temporaries (below `/tmp`, whatever the
//! environment: see [`run_dir`]). Another user could plant a link, a FIFO or
//! a folder of their own at a fixed name in a shared temp dir, so the folder
//! is used only when it is a real folder owned by this user that neither
//! group nor others can write, and every file in it is opened without
//! following links and without blocking (O_NOFOLLOW, O_NONBLOCK), created
//! with mode 0600, and used only when it is a regular file owned by this user.

use std::fs::{DirBuilder, File, OpenOptions, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::about::PLUGIN_NAME;

/// `<parent>/gpbackup_ddboost_plugin-<uid>`, created 0700, when it is a real
/// folder owned by this user that neither group nor others can write.
pub fn private_dir(parent: &Path) -> Option<PathBuf> {
    let uid = nix::unistd::getuid().as_raw();
    let dir = parent.join(format!("{PLUGIN_NAME}-{uid}"));
    match DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {
            // The umask may have taken bits away; set the mode through a
            // handle that cannot be a link.
            let _ = OpenOptions::new()
                .read(true)
                .custom_flags(nix::libc::O_DIRECTORY | nix::libc::O_NOFOLLOW)
                .open(&dir)
                .and_then(|d| d.set_permissions(Permissions::from_mode(0o700)));
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(_) => return None,
    }
    let meta = std::fs::symlink_metadata(&dir).ok()?;
    let safe = meta.file_type().is_dir() && meta.uid() == uid && meta.mode() & 0o022 == 0;
    safe.then_some(dir)
}

/// The private folder in `/tmp`, the same for every process of this user on
/// this host: the hooks come over ssh with the user's environment, while
/// per-table `COPY ... TO PROGRAM` runs the plugin with the postmaster's, so
/// neither `$HOME` nor `$TMPDIR` may choose it. Builds with `test-support` take the parent
/// from `GPBACKUP_DDBOOST_PLUGIN_RUN_DIR` when set, so concurrent tests keep
/// apart (other builds ignore it).
pub fn run_dir() -> Option<PathBuf> {
    // Checked once a process (the journal, the facts and the broker's
    // socket all live there): the folder is this user's, in a sticky /tmp.
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| private_dir(&run_dir_parent())).clone()
}

#[cfg(feature = "test-support")]
fn run_dir_parent() -> PathBuf {
    match std::env::var_os("GPBACKUP_DDBOOST_PLUGIN_RUN_DIR") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from("/tmp"),
    }
}

#[cfg(not(feature = "test-support"))]
fn run_dir_parent() -> PathBuf {
    PathBuf::from("/tmp")
}

/// Opens `path` for appending: never through a link, never blocking on a
/// FIFO, created 0600; only a regular file owned by this user is used.
pub fn open_append(path: &Path) -> io::Result<File> {
    open_private(path, true)
}

/// Opens an existing `path` for reading and appending, with the checks of
/// [`open_append`]; not found when it does not exist.
pub fn open_existing(path: &Path) -> io::Result<File> {
    open_private(path, false)
}

fn open_private(path: &Path, create: bool) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(create)
        .read(!create)
        .append(true)
        .mode(0o600)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if meta.is_file() && meta.uid() == nix::unistd::getuid().as_raw() {
        Ok(file)
    } else {
        Err(io::Error::other(
            "not a regular file owned by this user; remove it",
        ))
    }
}

/// Whether `path` still names the open `file` (the same device and inode;
/// a link at `path` names something else): false once it was removed or
/// replaced.
pub fn still_names(path: &Path, file: &File) -> io::Result<bool> {
    let open = file.metadata()?;
    match std::fs::symlink_metadata(path) {
        Ok(now) => Ok(now.dev() == open.dev() && now.ino() == open.ino()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes the files of the private folder whose name starts with one of
/// `prefixes` and that nothing changed for `unchanged`: what runs whose
/// cleanup hook never came (gpbackup or gprestore killed) left behind. Only
/// regular files of this user go, each under an exclusive lock that no
/// process holds (a journal's writer holds its shared one while it begins),
/// and only when the name still is the file checked. Returns the names
/// removed; a file that cannot be is left as it is.
pub fn remove_unchanged(prefixes: &[&str], unchanged: std::time::Duration) -> Vec<String> {
    let Some(dir) = run_dir() else {
        return Vec::new();
    };
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let old = |meta: &std::fs::Metadata| {
        meta.modified()
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > unchanged)
    };
    let mut removed = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !prefixes.iter().any(|p| name.starts_with(p)) {
            continue;
        }
        let path = entry.path();
        let Ok(file) = open_existing(&path) else {
            continue;
        };
        let Ok(held) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        else {
            continue;
        };
        let Ok(ours) = held.metadata() else {
            continue;
        };
        if still_names(&path, &held).unwrap_or(false)
            && old(&ours)
            && std::fs::remove_file(&path).is_ok()
        {
            removed.push(name);
        }
    }
    removed.sort();
    removed
}

/// Creates `path` as a new file (never through a link, nor over anything
/// already there) with exactly `mode` (the umask taken no bits), writes
/// `bytes` and flushes them to disk: the temporary of a file that is then
/// renamed into place.
pub fn write_new_file(path: &Path, mode: u32, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
        .open(path)?;
    f.set_permissions(Permissions::from_mode(mode))?;
    f.write_all(bytes)?;
    f.sync_all()
}
