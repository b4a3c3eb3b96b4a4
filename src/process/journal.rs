//! The journal of temporaries: how `cleanup_plugin_for_backup` finds what a
//! writer killed with SIGKILL left, without listing the backup folder.
//!
//! One small file per backup, storage and host, in the user's private folder
//! in `/tmp` ([`private::run_dir`]): `journal-<timestamp>-<storage id>`. A
//! writer appends, each line with a single `write` on a file opened with
//! O_APPEND (dozens of writers share the file):
//! * `B <pid>` when it starts (under a shared lock, see below);
//! * `T <pid> <hex of the temporary's name>` right before it creates a
//!   temporary in the backup's folder (the storage's [`note`] call);
//! * `D <pid>` once its temporaries are gone (committed).
//!
//! The connection broker runs many writes in one process: each is a writer
//! of its own, `<pid>:<n>` (its request's number), and all of them are gone
//! when the broker is.
//!
//! The cleanup hook reads the file under an exclusive lock and removes only
//! the temporaries of writers that began, did not finish and are no longer
//! running: one delete each, whatever the size of the backup. Then it marks
//! them done, or removes the file when no writer is left running. A writer
//! takes the shared lock only to write its `B` line into a file that is
//! still linked, so a cleanup never removes the file under a writer that has
//! begun, and a writer that began after it starts a new file.
//!
//! A writer that finds no usable private folder writes no journal (and says
//! so in the log); the cleanup hook, which finds the same folder unusable,
//! then lists the backup folder as before. A writer that cannot write its
//! journal in a usable folder fails before it creates anything.

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use nix::fcntl::{Flock, FlockArg};
use xxhash_rust::xxh3::xxh3_64;

use crate::error::{Error, Result};
use crate::process::private::{open_append, open_existing, run_dir};
use crate::process::scope::Scope;

/// The options that name the storage a backup is written to.
const STORAGE_OPTIONS: &[&str] = &["backend", "hostname", "storage_unit", "directory"];

/// The plugin config's options, as given (secrets redacted): the ones that
/// name the storage tell the journals of two storages apart.
pub type Options<'a> = &'a [(String, String)];

/// The journal file of backup `timestamp` on the storage `options` name, or
/// None when there is no usable private folder.
fn journal_path(options: Options, timestamp: &str) -> Option<PathBuf> {
    let dir = run_dir()?;
    Some(dir.join(format!("journal-{timestamp}-{}", storage_id(options))))
}

/// What tells the files of two storages apart in the private folder: a
/// hash of the options that name the storage.
pub fn storage_id(options: Options) -> String {
    let mut id = String::new();
    for (k, v) in options {
        if STORAGE_OPTIONS.contains(&k.as_str()) {
            id.push_str(&format!("{k}={v}\n"));
        }
    }
    format!("{:016x}", xxh3_64(id.as_bytes()))
}

fn journal_error(path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::io(format!(
        "cannot write the journal of temporaries {}: {e}",
        path.display()
    ))
}

/// A write in progress: its temporaries are recorded until [`Writing::done`].
#[must_use]
pub struct Writing {
    active: bool,
}

/// Starts recording the temporaries this process creates for backup
/// `timestamp`. Fails, before anything is created, when the journal cannot
/// be written in a usable private folder.
pub fn begin(options: Options, timestamp: &str) -> Result<Writing> {
    let Some(path) = journal_path(options, timestamp) else {
        log::warn!(
            "no private folder gpbackup_ddboost_plugin-<uid> in /tmp (not a folder owned by this user, or writable by others): temporaries are not journaled, and cleanup_plugin_for_backup lists the backup folder"
        );
        return Ok(Writing { active: false });
    };
    let scope = Scope::current();
    let line = format!("B {}\n", scope.writer_id);
    // A cleanup may remove the file between our open and our lock: then
    // open again, which makes a new one.
    for _ in 0..8 {
        let file = open_append(&path).map_err(|e| journal_error(&path, e))?;
        let locked =
            Flock::lock(file, FlockArg::LockShared).map_err(|(_, e)| journal_error(&path, e))?;
        let linked = locked
            .metadata()
            .map_err(|e| journal_error(&path, e))?
            .nlink()
            > 0;
        if !linked {
            continue;
        }
        (&*locked)
            .write_all(line.as_bytes())
            .map_err(|e| journal_error(&path, e))?;
        let file = locked.unlock().map_err(|(_, e)| journal_error(&path, e))?;
        *scope.journal() = Some(file);
        return Ok(Writing { active: true });
    }
    Err(journal_error(&path, "removed again and again while opened"))
}

/// Records that this process is about to create the temporary `name` in the
/// backup's folder (called wherever a temporary name is made; nothing
/// happens outside [`begin`]..[`Writing::done`]).
pub fn note(name: &str) {
    let scope = Scope::current();
    let mut journal = scope.journal();
    if let Some(f) = journal.as_mut() {
        let line = format!("T {} {}\n", scope.writer_id, hex::encode(name));
        if let Err(e) = f.write_all(line.as_bytes()) {
            log::warn!("cannot journal temporary {name}: {e}");
        }
    }
}

impl Writing {
    /// Marks this writer's temporaries gone (after its commit).
    pub fn done(self) {
        if !self.active {
            return;
        }
        let scope = Scope::current();
        let taken = scope.journal().take();
        if let Some(mut f) = taken {
            let line = format!("D {}\n", scope.writer_id);
            if let Err(e) = f.write_all(line.as_bytes()) {
                log::warn!("cannot mark the journal of temporaries done: {e}");
            }
        }
    }
}

impl Drop for Writing {
    /// A write that failed removed its temporaries itself if it could; it
    /// leaves its entries for the cleanup hook (a delete that finds nothing
    /// is harmless) and records nothing more.
    fn drop(&mut self) {
        if self.active {
            Scope::current().journal().take();
        }
    }
}

/// A writer that began, did not finish and is no longer running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stale {
    pub pid: u32,
    /// The names of the temporaries it was about to create.
    pub temporaries: Vec<String>,
}

/// What the cleanup hook finds for one backup on this host.
pub enum Found {
    /// No usable private folder: writers journaled nothing.
    NoFolder,
    /// No journal: no writer of this backup ran here since the last cleanup.
    Nothing,
    /// The journal, locked.
    Journal(Sweep),
}

/// The journal, held under an exclusive lock until [`Sweep::finish`].
pub struct Sweep {
    file: Flock<File>,
    path: PathBuf,
    stale: Vec<Stale>,
    running: usize,
}

/// Opens backup `timestamp`'s journal for the cleanup hook.
pub fn for_cleanup(options: Options, timestamp: &str) -> Result<Found> {
    let Some(path) = journal_path(options, timestamp) else {
        return Ok(Found::NoFolder);
    };
    let read_error = |e: &dyn std::fmt::Display| {
        Error::io(format!(
            "cannot read the journal of temporaries {}: {e}",
            path.display()
        ))
    };
    let file = match open_existing(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Found::Nothing),
        Err(e) => return Err(read_error(&e)),
    };
    let file = Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| read_error(&e))?;
    if file.metadata().map_err(|e| read_error(&e))?.nlink() == 0 {
        // Another cleanup finished with it.
        return Ok(Found::Nothing);
    }
    let mut text = String::new();
    (&*file)
        .read_to_string(&mut text)
        .map_err(|e| read_error(&e))?;
    let writers = parse(&text);
    let (stale, running): (Vec<Writer>, Vec<Writer>) = writers
        .into_iter()
        .filter(|w| !w.done)
        .partition(|w| !super::alive(w.pid));
    Ok(Found::Journal(Sweep {
        file,
        path,
        stale: stale
            .into_iter()
            .map(|w| Stale {
                pid: w.pid,
                temporaries: w.temporaries,
            })
            .collect(),
        running: running.len(),
    }))
}

impl Sweep {
    /// Writers that are gone and did not finish.
    pub fn stale(&self) -> &[Stale] {
        &self.stale
    }

    /// Records that the stale writers' temporaries were removed: the file
    /// goes when no writer is left running, otherwise they are marked done.
    pub fn finish(self) -> Result<()> {
        let fail = |e: &dyn std::fmt::Display| journal_error(&self.path, e);
        if self.running == 0 {
            return std::fs::remove_file(&self.path).map_err(|e| fail(&e));
        }
        let marks: String = self
            .stale
            .iter()
            .map(|s| format!("D {}\n", s.pid))
            .collect();
        (&*self.file)
            .write_all(marks.as_bytes())
            .map_err(|e| fail(&e))
    }
}

/// One writer's lines: from its `B` (or first `T`) to its `D`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Writer {
    pid: u32,
    temporaries: Vec<String>,
    done: bool,
}

/// The writers of a journal, in the order they began. A writer id seen
/// again after its writer finished is a new writer; malformed lines (a line
/// cut short by a full disk) are skipped. A writer id is a process id,
/// alone or followed by `:<request>` (the broker's writes).
fn parse(text: &str) -> Vec<Writer> {
    let mut writers: Vec<Writer> = Vec::new();
    let mut current: HashMap<&str, usize> = HashMap::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ' ');
        let (Some(kind), Some(id)) = (parts.next(), parts.next()) else {
            continue;
        };
        let Ok(pid) = id.split(':').next().unwrap_or(id).parse::<u32>() else {
            continue;
        };
        let start = |writers: &mut Vec<Writer>, current: &mut HashMap<_, usize>| {
            writers.push(Writer {
                pid,
                temporaries: Vec::new(),
                done: false,
            });
            current.insert(id, writers.len() - 1);
            writers.len() - 1
        };
        match kind {
            "B" => {
                start(&mut writers, &mut current);
            }
            "T" => {
                let Some(name) = parts
                    .next()
                    .and_then(|h| hex::decode(h).ok())
                    .and_then(|b| String::from_utf8(b).ok())
                else {
                    continue;
                };
                let i = match current.get(id) {
                    Some(&i) if !writers[i].done => i,
                    _ => start(&mut writers, &mut current),
                };
                writers[i].temporaries.push(name);
            }
            "D" => {
                if let Some(&i) = current.get(id) {
                    writers[i].done = true;
                }
            }
            _ => {}
        }
    }
    writers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(pid: u32, name: &str) -> String {
        format!("T {pid} {}\n", hex::encode(name))
    }

    #[test]
    fn only_writers_that_did_not_finish_are_left() {
        let text = [
            "B 10\n".to_string(),
            t(10, ".a.tmp-h-10-1"),
            "B 11\n".into(),
            t(11, ".b.tmp-h-11-1"),
            t(10, "..a.checksum.next.tmp-h-10-2"),
            "D 10\n".into(),
            // Process id 10 used again by a writer that was killed.
            "B 10\n".into(),
            t(10, ".c.tmp-h-10-3"),
            "garbage\n".into(),
            "T 12 zz\n".into(),
            "T 1".into(),
        ]
        .concat();
        let w = parse(&text);
        let open: Vec<(u32, Vec<String>)> = w
            .into_iter()
            .filter(|w| !w.done)
            .map(|w| (w.pid, w.temporaries))
            .collect();
        assert_eq!(
            open,
            vec![
                (11, vec![".b.tmp-h-11-1".to_string()]),
                (10, vec![".c.tmp-h-10-3".to_string()]),
            ]
        );
    }

    #[test]
    fn writes_of_one_broker_are_writers_apart() {
        let text = [
            "B 20:1\n".to_string(),
            "B 20:2\n".into(),
            t_id("20:1", ".a.tmp-h-20-1"),
            t_id("20:2", ".b.tmp-h-20-2"),
            "D 20:2\n".into(),
        ]
        .concat();
        let open: Vec<(u32, Vec<String>)> = parse(&text)
            .into_iter()
            .filter(|w| !w.done)
            .map(|w| (w.pid, w.temporaries))
            .collect();
        assert_eq!(open, vec![(20, vec![".a.tmp-h-20-1".to_string()])]);
    }

    fn t_id(id: &str, name: &str) -> String {
        format!("T {id} {}\n", hex::encode(name))
    }

    #[test]
    fn a_temporary_without_a_begin_line_still_counts() {
        let w = parse(&t(7, ".x.tmp-h-7-1"));
        assert_eq!(w.len(), 1);
        assert!(!w[0].done);
        assert_eq!(w[0].temporaries, [".x.tmp-h-7-1"]);
    }
}
