//! Listings and deletes of a folder tree: folders read and their entries
//! looked at (or removed) on up to `command_connections` connections at once.

use std::sync::Mutex;

use super::{lock, System};
use crate::error::{Error, Result};
use crate::process::fanout;
use crate::storage::{listed_child, DeleteSummary, ObjectInfo, StoragePath};

impl System {
    /// Files below `dir` (a file lists itself), sorted; '.' names only
    /// with `hidden`. A missing folder lists as empty; an entry removed while
    /// listing (the SDK says not found) is left out; any other error fails.
    /// Entries are looked at while their folder is read, on up to
    /// `command_connections` connections at once.
    pub(in crate::storage::ddboost) fn walk(
        &self,
        dir: &StoragePath,
        hidden: bool,
    ) -> Result<Vec<ObjectInfo>> {
        match self.stat(dir)? {
            None => return Ok(Vec::new()),
            Some(s) if !s.is_dir => {
                let shown = hidden || !dir.file_name().starts_with('.');
                let me = ObjectInfo {
                    path: dir.clone(),
                    size: s.size,
                };
                return Ok(if shown { vec![me] } else { Vec::new() });
            }
            Some(_) => {}
        }
        let place = self.describe();
        let out = Mutex::new(Vec::new());
        self.fan_out(vec![Job::Folder(dir.clone())], |sys, job, more| {
            match job {
                Job::Folder(rel) => {
                    sys.read_dir_each(&rel, &mut |name| {
                        if !hidden && name.starts_with('.') {
                            return true;
                        }
                        match listed_child(&rel, name, &place) {
                            Some(child) => more.add(Job::Entry(child)),
                            None => true,
                        }
                    })?;
                }
                Job::Entry(child) => match sys.stat(&child)? {
                    Some(s) if s.is_dir => {
                        more.add(Job::Folder(child));
                    }
                    Some(s) => lock(&out).push(ObjectInfo {
                        path: child,
                        size: s.size,
                    }),
                    None => {} // removed meanwhile
                },
            }
            Ok(())
        })?;
        let mut out = out.into_inner().unwrap_or_else(|p| p.into_inner());
        out.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(out)
    }

    /// Runs `work` on the jobs `first` and those it adds, on this connection
    /// and up to `command_connections` in all (see [`fanout::run`]).
    fn fan_out<P: Send>(
        &self,
        first: Vec<Job<P>>,
        work: impl Fn(&System, Job<P>, &fanout::Adder<'_, Job<P>>) -> Result<()> + Sync,
    ) -> Result<()> {
        let open = || {
            let spare = lock(&self.spare).pop();
            let sys = match spare {
                Some(s) => s,
                None => self.sibling()?,
            };
            Ok(Spare {
                sys: Some(sys),
                home: &self.spare,
            })
        };
        fanout::run(self, self.fanout, open, first, work)
    }

    /// The entry names of folder `rel`; `Ok(None)` if it does not exist.
    pub(in crate::storage::ddboost) fn read_dir(&self, rel: &str) -> Result<Option<Vec<String>>> {
        let mut names = Vec::new();
        let found = self.read_dir_each(rel, &mut |n| {
            names.push(n.to_string());
            true
        })?;
        Ok(found.then_some(names))
    }

    /// Passes each entry name of folder `rel` to `each` as it is read, until
    /// `each` returns false; `Ok(false)` if the folder does not exist.
    fn read_dir_each(&self, rel: &str, each: &mut dyn FnMut(&str) -> bool) -> Result<bool> {
        let conn = self.lock();
        let dir = match conn.open_dir(&self.su, &self.full(rel)) {
            Ok(d) => d,
            Err(e) if e.is_not_found() => return Ok(false),
            Err(e) => return Err(self.err(e)),
        };
        for entry in dir {
            if !each(&entry.map_err(|e| self.err(e))?) {
                break;
            }
        }
        Ok(true)
    }

    /// Removes `rel` and, when it is a folder, everything below it. Files
    /// are unlinked as their folder is read, on up to `command_connections`
    /// connections at once; folders go once they are empty. Only "not
    /// found" (removed meanwhile) is skipped; any other failure stops and
    /// fails the delete. Entries a folder read did not show (written
    /// meanwhile) are found by a second pass.
    pub(in crate::storage::ddboost) fn delete_dir_all(&self, rel: &str) -> Result<DeleteSummary> {
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
        const PASSES: usize = 3;
        for _ in 0..PASSES {
            let (files, mut folders) = self.delete_files_below(rel)?;
            summary.files += files;
            // Deepest first: a folder goes after the folders in it.
            folders.sort_by_key(|f| std::cmp::Reverse(f.matches('/').count()));
            let mut left = false;
            for folder in &folders {
                let removed = self.lock().rmdir(&self.su, &self.full(folder));
                match removed {
                    Ok(()) => summary.dirs += 1,
                    Err(e) if e.is_not_found() => {}
                    Err(e) if e.is_not_empty() => left = true,
                    Err(e) => return Err(self.err(e)),
                }
            }
            if !left {
                return Ok(summary);
            }
        }
        Err(Error::storage(format!(
            "cannot delete {} on {}: files keep appearing in it while it is deleted ({} passes); stop what writes there and delete again",
            self.full(rel),
            self.host,
            PASSES
        )))
    }

    /// Unlinks every file below folder `rel`; returns how many, and the
    /// folders found (`rel` included). Hidden entries (names starting with
    /// a dot: checksum records, temporaries) go once every other file found
    /// is gone, so a delete that fails part way leaves each object it did
    /// not remove with its record, and a removed object's record still
    /// tells it was there.
    fn delete_files_below(&self, rel: &str) -> Result<(u64, Vec<String>)> {
        let files = std::sync::atomic::AtomicU64::new(0);
        let folders = Mutex::new(Vec::new());
        let hidden = Mutex::new(Vec::new());
        let work =
            |sys: &System, job: Job<String>, more: &fanout::Adder<'_, Job<String>>, last: bool| {
                match job {
                    Job::Folder(folder) => {
                        sys.read_dir_each(&folder, &mut |name| {
                            let child = match folder.as_str() {
                                "" => name.to_string(),
                                _ => format!("{folder}/{name}"),
                            };
                            if name.starts_with('.') && !last {
                                lock(&hidden).push(child);
                                return true;
                            }
                            more.add(Job::Entry(child))
                        })?;
                        lock(&folders).push(folder);
                    }
                    Job::Entry(child) => {
                        let unlinked = sys.lock().unlink(&sys.su, &sys.full(&child));
                        match unlinked {
                            Ok(()) => {
                                files.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            }
                            Err(e) if e.is_file_is_dir() => {
                                more.add(Job::Folder(child));
                            }
                            Err(e) if e.is_not_found() => {}
                            Err(e) => return Err(sys.err(e)),
                        }
                    }
                }
                Ok(())
            };
        self.fan_out(vec![Job::Folder(rel.to_string())], |sys, job, more| {
            work(sys, job, more, false)
        })?;
        let hidden = std::mem::take(&mut *lock(&hidden));
        if !hidden.is_empty() {
            let jobs = hidden.into_iter().map(Job::Entry).collect();
            self.fan_out(jobs, |sys, job, more| work(sys, job, more, true))?;
        }
        let folders = folders.into_inner().unwrap_or_else(|p| p.into_inner());
        Ok((files.into_inner(), folders))
    }
}

/// A sibling lent to one fan-out worker; back to the spares when it is done.
struct Spare<'a> {
    sys: Option<System>,
    home: &'a Mutex<Vec<System>>,
}

impl std::ops::Deref for Spare<'_> {
    type Target = System;
    fn deref(&self) -> &System {
        self.sys.as_ref().expect("lent until dropped")
    }
}

impl Drop for Spare<'_> {
    fn drop(&mut self) {
        if let Some(sys) = self.sys.take() {
            lock(self.home).push(sys);
        }
    }
}

/// A step of a listing or delete: read a folder, or look at (or remove)
/// one of its entries.
enum Job<P> {
    Folder(P),
    Entry(P),
}
