//! The local backend: any mounted filesystem (local disk, NFS, BoostFS).
//!
//! Objects are plain files at `<directory>/<path>`, so a backup can also be
//! inspected with ordinary tools. Writes go to a '.'-prefixed temporary in the
//! target folder and are renamed into place after the data is written and
//! (with `fsync: on`, the default) flushed to stable storage together with the
//! folder entry.
//!
//! Everything the backend creates is the owner's only (option `file_mode`,
//! 0600 files and 0700 folders by default), set explicitly whatever the
//! umask; folders it did not create (`directory` and its parents) are left
//! alone. Only `directory` itself may be a symbolic link (to a mount point,
//! say): a path with a link below it is refused, and walks never descend into
//! a linked folder, so listing or deleting never reaches outside `directory`.

use std::fs::{self, DirBuilder, File, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::libc;

pub mod config;
mod fsops;
mod object;

use super::{
    listed_child, temp_name, timed, CreateOptions, DeleteSummary, Finding, ObjectInfo,
    ObjectReader, ObjectWriter, Storage, StoragePath,
};

use crate::error::{Error, Result};
use crate::process::signals::CleanupGuard;
use config::LocalConfig;
use fsops::{chmod_dir, io_err, is_enoent, not_a_file, symlink_refused, sync_dir};
use object::{start_flusher, LocalReader, LocalWriter};

pub struct LocalStorage {
    root: PathBuf,
    fsync: bool,
    /// Permissions of the files the backend creates.
    file_mode: u32,
    /// Permissions of the folders the backend creates.
    dir_mode: u32,
}

impl LocalStorage {
    /// The base directory must exist: it is where the backup filesystem is mounted.
    pub fn new(config: &LocalConfig) -> Result<LocalStorage> {
        let root = &config.directory;
        match fs::metadata(root) {
            Ok(m) if m.is_dir() => Ok(LocalStorage {
                root: root.to_path_buf(),
                fsync: config.fsync,
                file_mode: config.file_mode,
                dir_mode: config::dir_mode_for(config.file_mode),
            }),
            Ok(_) => Err(Error::config(format!(
                "backup directory {} is not a directory; fix option \"directory\"",
                root.display()
            ))),
            Err(e) => Err(Error::config(format!(
                "backup directory {} is not usable ({e}); create it or mount the backup filesystem there, or fix option \"directory\"",
                root.display()
            ))),
        }
    }

    fn full(&self, path: &str) -> PathBuf {
        if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(path)
        }
    }

    /// Files below `dir` (a file lists itself), sorted; '.' names only
    /// with `hidden`. A missing folder lists as empty.
    fn walk(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<ObjectInfo>> {
        let mut out = Vec::new();
        let (base, meta) = self.resolve(dir)?;
        match meta {
            None => return Ok(out),
            Some(m) if m.is_file() => {
                if hidden || !dir.file_name().starts_with('.') {
                    out.push(ObjectInfo {
                        path: dir.clone(),
                        size: m.len(),
                    });
                }
                return Ok(out);
            }
            Some(m) if !m.is_dir() => return Ok(out),
            Some(_) => {}
        }
        let mut stack = vec![(dir.clone(), base)];
        while let Some((rel, abs)) = stack.pop() {
            let entries = match fs::read_dir(&abs) {
                Ok(e) => e,
                // Removed while listing: nothing to show.
                Err(e) if is_enoent(&e) => continue,
                Err(e) => return Err(io_err("cannot list", &abs, e)),
            };
            for entry in entries {
                let entry = entry.map_err(|e| io_err("cannot list", &abs, e))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !hidden && name.starts_with('.') {
                    continue;
                }
                let Some(child) = listed_child(&rel, &name, &self.describe()) else {
                    continue;
                };
                // The entry's own type: a link is neither a folder nor a
                // file here, so it is never followed.
                let ft = entry
                    .file_type()
                    .map_err(|e| io_err("cannot stat", &entry.path(), e))?;
                if ft.is_dir() {
                    stack.push((child, entry.path()));
                } else if ft.is_file() {
                    let size = match entry.metadata() {
                        Ok(m) => m.len(),
                        // Removed while listing.
                        Err(e) if is_enoent(&e) => continue,
                        Err(e) => return Err(io_err("cannot stat", &entry.path(), e)),
                    };
                    out.push(ObjectInfo { path: child, size });
                }
            }
        }
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// The absolute path of `rel` and the metadata of its last component
    /// (None when absent), after checking that no existing component below
    /// the root is a symbolic link. The root itself may be one.
    fn resolve(&self, rel: &StoragePath) -> Result<(PathBuf, Option<fs::Metadata>)> {
        let mut path = self.root.clone();
        let parts: Vec<&str> = rel.components().collect();
        if parts.is_empty() {
            let m = fs::metadata(&path).map_err(|e| io_err("cannot stat", &path, e))?;
            return Ok((path, Some(m)));
        }
        let mut parts = parts.into_iter();
        let mut last = None;
        for part in parts.by_ref() {
            path.push(part);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => return Err(symlink_refused(&path)),
                Ok(m) => last = Some(m),
                Err(e) if is_enoent(&e) => {
                    last = None;
                    break;
                }
                Err(e) => return Err(io_err("cannot stat", &path, e)),
            }
        }
        path.extend(parts);
        Ok((path, last))
    }
}

impl Storage for LocalStorage {
    /// Free space, and with `write` whether a file can be created, flushed
    /// and removed in `directory` (what every backup needs).
    fn facts(&self, write: bool) -> Vec<Finding> {
        let mut out = Vec::new();
        let (vfs, secs) = timed(|| nix::sys::statvfs::statvfs(&self.root));
        out.push(match vfs {
            Ok(v) => {
                let unit = v.fragment_size() as f64;
                let free = v.blocks_available() as f64 * unit;
                let total = v.blocks() as f64 * unit;
                let detail = format!(
                    "{:.1} GiB free of {:.1} GiB in {}",
                    free / (1u64 << 30) as f64,
                    total / (1u64 << 30) as f64,
                    self.root.display()
                );
                if v.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
                    Finding::fail(
                        "free space",
                        format!("{detail}, but the filesystem is read-only"),
                        secs,
                    )
                } else {
                    Finding::pass("free space", detail, secs)
                }
            }
            Err(e) => Finding::fail(
                "free space",
                format!("cannot stat the filesystem of {}: {e}", self.root.display()),
                secs,
            ),
        });
        if write {
            let probe = self
                .root
                .join(format!(".check-fsync-{}", std::process::id()));
            let (r, secs) = timed(|| -> io::Result<()> {
                let _cleanup = CleanupGuard::remove_file(probe.clone());
                let mut f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(self.file_mode)
                    .open(&probe)?;
                f.write_all(&[0u8; 4096])?;
                f.sync_all()?;
                File::open(&self.root)?.sync_all()
            });
            out.push(match r {
                Ok(()) => Finding::pass(
                    "write and fsync",
                    format!(
                        "a file in {} was written, flushed and removed",
                        self.root.display()
                    ),
                    secs,
                ),
                Err(e) => Finding::fail(
                    "write and fsync",
                    format!("{}: {e}", self.root.display()),
                    secs,
                ),
            });
        }
        out
    }

    fn describe(&self) -> String {
        format!("local:{}", self.root.display())
    }

    /// One level at a time, so every folder made here gets `dir_mode` and
    /// folders that already exist (made by a concurrent process, or by the
    /// DBA) are accepted as they are, unless they are links.
    fn create_dir_all(&self, dir: &StoragePath) -> Result<()> {
        let mut path = self.root.clone();
        for part in dir.components() {
            path.push(part);
            match DirBuilder::new().mode(self.dir_mode).create(&path) {
                Ok(()) => chmod_dir(&path, self.dir_mode)
                    .map_err(|e| io_err("cannot set permissions of folder", &path, e))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let m =
                        fs::symlink_metadata(&path).map_err(|e| io_err("cannot stat", &path, e))?;
                    if m.file_type().is_symlink() {
                        return Err(symlink_refused(&path));
                    }
                    if !m.is_dir() {
                        return Err(Error::storage(format!(
                            "cannot create folder {}: a file of that name exists",
                            path.display()
                        )));
                    }
                }
                Err(e) => return Err(io_err("cannot create folder", &path, e)),
            }
        }
        Ok(())
    }

    fn create(&self, path: &StoragePath, _: &CreateOptions) -> Result<Box<dyn ObjectWriter>> {
        let Some(dir) = path.parent() else {
            return Err(Error::invalid(
                "an object needs a name below option \"directory\"",
            ));
        };
        self.create_dir_all(&dir)?;
        let (final_path, _) = self.resolve(path)?;
        let temp = path.sibling(&temp_name(path.file_name()))?;
        let temp_path = self.full(&temp);
        // create_new (O_EXCL) never follows a link at the temporary's name.
        // Registered first, so a signal cannot fall between the two.
        let cleanup = CleanupGuard::remove_file(temp_path.clone());
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(self.file_mode)
            .open(&temp_path)
            .map_err(|e| io_err("cannot create", &temp_path, e))?;
        // The umask may have taken bits away: set the mode itself.
        file.set_permissions(Permissions::from_mode(self.file_mode))
            .map_err(|e| io_err("cannot set permissions of", &temp_path, e))?;
        let flusher = if self.fsync {
            start_flusher(&file)
        } else {
            None
        };
        Ok(Box::new(LocalWriter {
            flusher,
            file,
            temp,
            temp_path,
            final_path,
            written: 0,
            synced_to: 0,
            fsync: self.fsync,
            cleanup: Some(cleanup),
        }))
    }

    fn open(&self, path: &StoragePath, _: &super::OpenOptions) -> Result<Box<dyn ObjectReader>> {
        let (p, meta) = self.resolve(path)?;
        match meta {
            None => {
                return Err(Error::not_found(format!("{} does not exist", p.display())));
            }
            // Checked before opening, so a FIFO cannot block the open.
            Some(m) if !m.is_file() => return Err(not_a_file(&p)),
            Some(_) => {}
        }
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&p)
            .map_err(|e| io_err("cannot open", &p, e))?;
        let meta = file.metadata().map_err(|e| io_err("cannot stat", &p, e))?;
        if !meta.is_file() {
            return Err(not_a_file(&p));
        }
        Ok(Box::new(LocalReader {
            file: Arc::new(file),
            size: meta.len(),
            path: p,
        }))
    }

    fn list(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.walk(dir, false)
    }

    fn list_all(&self, dir: &StoragePath) -> Result<Vec<ObjectInfo>> {
        self.walk(dir, true)
    }

    fn list_names(&self, dir: &StoragePath, hidden: bool) -> Result<Vec<String>> {
        let (abs, meta) = self.resolve(dir)?;
        if !meta.is_some_and(|m| m.is_dir()) {
            return Ok(Vec::new());
        }
        let entries = match fs::read_dir(&abs) {
            Ok(e) => e,
            Err(e) if is_enoent(&e) => return Ok(Vec::new()),
            Err(e) => return Err(io_err("cannot list", &abs, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io_err("cannot list", &abs, e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            // Links are never followed, so never named.
            let ft = entry
                .file_type()
                .map_err(|e| io_err("cannot stat", &entry.path(), e))?;
            if (hidden || !name.starts_with('.')) && (ft.is_dir() || ft.is_file()) {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    fn delete_dir_all(&self, dir: &StoragePath) -> Result<DeleteSummary> {
        let (abs, _) = self.resolve(dir)?;
        let mut summary = DeleteSummary::default();
        delete_tree(&abs, &mut summary)?;
        Ok(summary)
    }

    fn delete(&self, path: &StoragePath) -> Result<bool> {
        let (p, meta) = self.resolve(path)?;
        if meta.is_none() {
            return Ok(false);
        }
        match fs::remove_file(&p) {
            Ok(()) => Ok(true),
            Err(e) if is_enoent(&e) => Ok(false),
            Err(e) => Err(io_err("cannot delete", &p, e)),
        }
    }

    fn exists(&self, path: &StoragePath) -> Result<bool> {
        Ok(self.resolve(path)?.1.is_some())
    }

    fn remove_dir_if_empty(&self, dir: &StoragePath) -> Result<bool> {
        let (p, meta) = self.resolve(dir)?;
        if meta.is_none() {
            return Ok(false);
        }
        match fs::remove_dir(&p) {
            Ok(()) => Ok(true),
            Err(e) if is_enoent(&e) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::DirectoryNotEmpty => Ok(false),
            Err(e) => Err(io_err("cannot remove folder", &p, e)),
        }
    }

    fn rename(&self, from: &StoragePath, to: &StoragePath) -> Result<()> {
        let (src, _) = self.resolve(from)?;
        let (dst, _) = self.resolve(to)?;
        fs::rename(&src, &dst).map_err(|e| io_err("cannot rename into place", &dst, e))?;
        if self.fsync {
            if let Some(parent) = dst.parent() {
                sync_dir(parent)?;
            }
        }
        Ok(())
    }
}

/// Depth-first delete that counts what it removes and tolerates entries
/// vanishing under it (another delete of the same backup). Only real folders
/// are descended into (by `symlink_metadata`); a link is unlinked itself.
fn delete_tree(path: &Path, summary: &mut DeleteSummary) -> Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if is_enoent(&e) => return Ok(()),
        Err(e) => return Err(io_err("cannot stat", path, e)),
    };
    if !meta.is_dir() {
        return match fs::remove_file(path) {
            Ok(()) => {
                summary.files += 1;
                Ok(())
            }
            Err(e) if is_enoent(&e) => Ok(()),
            Err(e) => Err(io_err("cannot delete", path, e)),
        };
    }
    let entries = match fs::read_dir(path) {
        Ok(e) => e,
        Err(e) if is_enoent(&e) => return Ok(()),
        Err(e) => return Err(io_err("cannot list", path, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| io_err("cannot list", path, e))?;
        delete_tree(&entry.path(), summary)?;
    }
    match fs::remove_dir(path) {
        Ok(()) => {
            summary.dirs += 1;
            Ok(())
        }
        Err(e) if is_enoent(&e) => Ok(()),
        Err(e) => Err(io_err("cannot remove folder", path, e)),
    }
}
